/**
 * The recovery organ's message kinds, carried as signed, replay-protected `message` frames
 * (`MeshService.sendMessage`), and the checks each side makes on what it is sent.
 *
 *   node → peer   `recovery.query`   {req}
 *   peer → node   `recovery.info`    {req, beacon, held, ranges, tail, seqHighWater, mirrorToken, logHigh}
 *   peer → node   `recovery.holding` {beacon, ranges: [{from, to, count, digest}], tail, count, digest}
 *   node → peer   `recovery.pull`    {req, after, to?, max}
 *   peer → node   `recovery.batch`   {req, events: [{id, envelope}], last, more, error?}
 *
 * `recovery.query` asks a peer what it holds of the asking node (its latest beacon of it as the
 * envelope's JSON, digests over that beacon's ranges, the highest frame sequence it accepted
 * from it, its mirror mounts' tokens of it). `recovery.holding` answers a beacon unasked: the
 * node learns which peers hold which ranges. `recovery.pull` asks back the node's own events
 * by envelope id (the restore serving rule of the mirror source).
 */
import { WeftError } from '../errors/index.js';

export const RECOVERY_QUERY = 'recovery.query';
export const RECOVERY_INFO = 'recovery.info';
export const RECOVERY_HOLDING = 'recovery.holding';
export const RECOVERY_PULL = 'recovery.pull';
export const RECOVERY_BATCH = 'recovery.batch';

/** Events one pull answer carries at most. */
export const MAX_PULL_EVENTS = 4096;

export interface RecoveryQuery {
  req: string;
}

export interface RecoveryInfo {
  req: string;
  /** The asker's latest beacon held here: its envelope's JSON, or null. */
  beacon: string | null;
  /** Events of the asker held here. */
  held: { count: number; digest: string };
  /** Over the beacon's ranges (null without a beacon). */
  ranges: Array<{ count: number; digest: string }> | null;
  /** Events held newer than the beacon's last range. */
  tail: number;
  /** The highest frame sequence accepted from the asker (null: none). */
  seqHighWater: number | null;
  /** The highest resume token of this node's mirror mounts of the asker (0: none). */
  mirrorToken: number;
  logHigh: number;
}

export interface RecoveryHolding {
  /** The beacon answered (its envelope id). */
  beacon: string;
  ranges: Array<{ from: string; to: string; count: number; digest: string }>;
  tail: number;
  count: number;
  digest: string;
}

export interface RecoveryPull {
  req: string;
  after: string;
  to?: string;
  max: number;
}

export interface RecoveryBatch {
  req: string;
  events: Array<{ id: string; envelope: string }>;
  last: string | null;
  more: boolean;
  error?: { code: string; message: string };
}

const REQ = /^[A-Za-z0-9._:-]{1,100}$/;
const ID = /^.{0,64}$/s;
const DIGEST = /^[0-9a-f]{32}$/;
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const bad = (kind: string, field: string) => new WeftError('WEFT_VALIDATION', `${kind}: field '${field}' is missing or malformed`);

export function parseQuery(data: unknown): RecoveryQuery {
  const d = (data ?? {}) as Record<string, unknown>;
  if (typeof d.req !== 'string' || !REQ.test(d.req)) throw bad(RECOVERY_QUERY, 'req');
  return { req: d.req };
}

function parseDigests(kind: string, v: unknown, max: number): Array<{ count: number; digest: string }> {
  if (!Array.isArray(v) || v.length > max) throw bad(kind, 'ranges');
  return v.map((x) => {
    const r = x as Record<string, unknown> | null;
    if (!r || !isCount(r.count) || typeof r.digest !== 'string' || !DIGEST.test(r.digest)) throw bad(kind, 'ranges');
    return { count: r.count, digest: r.digest };
  });
}

