import { camelRow, type NotificationChange, type Store } from '../store/index.js';

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
      `INSERT OR IGNORE INTO deliveries (notification_id, change_kind, version, channel, level, text, next_attempt_at, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
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
 * const [id] = await table.insert([{ notificationId: 1, changeKind: 'created', version: 'v1', level: 2, text: 'hi' }], Date.now());
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
   * kind and version) is skipped. Resolves with the ids of the rows it added, in order.
   */
  insert(rows: readonly NewDelivery[], now: number): Promise<number[]> {
    const s = this.stmts;
    return this.store.write(() => {
      const ids: number[] = [];
      for (const r of rows) {
        const got = s.insert.get(
          r.notificationId,
          r.changeKind,
          r.version,
          this.channel,
          r.level,
          r.text,
          now,
          now,
        ) as { id: number } | undefined;
        if (got) ids.push(got.id);
      }
      return ids;
    });
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
