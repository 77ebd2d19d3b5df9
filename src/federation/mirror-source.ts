/**
 * The source side of mirroring: answers `mirror.pull` with one `mirror.batch` each, from the
 * committed log (the store's read-only connection: a pull never waits for the pipeline).
 *
 * What a peer may mirror is what this node would push it by visibility, and no more: events
 * this node originated (never one it received: no re-forwarding), `public` ones, and `cluster`
 * ones when the peer is in this node's cluster; never a raw-class type; nothing for a peer the
 * sharing policy refuses (`untrusted`, or the egress check the node installs). A mount's
 * `stream` narrows it to matching types.
 *
 * Only what the pipeline passed, as push sends only what reached the publisher: an answer never
 * reaches past the embedded pipeline's consumed position (consumer `pipeline`: a row appended but
 * not consumed yet waits, and `high` says where the answer stops), and a row the pipeline did not
 * pass (trust rejected or quarantined it, a stage dropped it, a cartridge failed on it: the
 * `events_withheld` rows, written in the batch transaction that decided it) is never served.
 *
 * The handler only builds the answer (synchronously, from one read snapshot) and hands it to a
 * small per-peer send queue, so it never holds one of the peer's message slots (the mesh handles
 * 8 messages of one peer at once) while a slow link carries the batch.
 *
 * One more rule serves a restore (`answerOrigin`): a node may ask back the events IT
 * originated that this node holds, and only those (docs/recovery.md).
 */
import { PRUNE_MARK } from '../store/index.js';
import { DEFAULT_MAX_FRAME_SIZE } from '../transport/index.js';
import type { Envelope } from '../envelope/index.js';
import { isWeftError } from '../errors/index.js';
import type { KnownPeer } from '../mesh/index.js';
import { MAX_PULL_WINDOW, MIRROR_BATCH, type MirrorBatch, type MirrorEvent, type MirrorPull, parsePull, streamMatcher } from './mirror-wire.js';
import type { OrganDeps } from './ports.js';

/** The sharing policy's say on one event and peer (the publisher's check). */
export type EgressCheck = (e: Envelope, peer: KnownPeer) => boolean;

/** A restoring node asking for its own events held here: envelope ids after `after` up to `to` (inclusive; no end when absent). */
export interface OriginPull {
  /** Exclusive lower bound ('' for the first). */
  after: string;
  to?: string;
  /** Events in one answer at most. */
  max: number;
}

/** The answer to an OriginPull: events in id order, the last id looked at, whether more follow. */
export interface OriginBatch {
  events: Array<{ id: string; envelope: string }>;
  last: string | null;
  more: boolean;
  error?: { code: string; message: string };
}

export interface MirrorSourceInit {
  /** Bytes of envelopes one batch carries at most (default: the frame limit less 64 KiB for the rest of the frame). */
  maxBatchBytes?: number;
  /** Positions one pull covers at most (default MAX_PULL_WINDOW). */
  maxWindow?: number;
}

/** Room in a frame for what is not envelope text: the frame header, the signature, msgpack's framing, the batch's other fields. */
const FRAME_SLACK = 64 * 1024;
/** Per event: its position and msgpack's string and map headers. */
const PER_EVENT = 32;
/** A refusal is logged and audited at most once a minute per peer and cause. */
const REFUSAL_QUIET_MS = 60_000;
/** Answers waiting to be sent to one peer at most (two mounts' worth of MAX_IN_FLIGHT); a pull past it is dropped (the mirror asks again). */
const MAX_QUEUED_PER_PEER = 8;
/** Consumer whose position is the embedded pipeline's (the processor's default). */
const PIPELINE_CONSUMER = 'pipeline';

/** Answers waiting to be sent to one peer, in order; one send at a time. */
interface SendQueue {
  items: MirrorBatch[];
  bytes: number;
  sending: boolean;
}

const batchBytes = (b: MirrorBatch): number => b.events.reduce((n, e) => n + e.envelope.length + PER_EVENT, 0);

interface Row {
  seq: number;
  event: string;
  body: string;
}

