import { type Envelope, parseEnvelope, serializeEnvelope } from '../envelope/index.js';
import { WeftError } from '../errors/index.js';
import type { Store } from './store.js';

/** `log_marks` key of the prune mark: every event below it was removed (`weft events prune`). */
export const PRUNE_MARK = 'events_pruned_below';

/** Positions before the binary search's answer that `firstSeqSince` checks for a newer event (clock skew). */
const SKEW_WINDOW = 1000;

/** What stopped a prune short of the position it was asked for. */
export type PruneLimit = 'none' | 'newest' | 'pipeline' | 'domains' | 'already';

/** What `EventLog.prune` did (or, with `dryRun`, would do). */
export interface PruneResult {
  /** The position asked for: events with seq below it. */
  requested: number;
  /** The position used: every event below it is gone now (the new mark). */
  belowSeq: number;
  /** The mark before this prune (1: nothing was pruned yet). */
  previous: number;
  /** Events removed by this prune. */
  removed: number;
  /** Why `belowSeq` is lower than `requested`, if it is: the newest event is always kept (it carries the numbering), the embedded pipeline's position, or a domain lane still needs the event. */
  limitedBy: PruneLimit;
  dryRun: boolean;
}

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
      // A pruned id is still known (pruned_ids): the event is a duplicate, as if its row were there.
      // Positional parameters (the id twice): binding by name looks each one up on an object,
      // ~1.5 µs an event more on every append (the pipeline bench's 100,000 events).
      insert: db.prepare(
        `INSERT OR IGNORE INTO events (id, event, timestamp, source, causation_id, correlation_id, direct, body)
         SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM pruned_ids WHERE id = ?)`,
      ),
      withhold: db.prepare('INSERT OR IGNORE INTO events_withheld (seq, id) SELECT seq, id FROM events WHERE id = ?'),
      unwithhold: db.prepare('DELETE FROM events_withheld WHERE seq = (SELECT seq FROM events WHERE id = ?)'),
      tsAt: store.reader.prepare('SELECT seq, timestamp FROM events WHERE seq >= ? ORDER BY seq LIMIT 1'),
      tsBefore: store.reader.prepare('SELECT MIN(seq) FROM (SELECT seq, timestamp FROM events WHERE seq < ? ORDER BY seq DESC LIMIT ?) WHERE timestamp >= ?').pluck(),
      bounds: store.reader.prepare('SELECT COALESCE(MIN(seq), 0) AS low, COALESCE(MAX(seq), 0) AS high FROM events'),
      after: db.prepare('SELECT seq, body FROM events WHERE seq > ? AND direct = 0 ORDER BY seq LIMIT ?'),
      byIdReader: store.reader.prepare('SELECT seq, body FROM events WHERE id = ?'),
      childrenReader: store.reader.prepare('SELECT seq, body FROM events WHERE causation_id = ? ORDER BY seq LIMIT 1000'),
      maxSeq: db.prepare('SELECT COALESCE(MAX(seq), 0) FROM events WHERE direct = 0').pluck(),
      markReader: store.reader.prepare('SELECT value FROM log_marks WHERE key = ?').pluck(),
      setMark: db.prepare('INSERT INTO log_marks (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    };
  }

  /** The lowest position the log may still hold: every event below it was pruned (1 when none was). Committed data only. */
  prunedBelow(): number {
    return (this.s.markReader.get(PRUNE_MARK) as number | undefined) ?? 1;
  }

  /**
   * The first position whose event is at or after `iso` (its `timestamp`), for pruning by age:
   * the events below it are older. `maxSeq + 1` when none is.
   *
   * Bounded work, whatever the log's size: a binary search on the position (about 2·log2(n)
   * primary-key lookups), taking timestamps as rising with the position, which they do up to
   * clock skew and events received late from peers (they carry their producer's time). The
   * `SKEW_WINDOW` positions before the answer are checked as well: one of them at or after `iso`
   * moves the answer down to it, so a little disorder never prunes a newer event.
   */
  firstSeqSince(iso: string): number {
    const { low, high } = this.s.bounds.get() as { low: number; high: number };
    if (high === 0) return 1;
    // The first row at or after `seq` (rows may be missing: a prune cut short, ids of direct writes).
    const at = (seq: number) => this.s.tsAt.get(seq) as { seq: number; timestamp: string } | undefined;
    let lo = low;
    let hi = high + 1;
    // Invariant: every probed row below lo is older than iso; the row at or after hi (if any) is not.
    while (lo < hi) {
      const mid = lo + Math.floor((hi - lo) / 2);
      const r = at(mid);
      if (r === undefined || r.timestamp >= iso) hi = mid;
      else lo = r.seq + 1;
    }
    const first = at(lo)?.seq ?? high + 1;
    const skewed = this.s.tsBefore.get(first, SKEW_WINDOW, iso) as number | null;
    return skewed ?? first;
  }

  /**
   * Removes the events below `belowSeq`, never one still needed: the newest event stays (the
   * positions continue from it), nothing from the first event the embedded pipeline has not
   * consumed on (consumer \`pipeline\` in consumer_offsets; with no such row yet nothing of the
   * bus was consumed), nothing a domain lane still reads from the log
   * (a domain_inbox row without a body of its own). The mark (log_marks \`events_pruned_below\`)
   * is written in the first deleting transaction, before any row goes, so a reader that sees a
   * row missing also sees the mark (a mirror of this node reports the gap instead of skipping
   * it). Deletes in chunks of `chunk` positions, each its own transaction, so the pipeline is
   * never held for long. Each removed event's id is kept (pruned_ids, in the same transaction):
   * it stays the exactly-once key, so the event coming again is a duplicate (about 40 bytes an
   * id, kept for good).
   * @example
   * const r = await ns.log.prune(10_000); // r.removed, r.belowSeq, r.limitedBy
   */
  async prune(belowSeq: number, opts: { chunk?: number; dryRun?: boolean } = {}): Promise<PruneResult> {
    if (!Number.isSafeInteger(belowSeq) || belowSeq < 1) throw new WeftError('WEFT_VALIDATION', `prune position must be a whole number of at least 1, got ${belowSeq}`);
    const chunk = Math.max(1, opts.chunk ?? 5000);
    const plan = () => {
      const db = this.store.db;
      const previous = (db.prepare('SELECT value FROM log_marks WHERE key = ?').pluck().get(PRUNE_MARK) as number | undefined) ?? 1;
      let bound = belowSeq;
      let limitedBy: PruneLimit = 'none';
      const cap = (at: number, why: PruneLimit) => {
        if (at < bound) {
          bound = at;
          limitedBy = why;
        }
      };
      cap(db.prepare('SELECT COALESCE(MAX(seq), 0) FROM events').pluck().get() as number, 'newest');
      const consumed = db.prepare("SELECT position FROM consumer_offsets WHERE name = 'pipeline'").pluck().get() as string | undefined;
      // A numeric position is the embedded bus's (the log is the bus); no position yet: nothing
      // of it was consumed. Redis stream ids mean every logged event was consumed (over Redis a
      // row is written as it is consumed, with the position). The first row of the bus past the
      // position (direct = 0) stays, and all after it; rows applied directly (direct = 1, 2)
      // were processed as they were written. Looked for below the position asked only.
      if (consumed === undefined || /^\d+$/.test(consumed)) {
        const waiting = db.prepare('SELECT seq FROM events WHERE seq > ? AND seq < ? AND direct = 0 ORDER BY seq LIMIT 1').pluck().get(Number(consumed ?? 0), bound) as number | undefined;
        if (waiting !== undefined) cap(waiting, 'pipeline');
      }
      const lanes = db.prepare("SELECT MIN(e.seq) FROM domain_inbox i JOIN events e ON e.id = i.event_id WHERE i.body = ''").pluck().get() as number | null;
      if (lanes !== null) cap(lanes, 'domains');
      if (bound <= previous) {
        if (limitedBy === 'none') limitedBy = 'already';
        bound = previous;
      }
      return { previous, bound, limitedBy };
    };
    if (opts.dryRun) {
      const p = await this.store.write(plan);
      const removed = p.bound > p.previous ? (this.store.db.prepare('SELECT COUNT(*) FROM events WHERE seq < ?').pluck().get(p.bound) as number) : 0;
      return { requested: belowSeq, belowSeq: p.bound, previous: p.previous, removed, limitedBy: p.limitedBy, dryRun: true };
    }
    // The mark goes first, in the transaction that decides the bound (nothing can move it back meanwhile).
    const p = await this.store.write(() => {
      const r = plan();
      if (r.bound > r.previous) this.s.setMark.run(PRUNE_MARK, r.bound);
      return r;
    });
    let removed = 0;
    if (p.bound > 1) {
      // Rows below the previous mark may remain from a prune a crash cut short: they go too.
      const low = (this.store.reader.prepare('SELECT MIN(seq) FROM events').pluck().get() as number | null) ?? p.bound;
      const db = this.store.db;
      const keep = db.prepare('INSERT OR IGNORE INTO pruned_ids (id) SELECT id FROM events WHERE seq >= ? AND seq < ?');
      const unwithhold = db.prepare('DELETE FROM events_withheld WHERE seq >= ? AND seq < ?');
      const del = db.prepare('DELETE FROM events WHERE seq >= ? AND seq < ?');
      for (let at = low; at < p.bound; at += chunk) {
        const end = Math.min(at + chunk, p.bound);
        removed += await this.store.write(() => {
          keep.run(at, end);
          unwithhold.run(at, end);
          return del.run(at, end).changes;
        });
      }
    }
    return { requested: belowSeq, belowSeq: p.bound, previous: p.previous, removed, limitedBy: p.limitedBy, dryRun: false };
  }

  /**
   * Appends inside the caller's transaction. Returns the new seq, or 0 when an event with
   * this id is already logged (a redelivery) or was and has been pruned since (its id is kept).
   * `direct` marks an event applied in the same transaction (mesh ingress, quarantine release):
   * the embedded bus does not deliver it again. `'emitted'`: this node's own event, appended
   * and applied by the pipeline in one transaction at emit (`direct = 3`): originated here like
   * a bus row, consumed already. `body`: the envelope's serialized text when the caller has it.
   */
  append(env: Envelope, direct: boolean | 'emitted' = false, body = serializeEnvelope(env)): number {
    const r = this.s.insert.run(
      env.id,
      env.event,
      env.timestamp,
      env.source,
      env.causationId ?? null,
      env.correlationId ?? null,
      direct === 'emitted' ? 3 : direct ? 1 : 0,
      body,
      env.id,
    );
    return r.changes === 1 ? Number(r.lastInsertRowid) : 0;
  }

  /**
   * Inside the batch transaction that ran it: the pipeline did not pass this logged event (a
   * stage dropped it, or a cartridge failed on it). A mirror of this node is never served it,
   * as push never sent it.
   */
  withhold(id: string): void {
    this.s.withhold.run(id);
  }

  /** Inside the batch transaction: a withheld event passed after all (a quarantine release). */
  unwithhold(id: string): void {
    this.s.unwithhold.run(id);
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
