/**
 * Replay guard: refuses frames outside the time window, frames whose nonce or sequence was
 * already accepted, and sequences far below the sender's high-water mark. Everything it
 * remembers lives in SQLite, so a replay is caught after a restart too.
 *
 * Acceptance and at-least-once delivery: a frame is identified by (sender, nonce) and
 * (sender, sequence). A sender that re-sends after a reconnect builds a NEW frame (new nonce,
 * new sequence) carrying the same envelopes; the guard accepts it and the receiver drops
 * envelopes it already applied, by envelope id. A transport that redelivers the SAME bytes
 * (Redis reclaiming an entry whose XACK was lost) gets a REPLAY_* refusal: the frame was
 * applied already, so the receiver acks and drops it. For that to hold, `record()` must be
 * committed in the same SQLite transaction as the frame's effects; use `check()` before and
 * `record()` inside the transaction (or `accept()` when there is nothing else to commit).
 *
 * Order: a sender's sequences are strictly increasing, but transports may deliver them out of
 * order (reclaimed entries, re-sends on a second link). Sequences within `sequenceWindow` of
 * the high-water mark are accepted if not seen before; older ones are refused as stale.
 */
import type { Database } from 'better-sqlite3';
import { requireDeps, requireState } from '../errors/index.js';
import type { Store } from '../store/index.js';
import type { Clock, Logger } from '../util/index.js';

export type ReplayErrorCode =
  | 'REPLAY_TOO_OLD'
  | 'REPLAY_TOO_NEW'
  | 'REPLAY_NONCE_SEEN'
  | 'REPLAY_SEQUENCE_SEEN'
  | 'REPLAY_SEQUENCE_STALE';

export interface ReplayError {
  readonly code: ReplayErrorCode;
  readonly message: string;
  /** For TOO_OLD / TOO_NEW: receiver clock minus frame timestamp, in whole seconds. */
  readonly skewSeconds?: number;
}

export type ReplayVerdict = { ok: true } | { ok: false; error: ReplayError };

/** The header fields the guard looks at (a decoded FrameHeader has them). */
export interface ReplayHeader {
  readonly sender: string;
  readonly sequence: number;
  readonly timestamp: number;
  readonly nonce: Uint8Array;
}

export interface ReplayGuardInit {
  /** Oldest frame accepted, ms (default 5 min). */
  maxAgeMs?: number;
  /** Furthest future timestamp accepted, ms (default 5 min). */
  maxFutureMs?: number;
  /** How far below a sender's high-water mark a sequence may arrive (default 4096). */
  sequenceWindow?: number;
  /** Minimum time between automatic prunes, ms (default 60 s). */
  pruneEveryMs?: number;
}

export interface ReplayGuardDeps {
  /** The node's store: the guard writes only through it (inside the caller's write, or its own). */
  store: Store;
  logger?: Logger;
}

/**
 * Creates the replay guard's tables if they do not exist. Idempotent.
 * @example
 * ensureReplayGuardSchema(db);
 */
