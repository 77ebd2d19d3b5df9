/**
 * The trust evaluator's tables: per-peer trust scores (decaying penalty counters) and counts of
 * every non-accept outcome per source. Writes run inside the pipeline's transaction; the
 * query functions read committed data through the store's reader connection.
 */
import type { Statement } from 'better-sqlite3';
import { type Db, type NodeStore, whereGiven } from '../../store/index.js';
import type { TrustOutcome } from './policy.js';

/** How a peer's penalty turns into a score and fades. */
export interface ScoreInit {
  /** Penalty halves every `halfLifeMs` of wall time (default 1 hour). */
  halfLifeMs?: number;
  /** Each clean event multiplies the penalty by this (default 0.995: ~140 clean events halve it). */
  cleanDecay?: number;
  /** Penalty per offense by outcome (defaults: flag 0.1, quarantine 1, reject 3). */
  weights?: Partial<Record<Exclude<TrustOutcome, 'accept'>, number>>;
  /** Penalty at which the score is 0.5 (default 5). */
  scale?: number;
  /** The penalty never exceeds this, so a past flood fades in hours, not weeks (default 50). */
  maxPenalty?: number;
  /** Below this score a peer's events are flagged `trust:low_score` (default 0.5). */
  flagBelow?: number;
  /** Below this score a peer's events are held as `trust:distrusted` (default 0.2). */
  quarantineBelow?: number;
}

export type ResolvedScoreInit = Required<Omit<ScoreInit, 'weights'>> & {
  weights: Record<Exclude<TrustOutcome, 'accept'>, number>;
};

export function resolveScoreInit(init: ScoreInit = {}): ResolvedScoreInit {
  return {
    halfLifeMs: init.halfLifeMs ?? 3_600_000,
    cleanDecay: init.cleanDecay ?? 0.995,
    weights: { flag: 0.1, quarantine: 1, reject: 3, ...init.weights },
    scale: init.scale ?? 5,
    maxPenalty: init.maxPenalty ?? 50,
    flagBelow: init.flagBelow ?? 0.5,
    quarantineBelow: init.quarantineBelow ?? 0.2,
  };
}

/**
 * Score in (0, 1] from a penalty: 1 for a clean record, 0.5 at `scale`.
 * @example
 * scoreOf(5, 5); // 0.5
 */
export function scoreOf(penalty: number, scale: number): number {
  return 1 / (1 + penalty / scale);
}

/** Penalty after `elapsedMs` of time decay. */
export function decayed(penalty: number, elapsedMs: number, halfLifeMs: number): number {
  if (penalty <= 0 || elapsedMs <= 0) return penalty;
  const p = penalty * 0.5 ** (elapsedMs / halfLifeMs);
  return p < 1e-4 ? 0 : p;
}

interface Statements {
  getScore: Statement;
  putScore: Statement;
  countOutcome: Statement;
}

const prepared = new WeakMap<Db, Statements>();

/** Prepared statements of the writer connection, made once per database. */
export function trustStatements(db: Db): Statements {
  let s = prepared.get(db);
  if (!s) {
    s = {
      getScore: db.prepare('SELECT penalty, updated_at FROM trust_scores WHERE peer = ?'),
      putScore: db.prepare(
        `INSERT INTO trust_scores (peer, penalty, clean, offenses, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(peer) DO UPDATE SET penalty = excluded.penalty, clean = clean + excluded.clean,
           offenses = offenses + excluded.offenses, updated_at = excluded.updated_at`,
      ),
      countOutcome: db.prepare(
        `INSERT INTO trust_outcomes (peer, source, outcome, reason, count, last_at) VALUES (?, ?, ?, ?, 1, ?)
         ON CONFLICT(peer, source, outcome, reason) DO UPDATE SET count = count + 1, last_at = excluded.last_at`,
      ),
    };
    prepared.set(db, s);
  }
  return s;
}

/** One peer's persisted record. */
export interface PeerTrustRecord {
  peer: string;
  /** Penalty decayed to `at`. */
  penalty: number;
  /** Score in (0, 1] at `at`. */
  score: number;
  clean: number;
  offenses: number;
  updatedAt: number;
}

/**
 * Every peer's trust score, decayed to `nowMs`, lowest first.
 * @example
 * for (const p of peerTrustScores(node.ns, node.clock.now())) console.log(p.peer, p.score.toFixed(2));
 */
export function peerTrustScores(ns: NodeStore, nowMs: number, init: ScoreInit = {}): PeerTrustRecord[] {
  const r = resolveScoreInit(init);
  const rows = ns.store.reader
    .prepare('SELECT peer, penalty, clean, offenses, updated_at FROM trust_scores')
    .all() as Array<{
    peer: string;
    penalty: number;
    clean: number;
    offenses: number;
    updated_at: number;
  }>;
  return rows
    .map((row) => {
      const penalty = decayed(row.penalty, nowMs - row.updated_at, r.halfLifeMs);
      return {
        peer: row.peer,
        penalty,
        score: scoreOf(penalty, r.scale),
        clean: row.clean,
        offenses: row.offenses,
        updatedAt: row.updated_at,
      };
    })
    .sort((a, b) => a.score - b.score);
}

/** A count of one (peer, source, outcome, reason). `peer` is '' for local events. */
export interface TrustOutcomeCount {
  peer: string;
  source: string;
  outcome: Exclude<TrustOutcome, 'accept'>;
  reason: string;
  count: number;
  lastAt: number;
}

/**
 * Persisted counts of every flag, quarantine and reject, optionally filtered; highest first.
 * Accepts are counted in memory only (`TrustEvaluator.stats()`), to keep the hot path free of writes.
 * @example
 * const held = trustOutcomeCounts(node.ns, { outcome: 'quarantine' });
 */
export function trustOutcomeCounts(
  ns: NodeStore,
  filter: { peer?: string; source?: string; outcome?: TrustOutcome } = {},
): TrustOutcomeCount[] {
  const w = whereGiven([
    ['peer = ?', filter.peer],
    ['source = ?', filter.source],
    ['outcome = ?', filter.outcome],
  ]);
  const sql = `SELECT peer, source, outcome, reason, count, last_at AS lastAt FROM trust_outcomes ${w.sql} ORDER BY count DESC, peer, source`;
  return ns.store.reader.prepare(sql).all(...w.args) as TrustOutcomeCount[];
}

/**
 * Totals per outcome (flag, quarantine, reject) across all sources.
 * @example
 * const { quarantine } = trustOutcomeTotals(node.ns);
 */
export function trustOutcomeTotals(ns: NodeStore): Record<Exclude<TrustOutcome, 'accept'>, number> {
  const out = { flag: 0, quarantine: 0, reject: 0 };
  const rows = ns.store.reader
    .prepare('SELECT outcome, SUM(count) AS n FROM trust_outcomes GROUP BY outcome')
    .all() as Array<{
    outcome: keyof typeof out;
    n: number;
  }>;
  for (const r of rows) out[r.outcome] = r.n;
  return out;
}
