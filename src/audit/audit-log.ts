/**
 * The audit log: an append-only SQLite table where each entry holds the BLAKE3 hash of the
 * previous entry and of its own content, so editing or deleting an entry breaks the chain.
 */
import { blake3 } from '@noble/hashes/blake3.js';
import type { Database } from 'better-sqlite3';
import { requireDeps, requireState } from '../errors/index.js';
import { camelRow, type Store } from '../store/index.js';

/** What happened. Known kinds are listed; any other dotted name is allowed. */
export type AuditKind =
  | 'identity.created'
  | 'key.rotated'
  | 'peer.connected'
  | 'peer.disconnected'
  | 'peer.refused'
  | 'trust.changed'
  | 'frame.rejected'
  | (string & {});

/** One stored entry. */
export interface AuditEntry {
  readonly seq: number;
  /** Milliseconds since the epoch. */
  readonly at: number;
  readonly kind: AuditKind;
  readonly peer: string | null;
  readonly details: Record<string, unknown>;
  readonly success: boolean;
  readonly prevHash: string;
  readonly hash: string;
}

/** Result of `verify()`: the first bad entry, if any. */
export type AuditVerification =
  | { ok: true; entries: number; headHash: string }
  | {
      ok: false;
      entries: number;
      /** The first entry that does not check out (for a truncated tail: the first missing seq). */
      firstBadSeq: number;
      reason: 'content-altered' | 'chain-broken' | 'entries-missing' | 'tail-truncated';
      message: string;
    };

/** Hash of the (absent) entry before the first one. */
export const AUDIT_GENESIS_HASH = '0'.repeat(64);

/**
 * Creates the audit table (and triggers that refuse UPDATE and DELETE). Idempotent.
 * @example
 * ensureAuditSchema(db);
 */