export function parseInfo(data: unknown): RecoveryInfo {
  const d = (data ?? {}) as Record<string, unknown>;
  const k = RECOVERY_INFO;
  if (typeof d.req !== 'string' || !REQ.test(d.req)) throw bad(k, 'req');
  if (d.beacon !== null && (typeof d.beacon !== 'string' || d.beacon.length > 1_000_000)) throw bad(k, 'beacon');
  const held = d.held as Record<string, unknown> | null;
  if (!held || !isCount(held.count) || typeof held.digest !== 'string' || !DIGEST.test(held.digest)) throw bad(k, 'held');
  const ranges = d.ranges === null ? null : parseDigests(k, d.ranges, 512);
  if (!isCount(d.tail)) throw bad(k, 'tail');
  if (d.seqHighWater !== null && !isCount(d.seqHighWater)) throw bad(k, 'seqHighWater');
  if (!isCount(d.mirrorToken)) throw bad(k, 'mirrorToken');
  if (!isCount(d.logHigh)) throw bad(k, 'logHigh');
  return {
    req: d.req,
    beacon: d.beacon as string | null,
    held: { count: held.count, digest: held.digest },
    ranges,
    tail: d.tail,
    seqHighWater: d.seqHighWater as number | null,
    mirrorToken: d.mirrorToken,
    logHigh: d.logHigh,
  };
}

export function parseHolding(data: unknown): RecoveryHolding {
  const d = (data ?? {}) as Record<string, unknown>;
  const k = RECOVERY_HOLDING;
  if (typeof d.beacon !== 'string' || d.beacon.length === 0 || d.beacon.length > 64) throw bad(k, 'beacon');
  if (!Array.isArray(d.ranges) || d.ranges.length > 512) throw bad(k, 'ranges');
  const ranges = (d.ranges as unknown[]).map((x) => {
    const r = x as Record<string, unknown> | null;
    if (!r || typeof r.from !== 'string' || typeof r.to !== 'string' || !ID.test(r.from) || !ID.test(r.to) || !isCount(r.count) || typeof r.digest !== 'string' || !DIGEST.test(r.digest)) throw bad(k, 'ranges');
    return { from: r.from, to: r.to, count: r.count, digest: r.digest };
  });
  if (!isCount(d.tail)) throw bad(k, 'tail');
  if (!isCount(d.count)) throw bad(k, 'count');
  if (typeof d.digest !== 'string' || !DIGEST.test(d.digest)) throw bad(k, 'digest');
  return { beacon: d.beacon, ranges, tail: d.tail, count: d.count, digest: d.digest };
}

export function parsePull(data: unknown): RecoveryPull {
  const d = (data ?? {}) as Record<string, unknown>;
  const k = RECOVERY_PULL;
  if (typeof d.req !== 'string' || !REQ.test(d.req)) throw bad(k, 'req');
  if (typeof d.after !== 'string' || !ID.test(d.after)) throw bad(k, 'after');
  if (d.to !== undefined && (typeof d.to !== 'string' || !ID.test(d.to) || d.to.length === 0)) throw bad(k, 'to');
  if (!isCount(d.max) || d.max < 1) throw bad(k, 'max');
  return { req: d.req, after: d.after, ...(d.to !== undefined ? { to: d.to as string } : {}), max: Math.min(d.max, MAX_PULL_EVENTS) };
}

export function parseBatch(data: unknown): RecoveryBatch {
  const d = (data ?? {}) as Record<string, unknown>;
  const k = RECOVERY_BATCH;
  if (typeof d.req !== 'string' || !REQ.test(d.req)) throw bad(k, 'req');
  if (!Array.isArray(d.events) || d.events.length > MAX_PULL_EVENTS) throw bad(k, 'events');
  let prev = '';
  for (const e of d.events as unknown[]) {
    const ev = e as Record<string, unknown> | null;
    if (!ev || typeof ev.id !== 'string' || typeof ev.envelope !== 'string' || ev.id <= prev) throw bad(k, 'events');
    prev = ev.id;
  }
  if (d.last !== null && typeof d.last !== 'string') throw bad(k, 'last');
  if (typeof d.more !== 'boolean') throw bad(k, 'more');
  const out: RecoveryBatch = { req: d.req, events: d.events as RecoveryBatch['events'], last: d.last as string | null, more: d.more };
  if (d.error !== undefined) {
    const e = d.error as Record<string, unknown> | null;
    out.error = { code: String(e?.code ?? 'unknown').slice(0, 100), message: String(e?.message ?? '').slice(0, 2000) };
  }
  return out;
}
