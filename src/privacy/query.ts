/**
 * Aggregate queries (Caro FR-601..605): each node answers a query from its own observed
 * commands (counts only, with the categories its policy withholds left out), and the
 * requester merges the answers. A bucket built from fewer than `min_contributors` nodes is
 * suppressed in the merge, so no single aggregate shows a node on its own (two can still be
 * subtracted: docs/privacy.md, "What the k-threshold does not do"); anomalies and node health
 * name nodes by fingerprint only, never by a command, a path or a user.
 */
import type { Database } from 'better-sqlite3';
import {
  type AnomalySignal,
  COMMAND_CATEGORY_VALUES,
  type CategoryAggregate,
  type QueryFilter,
  type QueryType,
  type ResponseData,
  RISK_LEVEL_VALUES,
  SHELL_TYPES,
  type TimeRange,
} from '../catalog/index.js';
import { WeftError } from '../errors/index.js';
import { activityCounts, type CategoryFilter, riskCounts, withheldClause } from './summaries.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Fields a filter may name, the column and kind each compares, and for text fields the values a row can have. */
const FILTER_FIELDS: Readonly<Record<string, { column: string; kind: 'text' | 'int'; values?: readonly string[] }>> = {
  category: { column: 'category', kind: 'text', values: COMMAND_CATEGORY_VALUES },
  risk_level: { column: 'risk_level', kind: 'text', values: RISK_LEVEL_VALUES },
  shell: { column: 'shell', kind: 'text', values: SHELL_TYPES },
  exit_code: { column: 'exit_code', kind: 'int' },
  duration_ms: { column: 'duration_ms', kind: 'int' },
  hour: { column: `((ts / ${HOUR}) % 24)`, kind: 'int' },
};

export const FILTER_FIELD_NAMES = Object.keys(FILTER_FIELDS);
const TEXT_FIELDS = FILTER_FIELD_NAMES.filter((f) => FILTER_FIELDS[f]?.kind === 'text');
const INT_FIELDS = FILTER_FIELD_NAMES.filter((f) => FILTER_FIELDS[f]?.kind === 'int');
const SYMBOL_OF: Record<QueryFilter['operator'], string> = { equals: '=', not_equals: '!=', contains: '~', greater_than: '>', less_than: '<', in_list: 'in' };
const SYNTAX = `"field op value" (op: = != ~ > < in; fields: ${FILTER_FIELD_NAMES.join(', ')})`;

/**
 * Parses `--filter "field op value"` (op: = == != ~ > < in, or the seed's operator names) and
 * checks it (see checkFilter); a mistake throws one line naming the filter and what is allowed.
 * @example
 * parseFilter('category = git') // { field: 'category', operator: 'equals', value: 'git' }
 */
export function parseFilter(text: string): QueryFilter {
  // Longest symbols first, and word operators only between spaces: 'category == git' is equals
  // 'git', never '=' with the value '= git'.
  const m =
    /^\s*([a-z_]+)\s*(==|!=|=|~|>|<)\s*(.*?)\s*$/.exec(text) ??
    /^\s*([a-z_]+)\s+(in|equals|not_equals|contains|greater_than|less_than|in_list)\s+(.*?)\s*$/.exec(text);
  const ops: Record<string, QueryFilter['operator']> = { '=': 'equals', '==': 'equals', '!=': 'not_equals', '~': 'contains', '>': 'greater_than', '<': 'less_than', in: 'in_list' };
  if (!m) throw new WeftError('WEFT_VALIDATION', `filter '${text}' is not ${SYNTAX}`);
  const [, field, op, value] = m as unknown as [string, string, string, string];
  return checkFilter({ field, operator: ops[op] ?? (op as QueryFilter['operator']), value }, text);
}

/**
 * Checks a filter before it is sent: a known field, an operator that compares that field's kind,
 * and a value it can have (an integer for exit_code, duration_ms and hour; a known category, risk
 * level or shell for `=`, `!=` and `in`). Throws WEFT_VALIDATION with one line naming the filter
 * (`as`, default the filter written back as "field op value") and what is allowed.
 * @example
 * checkFilter({ field: 'hour', operator: 'greater_than', value: '20' })
 */
