/**
 * NodeSummary (Caro FR-501..504): a period's activity as counts — per category (count,
 * average duration, failure rate), 24 hourly and 7 daily buckets, risk levels, totals and the
 * number of distinct command shapes — never a command, a path or an argument. Built by SQL
 * over `terminal_commands`, with the categories the policy withholds left out, then signed
 * with the node key over its canonical JSON.
 */
import { createHash } from 'node:crypto';
import type { Database } from 'better-sqlite3';
import { COMMAND_CATEGORY_VALUES, type Granularity, type NodeSummary, nodeSummaryValidator, RISK_LEVEL_VALUES, type Signature } from '../catalog/index.js';
import { type NodeIdentity, publicKeyFromNodeId, verifySignature } from '../identity/index.js';
import { canonicalJson } from '../util/index.js';
import type { CommandCategory } from './classify.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * The period of a granularity that contains `t` (UTC; weeks start on Monday).
 * @example
 * periodAt('daily', Date.parse('2026-12-04T15:00:00Z')) // { start: '2026-12-04T00:00:00.000Z', end: '2026-12-05T00:00:00.000Z', ... }
 */
export function periodAt(granularity: Granularity, t: number): { start: number; end: number; granularity: Granularity } {
  if (granularity === 'hourly') {
    const start = Math.floor(t / HOUR) * HOUR;
    return { start, end: start + HOUR, granularity };
  }
  const day = Math.floor(t / DAY) * DAY;
  if (granularity === 'daily') return { start: day, end: day + DAY, granularity };
  // 1970-01-01 was a Thursday: Monday-based weekday = (days + 3) % 7.
  const dow = (Math.floor(t / DAY) + 3) % 7;
  const start = day - dow * DAY;
  return { start, end: start + 7 * DAY, granularity };
}

/** The period before the one containing `t`. */
export function previousPeriod(granularity: Granularity, t: number): { start: number; end: number; granularity: Granularity } {
  const cur = periodAt(granularity, t);
  return periodAt(granularity, cur.start - 1);
}

/** Categories the policy keeps out of anything shared. */
export type CategoryFilter = (c: CommandCategory) => boolean;

/** The SQL that leaves out the categories a policy withholds (appended to a WHERE clause). */
export function withheldClause(filter: CategoryFilter | undefined): { sql: string; args: string[] } {
  const withheld = COMMAND_CATEGORY_VALUES.filter((c) => filter && !filter(c));
  if (withheld.length === 0) return { sql: '', args: [] };
  return { sql: ` AND category NOT IN (${withheld.map(() => '?').join(',')})`, args: [...withheld] };
}

/** A summary's content before it is signed. */
export type UnsignedSummary = Omit<NodeSummary, 'signature'>;

/**
 * Counts one period of observed commands into a summary (unsigned).
 * @example
 * const s = summarize(db, { nodeId, granularity: 'daily', start, end, now: Date.now() });
 */
export function summarize(
  db: Database,
  o: { nodeId: string; granularity: Granularity; start: number; end: number; now: number; shares?: CategoryFilter },
): UnsignedSummary {
  const w = withheldClause(o.shares);
  const where = `ts >= ? AND ts < ?${w.sql}`;
  const args = [o.start, o.end, ...w.args];
  const cats = db
    .prepare(
      `SELECT category, COUNT(*) AS n, AVG(duration_ms) AS avg_ms,
              SUM(CASE WHEN exit_code IS NOT NULL AND exit_code <> 0 THEN 1 ELSE 0 END) AS failed,
              SUM(CASE WHEN exit_code IS NOT NULL THEN 1 ELSE 0 END) AS known
       FROM terminal_commands WHERE ${where} GROUP BY category ORDER BY category`,
    )
    .all(...args) as Array<{ category: CommandCategory; n: number; avg_ms: number | null; failed: number; known: number }>;
  const { hourly, daily } = activityCounts(db, where, args);
  const byRisk = riskCounts(db, where, args);
  const t = db
    .prepare(
      `SELECT COUNT(*) AS total, COUNT(DISTINCT pattern) AS patterns,
              SUM(caro_generated) AS generated,
              SUM(CASE WHEN caro_generated = 1 AND exit_code IS NOT NULL THEN 1 ELSE 0 END) AS executed,
              SUM(CASE WHEN user_confirmed = 1 AND risk_level IN ('high', 'critical') THEN 1 ELSE 0 END) AS confirmed
       FROM terminal_commands WHERE ${where}`,
    )
    .get(...args) as { total: number; patterns: number; generated: number | null; executed: number | null; confirmed: number | null };
  const start = new Date(o.start).toISOString();
  return {
    id: summaryId(o.nodeId, o.granularity, start),
    node_id: o.nodeId,
    period: { start, end: new Date(o.end).toISOString(), granularity: o.granularity },
    category_stats: cats.map((c) => ({
      category: c.category,
      count: c.n,
      avg_duration_ms: Math.round(c.avg_ms ?? 0),
      failure_rate: c.known === 0 ? 0 : Math.round((c.failed / c.known) * 10_000) / 10_000,
    })),
    hourly_activity: hourly,
    daily_activity: daily,
    safety_stats: {
      by_risk: byRisk,
      blocked_count: 0,
      user_confirmed_risky: t.confirmed ?? 0,
      caro_generated: t.generated ?? 0,
      caro_executed: t.executed ?? 0,
    },
    total_commands: t.total,
    unique_patterns: t.patterns,
    generated_at: new Date(o.now).toISOString(),
  };
}

