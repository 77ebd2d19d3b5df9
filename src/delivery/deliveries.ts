import { camelRow, type NotificationChange, type Store, whereGiven } from '../store/index.js';

/** Where a delivery stands: waiting (first try or a retry), done, or given up. */
export type DeliveryStatus = 'pending' | 'sent' | 'failed';

/** One row of the `deliveries` table: one notification change to send on one channel. */
export interface DeliveryRecord {
  id: number;
  notificationId: number;
  changeKind: NotificationChange['kind'];
  /** Which state of the notification this is (`updatedAt/eventId` when it was enqueued). */
  version: string;
  channel: string;
  level: number;
  /** The message, rendered when the change was enqueued. */
  text: string;
  status: DeliveryStatus;
  attempts: number;
  lastError: string | null;
  /** Epoch ms of the next try (pending rows). */
  nextAttemptAt: number;
  createdAt: number;
  sentAt: number | null;
}

/** What `enqueue` writes for one change. */
export interface NewDelivery {
  notificationId: number;
  changeKind: NotificationChange['kind'];
  version: string;
  level: number;
  text: string;
}

/** The columns as SQLite names them; those named alike in both come from the record. */
interface Row extends Pick<DeliveryRecord, 'id' | 'version' | 'channel' | 'level' | 'text' | 'status' | 'attempts'> {
  notification_id: number;
  change_kind: NotificationChange['kind'];
  last_error: string | null;
  next_attempt_at: number;
  created_at: number;
  sent_at: number | null;
}

function toRecord(r: Row): DeliveryRecord {
  return camelRow(r);
}