export function checkFilter(f: QueryFilter, as?: string): QueryFilter {
  const spec = FILTER_FIELDS[f.field];
  const op = SYMBOL_OF[f.operator];
  const name = `filter '${as ?? `${f.field} ${op ?? f.operator} ${f.value}`}'`;
  const bad = (what: string) => new WeftError('WEFT_VALIDATION', `${name}: ${what}`);
  if (!spec) throw bad(`field '${f.field}' is not one of ${FILTER_FIELD_NAMES.join(', ')}`);
  if (!op) throw bad(`operator '${f.operator}' is not one of = != ~ > < in`);
  const value = f.value.trim();
  if (value === '') throw bad(`no value after '${op}'`);
  if (f.operator === 'contains' && spec.kind !== 'text') throw bad(`~ (contains) compares text: ${TEXT_FIELDS.join(', ')}; ${f.field} takes = != > < in`);
  if ((f.operator === 'greater_than' || f.operator === 'less_than') && spec.kind !== 'int') throw bad(`${op} compares numbers: ${INT_FIELDS.join(', ')}; ${f.field} takes = != ~ in`);
  const list = f.operator === 'in_list' ? value.split(',').map((v) => v.trim()) : [value];
  if (list.some((v) => v === '')) throw bad(`'in' takes values separated by commas, none empty (e.g. ${f.field} in ${spec.values ? spec.values.slice(0, 2).join(',') : '1,2'})`);
  if (list.length > 50) throw bad(`'in' takes at most 50 values, not ${list.length}`);
  for (const v of list) {
    if (spec.kind === 'int' && !/^-?\d{1,12}$/.test(v)) throw bad(`${f.field} takes a whole number, not '${v}'`);
    if (spec.values && f.operator !== 'contains' && !spec.values.includes(v)) throw bad(`${f.field} is one of ${spec.values.join(', ')}, not '${v}'`);
  }
  return { field: f.field, operator: f.operator, value };
}

/** SQL for a query's filters and the withheld categories; a bad filter throws (answered as NOT_SUPPORTED). */
function whereOf(range: { start: number; end: number }, filters: readonly QueryFilter[], shares: CategoryFilter | undefined): { sql: string; args: unknown[] } {
  const withheld = withheldClause(shares);
  let sql = `ts >= ? AND ts < ?${withheld.sql}`;
  const args: unknown[] = [range.start, range.end, ...withheld.args];
  for (const f of filters) {
    checkFilter(f);
    const spec = FILTER_FIELDS[f.field];
    if (!spec) throw new WeftError('WEFT_VALIDATION', `filter field '${f.field}' is not supported`);
    const val = (v: string): unknown => {
      if (spec.kind === 'text') return v;
      if (!/^-?\d{1,12}$/.test(v.trim())) throw new WeftError('WEFT_VALIDATION', `filter ${f.field}: '${v}' is not an integer`);
      return Number(v);
    };
    switch (f.operator) {
      case 'equals':
        sql += ` AND ${spec.column} = ?`;
        args.push(val(f.value));
        break;
      case 'not_equals':
        sql += ` AND (${spec.column} IS NULL OR ${spec.column} <> ?)`;
        args.push(val(f.value));
        break;
      case 'contains':
        if (spec.kind !== 'text') throw new WeftError('WEFT_VALIDATION', `filter ${f.field}: 'contains' compares text fields only`);
        sql += ` AND instr(${spec.column}, ?) > 0`;
        args.push(f.value);
        break;
      case 'greater_than':
        sql += ` AND ${spec.column} > ?`;
        args.push(val(f.value));
        break;
      case 'less_than':
        sql += ` AND ${spec.column} < ?`;
        args.push(val(f.value));
        break;
      case 'in_list': {
        const list = f.value.split(',').map((s) => s.trim()).filter(Boolean).slice(0, 50);
        if (list.length === 0) throw new WeftError('WEFT_VALIDATION', `filter ${f.field}: in_list needs values separated by commas`);
        sql += ` AND ${spec.column} IN (${list.map(() => '?').join(',')})`;
        args.push(...list.map(val));
        break;
      }
    }
  }
  return { sql, args };
}