export class MirrorSource {
  private readonly maxBytes: number;
  private readonly maxWindow: number;
  private egress: EgressCheck | undefined;
  private stmts:
    | {
        high: { get(): unknown };
        mark: { get(k: string): unknown };
        consumed: { get(k: string): unknown };
        unconsumed: { get(...a: unknown[]): unknown };
        cluster: { iterate(...a: unknown[]): Iterable<unknown> };
        pub: { iterate(...a: unknown[]): Iterable<unknown> };
      }
    | undefined;
  private read: ((pull: MirrorPull, peer: KnownPeer) => MirrorBatch) | undefined;
  private originStmts: { open: { all(...a: unknown[]): unknown[] }; bounded: { all(...a: unknown[]): unknown[] } } | undefined;
  private readonly raw = new Map<string, boolean>();
  private readonly refused = new Map<string, number>();
  private unsub: (() => void) | undefined;
  private readonly sendQueues = new Map<string, SendQueue>();
  /**
   * Pulls answered, events sent, pulls refused, answers cut to fit a frame, pulls dropped
   * because the peer's send queue was full (`busy`) or held the same range already (`repeats`).
   */
  readonly counters = { pulls: 0, events: 0, refused: 0, cut: 0, busy: 0, repeats: 0 };

  constructor(
    init: MirrorSourceInit,
    private readonly deps: OrganDeps,
  ) {
    const frame = Math.min(deps.mesh.limits.maxFrameBytes, DEFAULT_MAX_FRAME_SIZE);
    this.maxBytes = init.maxBatchBytes ?? Math.max(64 * 1024, frame - FRAME_SLACK);
    this.maxWindow = init.maxWindow ?? MAX_PULL_WINDOW;
  }

  /** Installs the sharing policy's egress check (the node's privacy layer), asked per event. */
  setEgress(check: EgressCheck | undefined): void {
    this.egress = check;
  }

  /**
   * Registers the `mirror.pull` handler. Idempotent. The handler returns at once: the answer is
   * built synchronously and queued for sending (bounded per peer; past the bound, or when the
   * same range is queued already, the pull is dropped and the mirror asks again after its timeout).
   */
  serve(): void {
    if (this.unsub) return;
    this.unsub = this.deps.mesh.onMessage('mirror.pull', (m) => {
      let q = this.sendQueues.get(m.computer);
      if (!q) {
        q = { items: [], bytes: 0, sending: false };
        this.sendQueues.set(m.computer, q);
      }
      const d = (m.data ?? {}) as Record<string, unknown>;
      // A repeat of a pull whose answer is still waiting here: that answer will do (the mirror takes an answer to any of its attempts).
      if (q.items.some((b) => b.mount === d.mount && b.from === d.from && !b.error)) {
        this.counters.repeats++;
        return;
      }
      if (q.items.length >= MAX_QUEUED_PER_PEER || q.bytes >= 4 * this.maxBytes) {
        this.counters.busy++;
        this.deps.logger.debug({ peer: m.computer, queued: q.items.length }, 'mirror pull dropped: answers to this peer are queued already');
        return;
      }
      const batch = this.answer(m.computer, m.nodeId, m.data);
      q.items.push(batch);
      q.bytes += batchBytes(batch);
      if (!q.sending) void this.drain(m.computer, q);
    });
  }

