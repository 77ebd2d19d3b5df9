/**
 * The privacy tables (migration 7): observed commands without their text, spool read
 * positions, this node's summaries, summaries peers shared with us, and trust levels set at
 * run time. Writes happen inside the caller's `store.write`; reads use the store's reader.
 */
import type { Statement } from 'better-sqlite3';
import type { Granularity, NodeSummary } from '../catalog/index.js';
import type { TrustLevel } from '../mesh/index.js';
import type { Store } from '../store/index.js';
import type { SpoolPosition } from './spool.js';

/** Summaries kept per peer: a year of daily and weekly ones, and the last two months of hourly. */
export const MAX_PEER_SUMMARIES = 2000;

/** One observed command as summaries need it. */
export interface CommandRow {
  eventId: string;
  ts: number;
  shell: string;
  category: string;
  riskLevel: string;
  exitCode: number | null;
  durationMs: number | null;
  pattern: string;
  caroGenerated: boolean;
  userConfirmed: boolean;
}

export interface StoredSummary {
  id: string;
  granularity: Granularity;
  periodStart: string;
  periodEnd: string;
  summary: NodeSummary;
  generatedAt: number;
  sharedAt: number | null;
}

/** Prepared statements over the privacy tables of one store. */
export class PrivacyStore {
  private readonly insCommand: Statement;
  private readonly upPosition: Statement;
  private readonly insSummary: Statement;
  private readonly markShared: Statement;
  private readonly insPeerSummary: Statement;
  private readonly trimPeerSummaries: Statement;
  private readonly upTrust: Statement;
  private readonly delTrust: Statement;

