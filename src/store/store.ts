import { chmodSync, existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { StoreError } from '../errors/index.js';
import { type Clock, type Logger, Mutex } from '../util/index.js';
import { MIGRATIONS } from './migrations.js';

export type Db = Database.Database;

/** Commits that fail for want of a disk that takes them (Store.writeTrouble). */
export interface StoreWriteTrouble {
  /** full: no space (SQLITE_FULL); io: the disk failed a read or write; readonly: the file or its mount refuses writes. */
  kind: 'full' | 'io' | 'readonly';
  /** SQLite's code of the last failure. */
  code: string;
  /** When the first of these failures happened (clock ms). */
  since: number;
  /** When the last one happened (clock ms). */
  last: number;
  /** Failed transactions since then. */
  failures: number;
}

/**
 * A commit clears the trouble only this long after the last failure: on a full disk a small
 * commit can still fit in the WAL's free pages while every batch of events fails.
 */
const TROUBLE_CLEAR_MS = 30_000;

export interface StoreInit {
  /** Path of the node's SQLite file. */
  path: string;
  /** Extra migrations from other modules, applied after the core ones (versions must continue the sequence). */
  migrations?: ReadonlyArray<{ version: number; name: string; sql: string }>;
}

export interface StoreDeps {
  clock: Clock;
  logger: Logger;
}

/** The transaction that commits deferred writes nobody else took along: not counted as the node's activity. */
const flushOnly = (): undefined => undefined;

/** A deferred write (`writeSoon`) waiting for a transaction. */
interface Rider {
  fn: () => void;
  done: () => void;
  /** Its own commit is synced (see writeSoon). */
  durable?: boolean;
}

/** Deferred writes (`writeSoon`) waiting at most; beyond it the oldest are given up. */
const MAX_DEFERRED_WRITES = 65_536;

/**
 * The node's one SQLite file: WAL, synchronous=FULL (a commit acknowledged to a producer or a
 * peer survives power loss), migrations by `user_version`. Every write goes through
 * `write()`/`writeAsync()`, which serialize on one mutex and run one transaction each, so
 * callers batch: one commit per batch, never one per row.
 */
export class Store {
  readonly db: Db;
  readonly path: string;
  readonly clock: Clock;
  readonly logger: Logger;
  private readonly lock = new Mutex();
  private readerDb: Db | undefined;
  private closed = false;
  /** Writes that ride along with the next transaction (`writeSoon`). */
  private soon: Rider[] = [];
  private soonTimer: (() => void) | undefined;
  private droppedSoon = 0;
  private committed = 0;
  private rolledBack = 0;
  /** Called once when the open write transaction ends (`onTransactionEnd`). */
  private endHooks: Array<(committed: boolean) => void> = [];
  /** The file opened (device and inode); undefined for `:memory:`. */
  private opened: { dev: number; ino: number } | undefined;
  /** Since when commits fail for want of space or a disk that refuses writes; cleared by the next commit. */
  private trouble: StoreWriteTrouble | undefined;

  private constructor(db: Db, path: string, deps: StoreDeps) {
    this.db = db;
    this.path = path;
    this.clock = deps.clock;
    this.logger = deps.logger;
  }

  /**
   * Opens (creating if needed) and migrates the file. A damaged or unreadable file fails with
   * WEFT_STORE_CORRUPT and a message that says what to do, never a crash.
   */
  static open(init: StoreInit, deps: StoreDeps): Store {
    if (init.path !== ':memory:') mkdirSync(dirname(init.path), { recursive: true });
    let db: Db;
    try {
      db = new Database(init.path);
    } catch (err) {
      throw new StoreError('WEFT_STORE_CORRUPT', `cannot open database ${init.path}: ${(err as Error).message}`, err);
    }
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('busy_timeout = 5000');
      db.pragma('foreign_keys = ON');
      // A larger page cache keeps the hot index pages of a busy node in memory.
      db.pragma('cache_size = -16384');
      db.pragma('temp_store = MEMORY');
      const check = db.pragma('quick_check', { simple: true });
      if (check !== 'ok') {
        const problems = String(check).split('\n').filter(Boolean);
        throw new Error(`integrity check: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more problems)` : ''}`);
      }
      migrate(db, init.path, [...MIGRATIONS, ...(init.migrations ?? [])]);
      // The check read every page of the file into the page cache; give that memory back, or
      // an idle node on a large file keeps its whole cache (16 MB) resident from the start.
      db.pragma('shrink_memory');
    } catch (err) {
      db.close();
      if (err instanceof StoreError) throw err;
      const msg = (err as Error).message.split('\n')[0];
      const code = (err as { code?: string }).code ?? '';
      // A full disk is not damage: 'weft doctor --repair' would make a second copy on it.
      if (code === 'SQLITE_FULL') {
        throw new StoreError(
          'WEFT_STORE_FULL',
          `database ${init.path} cannot be opened: the disk holding it is full (${msg}); free space on that disk, then start again (the file is not damaged)`,
          err,
        );
      }
      if (code.startsWith('SQLITE_READONLY') || code === 'SQLITE_CANTOPEN' || code === 'SQLITE_PERM') {
        throw new StoreError(
          'WEFT_STORE',
          `database ${init.path} cannot be written by this user (${msg}); check the owner and mode of the file and of its directory (both should be yours, 0600 / 0700)`,
          err,
        );
      }
      throw new StoreError(
        'WEFT_STORE_CORRUPT',
        `database ${init.path} is damaged or unreadable (${msg}); run 'weft doctor --repair' to move it aside and salvage what can be read`,
        err,
      );
    }
    const store = new Store(db, init.path, deps);
    if (init.path !== ':memory:') {
      const st = statSync(init.path);
      store.opened = { dev: st.dev, ino: st.ino };
    }
    return store;
  }

  /**
   * Commits have been failing since `since` because the disk is full (SQLITE_FULL) or refuses
   * writes (an I/O error, a file or mount made read-only); undefined once a commit succeeds
   * 30 s or more after the last failure.
   */
  get writeTrouble(): StoreWriteTrouble | undefined {
    return this.trouble ? { ...this.trouble } : undefined;
  }

  private clearTrouble(): void {
    if (this.trouble && this.clock.now() - this.trouble.last >= TROUBLE_CLEAR_MS) this.trouble = undefined;
  }

  /**
   * A failed write as the caller should see it: a full disk is WEFT_STORE_FULL (HTTP 507) with a
   * message that names the file and the fix, where SQLite says only 'database or disk is full'
   * and the API answered 'internal error'. Remembered for /api/health until a commit succeeds.
   */
  private writeFailed(err: unknown): unknown {
    const code = (err as { code?: unknown }).code;
    if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return err;
    const kind = code === 'SQLITE_FULL' ? 'full' : code.startsWith('SQLITE_IOERR') ? 'io' : code.startsWith('SQLITE_READONLY') ? 'readonly' : undefined;
    if (!kind) return err;
    const now = this.clock.now();
    this.trouble = { kind, code, since: this.trouble?.since ?? now, last: now, failures: (this.trouble?.failures ?? 0) + 1 };
    if (kind === 'full') {
      return new StoreError(
        'WEFT_STORE_FULL',
        `the disk holding ${this.path} is full: nothing of this request was kept; free space on that disk (weft doctor shows how much is left), then send it again`,
        err,
      );
    }
    return new StoreError(
      'WEFT_STORE',
      `the database ${this.path} cannot be written (${code}: ${(err as Error).message}): nothing of this request was kept; check the disk and the mount (weft doctor)`,
      err,
    );
  }

  /** The file this store opened (device and inode); undefined for `:memory:`. */
  get fileIdentity(): { dev: number; ino: number } | undefined {
    return this.opened;
  }

  /**
   * Whether the path still names the file this store writes: `deleted` or `replaced` means
   * every commit goes to a file nothing else can open, and that SQLite drops at close (the
   * WAL is checkpointed into the unlinked file). One stat call: cheap enough for a timer.
   */
  fileState(): 'ok' | 'deleted' | 'replaced' {
    if (!this.opened) return 'ok';
    try {
      const st = statSync(this.path);
      return st.dev === this.opened.dev && st.ino === this.opened.ino ? 'ok' : 'replaced';
    } catch {
      return 'deleted';
    }
  }

  /**
   * Copies what the open file holds to `<path>.rescued-<time>` (SQLite's online backup, a
   * consistent snapshot); returns the copy's path. For a file deleted or replaced under the store.
   */
  async rescue(): Promise<string> {
    const to = `${this.path}.rescued-${new Date(this.clock.now()).toISOString().replace(/[:.]/g, '-')}`;
    await this.backup(to);
    return to;
  }

  /**
   * Writes a consistent copy of the database to `to` (SQLite's online backup: a page range at a
   * time, writers go on between them; the copy is the state at its end). Mode 0600.
   */
  async backup(to: string): Promise<void> {
    this.assertOpen();
    await backupDatabase(this.db, to);
  }

  /** Runs a synchronous function in one write transaction, after earlier writers. */
  async write<T>(fn: () => T): Promise<T> {
    const release = this.lock.tryAcquire() ?? (await this.lock.acquire());
    try {
      this.assertOpen();
      const riders = this.takeSoon();
      // Deferred writes committing on their own, none asking to be synced: see writeSoon.
      const relaxed = fn === flushOnly && riders.every((x) => !x.durable);
      let r: T;
      try {
        // Compiled each time: SQLite applies this pragma when the statement is prepared.
        if (relaxed) this.db.pragma('synchronous = NORMAL');
        r = this.db.transaction(() => {
          this.runRiders(riders);
          return fn();
        })();
      } catch (err) {
        this.rolledBack++;
        this.ended(false);
        this.requeue(riders);
        throw this.writeFailed(err);
      } finally {
        if (relaxed) this.db.pragma('synchronous = FULL');
      }
      if (fn !== flushOnly) this.committed++;
      this.clearTrouble();
      this.ended(true);
      for (const x of riders) x.done();
      return r;
    } finally {
      release();
    }
  }

  /**
   * Runs an asynchronous function inside one write transaction. Holds the write lock for its
   * whole duration; on throw it rolls back.
   */
  async writeAsync<T>(fn: () => Promise<T> | T): Promise<T> {
    const release = this.lock.tryAcquire() ?? (await this.lock.acquire());
    try {
      this.assertOpen();
      this.db.exec('BEGIN IMMEDIATE');
      const riders = this.takeSoon();
      try {
        this.runRiders(riders);
        const r = await fn();
        this.db.exec('COMMIT');
        this.committed++;
        this.clearTrouble();
        this.ended(true);
        for (const x of riders) x.done();
        return r;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        this.rolledBack++;
        this.ended(false);
        this.requeue(riders);
        throw this.writeFailed(err);
      }
    } finally {
      release();
    }
  }

  /**
   * A write that may wait: it runs inside the next transaction anyone opens (sparing a commit
   * and its fsync of its own), or in its own after `maxDelayMs` when nobody writes. For work
   * whose loss in a crash is harmless (deleting outbox rows a peer acknowledged: they would only
   * be sent again). `fn` must not throw; a failure is logged and the others still commit. If
   * the transaction it rode in rolls back, it rides in the next. Resolves once committed.
   *
   * Their own commit is not synced (synchronous=NORMAL for that one transaction, FULL again
   * after it): it survives the process dying like any commit (it is in the WAL file), and a
   * power loss can take it only until the next commit that syncs, which syncs it too. On a busy
   * node these commits came every few milliseconds, each waiting for an fsync on the event loop
   * (5–7 % of each daemon's CPU in the compare over TLS). `durable` keeps the fsync for a write
   * that must survive a power loss once it has resolved (a replay guard's record).
   * @example
   * await store.writeSoon(() => del.run(peer, id));
   */
  writeSoon(fn: () => void, maxDelayMs = 5, opts: { durable?: boolean } = {}): Promise<void> {
    return new Promise<void>((done) => {
      if (this.soon.length >= MAX_DEFERRED_WRITES) {
        // Writes keep failing (a full disk): give up the oldest, each was allowed to be lost.
        this.soon.shift()?.done();
        this.droppedSoon++;
        if (this.droppedSoon === 1 || this.droppedSoon % 10_000 === 0) {
          this.logger.warn({ dropped: this.droppedSoon, limit: MAX_DEFERRED_WRITES }, 'deferred writes over their limit: the oldest are given up');
        }
      }
      this.soon.push(opts.durable ? { fn, done, durable: true } : { fn, done });
      this.armSoon(maxDelayMs);
    });
  }

  /** A real timer on purpose: it bounds how long a write waits, not the node's logic. */
  private armSoon(ms: number): void {
    if (this.soonTimer) return;
    const t = setTimeout(() => {
      this.soonTimer = undefined;
      if (this.soon.length === 0) return;
      if (this.closed) {
        this.dropSoon();
        return;
      }
      this.write(flushOnly).catch((err) => {
        this.logger.warn({ err: (err as Error).message }, 'deferred writes not committed');
        this.dropSoon();
      });
    }, ms);
    this.soonTimer = () => clearTimeout(t);
  }

  private takeSoon(): Rider[] {
    if (this.soon.length === 0) return [];
    const riders = this.soon;
    this.soon = [];
    this.soonTimer?.();
    this.soonTimer = undefined;
    return riders;
  }

  private runRiders(riders: ReadonlyArray<{ fn: () => void }>): void {
    for (const r of riders) {
      try {
        r.fn();
      } catch (err) {
        this.logger.warn({ err: (err as Error).message }, 'a deferred write failed');
      }
    }
  }

  private requeue(riders: Rider[]): void {
    if (riders.length === 0) return;
    this.soon = [...riders, ...this.soon];
    if (!this.closed) this.armSoon(5);
  }

  /** Deferred writes that cannot commit (the store closed, or their own flush failed) are given up: each was allowed to be lost. */
  private dropSoon(): void {
    const riders = this.takeSoon();
    for (const x of riders) x.done();
  }

  /** A second, read-only connection: it sees only committed data and never waits for writers. */
  get reader(): Db {
    this.assertOpen();
    if (!this.readerDb) {
      if (this.path === ':memory:') return this.db;
      this.readerDb = new Database(this.path, { readonly: true, fileMustExist: true });
      this.readerDb.pragma('busy_timeout = 5000');
    }
    return this.readerDb;
  }

  /** Transactions committed since the store opened (not counting those of deferred writes alone): background work reads it to tell a busy node (util/pacer.ts). */
  get commits(): number {
    return this.committed;
  }

  /** Write transactions rolled back since the store opened: a cache of what this node wrote lately is stale when it moves. */
  get rollbacks(): number {
    return this.rolledBack;
  }

  /** Whether a write transaction is open (inside `write`/`writeAsync`). */
  get inTransaction(): boolean {
    return this.db.inTransaction;
  }

  /**
   * Calls `fn` once the open write transaction ends: `true` when it committed, `false` when it
   * rolled back. For state kept in memory beside what the transaction writes (a rate limiter's
   * buckets): put back what a rolled-back transaction changed, so a batch run again starts
   * from where its first run started. Outside a transaction `fn(true)` runs at once. `fn` must
   * not throw (a throw is logged).
   */
  onTransactionEnd(fn: (committed: boolean) => void): void {
    if (!this.db.inTransaction) fn(true);
    else this.endHooks.push(fn);
  }

  private ended(committed: boolean): void {
    if (this.endHooks.length === 0) return;
    const hooks = this.endHooks;
    this.endHooks = [];
    for (const h of hooks) {
      try {
        h(committed);
      } catch (err) {
        this.logger.warn({ err: (err as Error).message }, 'a transaction end hook failed');
      }
    }
  }

  /** ISO-8601 time from the injected clock. */
  nowIso(): string {
    return new Date(this.clock.now()).toISOString();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Waits for the writer in flight, then closes both connections. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    const release = await this.lock.acquire();
    try {
      if (this.closed) return;
      // Deferred writes still waiting get their transaction before the file closes.
      const riders = this.takeSoon();
      if (riders.length > 0) {
        try {
          this.db.transaction(() => this.runRiders(riders))();
        } catch (err) {
          this.logger.warn({ err: (err as Error).message }, 'deferred writes not committed at close');
        }
        for (const x of riders) x.done();
      }
      // A file deleted or replaced under the store: SQLite would close into the unlinked file
      // and everything in it would be gone. Copy it out first; a deleted file is put back.
      const state = this.fileState();
      let rescued: string | undefined;
      if (state !== 'ok') {
        try {
          rescued = await this.rescue();
        } catch (err) {
          this.logger.error({ path: this.path, err: (err as Error).message }, `the database file was ${state} and copying it out at close failed: what it held is lost`);
        }
      }
      this.closed = true;
      this.readerDb?.close();
      this.db.close();
      if (rescued) {
        if (!existsSync(this.path)) {
          renameSync(rescued, this.path);
          this.logger.warn({ path: this.path }, 'the database file was deleted while the store was open: its contents were saved back to its path at close');
        } else {
          this.logger.warn({ path: this.path, rescued }, `the database file was ${state} while the store was open: its contents were saved beside it at close (the file at the path is another one)`);
        }
      }
    } finally {
      release();
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError('WEFT_STORE', `store ${this.path} is closed`);
  }
}

/**
 * Brings the file to the newest schema. A file a newer Weft has migrated past what this one
 * knows is refused as it is: its tables may hold columns and rules this code would break (a
 * row written without a column the newer code needs), and it is not damaged, so nothing may
 * move it aside.
 */
/**
 * SQLite's online backup of an open database to `to`, left as one self-contained file (rollback
 * journal, not WAL: opening the copy makes no -wal or -shm beside it), mode 0600. A store opening
 * it switches it back to WAL.
 */
export async function backupDatabase(db: Db, to: string): Promise<void> {
  await db.backup(to);
  chmodSync(to, 0o600);
  const copy = new Database(to);
  try {
    copy.pragma('journal_mode = DELETE');
  } finally {
    copy.close();
  }
}

function migrate(db: Db, path: string, steps: ReadonlyArray<{ version: number; name: string; sql: string }>): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  const sorted = [...steps].sort((a, b) => a.version - b.version);
  const newest = sorted.at(-1)?.version ?? 0;
  if (current > newest) {
    throw new StoreError(
      'WEFT_STORE_TOO_NEW',
      `database ${path} was written by a newer Weft (schema ${current}; this Weft knows schemas up to ${newest}): run that version or a newer one; nothing was changed in the file`,
    );
  }
  for (const step of sorted) {
    if (step.version <= current) continue;
    db.transaction(() => {
      db.exec(step.sql);
      db.pragma(`user_version = ${step.version}`);
    })();
  }
}