/** Commands per risk level. */
export type RiskCounts = { safe: number; moderate: number; high: number; critical: number };

/**
 * Counts per risk level of the observed commands a WHERE clause selects (summaries and answers share it).
 * @example
 * riskCounts(db, 'ts >= ? AND ts < ?', [start, end]) // { safe: 90, moderate: 8, high: 2, critical: 0 }
 */
export function riskCounts(db: Database, where: string, args: readonly unknown[]): RiskCounts {
  const counts: RiskCounts = { safe: 0, moderate: 0, high: 0, critical: 0 };
  for (const r of db.prepare(`SELECT risk_level AS risk, COUNT(*) AS n FROM terminal_commands WHERE ${where} GROUP BY risk_level`).all(...args) as Array<{ risk: string; n: number }>) {
    if ((RISK_LEVEL_VALUES as readonly string[]).includes(r.risk)) counts[r.risk as keyof RiskCounts] = r.n;
  }
  return counts;
}

/**
 * Counts per UTC hour (24) and weekday (7, Monday = 0) of the observed commands a WHERE clause selects.
 * @example
 * activityCounts(db, 'ts >= ? AND ts < ?', [start, end]).hourly[9]
 */
export function activityCounts(db: Database, where: string, args: readonly unknown[]): { hourly: number[]; daily: number[] } {
  const hourly = new Array<number>(24).fill(0);
  for (const r of db.prepare(`SELECT (ts / ${HOUR}) % 24 AS h, COUNT(*) AS n FROM terminal_commands WHERE ${where} GROUP BY h`).all(...args) as Array<{ h: number; n: number }>) hourly[r.h] = r.n;
  // 1970-01-01 was a Thursday: Monday-based weekday = (days + 3) % 7.
  const daily = new Array<number>(7).fill(0);
  for (const r of db.prepare(`SELECT ((ts / ${DAY}) + 3) % 7 AS d, COUNT(*) AS n FROM terminal_commands WHERE ${where} GROUP BY d`).all(...args) as Array<{ d: number; n: number }>) daily[r.d] = r.n;
  return { hourly, daily };
}

/** A stable id per node and period, so the same period summarized twice is one record. */
export function summaryId(nodeId: string, granularity: Granularity, start: string): string {
  return createHash('sha256').update(`${nodeId}|${granularity}|${start}`).digest('hex').slice(0, 32);
}

/** Signs a summary with the node key over its canonical JSON (everything but `signature`). */
export function signSummary(s: UnsignedSummary, identity: NodeIdentity, now: number): NodeSummary {
  return { ...s, signature: signContent(s, identity, now) };
}

/** The seed's Signature over an object's canonical JSON. */
export function signContent(content: unknown, identity: NodeIdentity, now: number): Signature {
  const bytes = Buffer.from(canonicalJson(content), 'utf8');
  return { signer: identity.fingerprint, value: Buffer.from(identity.sign(bytes)).toString('base64'), timestamp: new Date(now).toISOString() };
}

/** Checks a Signature over `content` against a node id's key; false for anything malformed. */
export function verifyContent(content: unknown, signature: Signature, nodeId: string): boolean {
  try {
    const key = publicKeyFromNodeId(nodeId);
    if (!key) return false;
    return verifySignature(key, Buffer.from(canonicalJson(content), 'utf8'), Buffer.from(signature.value, 'base64'));
  } catch {
    return false;
  }
}

/**
 * A summary that is well formed, signed by the node it names, and carries the id of that node
 * and period (so one node cannot take another's ids and crowd its summaries out).
 */
export function verifySummary(s: unknown): s is NodeSummary {
  if (!nodeSummaryValidator.check(s)) return false;
  if (s.id !== summaryId(s.node_id, s.period.granularity, s.period.start)) return false;
  const { signature, ...content } = s;
  return verifyContent(content, signature, s.node_id);
}
