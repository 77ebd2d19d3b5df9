/**
 * The mirror's two message kinds, carried as signed, replay-protected `message` frames
 * (`MeshService.sendMessage`), and the checks each side makes on what it is sent.
 *
 *   mirror → source  `mirror.pull`  {mount, req, from, to, stream?}
 *   source → mirror  `mirror.batch` {mount, req, from, to, events: [{seq, envelope}], high, prunedBelow, error?}
 *
 * `from`..`to` are positions (seq) in the source's event log. The source answers one pull
 * with one batch: the eligible events in the range, cut short to fit a frame (then `to` is the
 * last position it covered, which the mirror asks again after), and never past its newest
 * event (`high`). `envelope` is the event's JSON as the source's log holds it (sent as a
 * string: the source never parses what it only forwards). `prunedBelow` is the lowest
 * position the source still keeps: a mirror whose next position is below it has a gap.
 */
import { WeftError } from '../errors/index.js';

export const MIRROR_PULL = 'mirror.pull';
export const MIRROR_BATCH = 'mirror.batch';

/** Positions one pull may cover at most, whatever a mirror asks (the config's own maximum). */
export const MAX_PULL_WINDOW = 100_000;

/** What a mirror asks for. */
export interface MirrorPull {
  /** The mirror's mount key (`peer/mirror/name`), echoed back. */
  mount: string;
  /** Request id, echoed back: an answer to a request given up on is ignored. */
  req: string;
  /** First source position wanted. */
  from: number;
  /** Last source position wanted (inclusive). */
  to: number;
  /** Only event types matching this pattern (`deploy.*`); default every eligible type. */
  stream?: string;
}

/** One event of a batch: its source position and its JSON. */
export interface MirrorEvent {
  seq: number;
  envelope: string;
}

/** A source's answer to one pull. */
export interface MirrorBatch {
  mount: string;
  req: string;
  from: number;
  /** Last position covered: `from - 1` when the source has nothing at or after `from`. */
  to: number;
  events: MirrorEvent[];
  /** The source's newest position. */
  high: number;
  /** The lowest position the source still keeps (1 when it never pruned). */
  prunedBelow: number;
  /** The pull was refused; nothing is covered. */
  error?: { code: string; message: string };
}

const STREAM = /^[A-Za-z0-9._*-]{1,200}$/;
const REQ = /^[A-Za-z0-9._:-]{1,100}$/;

const isPos = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** A `stream` option: an event type, or a pattern with `*` (`deploy.*`, `*.failed`). */
export function checkStreamPattern(p: unknown): string | undefined {
  if (p === undefined) return undefined;
  if (typeof p !== 'string' || !STREAM.test(p)) {
    throw new WeftError('WEFT_VALIDATION', `mirror option stream must be an event type or a pattern with '*' (letters, digits, '.', '_', '-'), got ${JSON.stringify(p)}`);
  }
  return p;
}

/** A matcher for a stream pattern (undefined: everything). */
export function streamMatcher(p: string | undefined): (type: string) => boolean {
  if (p === undefined || p === '*') return () => true;
  if (!p.includes('*')) return (t) => t === p;
  const re = new RegExp(`^${p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\-]/g, '\\$&')).join('.*')}$`);
  return (t) => re.test(t);
}

/** Checks a pull's shape; the message names the field. */
export function parsePull(data: unknown): MirrorPull {
  const d = (data ?? {}) as Record<string, unknown>;
  if (typeof d.mount !== 'string' || d.mount.length === 0 || d.mount.length > 300) throw new WeftError('WEFT_VALIDATION', "mirror.pull: field 'mount' must be a mount key");
  if (typeof d.req !== 'string' || !REQ.test(d.req)) throw new WeftError('WEFT_VALIDATION', "mirror.pull: field 'req' must be a request id");
  if (!isPos(d.from) || d.from < 1) throw new WeftError('WEFT_VALIDATION', "mirror.pull: field 'from' must be a position of at least 1");
  if (!isPos(d.to) || d.to < d.from) throw new WeftError('WEFT_VALIDATION', "mirror.pull: field 'to' must be a position at or after 'from'");
  const stream = checkStreamPattern(d.stream);
  return { mount: d.mount, req: d.req, from: d.from, to: d.to, ...(stream !== undefined ? { stream } : {}) };
}

/**
 * Checks a batch's shape and that its positions agree (the events' envelopes are checked one by
 * one when applied): an answer that covers positions ends at or before the source's newest
 * (`to <= high`), and the source cannot keep less than nothing (`prunedBelow <= high + 1`), so
 * a bogus `prunedBelow` can never move a mirror's token past what the source has.
 */
export function parseBatch(data: unknown): MirrorBatch {
  const d = (data ?? {}) as Record<string, unknown>;
  const bad = (field: string) => new WeftError('WEFT_VALIDATION', `mirror.batch: field '${field}' is missing or malformed`);
  if (typeof d.mount !== 'string') throw bad('mount');
  if (typeof d.req !== 'string') throw bad('req');
  if (!isPos(d.from)) throw bad('from');
  if (!isPos(d.to) || d.to < d.from - 1) throw bad('to');
  if (!isPos(d.high)) throw bad('high');
  if (!isPos(d.prunedBelow)) throw bad('prunedBelow');
  if (!Array.isArray(d.events)) throw bad('events');
  if (d.prunedBelow > d.high + 1) throw new WeftError('WEFT_VALIDATION', `mirror.batch: 'prunedBelow' ${d.prunedBelow} is past the source's newest position ${d.high} + 1`);
  // An answer that covers nothing says to = from - 1 (a mirror ahead of a source that lost its log sees that too).
  if (d.to >= d.from && d.to > d.high) throw new WeftError('WEFT_VALIDATION', `mirror.batch: 'to' ${d.to} is past the source's newest position ${d.high}`);
  let last = d.from - 1;
  for (const e of d.events as unknown[]) {
    const ev = e as Record<string, unknown> | null;
    if (!ev || !isPos(ev.seq) || typeof ev.envelope !== 'string') throw bad('events');
    // Strictly ascending and inside the range the batch says it covers.
    if (ev.seq <= last || ev.seq > d.to) throw bad('events');
    last = ev.seq;
  }
  const out: MirrorBatch = { mount: d.mount, req: d.req, from: d.from, to: d.to, events: d.events as MirrorEvent[], high: d.high, prunedBelow: d.prunedBelow };
  if (d.error !== undefined) {
    const e = d.error as Record<string, unknown> | null;
    out.error = { code: String(e?.code ?? 'unknown').slice(0, 100), message: String(e?.message ?? '').slice(0, 2000) };
  }
  return out;
}
