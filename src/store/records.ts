import type { Statement } from 'better-sqlite3';
import { type Envelope, parseEnvelope, serializeEnvelope } from '../envelope/index.js';
import { IllegalTransitionError, NotFoundError } from '../errors/index.js';
import { camelRow, whereGiven } from './rows.js';
import type { Store } from './store.js';

/** Consumer positions, written in the same transaction as the effects they cover. */
export class Offsets {
  private readonly getS: Statement;
  private readonly setS: Statement;
  constructor(store: Store) {
    this.getS = store.db.prepare('SELECT position FROM consumer_offsets WHERE name = ?').pluck();
    this.setS = store.db.prepare(
      'INSERT INTO consumer_offsets (name, position, updated_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at',
    );
    this.now = () => store.clock.now();
  }
  private readonly now: () => number;
  get(name: string): string | undefined {
    return this.getS.get(name) as string | undefined;
  }
  set(name: string, position: string): void {
    this.setS.run(name, position, this.now());
  }
}

/** Idempotency keys already processed, for the dedup cartridge. */
export class DedupKeys {
  private readonly insertS: Statement;
  private readonly pruneS: Statement;
  private hasS: Statement | undefined;
  constructor(private readonly store: Store) {
    this.insertS = store.db.prepare('INSERT OR IGNORE INTO dedup_keys (key, event_id, seen_at) VALUES (?, ?, ?)');
    this.pruneS = store.db.prepare('DELETE FROM dedup_keys WHERE seen_at < ?');
  }
  /** Records the key; false when it was already there (a duplicate). */
  claim(key: string, eventId: string, now: number): boolean {
    return this.insertS.run(key, eventId, now).changes === 1;
  }
  prune(olderThan: number): number {
    return this.pruneS.run(olderThan).changes;
  }
  /** The event that claimed the key, when a committed batch did (on the reader). */
  eventOf(key: string): string | undefined {
    return this.store.reader.prepare('SELECT event_id FROM dedup_keys WHERE key = ?').pluck().get(key) as string | undefined;
  }
  /** Whether a committed batch already claimed the key (on the reader: what is committed, never a batch in flight). */
  has(key: string): boolean {
    this.hasS ??= this.store.reader.prepare('SELECT 1 FROM dedup_keys WHERE key = ?');
    return this.hasS.get(key) !== undefined;
  }
}

export interface DeadLetter {
  id: number;
  eventId: string;
  eventType: string;
  cartridge: string;
  error: string;
  envelope: Envelope;
  createdAt: string;
}

/** Which dead letters {@link DeadLetters.list} returns. */
export interface DeadLetterFilter {
  limit?: number;
  /** The id of the last of the previous page. */
  cursor?: number;
  /** The stage that failed: a cartridge's name, `domain:<domain>/<cartridge>`, `mesh-sender:<peer>`. */
  cartridge?: string;
  eventType?: string;
}

type DeadLetterRow = { id: number; event_id: string; event_type: string; cartridge: string; error: string; body: string; created_at: string };

function toDeadLetter({ body, ...r }: DeadLetterRow): DeadLetter {
  return { ...(camelRow(r) as Omit<DeadLetter, 'envelope'>), envelope: parseEnvelope(body) };
}

/** Dead letters kept at most by default (`store.max_dead_letters`); older ones are pruned. */
export const MAX_KEPT_DEAD_LETTERS = 10_000;