  /** Answers waiting to be sent, per peer (for status and tests). */
  queued(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [peer, q] of this.sendQueues) if (q.items.length > 0) out[peer] = q.items.length;
    return out;
  }

  close(): void {
    this.unsub?.();
    this.unsub = undefined;
    for (const q of this.sendQueues.values()) {
      q.items = [];
      q.bytes = 0;
    }
    this.sendQueues.clear();
  }

  /** Sends one peer's queued answers in order, one at a time; a failure is the mirror's to repeat. */
  private async drain(computer: string, q: SendQueue): Promise<void> {
    q.sending = true;
    try {
      for (let batch = q.items[0]; batch !== undefined && this.unsub !== undefined; batch = q.items[0]) {
        try {
          // A pull can come in over the peer's link before ours to it is up (TLS: one per direction).
          await this.deps.mesh.provider.waitForPeer(computer, { timeoutMs: 5000 });
          await this.deps.mesh.sendMessage(computer, MIRROR_BATCH, batch, { timeoutMs: 10_000 });
        } catch (err) {
          // The mirror asks again after its timeout.
          this.deps.logger.debug({ peer: computer, err: (err as Error).message }, 'mirror batch not sent');
        }
        if (q.items[0] === batch) {
          q.items.shift();
          q.bytes = Math.max(0, q.bytes - batchBytes(batch));
        }
      }
    } finally {
      q.sending = false;
      if (q.items.length === 0 && this.sendQueues.get(computer) === q) this.sendQueues.delete(computer);
    }
  }

  /**
   * The answer to one pull from `computer` (verified as `nodeId`): the batch, or a refusal
   * (an unknown or untrusted peer, a malformed pull) as a batch with `error` and nothing covered.
   */
  answer(computer: string, nodeId: string, data: unknown): MirrorBatch {
    const d = (data ?? {}) as Record<string, unknown>;
    const echo = { mount: typeof d.mount === 'string' ? d.mount.slice(0, 300) : '', req: typeof d.req === 'string' ? d.req.slice(0, 100) : '' };
    let pull: MirrorPull;
    try {
      pull = parsePull(data);
    } catch (err) {
      return this.refuse(computer, echo, 'WEFT_VALIDATION', isWeftError(err) ? err.message : String(err), d);
    }
    const peer = this.deps.peers.byName(computer);
    if (!peer || peer.nodeId !== nodeId || peer.wire === 'teleclaude') {
      return this.refuse(computer, pull, 'WEFT_FORBIDDEN', `'${computer}' is not a known Weft peer of ${this.deps.node.self.computer}: it may not mirror it`, d);
    }
    if (peer.trustLevel === 'untrusted') {
      return this.refuse(computer, pull, 'WEFT_FORBIDDEN', `${this.deps.node.self.computer} does not share with '${computer}' (trust level untrusted)`, d);
    }
    this.counters.pulls++;
    const batch = this.reader()(pull, peer);
    this.counters.events += batch.events.length;
    return batch;
  }

  /**
   * The restore serving rule: a node that lost its data asks back the events it originated
   * that this node holds (rows whose `origin` is the asker's verified node id, cluster or
   * public: whatever visibility brought them here), in envelope id order. Served only to a known Weft peer whose
   * pinned key is that origin, so no node gets another's events this way; nothing this node
   * originated itself is ever in such an answer.
   */
  answerOrigin(computer: string, nodeId: string, pull: OriginPull): OriginBatch {
    const peer = this.deps.peers.byName(computer);
    if (!peer || peer.nodeId !== nodeId || peer.wire === 'teleclaude' || nodeId === this.deps.node.self.nodeId) {
      const message = `'${computer}' is not a known Weft peer of ${this.deps.node.self.computer}: it may not restore from it`;
      this.refuse(computer, { mount: 'restore', req: '' }, 'WEFT_FORBIDDEN', message, {});
      return { events: [], last: null, more: false, error: { code: 'WEFT_FORBIDDEN', message } };
    }
    const db = this.deps.node.ns.store.reader;
    this.originStmts ??= {
      // Never a local row: the origin's local events never left it, so such a row is this
      // node's own record naming it (a message it sent, kept by versions before 2026-12-07).
      open: db.prepare("SELECT id, body FROM events WHERE id > ? AND json_extract(body, '$.origin') = ? AND json_extract(body, '$.visibility') != 'local' ORDER BY id LIMIT ?"),
      bounded: db.prepare("SELECT id, body FROM events WHERE id > ? AND id <= ? AND json_extract(body, '$.origin') = ? AND json_extract(body, '$.visibility') != 'local' ORDER BY id LIMIT ?"),
    };
    const max = Math.max(1, Math.min(pull.max, 10_000));
    const rows = (pull.to === undefined ? this.originStmts.open.all(pull.after, nodeId, max + 1) : this.originStmts.bounded.all(pull.after, pull.to, nodeId, max + 1)) as Array<{ id: string; body: string }>;
    const out: OriginBatch = { events: [], last: null, more: rows.length > max };
    let bytes = 0;
    for (const r of rows.slice(0, max)) {
      const size = Buffer.byteLength(r.body) + PER_EVENT;
      if (out.events.length > 0 && bytes + size > this.maxBytes) {
        out.more = true;
        this.counters.cut++;
        break;
      }
      bytes += size;
      out.events.push({ id: r.id, envelope: r.body });
      out.last = r.id;
    }
    this.counters.pulls++;
    this.counters.events += out.events.length;
    return out;
  }

  private refuse(computer: string, pull: { mount: string; req: string; from?: number }, code: string, message: string, d: Record<string, unknown>): MirrorBatch {
    this.counters.refused++;
    const key = `${computer}|${code}`;
    const now = this.deps.clock.now();
    const last = this.refused.get(key);
    if (last === undefined || now - last >= REFUSAL_QUIET_MS) {
      if (this.refused.size > 10_000) this.refused.clear();
      this.refused.set(key, now);
      this.deps.logger.warn({ peer: computer, code, reason: message, mount: pull.mount }, 'mirror pull refused');
      void this.deps.audit.record('mirror.refused', computer, { code, reason: message, mount: pull.mount }, false).catch(() => undefined);
    }
    const from = typeof d.from === 'number' && Number.isSafeInteger(d.from) && d.from >= 0 ? d.from : 0;
    return { mount: pull.mount, req: pull.req, from, to: Math.max(0, from - 1), events: [], high: 0, prunedBelow: 0, error: { code, message } };
  }

  private isRaw(type: string): boolean {
    let r = this.raw.get(type);
    if (r === undefined) {
      r = this.deps.node.catalog.get(type)?.dataClass === 'raw';
      if (this.raw.size < 10_000) this.raw.set(type, r);
    }
    return r;
  }

  /**
   * The read, in one snapshot of the committed log: newest position, prune mark, the pipeline's
   * position and rows agree.
   */
  private reader(): (pull: MirrorPull, peer: KnownPeer) => MirrorBatch {
    if (this.read) return this.read;
    const db = this.deps.node.ns.store.reader;
    // Originated here: appended by the bus (direct = 0), applied at emit (3) or restored from peers (2), never stamped
    // by a hop, not another computer's; passed by the pipeline (not withheld).
    const base = `SELECT seq, event, body FROM events
      WHERE seq >= ? AND seq <= ? AND direct IN (0, 2, 3)
        AND COALESCE(json_extract(body, '$.hops'), 0) = 0
        AND COALESCE(json_extract(body, '$.sourceComputer'), ?) = ?
        AND seq NOT IN (SELECT seq FROM events_withheld WHERE seq >= ? AND seq <= ?)`;
    this.stmts = {
      high: db.prepare('SELECT COALESCE(MAX(seq), 0) FROM events').pluck(),
      mark: db.prepare('SELECT value FROM log_marks WHERE key = ?').pluck(),
      consumed: db.prepare('SELECT position FROM consumer_offsets WHERE name = ?').pluck(),
      // The first row of the bus the pipeline has not consumed, in a range (bounded by the pull's window).
      unconsumed: db.prepare('SELECT seq FROM events WHERE seq >= ? AND seq <= ? AND direct = 0 ORDER BY seq LIMIT 1').pluck(),
      cluster: db.prepare(`${base} AND json_extract(body, '$.visibility') IN ('cluster', 'public') ORDER BY seq`),
      pub: db.prepare(`${base} AND json_extract(body, '$.visibility') = 'public' ORDER BY seq`),
    };
    const s = this.stmts;
    const self = this.deps.node.self;
    const matchers = new Map<string, (t: string) => boolean>();
    this.read = db.transaction((pull: MirrorPull, peer: KnownPeer): MirrorBatch => {
      let high = s.high.get() as number;
      const prunedBelow = (s.mark.get(PRUNE_MARK) as number | undefined) ?? 1;
      let last = Math.min(pull.to, high, pull.from + this.maxWindow - 1);
      // The embedded bus's position is a log position: rows of the bus (direct = 0) past it are
      // not processed yet. Over Redis (a stream id) every logged row was processed as it was
      // written. No position yet: nothing was consumed.
      const consumed = s.consumed.get(PIPELINE_CONSUMER) as string | undefined;
      const pos = consumed === undefined ? 0 : /^\d+$/.test(consumed) ? Number(consumed) : Number.POSITIVE_INFINITY;
      if (last >= pull.from && pos < last) {
        const waiting = s.unconsumed.get(Math.max(pull.from, pos + 1, prunedBelow), last) as number | undefined;
        // The answer stops before it, and says so as the newest position: the mirror polls again after a heartbeat.
        if (waiting !== undefined) high = last = waiting - 1;
      }
      const out: MirrorBatch = { mount: pull.mount, req: pull.req, from: pull.from, to: last < pull.from ? pull.from - 1 : last, events: [], high, prunedBelow };
      if (last < pull.from) return out;
      const sameCluster = self.cluster !== undefined && peer.cluster === self.cluster;
      let match = matchers.get(pull.stream ?? '*');
      if (!match) {
        match = streamMatcher(pull.stream);
        if (matchers.size < 1000) matchers.set(pull.stream ?? '*', match);
      }
      const events: MirrorEvent[] = [];
      let bytes = 0;
      const first = Math.max(pull.from, prunedBelow);
      const rows = (sameCluster ? s.cluster : s.pub).iterate(first, last, self.computer, self.computer, first, last) as Iterable<Row>;
      for (const r of rows) {
        if (this.isRaw(r.event) || !match(r.event)) continue;
        if (this.egress && !this.egress(JSON.parse(r.body) as Envelope, peer)) continue;
        const size = Buffer.byteLength(r.body) + PER_EVENT;
        if (events.length > 0 && bytes + size > this.maxBytes) {
          // Cut short at a row boundary: everything before this row was looked at.
          out.to = r.seq - 1;
          this.counters.cut++;
          break;
        }
        bytes += size;
        events.push({ seq: r.seq, envelope: r.body });
      }
      out.events = events;
      return out;
    });
    return this.read;
  }
}