/** What a node knows about itself for a node_health answer. */
export interface HealthFacts {
  fingerprint: string;
  startedAt: number;
  protocolVersion: number;
}

/** Everything one node needs to answer. */
export interface AnswerContext {
  db: Database;
  fingerprint: string;
  now: number;
  shares?: CategoryFilter;
  health: HealthFacts;
}

/** A query in milliseconds. */
export interface QuerySpec {
  type: QueryType;
  range: { start: number; end: number };
  filters: readonly QueryFilter[];
}

/** Reads a TimeRange into milliseconds; a bad or reversed one throws. */
export function rangeMs(r: TimeRange, type?: QueryType): { start: number; end: number } {
  const start = Date.parse(r.start);
  const end = Date.parse(r.end);
  if (!Number.isFinite(start) || !Number.isFinite(end) || end <= start) {
    throw new WeftError('WEFT_VALIDATION', `time range ${r.start} .. ${r.end} is not a range (start before end, ISO-8601)`);
  }
  // Bounded work per answer: anomalies also read the four windows before the range.
  const max = type === 'anomalies' ? MAX_ANOMALY_RANGE_MS : MAX_RANGE_MS;
  if (end - start > max) {
    throw new WeftError('WEFT_VALIDATION', `time range of ${Math.round((end - start) / DAY)} days is longer than ${max / DAY} days${type === 'anomalies' ? ' (anomalies)' : ''}`);
  }
  return { start, end };
}

/** The longest range a query may cover. */
export const MAX_RANGE_MS = 366 * DAY;
/** The longest range an anomalies query may cover (it also reads four windows before it). */
export const MAX_ANOMALY_RANGE_MS = 31 * DAY;

/**
 * This node's answer to a query, or null when it has nothing in the range (NO_DATA).
 * @example
 * const data = answerLocally({ type: 'tool_usage', range, filters: [] }, { db, fingerprint, now, health });
 */
export function answerLocally(q: QuerySpec, ctx: AnswerContext): ResponseData | null {
  if (q.type === 'node_health') {
    const w24 = whereOf({ start: ctx.now - DAY, end: ctx.now + 1 }, [], ctx.shares);
    const n = (ctx.db.prepare(`SELECT COUNT(*) AS n FROM terminal_commands WHERE ${w24.sql}`).get(...w24.args) as { n: number }).n;
    return {
      type: 'node_health',
      value: {
        fingerprint: ctx.fingerprint,
        online: true,
        last_seen: new Date(ctx.now).toISOString(),
        protocol_version: ctx.health.protocolVersion,
        uptime_seconds: Math.max(0, Math.floor((ctx.now - ctx.health.startedAt) / 1000)),
        event_count_24h: n,
      },
    };
  }
  const w = whereOf(q.range, q.filters, ctx.shares);
  const total = (ctx.db.prepare(`SELECT COUNT(*) AS n FROM terminal_commands WHERE ${w.sql}`).get(...w.args) as { n: number }).n;
  const timeRange = { start: new Date(q.range.start).toISOString(), end: new Date(q.range.end).toISOString() };
  if (q.type === 'anomalies') return { type: 'anomalies', value: detectAnomalies(ctx, q, total) };
  if (total === 0) return null;
  switch (q.type) {
    case 'tool_usage': {
      const rows = ctx.db
        .prepare(`SELECT category, COUNT(*) AS n, AVG(duration_ms) AS avg_ms FROM terminal_commands WHERE ${w.sql} GROUP BY category`)
        .all(...w.args) as Array<{ category: string; n: number; avg_ms: number | null }>;
      const by: Record<string, CategoryAggregate> = {};
      for (const r of rows) by[r.category] = { count: r.n, node_count: 1, avg_duration_ms: Math.round(r.avg_ms ?? 0) };
      return { type: 'tool_usage', value: { by_category: by, total_commands: total, time_range: timeRange } };
    }
    case 'safety_posture': {
      const counts = riskCounts(ctx.db, w.sql, w.args);
      const confirmed = (ctx.db.prepare(`SELECT COUNT(*) AS n FROM terminal_commands WHERE ${w.sql} AND user_confirmed = 1 AND risk_level IN ('high', 'critical')`).get(...w.args) as { n: number }).n;
      return {
        type: 'safety_posture',
        value: { risk_distribution: shares(counts, total), blocked_count: 0, confirmed_risky: confirmed, coverage: 100 },
        risk_counts: counts,
        total_commands: total,
      };
    }
    case 'activity_patterns': {
      const { hourly, daily } = activityCounts(ctx.db, w.sql, w.args);
      return { type: 'activity_patterns', value: patternsOf(hourly, daily, 1), hourly_counts: hourly, daily_counts: daily };
    }
  }
}

