import { type Envelope, parseEnvelope, serializeEnvelope } from '../envelope/index.js';
import type { Store } from './store.js';

/** One stored event: its position in the local log and the envelope. */
export interface LoggedEvent {
  seq: number;
  envelope: Envelope;
}

/**
 * The `events` table: the node's append-only local log. In embedded mode it is the bus the
 * pipeline consumes; in Redis mode the processor records each consumed event here, in the
 * batch transaction, which makes the envelope id the receiver's exactly-once key.
 */
export class EventLog {
  private readonly s;

  constructor(private readonly store: Store) {
    const db = store.db;
    this.s = {
      insert: db.prepare(
        'INSERT OR IGNORE INTO events (id, event, timestamp, source, causation_id, correlation_id, direct, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      after: db.prepare('SELECT seq, body FROM events WHERE seq > ? AND direct = 0 ORDER BY seq LIMIT ?'),
      byIdReader: store.reader.prepare('SELECT seq, body FROM events WHERE id = ?'),
      childrenReader: store.reader.prepare('SELECT seq, body FROM events WHERE causation_id = ? ORDER BY seq LIMIT 1000'),
      maxSeq: db.prepare('SELECT COALESCE(MAX(seq), 0) FROM events WHERE direct = 0').pluck(),
    };
  }

  /**
   * Appends inside the caller's transaction. Returns the new seq, or 0 when an event with
   * this id is already logged (a redelivery). `direct` marks an event applied in the same
   * transaction (mesh ingress, quarantine release): the embedded bus does not deliver it again.
   */
  append(env: Envelope, direct = false): number {
    const r = this.s.insert.run(
      env.id,
      env.event,
      env.timestamp,
      env.source,
      env.causationId ?? null,
      env.correlationId ?? null,
      direct ? 1 : 0,
      serializeEnvelope(env),
    );
    return r.changes === 1 ? Number(r.lastInsertRowid) : 0;
  }

  /** Events after a position, oldest first (writer connection: used by the processor). */
  readAfter(seq: number, limit: number): LoggedEvent[] {
    const rows = this.s.after.all(seq, limit) as Array<{ seq: number; body: string }>;
    return rows.map((r) => ({ seq: r.seq, envelope: parseEnvelope(r.body) }));
  }

  maxSeq(): number {
    return this.s.maxSeq.get() as number;
  }

  get(id: string): LoggedEvent | undefined {
    const r = this.s.byIdReader.get(id) as { seq: number; body: string } | undefined;
    return r ? { seq: r.seq, envelope: parseEnvelope(r.body) } : undefined;
  }

  /** Events caused by the given one. */
  children(id: string): LoggedEvent[] {
    const rows = this.s.childrenReader.all(id) as Array<{ seq: number; body: string }>;
    return rows.map((r) => ({ seq: r.seq, envelope: parseEnvelope(r.body) }));
  }

  /** Newest first, optionally of one type, paging with `beforeSeq`. */
  list(opts: { type?: string; beforeSeq?: number; limit?: number } = {}): LoggedEvent[] {
    const where: string[] = [];
    const params: unknown[] = [];
    if (opts.type) where.push('event = ?') && params.push(opts.type);
    if (opts.beforeSeq !== undefined) where.push('seq < ?') && params.push(opts.beforeSeq);
    const limit = Math.min(Math.max(opts.limit ?? 50, 1), 1000);
    const rows = this.store.reader
      .prepare(`SELECT seq, body FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`)
      .all(...params, limit) as Array<{ seq: number; body: string }>;
    return rows.map((r) => ({ seq: r.seq, envelope: parseEnvelope(r.body) }));
  }
}