export function ensureReplayGuardSchema(db: Database): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS replay_nonces (
      sender TEXT NOT NULL,
      nonce BLOB NOT NULL,
      sequence INTEGER NOT NULL,
      frame_ts INTEGER NOT NULL,
      expires_at INTEGER NOT NULL,
      PRIMARY KEY (sender, nonce)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS replay_nonces_by_seq ON replay_nonces (sender, sequence);
    CREATE INDEX IF NOT EXISTS replay_nonces_by_expiry ON replay_nonces (expires_at);
    CREATE TABLE IF NOT EXISTS replay_senders (
      sender TEXT PRIMARY KEY,
      high_water INTEGER NOT NULL,
      updated_at INTEGER NOT NULL
    );
  `);
}

/** The replay guard; see the module comment for how it meets at-least-once delivery. */
export class ReplayGuard {
  private readonly store: Store;
  private readonly db: Database;
  private readonly clock: Clock;
  private readonly logger: Logger | undefined;
  readonly maxAgeMs: number;
  readonly maxFutureMs: number;
  readonly sequenceWindow: number;
  private readonly pruneEveryMs: number;
  private lastPrune = Number.NEGATIVE_INFINITY;
  private readonly stmts;

  constructor(init: ReplayGuardInit, deps: ReplayGuardDeps) {
    requireDeps('ReplayGuard', deps, { store: "the node's Store" });
    this.store = deps.store;
    this.db = deps.store.db;
    this.clock = deps.store.clock;
    this.logger = deps.logger;
    this.maxAgeMs = init.maxAgeMs ?? 5 * 60_000;
    this.maxFutureMs = init.maxFutureMs ?? 5 * 60_000;
    this.sequenceWindow = init.sequenceWindow ?? 4096;
    this.pruneEveryMs = init.pruneEveryMs ?? 60_000;
    ensureReplayGuardSchema(this.db);
    this.stmts = {
      nonceSeen: this.db.prepare('SELECT 1 FROM replay_nonces WHERE sender = ? AND nonce = ?').pluck(),
      seqSeen: this.db
        .prepare('SELECT 1 FROM replay_nonces WHERE sender = ? AND sequence = ? LIMIT 1')
        .pluck(),
      hwm: this.db.prepare('SELECT high_water FROM replay_senders WHERE sender = ?').pluck(),
      insertNonce: this.db.prepare(
        'INSERT INTO replay_nonces (sender, nonce, sequence, frame_ts, expires_at) VALUES (?, ?, ?, ?, ?)',
      ),
      upsertHwm: this.db.prepare(
        `INSERT INTO replay_senders (sender, high_water, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (sender) DO UPDATE SET high_water = max(high_water, excluded.high_water), updated_at = excluded.updated_at`,
      ),
      prune: this.db.prepare('DELETE FROM replay_nonces WHERE expires_at < ?'),
      forgetNonces: this.db.prepare('DELETE FROM replay_nonces WHERE sender = ?'),
      forgetSender: this.db.prepare('DELETE FROM replay_senders WHERE sender = ?'),
    };
  }

  /**
   * Would this frame be accepted? Read-only.
   * @example
   * const v = guard.check(frame.header); if (!v.ok) reject(v.error.code);
   */
  check(h: ReplayHeader): ReplayVerdict {
    const now = this.clock.now();
    const age = now - h.timestamp;
    if (age > this.maxAgeMs) {
      const s = Math.floor(age / 1000);
      return {
        ok: false,
        error: {
          code: 'REPLAY_TOO_OLD',
          message: `frame from ${h.sender} is ${s} s old; frames older than ${Math.floor(this.maxAgeMs / 1000)} s are refused (check both clocks)`,
          skewSeconds: s,
        },
      };
    }
    if (-age > this.maxFutureMs) {
      const s = Math.ceil(-age / 1000);
      return {
        ok: false,
        error: {
          code: 'REPLAY_TOO_NEW',
          message: `frame from ${h.sender} is ${s} s in the future; more than ${Math.floor(this.maxFutureMs / 1000)} s ahead is refused (check both clocks)`,
          skewSeconds: -s,
        },
      };
    }
    if (this.stmts.nonceSeen.get(h.sender, Buffer.from(h.nonce)) !== undefined) {
      return {
        ok: false,
        error: {
          code: 'REPLAY_NONCE_SEEN',
          message: `frame ${h.sequence} from ${h.sender} repeats a nonce already accepted`,
        },
      };
    }
    if (this.stmts.seqSeen.get(h.sender, h.sequence) !== undefined) {
      return {
        ok: false,
        error: {
          code: 'REPLAY_SEQUENCE_SEEN',
          message: `sequence ${h.sequence} from ${h.sender} was already accepted`,
        },
      };
    }
    const hwm = this.stmts.hwm.get(h.sender) as number | undefined;
    if (hwm !== undefined && h.sequence <= hwm - this.sequenceWindow) {
      return {
        ok: false,
        error: {
          code: 'REPLAY_SEQUENCE_STALE',
          message: `sequence ${h.sequence} from ${h.sender} is more than ${this.sequenceWindow} below its high-water mark ${hwm}`,
        },
      };
    }
    return { ok: true };
  }

  /**
   * Remembers an accepted frame. Call it inside the store write that commits the frame's
   * effects, after `check()` said ok.
   */
  record(h: ReplayHeader): void {
    requireState(this.db.inTransaction, 'ReplayGuard.record must run inside a store write');
    const now = this.clock.now();
    // Keep the nonce until no clock reading could accept the frame again: its timestamp
    // plus the age limit, plus the future allowance as margin for our own clock stepping back.
    const expires = Math.max(h.timestamp, now) + this.maxAgeMs + this.maxFutureMs;
    this.stmts.insertNonce.run(h.sender, Buffer.from(h.nonce), h.sequence, h.timestamp, expires);
    this.stmts.upsertHwm.run(h.sender, h.sequence, now);
    if (now - this.lastPrune >= this.pruneEveryMs) this.pruneIn();
  }

  /**
   * check() and record() in one store write: for receivers with nothing else to commit.
   * @example
   * const v = await guard.accept(frame.header);
   */
  accept(h: ReplayHeader): Promise<ReplayVerdict> {
    return this.store.write((): ReplayVerdict => {
      const v = this.check(h);
      if (v.ok) this.record(h);
      return v;
    });
  }

  /** Deletes nonces no frame could legitimately repeat any more, in its own store write; returns how many. */
  prune(): Promise<number> {
    return this.store.write(() => this.pruneIn());
  }

  private pruneIn(): number {
    const now = this.clock.now();
    this.lastPrune = now;
    const n = this.stmts.prune.run(now).changes;
    if (n > 0) this.logger?.debug({ pruned: n }, 'replay guard pruned nonces');
    return n;
  }

  /** The highest sequence accepted from `sender`, if any. */
  highWaterMark(sender: string): number | undefined {
    return this.stmts.hwm.get(sender) as number | undefined;
  }

  /**
   * Forgets a sender (an operator reset after the sender lost its state and restarted its
   * sequence at 1). Its frames are still subject to the time window.
   */
  forgetSender(sender: string): Promise<void> {
    return this.store.write(() => {
      this.stmts.forgetNonces.run(sender);
      this.stmts.forgetSender.run(sender);
    });
  }
}