function shares(counts: { safe: number; moderate: number; high: number; critical: number }, total: number) {
  const pct = (n: number) => (total === 0 ? 0 : Math.round((n / total) * 10_000) / 100);
  return { safe: pct(counts.safe), moderate: pct(counts.moderate), high: pct(counts.high), critical: pct(counts.critical) };
}

function patternsOf(hourly: number[], daily: number[], nodes: number) {
  const hMax = Math.max(...hourly, 0);
  const dMax = Math.max(...daily, 0);
  const norm = (v: number, max: number) => (max === 0 ? 0 : Math.round((v / max) * 1000) / 1000);
  const peak = hourly
    .map((n, h) => ({ n, h }))
    .filter((x) => x.n > 0)
    .sort((a, b) => b.n - a.n || a.h - b.h)
    .slice(0, 3)
    .map((x) => x.h);
  return { hourly_pattern: hourly.map((n) => norm(n, hMax)), daily_pattern: daily.map((n) => norm(n, dMax)), peak_hours: peak, active_nodes: nodes };
}

/**
 * This node's anomaly signals for the range, against its own baseline (the four windows of the
 * same length before it). Thresholds are deliberately plain; each signal says which one fired.
 */
function detectAnomalies(ctx: AnswerContext, q: QuerySpec, total: number): AnomalySignal[] {
  const out: AnomalySignal[] = [];
  const at = new Date(ctx.now).toISOString();
  const signal = (anomaly_type: AnomalySignal['anomaly_type'], severity: number, description: string) =>
    out.push({ anomaly_type, severity: Math.max(1, Math.min(10, Math.round(severity))), node_fingerprint: ctx.fingerprint, detected_at: at, description });
  const len = q.range.end - q.range.start;
  const base = { start: q.range.start - 4 * len, end: q.range.start };
  const w = whereOf(q.range, q.filters, ctx.shares);
  const bw = whereOf(base, q.filters, ctx.shares);
  const baseTotal = (ctx.db.prepare(`SELECT COUNT(*) AS n FROM terminal_commands WHERE ${bw.sql}`).get(...bw.args) as { n: number }).n;
  const baseMean = baseTotal / 4;
  if (baseMean >= 5 && total > 3 * baseMean + 10) {
    signal('baseline_deviation', 3 + total / baseMean, `${total} commands against a baseline of ${Math.round(baseMean)} per window`);
  } else if (baseMean >= 20 && total < baseMean / 3) {
    signal('baseline_deviation', 3 + baseMean / Math.max(total, 1) / 2, `${total} commands against a baseline of ${Math.round(baseMean)} per window`);
  }
  const f = ctx.db
    .prepare(`SELECT SUM(CASE WHEN exit_code IS NOT NULL AND exit_code <> 0 THEN 1 ELSE 0 END) AS failed, SUM(CASE WHEN exit_code IS NOT NULL THEN 1 ELSE 0 END) AS known FROM terminal_commands WHERE ${w.sql}`)
    .get(...w.args) as { failed: number | null; known: number | null };
  const known = f.known ?? 0;
  const rate = known === 0 ? 0 : (f.failed ?? 0) / known;
  if (known >= 20 && rate >= 0.3) signal('high_failure_rate', rate * 10, `failure rate ${Math.round(rate * 100)}% over ${known} commands`);
  const risky = ctx.db
    .prepare(`SELECT SUM(CASE WHEN risk_level = 'high' THEN 1 ELSE 0 END) AS high, SUM(CASE WHEN risk_level = 'critical' THEN 1 ELSE 0 END) AS critical FROM terminal_commands WHERE ${w.sql}`)
    .get(...w.args) as { high: number | null; critical: number | null };
  const weight = (risky.high ?? 0) + 2 * (risky.critical ?? 0);
  if (weight >= 3) signal('repeated_risky', 2 + weight / 2, `${risky.high ?? 0} high-risk and ${risky.critical ?? 0} critical commands`);
  if (baseTotal >= 20 && total >= 10) {
    const baseHours = new Set((ctx.db.prepare(`SELECT DISTINCT (ts / ${HOUR}) % 24 AS h FROM terminal_commands WHERE ${bw.sql}`).all(...bw.args) as Array<{ h: number }>).map((r) => r.h));
    const offHours = activityCounts(ctx.db, w.sql, w.args).hourly.reduce((a, n, h) => (baseHours.has(h) ? a : a + n), 0);
    if (offHours / total >= 0.25) signal('unusual_timing', 3 + (offHours / total) * 7, `${Math.round((offHours / total) * 100)}% of commands at hours without activity in the baseline`);
    const basePatterns = (ctx.db.prepare(`SELECT COUNT(DISTINCT pattern) AS n FROM terminal_commands WHERE ${bw.sql}`).get(...bw.args) as { n: number }).n;
    const rangePatterns = (ctx.db.prepare(`SELECT COUNT(DISTINCT pattern) AS n FROM terminal_commands WHERE ${w.sql}`).get(...w.args) as { n: number }).n;
    const newPatterns = (
      ctx.db
        .prepare(`SELECT COUNT(DISTINCT pattern) AS n FROM terminal_commands WHERE ${w.sql} AND pattern NOT IN (SELECT pattern FROM terminal_commands WHERE ${bw.sql})`)
        .get(...w.args, ...bw.args) as { n: number }
    ).n;
    if (basePatterns > 0 && rangePatterns >= 10 && newPatterns / rangePatterns >= 0.5) {
      signal('unusual_pattern', 3 + (newPatterns / rangePatterns) * 7, `${newPatterns} of ${rangePatterns} command shapes not seen in the baseline`);
    }
  }
  return out;
}