/** The table's statements for one store; writes on the writer connection, reads on the reader. */
function statements(store: Store) {
  const db = store.db;
  const reader = store.reader;
  return {
    insert: db.prepare(
      `INSERT OR IGNORE INTO deliveries (notification_id, change_kind, version, channel, level, text, next_attempt_at, created_at, status, last_error)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
    ),
    pendingOnWriter: db
      .prepare(`SELECT COUNT(*) FROM deliveries WHERE channel = ? AND status = 'pending'`)
      .pluck(),
    // The newest `keep` finished rows stay; of the older ones at most `limit` go per call, so one
    // call never holds the write lock for long (a table grown before this limit drains over calls).
    prune: db.prepare(
      `DELETE FROM deliveries WHERE id IN (
         SELECT id FROM deliveries WHERE channel = ? AND status != 'pending' AND id <= (
           SELECT id FROM deliveries WHERE channel = ? AND status != 'pending' ORDER BY id DESC LIMIT 1 OFFSET ?
         ) ORDER BY id LIMIT ?
       )`,
    ),
    head: reader.prepare(
      `SELECT * FROM deliveries WHERE channel = ? AND status = 'pending' ORDER BY id LIMIT ?`,
    ),
    pending: reader
      .prepare(`SELECT COUNT(*) FROM deliveries WHERE channel = ? AND status = 'pending'`)
      .pluck(),
    oldestPending: reader
      .prepare(`SELECT MIN(created_at) FROM deliveries WHERE channel = ? AND status = 'pending'`)
      .pluck(),
    get: reader.prepare('SELECT * FROM deliveries WHERE id = ?'),
    sent: db.prepare(
      `UPDATE deliveries SET status = 'sent', attempts = attempts + 1, last_error = NULL, sent_at = ? WHERE id = ?`,
    ),
    retry: db.prepare(
      'UPDATE deliveries SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?',
    ),
    deferred: db.prepare('UPDATE deliveries SET last_error = ?, next_attempt_at = ? WHERE id = ?'),
    failed: db.prepare(
      `UPDATE deliveries SET status = 'failed', attempts = attempts + 1, last_error = ? WHERE id = ?`,
    ),
  };
}

/**
 * The `deliveries` table of one channel. Writes go through the store's write lock, one
 * transaction per call; reads use the reader connection (committed rows only). Statements are
 * prepared on first use, so constructing it does no I/O.
 * @example
 * const table = new DeliveryTable(ns.store, 'telegram');
 * const { ids: [id] } = await table.insert([{ notificationId: 1, changeKind: 'created', version: 'v1', level: 2, text: 'hi' }], Date.now());
 * table.head(10); // [{ id, status: 'pending', text: 'hi', nextAttemptAt, ... }]
 */
export class DeliveryTable {
  private s: ReturnType<typeof statements> | undefined;

  constructor(
    private readonly store: Store,
    readonly channel: string,
  ) {}

  private get stmts(): ReturnType<typeof statements> {
    this.s ??= statements(this.store);
    return this.s;
  }

  /**
   * Writes pending rows in one transaction; a change already recorded (same notification,
   * kind and version) is skipped. With `maxPending`, a row that would make more than that many
   * pending is written `failed` instead, with `overflowError` as its error, so the backlog of an
   * endpoint that is down for long stays bounded and what was not queued stays listed.
   * Resolves with, for each row in order, its id when it was added as pending (null when it
   * was recorded before or refused), and how many it refused.
   */
  insert(
    rows: readonly NewDelivery[],
    now: number,
    limit?: { maxPending: number; overflowError: string },
  ): Promise<{ ids: Array<number | null>; refused: number }> {
    const s = this.stmts;
    return this.store.write(() => {
      const ids: Array<number | null> = [];
      let refused = 0;
      let pending = limit ? (s.pendingOnWriter.get(this.channel) as number) : 0;
      for (const r of rows) {
        const full = limit !== undefined && pending >= limit.maxPending;
        const got = s.insert.get(
          r.notificationId,
          r.changeKind,
          r.version,
          this.channel,
          r.level,
          r.text,
          now,
          now,
          full ? 'failed' : 'pending',
          full ? limit.overflowError : null,
        ) as { id: number } | undefined;
        if (got && !full) pending++;
        else if (got) refused++;
        ids.push(got && !full ? got.id : null);
      }
      return { ids, refused };
    });
  }

  /**
   * Deletes the finished (sent or failed) rows of the channel but the newest `keep`, at most
   * `limit` per call; resolves with how many it deleted.
   */
  pruneFinished(keep: number, limit = 5000): Promise<number> {
    const s = this.stmts;
    return this.store.write(() => s.prune.run(this.channel, this.channel, keep, limit).changes);
  }

  /**
   * The first `limit` pending rows in the order they are sent (oldest first), whether due or
   * not: the first may wait for its retry, and the rest wait behind it.
   */
  head(limit: number): DeliveryRecord[] {
    return (this.stmts.head.all(this.channel, limit) as Row[]).map(toRecord);
  }

  /** Number of pending rows. */
  pendingCount(): number {
    return this.stmts.pending.get(this.channel) as number;
  }

  /** Epoch ms when the oldest pending row was written, or undefined when none is pending. */
  oldestPendingAt(): number | undefined {
    const v = this.stmts.oldestPending.get(this.channel) as number | null;
    return v ?? undefined;
  }

  /** One row by id. */
  get(id: number): DeliveryRecord | undefined {
    const r = this.stmts.get.get(id) as Row | undefined;
    return r ? toRecord(r) : undefined;
  }

  /** All rows of the channel, oldest first (for tests and `weft doctor`). */
  list(limit = 1000): DeliveryRecord[] {
    return (
      this.store.reader
        .prepare('SELECT * FROM deliveries WHERE channel = ? ORDER BY id LIMIT ?')
        .all(this.channel, limit) as Row[]
    ).map(toRecord);
  }

  /** The try succeeded. */
  markSent(id: number, now: number): Promise<void> {
    const s = this.stmts;
    return this.store.write(() => void s.sent.run(now, id));
  }

  /** The try failed; try again at `at`. */
  markRetry(id: number, error: string, at: number): Promise<void> {
    const s = this.stmts;
    return this.store.write(() => void s.retry.run(error, at, id));
  }

  /** Not tried (rate limited): try again at `at` without counting an attempt. */
  markDeferred(id: number, reason: string, at: number): Promise<void> {
    const s = this.stmts;
    return this.store.write(() => void s.deferred.run(reason, at, id));
  }

  /** The try failed and the delivery is given up. */
  markFailed(id: number, error: string): Promise<void> {
    const s = this.stmts;
    return this.store.write(() => void s.failed.run(error, id));
  }
}

/** Which deliveries {@link listDeliveries} reads. */
export interface DeliveryFilter {
  channel?: string;
  status?: DeliveryStatus;
  /** Rows below this id only (the `nextCursor` of the previous page). */
  cursor?: number;
  limit: number;
}

/**
 * The deliveries of every channel (or one), newest first, for `weft deliveries list` and
 * `GET /api/deliveries`: what was sent, what waits and what was given up, with the last error.
 * @example
 * listDeliveries(ns.store, { status: 'failed', limit: 50 });
 * // [{ id: 9, channel: 'webhook', status: 'failed', lastError: 'webhook refused: 401 unauthorized', ... }]
 */
export function listDeliveries(store: Store, f: DeliveryFilter): DeliveryRecord[] {
  const w = whereGiven([
    ['channel = ?', f.channel],
    ['status = ?', f.status],
    ['id < ?', f.cursor],
  ]);
  return (store.reader.prepare(`SELECT * FROM deliveries ${w.sql} ORDER BY id DESC LIMIT ?`).all(...w.args, f.limit) as Row[]).map(toRecord);
}

/**
 * How many deliveries of each channel stand where (`{webhook: {pending: 3, sent: 120, failed: 2}}`).
 * @example
 * countDeliveries(ns.store).telegram?.failed; // 2
 */
export function countDeliveries(store: Store): Record<string, Record<DeliveryStatus, number>> {
  const rows = store.reader
    .prepare('SELECT channel, status, COUNT(*) AS n FROM deliveries GROUP BY channel, status')
    .all() as Array<{ channel: string; status: DeliveryStatus; n: number }>;
  const out: Record<string, Record<DeliveryStatus, number>> = {};
  for (const r of rows) {
    out[r.channel] ??= { pending: 0, sent: 0, failed: 0 };
    (out[r.channel] as Record<DeliveryStatus, number>)[r.status] = r.n;
  }
  return out;
}