  constructor(readonly store: Store) {
    const db = store.db;
    this.insCommand = db.prepare(
      `INSERT OR IGNORE INTO terminal_commands (event_id, ts, shell, category, risk_level, exit_code, duration_ms, pattern, caro_generated, user_confirmed)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.upPosition = db.prepare(
      `INSERT INTO spool_positions (file, ino, position, records, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(file) DO UPDATE SET ino = excluded.ino, position = excluded.position, records = spool_positions.records + excluded.records, updated_at = excluded.updated_at`,
    );
    this.insSummary = db.prepare(
      `INSERT INTO summaries (id, granularity, period_start, period_end, body, generated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(granularity, period_start) DO UPDATE SET body = excluded.body, generated_at = excluded.generated_at, shared_at = NULL`,
    );
    this.markShared = db.prepare('UPDATE summaries SET shared_at = ? WHERE id = ?');
    // A later summary of the same period (made once the period ended) replaces the earlier one.
    this.insPeerSummary = db.prepare(
      `INSERT INTO peer_summaries (id, peer, node_id, granularity, period_start, body, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET body = excluded.body, received_at = excluded.received_at
       WHERE json_extract(excluded.body, '$.generated_at') > json_extract(peer_summaries.body, '$.generated_at')`,
    );
    this.trimPeerSummaries = db.prepare(
      'DELETE FROM peer_summaries WHERE peer = ? AND id NOT IN (SELECT id FROM peer_summaries WHERE peer = ? ORDER BY period_start DESC LIMIT ?)',
    );
    this.upTrust = db.prepare(
      'INSERT INTO trust_settings (peer, level, set_at, reason, node_id) VALUES (?, ?, ?, ?, ?) ON CONFLICT(peer) DO UPDATE SET level = excluded.level, set_at = excluded.set_at, reason = excluded.reason, node_id = excluded.node_id',
    );
    this.delTrust = db.prepare('DELETE FROM trust_settings WHERE peer = ?');
  }

  /** Inside a write: records a command once (by event id). */
  addCommand(r: CommandRow): void {
    this.insCommand.run(r.eventId, r.ts, r.shell, r.category, r.riskLevel, r.exitCode, r.durationMs, r.pattern, r.caroGenerated ? 1 : 0, r.userConfirmed ? 1 : 0);
  }

  /** Inside a write: a spool file's new read position, with how many records it moved past. */
  setPosition(file: string, p: SpoolPosition, records: number, now: number): void {
    this.upPosition.run(file, p.ino, p.position, records, now);
  }

  positions(): Map<string, SpoolPosition> {
    const rows = this.store.db.prepare('SELECT file, ino, position FROM spool_positions').all() as Array<{ file: string; ino: number; position: number }>;
    return new Map(rows.map((r) => [r.file, { ino: r.ino, position: r.position }]));
  }

  forgetPosition(file: string): void {
    this.store.db.prepare('DELETE FROM spool_positions WHERE file = ?').run(file);
  }

  /** Inside a write: stores a period's summary, replacing an earlier one of the same period (made while it ran). */
  putSummary(s: NodeSummary, now: number): void {
    this.insSummary.run(s.id, s.period.granularity, s.period.start, s.period.end, JSON.stringify(s), now);
  }

  /** Summaries never sent whose period started after `since`, oldest first. */
  unshared(since: number): StoredSummary[] {
    const rows = this.store.reader
      .prepare('SELECT id, granularity, period_start, period_end, body, generated_at, shared_at FROM summaries WHERE shared_at IS NULL AND period_start >= ? ORDER BY period_start')
      .all(new Date(since).toISOString()) as SummaryRow[];
    return rows.map(toStored);
  }

  markSummaryShared(id: string, now: number): void {
    this.markShared.run(now, id);
  }

  summary(granularity: Granularity, periodStart: string): StoredSummary | undefined {
    const r = this.store.reader
      .prepare('SELECT id, granularity, period_start, period_end, body, generated_at, shared_at FROM summaries WHERE granularity = ? AND period_start = ?')
      .get(granularity, periodStart) as SummaryRow | undefined;
    return r ? toStored(r) : undefined;
  }

  summaries(opts: { granularity?: Granularity; limit: number }): StoredSummary[] {
    const rows = (
      opts.granularity
        ? this.store.reader
            .prepare('SELECT id, granularity, period_start, period_end, body, generated_at, shared_at FROM summaries WHERE granularity = ? ORDER BY period_start DESC LIMIT ?')
            .all(opts.granularity, opts.limit)
        : this.store.reader.prepare('SELECT id, granularity, period_start, period_end, body, generated_at, shared_at FROM summaries ORDER BY period_start DESC LIMIT ?').all(opts.limit)
    ) as SummaryRow[];
    return rows.map(toStored);
  }

  /**
   * Inside a write: a summary a peer shared (signature already checked). At most
   * MAX_PEER_SUMMARIES are kept per peer, the newest periods; a peer cannot grow the table
   * without end by inventing periods.
   */
  addPeerSummary(peer: string, s: NodeSummary, now: number): void {
    if (this.insPeerSummary.run(s.id, peer, s.node_id, s.period.granularity, s.period.start, JSON.stringify(s), now).changes === 1) {
      this.trimPeerSummaries.run(peer, peer, MAX_PEER_SUMMARIES);
    }
  }

  peerSummaries(opts: { peer?: string; limit: number }): Array<{ peer: string; receivedAt: number; summary: NodeSummary }> {
    const sql = `SELECT peer, body, received_at FROM peer_summaries ${opts.peer ? 'WHERE peer = ?' : ''} ORDER BY period_start DESC LIMIT ?`;
    const args = opts.peer ? [opts.peer, opts.limit] : [opts.limit];
    const rows = this.store.reader.prepare(sql).all(...args) as Array<{ peer: string; body: string; received_at: number }>;
    return rows.map((r) => ({ peer: r.peer, receivedAt: r.received_at, summary: JSON.parse(r.body) as NodeSummary }));
  }

  /** Inside a write: a trust level set at run time (undefined: back to the config's). */
  setTrust(peer: string, level: TrustLevel | undefined, now: number, reason?: string, nodeId?: string): void {
    if (level === undefined) this.delTrust.run(peer);
    else this.upTrust.run(peer, level, now, reason ?? null, nodeId ?? null);
  }

  /** Levels set at run time, each with the key it was set for (null: set before keys were kept). */
  trustSettings(): Array<{ peer: string; level: TrustLevel; setAt: number; nodeId: string | null }> {
    const rows = this.store.db.prepare('SELECT peer, level, set_at, node_id FROM trust_settings ORDER BY peer').all() as Array<{ peer: string; level: TrustLevel; set_at: number; node_id: string | null }>;
    return rows.map((r) => ({ peer: r.peer, level: r.level, setAt: r.set_at, nodeId: r.node_id }));
  }
}

interface SummaryRow {
  id: string;
  granularity: Granularity;
  period_start: string;
  period_end: string;
  body: string;
  generated_at: number;
  shared_at: number | null;
}

function toStored(r: SummaryRow): StoredSummary {
  return {
    id: r.id,
    granularity: r.granularity,
    periodStart: r.period_start,
    periodEnd: r.period_end,
    summary: JSON.parse(r.body) as NodeSummary,
    generatedAt: r.generated_at,
    sharedAt: r.shared_at,
  };
}