/** One node's answer as the requester holds it. */
export interface NodeAnswer {
  fingerprint: string;
  data: ResponseData;
}

/** The merged data of a query, with what the k-threshold suppressed. */
export interface MergedData {
  data: unknown;
  suppressed: string[];
}

/**
 * Merges the answers of the contributing nodes; buckets with fewer than `k` nodes are
 * suppressed (listed by name, never shown).
 * @example
 * merge('tool_usage', answers, 3, range)
 */
/** Why a whole aggregate is withheld: counts from fewer nodes than min_contributors (nodes that answered "no data" do not count). */
function tooFew(n: number, k: number): string {
  return `all: ${n} node${n === 1 ? '' : 's'} had counts to contribute, fewer than min_contributors (${k})`;
}

export function mergeAnswers(type: QueryType, answers: readonly NodeAnswer[], k: number, range: TimeRange): MergedData {
  const of = <T extends ResponseData['type']>(t: T) => answers.map((a) => a.data).filter((d): d is Extract<ResponseData, { type: T }> => d.type === t);
  switch (type) {
    case 'node_health':
      return { data: of('node_health').map((d) => d.value), suppressed: [] };
    case 'anomalies':
      return { data: of('anomalies').flatMap((d) => d.value).sort((a, b) => b.severity - a.severity || a.node_fingerprint.localeCompare(b.node_fingerprint)), suppressed: [] };
    case 'tool_usage': {
      const list = of('tool_usage');
      if (list.length < k) return { data: null, suppressed: [tooFew(list.length, k)] };
      // Only known category names, in a map without a prototype: a peer picks these keys.
      const by: Record<string, CategoryAggregate> = Object.create(null) as Record<string, CategoryAggregate>;
      const durSum: Record<string, number> = Object.create(null) as Record<string, number>;
      for (const d of list) {
        for (const [cat, a] of Object.entries(d.value.by_category)) {
          if (!(COMMAND_CATEGORY_VALUES as readonly string[]).includes(cat) || a.count <= 0) continue;
          const cur = by[cat] ?? { count: 0, node_count: 0, avg_duration_ms: 0 };
          cur.count += a.count;
          cur.node_count += 1;
          durSum[cat] = (durSum[cat] ?? 0) + a.avg_duration_ms * a.count;
          by[cat] = cur;
        }
      }
      const suppressed: string[] = [];
      let total = 0;
      for (const [cat, a] of Object.entries(by)) {
        if (a.node_count < k) {
          delete by[cat];
          suppressed.push(`category ${cat}: ${a.node_count} node(s)`);
          continue;
        }
        a.avg_duration_ms = a.count === 0 ? 0 : Math.round((durSum[cat] ?? 0) / a.count);
        total += a.count;
      }
      return { data: { by_category: { ...by }, total_commands: total, time_range: range }, suppressed };
    }
    case 'safety_posture': {
      const list = of('safety_posture');
      if (list.length < k) return { data: null, suppressed: [tooFew(list.length, k)] };
      const counts = { safe: 0, moderate: 0, high: 0, critical: 0 };
      const suppressed: string[] = [];
      // Per bucket: a risk level seen on fewer than k nodes would tell on those nodes.
      for (const r of RISK_LEVEL_VALUES) {
        const nodes = list.filter((d) => d.risk_counts[r] > 0).length;
        if (nodes > 0 && nodes < k) suppressed.push(`risk ${r}: ${nodes} node(s)`);
        else for (const d of list) counts[r] += d.risk_counts[r];
      }
      const total = RISK_LEVEL_VALUES.reduce((a, r) => a + counts[r], 0);
      const confirmedNodes = list.filter((d) => d.value.confirmed_risky > 0).length;
      let confirmed = 0;
      if (confirmedNodes > 0 && confirmedNodes < k) suppressed.push(`confirmed risky: ${confirmedNodes} node(s)`);
      else confirmed = list.reduce((a, d) => a + d.value.confirmed_risky, 0);
      return { data: { risk_distribution: shares(counts, total), blocked_count: 0, confirmed_risky: confirmed, coverage: 100 }, suppressed };
    }
    case 'activity_patterns': {
      const list = of('activity_patterns');
      if (list.length < k) return { data: null, suppressed: [tooFew(list.length, k)] };
      const suppressed: string[] = [];
      // Per bucket: an hour (or a day) only a node or two worked in would tell on them.
      const sumBuckets = (n: number, of: (d: (typeof list)[number]) => number[], name: string): number[] =>
        Array.from({ length: n }, (_, i) => {
          const nodes = list.filter((d) => (of(d)[i] ?? 0) > 0).length;
          if (nodes > 0 && nodes < k) {
            suppressed.push(`${name} ${i}: ${nodes} node(s)`);
            return 0;
          }
          return list.reduce((a, d) => a + (of(d)[i] ?? 0), 0);
        });
      const hourly = sumBuckets(24, (d) => d.hourly_counts, 'hour');
      const daily = sumBuckets(7, (d) => d.daily_counts, 'day');
      return { data: patternsOf(hourly, daily, list.length), suppressed };
    }
  }
}