export function ensureAuditSchema(db: Database): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS audit_log (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      at INTEGER NOT NULL,
      kind TEXT NOT NULL,
      peer TEXT,
      details TEXT NOT NULL,
      success INTEGER NOT NULL,
      prev_hash TEXT NOT NULL,
      hash TEXT NOT NULL
    );
    CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
      BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
    CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
      BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
  `);
}

interface Row {
  seq: number;
  at: number;
  kind: string;
  peer: string | null;
  details: string;
  success: number;
  prev_hash: string;
  hash: string;
}

function entryHash(
  seq: number,
  at: number,
  kind: string,
  peer: string | null,
  details: string,
  success: number,
  prev: string,
): string {
  const content = JSON.stringify([seq, at, kind, peer, details, success, prev]);
  return Buffer.from(blake3(new TextEncoder().encode(content))).toString('hex');
}

function toEntry(r: Row): AuditEntry {
  let details: Record<string, unknown>;
  try {
    details = JSON.parse(r.details) as Record<string, unknown>;
  } catch {
    details = { unparsable: r.details };
  }
  return { ...camelRow(r), details, success: r.success === 1 };
}

export interface AuditLogDeps {
  /** The node's store: every entry is written through it (its one writer), never beside it. */
  store: Store;
}

/**
 * The hash-chained audit log over the node's store. Entries are written only through the
 * store's writer: `recordIn` inside a write the caller already has open (the entry commits or
 * rolls back with it), `record` on its own, queued behind whatever batch is in flight (so a
 * failing batch never takes another concern's entry with it) and coalesced with the other
 * entries of the same tick into one commit.
 */
export class AuditLog {
  private readonly store: Store;
  private readonly db: Database;
  private readonly stmts;
  private queued: Array<{ args: [AuditKind, string | null, Record<string, unknown>, boolean]; done: (e: AuditEntry) => void; fail: (err: unknown) => void }> = [];

  constructor(deps: AuditLogDeps) {
    requireDeps('AuditLog', deps, { store: "the node's Store" });
    this.store = deps.store;
    this.db = deps.store.db;
    ensureAuditSchema(this.db);
    this.stmts = {
      last: this.db.prepare('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1'),
      insert: this.db.prepare(
        'INSERT INTO audit_log (seq, at, kind, peer, details, success, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      nextSeq: this.db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'").pluck(),
      all: this.db.prepare('SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?'),
      iterate: this.db.prepare('SELECT * FROM audit_log ORDER BY seq'),
    };
  }

  /**
   * Appends an entry in its own write (after any write in flight) and resolves once it is
   * committed. Entries recorded in the same tick share one commit.
   * @example
   * await audit.record('peer.refused', 'saturn', { reason: 'key mismatch', fingerprint }, false);
   */
  record(kind: AuditKind, peer: string | null, details: Record<string, unknown>, success: boolean): Promise<AuditEntry> {
    return new Promise<AuditEntry>((done, fail) => {
      this.queued.push({ args: [kind, peer, details, success], done, fail });
      if (this.queued.length > 1) return;
      queueMicrotask(() => void this.flush());
    });
  }

  private async flush(): Promise<void> {
    const items = this.queued;
    this.queued = [];
    try {
      const entries = await this.store.write(() => items.map((it) => this.recordIn(...it.args)));
      for (const [i, it] of items.entries()) it.done(entries[i] as AuditEntry);
    } catch (err) {
      for (const it of items) it.fail(err);
    }
  }

  /**
   * Appends an entry inside the caller's open write (`store.write(() => …)`): it commits, or
   * rolls back, with the rest of that write.
   * @example
   * await store.write(() => { guard.record(header); audit.recordIn('key.rotated', peer, details, true); });
   */
  recordIn(kind: AuditKind, peer: string | null, details: Record<string, unknown>, success: boolean): AuditEntry {
    requireState(this.db.inTransaction, 'AuditLog.recordIn must run inside a store write');
    const last = this.stmts.last.get() as { seq: number; hash: string } | undefined;
    const counter = (this.stmts.nextSeq.get() as number | undefined) ?? 0;
    const seq = Math.max(last?.seq ?? 0, counter) + 1;
    const prev = last?.hash ?? AUDIT_GENESIS_HASH;
    const at = this.store.clock.now();
    const det = JSON.stringify(details ?? {});
    const s = success ? 1 : 0;
    const hash = entryHash(seq, at, kind, peer, det, s, prev);
    this.stmts.insert.run(seq, at, kind, peer, det, s, prev, hash);
    return { seq, at, kind, peer, details: JSON.parse(det) as Record<string, unknown>, success, prevHash: prev, hash };
  }

  /** Entries after `afterSeq`, oldest first. */
  entries(opts: { afterSeq?: number; limit?: number } = {}): AuditEntry[] {
    return (this.stmts.all.all(opts.afterSeq ?? 0, opts.limit ?? 1000) as Row[]).map(toEntry);
  }

  /** The successful entries of one kind about peers (peer set), oldest first: e.g. the rotations this node accepted. */
  peerSuccesses(kind: AuditKind): AuditEntry[] {
    return (this.db.prepare('SELECT * FROM audit_log WHERE kind = ? AND peer IS NOT NULL AND success = 1 ORDER BY seq').all(kind) as Row[]).map(toEntry);
  }

  /**
   * Walks the whole chain and reports the first entry that was edited, or where entries were
   * removed. A removed tail is caught through SQLite's AUTOINCREMENT counter; for protection
   * against someone who also rewrites that, keep `verify().headHash` somewhere else and compare.
   * @example
   * const v = audit.verify(); if (!v.ok) console.error(v.message);
   */
  verify(): AuditVerification {
    let prev = AUDIT_GENESIS_HASH;
    let expectedSeq = 1;
    let n = 0;
    for (const r of this.stmts.iterate.iterate() as IterableIterator<Row>) {
      if (r.seq !== expectedSeq) {
        return {
          ok: false,
          entries: n,
          firstBadSeq: expectedSeq,
          reason: 'entries-missing',
          message: `audit entries ${expectedSeq}..${r.seq - 1} are missing`,
        };
      }
      if (r.prev_hash !== prev) {
        return {
          ok: false,
          entries: n,
          firstBadSeq: r.seq,
          reason: 'chain-broken',
          message: `audit entry ${r.seq} does not link to the entry before it`,
        };
      }
      if (entryHash(r.seq, r.at, r.kind, r.peer, r.details, r.success, r.prev_hash) !== r.hash) {
        return {
          ok: false,
          entries: n,
          firstBadSeq: r.seq,
          reason: 'content-altered',
          message: `audit entry ${r.seq} was altered after it was written`,
        };
      }
      prev = r.hash;
      expectedSeq++;
      n++;
    }
    const counter = (this.stmts.nextSeq.get() as number | undefined) ?? 0;
    if (counter >= expectedSeq) {
      return {
        ok: false,
        entries: n,
        firstBadSeq: expectedSeq,
        reason: 'tail-truncated',
        message: `audit entries ${expectedSeq}..${counter} were deleted from the end of the log`,
      };
    }
    return { ok: true, entries: n, headHash: prev };
  }

  /**
   * Every entry as one JSON object per line, oldest first.
   * @example
   * for (const line of audit.exportJsonLines()) process.stdout.write(line + '\n');
   */
  *exportJsonLines(): Generator<string> {
    for (const r of this.stmts.iterate.iterate() as IterableIterator<Row>) yield JSON.stringify(toEntry(r));
  }
}