/** Events a cartridge failed on; the newest `limit` are kept (each failure is also counted per cartridge). */
export class DeadLetters {
  private readonly insertS: Statement;
  private readonly pruneS: Statement;
  private inserted = 0;
  private kept = MAX_KEPT_DEAD_LETTERS;
  constructor(private readonly store: Store) {
    this.insertS = store.db.prepare(
      'INSERT INTO dead_letters (event_id, event_type, cartridge, error, body, created_at) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.pruneS = store.db.prepare('DELETE FROM dead_letters WHERE id <= (SELECT MAX(id) FROM dead_letters) - ?');
  }
  /** Dead letters kept at most (default {@link MAX_KEPT_DEAD_LETTERS}); set from `store.max_dead_letters`. */
  get limit(): number {
    return this.kept;
  }
  set limit(n: number) {
    this.kept = Math.max(1, Math.floor(n));
  }
  /** Inside the caller's transaction. */
  add(env: Envelope, cartridge: string, error: string): number {
    const id = Number(
      this.insertS.run(env.id, env.event, cartridge, error, serializeEnvelope(env), this.store.nowIso()).lastInsertRowid,
    );
    // A cartridge failing on every event keeps the table bounded: the newest `limit` stay
    // (pruned in steps of a tenth of it, at most 1,000, so a prune is rare and small).
    if (++this.inserted % Math.max(1, Math.min(1000, Math.floor(this.kept / 10))) === 0) this.pruneS.run(this.kept);
    return id;
  }
  /**
   * Newest first; `cursor` is the id to continue below (a number alone is the limit).
   * @example
   * ns.deadLetters.list({ cartridge: 'domain:ops/triage', limit: 20 });
   */
  list(opts: number | DeadLetterFilter = {}): DeadLetter[] {
    const o: DeadLetterFilter = typeof opts === 'number' ? { limit: opts } : opts;
    const w = whereGiven([
      ['id < ?', o.cursor],
      ['cartridge = ?', o.cartridge || undefined],
      ['event_type = ?', o.eventType || undefined],
    ]);
    const rows = this.store.reader
      .prepare(`SELECT id, event_id, event_type, cartridge, error, body, created_at FROM dead_letters ${w.sql} ORDER BY id DESC LIMIT ?`)
      .all(...w.args, o.limit ?? 50) as DeadLetterRow[];
    return rows.map(toDeadLetter);
  }
  /** One dead letter; throws NotFoundError (WEFT_NOT_FOUND) for an id not kept (never made, or pruned). */
  get(id: number): DeadLetter {
    const r = this.store.reader
      .prepare('SELECT id, event_id, event_type, cartridge, error, body, created_at FROM dead_letters WHERE id = ?')
      .get(id) as DeadLetterRow | undefined;
    if (!r) throw new NotFoundError('dead letter', id);
    return toDeadLetter(r);
  }
  count(): number {
    return this.store.reader.prepare('SELECT COUNT(*) FROM dead_letters').pluck().get() as number;
  }
}

export type QuarantineStatus = 'held' | 'released' | 'dropped';

export interface QuarantinedEvent {
  id: number;
  eventId: string;
  eventType: string;
  source: string;
  reason: string;
  flags: string[];
  envelope: Envelope;
  status: QuarantineStatus;
  createdAt: string;
  decidedAt: string | null;
}

/** Events the trust evaluator held back for a human to release or drop. */
export class Quarantine {
  private readonly insertS: Statement;
  constructor(private readonly store: Store) {
    this.insertS = store.db.prepare(
      'INSERT INTO quarantine (event_id, event_type, source, reason, flags, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
  }
  /** Inside the caller's transaction. */
  add(env: Envelope, reason: string, flags: string[]): number {
    return Number(
      this.insertS.run(env.id, env.event, env.source, reason, JSON.stringify(flags), serializeEnvelope(env), this.store.nowIso())
        .lastInsertRowid,
    );
  }
  /** Newest first; `before` pages on (an id of the previous page), `source` / `eventType` narrow. */
  list(opts: QuarantineFilter & { limit?: number; before?: number } = {}): QuarantinedEvent[] {
    const { where, params } = quarantineWhere(opts);
    if (opts.before !== undefined) where.push('id < ?') && params.push(opts.before);
    const rows = this.store.reader
      .prepare(`SELECT * FROM quarantine ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`)
      .all(...params, opts.limit ?? 50) as QuarantineRow[];
    return rows.map(toQuarantined);
  }
  /** Ids of held events matching `filter`, oldest first, after `after`: a bulk release's next chunk. */
  heldIds(filter: Omit<QuarantineFilter, 'status'>, after: number, limit: number): number[] {
    const { where, params } = quarantineWhere({ ...filter, status: 'held' });
    return this.store.reader
      .prepare(`SELECT id FROM quarantine WHERE ${where.join(' AND ')} AND id > ? ORDER BY id LIMIT ?`)
      .pluck()
      .all(...params, after, limit) as number[];
  }
  /** held → dropped for every held event matching `filter`, inside the caller's transaction; how many. */
  dropHeld(filter: Omit<QuarantineFilter, 'status'>): number {
    const { where, params } = quarantineWhere({ ...filter, status: 'held' });
    return this.store.db.prepare(`UPDATE quarantine SET status = 'dropped', decided_at = ? WHERE ${where.join(' AND ')}`).run(this.store.nowIso(), ...params).changes;
  }
  get(id: number): QuarantinedEvent {
    const r = this.store.reader.prepare('SELECT * FROM quarantine WHERE id = ?').get(id) as QuarantineRow | undefined;
    if (!r) throw new NotFoundError('quarantined event', id);
    return toQuarantined(r);
  }
  /** held → released or dropped, inside the caller's transaction. */
  decide(id: number, status: 'released' | 'dropped'): QuarantinedEvent {
    const r = this.store.db.prepare('SELECT * FROM quarantine WHERE id = ?').get(id) as QuarantineRow | undefined;
    if (!r) throw new NotFoundError('quarantined event', id);
    if (r.status !== 'held') {
      throw new IllegalTransitionError(`quarantined event ${id} is already ${String(r.status)}`, { id, from: r.status });
    }
    this.store.db.prepare('UPDATE quarantine SET status = ?, decided_at = ? WHERE id = ?').run(status, this.store.nowIso(), id);
    return { ...toQuarantined(r), status };
  }
  count(status: QuarantineStatus = 'held'): number {
    return this.store.reader.prepare('SELECT COUNT(*) FROM quarantine WHERE status = ?').pluck().get(status) as number;
  }
}

/** Which quarantined events: by status, source and event type (each optional). */
export interface QuarantineFilter {
  status?: QuarantineStatus;
  source?: string;
  eventType?: string;
}

function quarantineWhere(f: QuarantineFilter): { where: string[]; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  if (f.status) where.push('status = ?') && params.push(f.status);
  if (f.source !== undefined) where.push('source = ?') && params.push(f.source);
  if (f.eventType !== undefined) where.push('event_type = ?') && params.push(f.eventType);
  return { where, params };
}

interface QuarantineRow {
  id: number;
  event_id: string;
  event_type: string;
  source: string;
  reason: string;
  flags: string;
  body: string;
  status: QuarantineStatus;
  created_at: string;
  decided_at: string | null;
}

function toQuarantined(r: QuarantineRow): QuarantinedEvent {
  const { body: _body, ...rest } = camelRow(r);
  return { ...rest, flags: JSON.parse(r.flags) as string[], envelope: parseEnvelope(r.body) };
}

/** Per-cartridge invocation counters, flushed once per batch. */
export class CartridgeStats {
  private readonly addS: Statement;
  constructor(private readonly store: Store) {
    this.addS = store.db.prepare(
      `INSERT INTO cartridge_stats (cartridge_name, invocation_count, last_invoked_at) VALUES (?, ?, ?)
       ON CONFLICT(cartridge_name) DO UPDATE SET invocation_count = invocation_count + excluded.invocation_count,
         last_invoked_at = excluded.last_invoked_at`,
    );
  }
  /** Inside the caller's transaction. */
  add(name: string, count: number, at: string): void {
    this.addS.run(name, count, at);
  }
  list(): Array<{ cartridgeName: string; invocationCount: number; lastInvokedAt: string | null }> {
    const rows = this.store.reader
      .prepare('SELECT cartridge_name, invocation_count, last_invoked_at FROM cartridge_stats ORDER BY cartridge_name')
      .all() as Array<{ cartridge_name: string; invocation_count: number; last_invoked_at: string | null }>;
    return rows.map(camelRow);
  }
}

/** Failures counted per installed cartridge, since its code was installed. */
export class CartridgeFailures {
  private readonly addS: Statement;
  constructor(store: Store) {
    this.addS = store.db.prepare(
      `INSERT INTO cartridge_failures (cartridge_name, failure_count, last_failed_at, last_error) VALUES (?, ?, ?, ?)
       ON CONFLICT(cartridge_name) DO UPDATE SET failure_count = failure_count + excluded.failure_count,
         last_failed_at = excluded.last_failed_at, last_error = excluded.last_error`,
    );
  }
  /** Inside the caller's transaction. */
  add(name: string, count: number, at: string, error: string): void {
    this.addS.run(name, count, at, error.slice(0, 2000));
  }
}

/**
 * Redis mode's emit journal: every event emitted (by a producer or a cartridge) is kept here,
 * committed before it is acknowledged, until the processor has applied it. Entries still
 * here after a while (Redis was down, or restarted empty) are put on the stream again; the
 * processor skips any it already applied, by envelope id.
 */
export class EmitJournal {
  private readonly insertS: Statement;
  private readonly staleS: Statement;
  private readonly touchS: Statement;
  private readonly removeS: Statement;
  private readonly sentS: Statement;
  private readonly countS: Statement;
  private readonly presentS: Statement;
  private committedCountS: Statement | undefined;
  private waitingAtMostS: Statement | undefined;
  private unsentS: Statement | undefined;
  constructor(private readonly store: Store) {
    this.insertS = store.db.prepare('INSERT OR IGNORE INTO emit_journal (envelope_id, body, sent_at, applied) VALUES (?, ?, ?, ?)');
    this.staleS = store.db.prepare('SELECT seq, body, applied FROM emit_journal WHERE sent_at <= ? AND seq > ? ORDER BY seq LIMIT ?').raw();
    this.touchS = store.db.prepare('UPDATE emit_journal SET sent_at = ? WHERE seq >= ? AND seq <= ?');
    this.removeS = store.db.prepare('DELETE FROM emit_journal WHERE envelope_id IN (SELECT value FROM json_each(?))');
    this.sentS = store.db.prepare('DELETE FROM emit_journal WHERE applied = 1 AND envelope_id IN (SELECT value FROM json_each(?))');
    this.countS = store.db.prepare('SELECT COUNT(*) FROM emit_journal WHERE applied = 0').pluck();
    this.presentS = store.db.prepare('SELECT envelope_id FROM emit_journal WHERE applied = 0 AND envelope_id IN (SELECT value FROM json_each(?))').pluck();
  }
  /** Which of these events are still waiting to be applied (the rest were, or were never journaled here). */
  present(envelopeIds: readonly string[]): Set<string> {
    return new Set(envelopeIds.length > 0 ? (this.presentS.all(JSON.stringify(envelopeIds)) as string[]) : []);
  }
  /**
   * Inside the caller's transaction. `applied`: the pipeline applies it in this same
   * transaction, and the row only waits to go on the stream (`sent` removes it then).
   * `body`: the envelope's serialized text when the caller has it already.
   */
  add(env: Envelope, now: number, applied = false, body = serializeEnvelope(env)): void {
    this.insertS.run(env.id, body, now, applied ? 1 : 0);
  }
  /** Entries last put on the stream at or before `cutoff`, oldest first, after `afterSeq`. */
  stale(cutoff: number, afterSeq: number, limit: number): Array<{ seq: number; envelope: Envelope; applied: boolean }> {
    return (this.staleS.all(cutoff, afterSeq, limit) as Array<[number, string, number]>).map((r) => ({
      seq: r[0],
      envelope: parseEnvelope(r[1]),
      applied: r[2] === 1,
    }));
  }
  /** Marks entries as just put on the stream. */
  touch(fromSeq: number, toSeq: number, now: number): void {
    this.touchS.run(now, fromSeq, toSeq);
  }
  /** The processor applied these events (inside its batch transaction). */
  remove(envelopeIds: readonly string[]): void {
    if (envelopeIds.length > 0) this.removeS.run(JSON.stringify(envelopeIds));
  }
  /** These events are on the stream: rows of those applied already are done with (the rest wait for the pipeline). */
  sent(envelopeIds: readonly string[]): void {
    if (envelopeIds.length > 0) this.sentS.run(JSON.stringify(envelopeIds));
  }
  /**
   * Whether at most `n` events wait for the pipeline (reads no more than n + 1 index entries;
   * writer connection: includes the caller's transaction). `waitingAtMost(0)`: none does.
   */
  waitingAtMost(n: number): boolean {
    this.waitingAtMostS ??= this.store.db.prepare('SELECT COUNT(*) FROM (SELECT 1 FROM emit_journal WHERE applied = 0 LIMIT ?)').pluck();
    return (this.waitingAtMostS.get(n + 1) as number) <= n;
  }
  /** Events waiting for the pipeline; `committed`: as the last commit left them (not a write in flight). */
  count(opts: { committed?: boolean } = {}): number {
    if (!opts.committed) return this.countS.get() as number;
    this.committedCountS ??= this.store.reader.prepare('SELECT COUNT(*) FROM emit_journal WHERE applied = 0').pluck();
    return this.committedCountS.get() as number;
  }
  /** Rows of events applied already that have not gone on the stream yet (Redis was away). */
  unsent(): number {
    this.unsentS ??= this.store.reader.prepare('SELECT COUNT(*) FROM emit_journal WHERE applied = 1').pluck();
    return this.unsentS.get() as number;
  }
}

export interface RejectedEntry {
  id: number;
  /** Where it came from: `bus:redis`, `mesh`, `mesh:teleclaude`, ... */
  origin: string;
  /** Which input: a stream entry id, `<peer>:<frame sequence>`, ... */
  ref: string;
  /** Stable code: ENTRY_INVALID, FRAME_*, REPLAY_*, ENVELOPE_*, ... */
  code: string;
  reason: string;
  /** Path of the field that failed, when one did. */
  field: string | null;
  raw: string;
  /** Times this same input was refused (a pending entry read again after a restart). */
  count: number;
  createdAt: string;
  lastAt: string;
}

export interface RejectionInput {
  origin: string;
  ref: string;
  code: string;
  reason: string;
  field?: string | undefined;
  raw: string;
}

/** Refusals kept at most; older ones are pruned (their notifications and audit entries stay). */
export const MAX_KEPT_REJECTIONS = 100_000;

/** Input that never became an event (malformed stream entries, refused frames): kept, listed, never silent. */
export class Rejections {
  private readonly insertS: Statement;
  private readonly pruneS: Statement;
  private inserted = 0;
  constructor(private readonly store: Store) {
    this.pruneS = store.db.prepare('DELETE FROM rejected_entries WHERE id <= (SELECT MAX(id) FROM rejected_entries) - ?');
    this.insertS = store.db.prepare(
      `INSERT INTO rejected_entries (origin, ref, code, reason, field, raw, created_at, last_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(origin, ref) DO UPDATE SET count = count + 1, last_at = excluded.last_at RETURNING count`,
    );
  }
  /** Inside the caller's transaction. `raw` is truncated to 64 KiB. True when it is the first time. */
  add(r: RejectionInput): boolean {
    const now = this.store.nowIso();
    const row = this.insertS.get(r.origin, r.ref, r.code, r.reason.slice(0, 4000), r.field ?? null, r.raw.slice(0, 65536), now, now) as { count: number };
    // A flood of garbage keeps the table bounded: the newest MAX_KEPT_REJECTIONS stay.
    if (++this.inserted % 1000 === 0) this.pruneS.run(MAX_KEPT_REJECTIONS);
    return row.count === 1;
  }
  /** Newest first; `cursor` is the id to continue below. */
  list(opts: { limit?: number; cursor?: number; origin?: string; code?: string } = {}): RejectedEntry[] {
    const w = whereGiven([
      ['id < ?', opts.cursor],
      ['origin = ?', opts.origin || undefined],
      ['code = ?', opts.code || undefined],
    ]);
    const rows = this.store.reader
      .prepare(`SELECT * FROM rejected_entries ${w.sql} ORDER BY id DESC LIMIT ?`)
      .all(...w.args, opts.limit ?? 50) as RejectedRow[];
    return rows.map(toRejected);
  }
  get(id: number): RejectedEntry {
    const r = this.store.reader.prepare('SELECT * FROM rejected_entries WHERE id = ?').get(id) as RejectedRow | undefined;
    if (!r) throw new NotFoundError('rejected entry', id);
    return toRejected(r);
  }
  count(): number {
    return this.store.reader.prepare('SELECT COUNT(*) FROM rejected_entries').pluck().get() as number;
  }
}

interface RejectedRow extends Pick<RejectedEntry, 'id' | 'origin' | 'ref' | 'code' | 'reason' | 'field' | 'raw' | 'count'> {
  created_at: string;
  last_at: string | null;
}

function toRejected(r: RejectedRow): RejectedEntry {
  return { ...camelRow(r), lastAt: r.last_at ?? r.created_at };
}
