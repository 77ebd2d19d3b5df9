/**
 * How copies of a node's events are compared: every event has a content hash, and a run of
 * events (in envelope id order) has a digest. The origin and each peer compute them over what
 * they hold, so a peer's copy of a range matches the origin's when both digests are equal.
 *
 * Content hash: SHA-256 of the envelope's canonical JSON without the fields a copy may differ
 * in: provenance stamped on the way (`origin`, `sourceComputer`, `hops`) and what the origin's
 * pipeline adds before it sends (`flags`, `context`; a producer can set neither).
 *
 * Range digest: SHA-256 over `id \0 hash` of each event in id order (byte order, as SQLite
 * sorts TEXT), cut to 16 bytes (32 hex digits). Ranges are blocks of `blockEvents` events of
 * the origin, bounded by the first and last id, so a peer that holds part of a node's history
 * can say which blocks it holds whole.
 */
import { createHash, type Hash } from 'node:crypto';
import { canonicalJson } from '../util/index.js';

/** Envelope fields left out of the content hash. */
export const NOT_CONTENT: readonly string[] = ['origin', 'sourceComputer', 'hops', 'flags', 'context'];

/** Ranges one beacon lists at most: a bigger log gets bigger blocks. */
export const MAX_RANGES = 200;

/**
 * The content hash of an envelope (32 bytes).
 * @example
 * contentHash({ ...env, hops: 1 }).equals(contentHash(env)); // true
 */
export function contentHash(env: Record<string, unknown>): Buffer {
  const c: Record<string, unknown> = {};
  for (const k of Object.keys(env)) if (!NOT_CONTENT.includes(k)) c[k] = env[k];
  return createHash('sha256').update(canonicalJson(c)).digest();
}

/** Bytes gathered before they go to the hash in one call (one call per event cost ~6 native calls each). */
const RUN_BUFFER = 8 * 1024;

/**
 * A running digest over events added in id order: sha256 of `id \0 hash` for each. The bytes
 * are gathered and hashed in large pieces (the same stream, so the same digest).
 */
export class RunDigest {
  private readonly h: Hash = createHash('sha256');
  private buf = Buffer.allocUnsafe(RUN_BUFFER);
  private at = 0;
  count = 0;

  add(id: string, hash: Uint8Array): void {
    const need = id.length * 3 + 1 + hash.length;
    if (this.at + need > this.buf.length) {
      this.flush();
      if (need > this.buf.length) this.buf = Buffer.allocUnsafe(need);
    }
    this.at += this.buf.write(id, this.at, 'utf8');
    this.buf[this.at++] = 0;
    this.buf.set(hash, this.at);
    this.at += hash.length;
    this.count++;
  }

  /** 32 hex digits; the digest of nothing is the digest of the empty string. */
  hex(): string {
    this.flush();
    return this.h.digest('hex').slice(0, 32);
  }

  private flush(): void {
    if (this.at === 0) return;
    this.h.update(this.buf.subarray(0, this.at));
    this.at = 0;
  }
}

/** One block of a node's events, as a beacon lists it. */
export interface DigestRange {
  /** First and last envelope id of the block (inclusive). */
  from: string;
  to: string;
  count: number;
  digest: string;
  /** The lowest and highest log position of the block's events on the origin. */
  lowSeq: number;
  highSeq: number;
}

/** Events per range for `total` events: at least `blockEvents`, grown so there are at most MAX_RANGES ranges. */
export function blockSizeFor(total: number, blockEvents: number): number {
  const need = Math.ceil(total / MAX_RANGES);
  if (need <= blockEvents) return blockEvents;
  return Math.ceil(need / blockEvents) * blockEvents;
}

/**
 * Cuts a node's events (given in id order) into ranges of `block` events, and the digest of
 * them all.
 * @example
 * const { ranges, digest } = buildRanges(index.rows(nodeId), 10_000);
 */
export function buildRanges(rows: Iterable<{ id: string; hash: Uint8Array; seq: number }>, block: number): { ranges: DigestRange[]; count: number; digest: string } {
  const b = new RangeBuilder(block);
  for (const r of rows) b.add(r);
  return b.finish();
}

/** `buildRanges` one event at a time (for work done in slices). */
export class RangeBuilder {
  private readonly ranges: DigestRange[] = [];
  private readonly all = new RunDigest();
  private cur: { d: RunDigest; from: string; to: string; low: number; high: number } | undefined;

  constructor(private readonly block: number) {}

  add(r: { id: string; hash: Uint8Array; seq: number }): void {
    this.all.add(r.id, r.hash);
    this.cur ??= { d: new RunDigest(), from: r.id, to: r.id, low: r.seq, high: r.seq };
    const cur = this.cur;
    cur.d.add(r.id, r.hash);
    cur.to = r.id;
    if (r.seq < cur.low) cur.low = r.seq;
    if (r.seq > cur.high) cur.high = r.seq;
    if (cur.d.count >= this.block) this.close();
  }

  finish(): { ranges: DigestRange[]; count: number; digest: string } {
    this.close();
    return { ranges: this.ranges, count: this.all.count, digest: this.all.hex() };
  }

  private close(): void {
    const cur = this.cur;
    if (!cur) return;
    this.ranges.push({ from: cur.from, to: cur.to, count: cur.d.count, digest: cur.d.hex(), lowSeq: cur.low, highSeq: cur.high });
    this.cur = undefined;
  }
}

/** What a holder has of a node's events over the node's ranges. */
export interface Holding {
  /** Per range of the beacon, in its order: the events held in it and their digest. */
  ranges: Array<{ count: number; digest: string }>;
  /** Events held after the last range (newer than the beacon). */
  tail: number;
  /** Events held before the first range (the node no longer has them, e.g. pruned). */
  before: number;
  /** Every event held, and their digest. */
  count: number;
  digest: string;
}

/**
 * Digests of the events a holder has (given in id order) over another node's ranges.
 * @example
 * const h = holdingOver(index.rows(origin), beacon.events.ranges);
 * const whole = h.ranges.map((x, i) => x.digest === beacon.events.ranges[i].digest);
 */
export function holdingOver(rows: Iterable<{ id: string; hash: Uint8Array }>, ranges: ReadonlyArray<{ from: string; to: string }>): Holding {
  const b = new HoldingBuilder(ranges);
  for (const r of rows) b.add(r);
  return b.finish();
}

/** `holdingOver` one event at a time (for work done in slices). */
export class HoldingBuilder {
  private readonly ds: RunDigest[];
  private readonly all = new RunDigest();
  private tail = 0;
  private before = 0;
  private i = 0;

  constructor(private readonly ranges: ReadonlyArray<{ from: string; to: string }>) {
    this.ds = ranges.map(() => new RunDigest());
  }

  add(r: { id: string; hash: Uint8Array }): void {
    const { ranges } = this;
    this.all.add(r.id, r.hash);
    while (this.i < ranges.length && r.id > (ranges[this.i] as { to: string }).to) this.i++;
    if (this.i >= ranges.length) {
      this.tail++;
      return;
    }
    if (r.id < (ranges[this.i] as { from: string }).from) {
      // Between two ranges (or before the first): the origin does not have it in any range.
      this.before++;
      return;
    }
    (this.ds[this.i] as RunDigest).add(r.id, r.hash);
  }

  finish(): Holding {
    return { ranges: this.ds.map((d) => ({ count: d.count, digest: d.hex() })), tail: this.tail, before: this.before, count: this.all.count, digest: this.all.hex() };
  }
}
