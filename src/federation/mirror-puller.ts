/**
 * The mirror side of one mount: pulls ranges of the source's log after the mount's resume
 * token, up to `max_in_flight` requests ahead, and applies the answers strictly in order, each
 * in one pipeline batch whose transaction also moves the token (events and token commit
 * together: a kill -9 loses neither and repeats nothing). What it applies is stamped like mesh
 * ingress (origin = the source's verified node id, sourceComputer, hops + 1, the ingress fact,
 * so it is never re-published); the envelope id keeps an event that also came by visibility
 * push from being applied twice.
 *
 * Flow: the requests always cover [token + 1, nextFrom - 1] without holes. An answer cut short
 * (the frame was full) leaves its request in place for the rest. When the source has nothing
 * more, the queue empties and the mirror polls once a heartbeat (`beatMs`). A send that fails
 * or a request with no answer in time is sent again after a backoff. A source that pruned past
 * the token gets a `mirror.gap` naming the missing positions, then mirroring continues after
 * them. Lag with no batch applied for two heartbeats raises `mirror.stalled` (once a stall),
 * and `mirror.resumed` when a batch is applied again.
 *
 * What the source says is checked against what this mount knows: the source's node id is
 * recorded at first contact (telemetry `source_node`) and an answer from another key (a new
 * node took over the name: the token means nothing in its log) stops the mount in state
 * `error`; a source whose newest position is below the token (its log was reset or lost) puts
 * the mount in state `error` too, raising federation.mount.failed, and is polled (backing off)
 * until it has events past the token again (a restored node numbers past its mirrors' tokens),
 * when the mount is `open` again. The stream the token was built with is recorded
 * (`token_stream`); the organ resets the token when a mount is reopened with another stream.
 */
import { randomBytes } from 'node:crypto';
import type { BusEntry } from '../bus/index.js';
import { FEDERATION_EVENTS } from '../catalog/index.js';
import { type Envelope, envelopeValidator, envelopeWith, payloadProblem } from '../envelope/index.js';
import { INGRESS_FACT, type IngressFact } from '../pipeline/index.js';
import { after } from '../util/index.js';
import type { MountRecord, MountTelemetry } from './mounts.js';
import { MIRROR_PULL, type MirrorBatch, type MirrorPull } from './mirror-wire.js';
import type { OrganDeps } from './ports.js';

export interface PullerInit {
  beatMs: number;
  window: number;
  inFlight: number;
  stream?: string;
  /**
   * A request with no answer after this long is sent again, ms (default max(2 s, 4 beats));
   * each further attempt at the same range waits twice as long, up to 30 s. An answer to any
   * attempt is taken, so a slow link is not flooded with repeats.
   */
  requestTimeoutMs?: number;
  /** Events are never re-forwarded; an envelope claiming more hops is refused (default 8, as the mesh). */
  maxHops?: number;
  /**
   * The token was built with this other stream (`*`: every type): it is reset to 0 before the
   * first pull, so what the new stream adds is not skipped (what is here already counts as
   * duplicates: the envelope id keeps each event once).
   */
  resetFromStream?: string;
}

/** How a mount's stream is recorded with its token (`*`: every eligible type). */
export const tokenStreamOf = (stream: string | undefined): string => stream ?? '*';

/** Live figures of a mirror mount (`weft mounts show`, `status()`). */
export interface MirrorStatus {
  active: boolean;
  /** The last source position applied here (the resume token). */
  token: number;
  /** The source's newest position, as of its last answer (0: not known yet). */
  high: number;
  /** high - token. */
  lag: number;
  in_flight: number;
  window: number;
  max_in_flight: number;
  stream: string | null;
  /** Events this mount brought in (new here), over its life. */
  applied_count: number;
  /** Events it received that were here already (pushed by visibility, or applied before), over its life. */
  duplicates: number;
  /** Batches committed by this mount, over its life (the seed's bundle_seq). */
  bundle_seq: number;
  /** Transactions those batches were committed in (answers waiting in order are applied together). */
  commits: number;
  /** The heartbeat at which the last batch committed (the seed's commit_beat). */
  commit_beat: number;
  beat: number;
  /** Id and time of the last event applied. */
  last_event: string | null;
  last_event_at: number | null;
  /** The lowest position the source still keeps, as of its last answer. */
  source_pruned_below: number;
  /** The source's node id, recorded at first contact: answers from another key are refused. */
  source_node: string | null;
  /** Answers refused as malformed (their shape, or positions that do not agree). */
  malformed: number;
  gaps: number;
  stalled: boolean;
  stalled_since: number | null;
  requests: number;
  timeouts: number;
  refused: number;
  error: string | null;
  error_at: number | null;
}

interface Request {
  /** The current attempt's id. */
  id: string;
  /** Ids of the attempts at this range (the last few): an answer to any of them will do. */
  ids: string[];
  /** Attempts at this range: each waits twice as long as the one before. */
  attempts: number;
  from: number;
  to: number;
  state: 'unsent' | 'sending' | 'sent';
  sentAt: number;
  answer?: { batch: MirrorBatch; nodeId: string };
}

/** Longest pause between attempts after failures, ms. */
const MAX_BACKOFF_MS = 30_000;
/** Events applied in one transaction at most (answers waiting in order are applied together up to it). */
const MAX_APPLY = 8192;
/** The longest a request is waited for before it is sent again, ms. */
const MAX_TIMEOUT_MS = 30_000;
/** Telemetry is written at most this often, ms. */
const PERSIST_EVERY_MS = 1000;

const num = (v: unknown, d = 0): number => (typeof v === 'number' && Number.isFinite(v) ? v : d);

export class MirrorPuller {
  readonly key: string;
  readonly peer: string;
  private readonly id: number;
  private readonly timeoutMs: number;
  private readonly maxHops: number;
  private readonly session = randomBytes(6).toString('hex');
  private counter = 0;
  private token: number;
  private high: number;
  private nextFrom: number;
  private queue: Request[] = [];
  private stopped = false;
  private running: Promise<void> | undefined;
  private wakeFn: (() => void) | undefined;
  private woken = false;
  private backoffMs = 0;
  private backoffUntil = 0;
  /** The last answer was a refusal (the source does not share with this node): a stall even with no lag known. */
  private refusing = false;
  private lastAnswerAt = 0;
  private progressAt: number;
  private beatAt: number;
  private persistedAt = 0;
  /** The token matches this mount's stream in the record (`token_stream` may be written). */
  private streamSaved = false;
  /** The source's newest position is below the token (state `error` until it is past it again). */
  private behind = false;
  private readonly t: Omit<MirrorStatus, 'active' | 'token' | 'high' | 'lag' | 'in_flight' | 'window' | 'max_in_flight' | 'stream'>;

  constructor(
    mount: MountRecord,
    private readonly init: PullerInit,
    private readonly deps: OrganDeps,
  ) {
    this.key = mount.key;
    this.peer = mount.peer;
    this.id = mount.id;
    this.timeoutMs = init.requestTimeoutMs ?? Math.max(2000, 4 * init.beatMs);
    this.maxHops = init.maxHops ?? 8;
    const tm = mount.telemetry;
    this.token = init.resetFromStream !== undefined ? 0 : mount.resumeToken;
    this.high = Math.max(num(tm.high), this.token);
    this.nextFrom = this.token + 1;
    const now = deps.clock.now();
    this.progressAt = now;
    this.beatAt = now;
    this.t = {
      applied_count: num(tm.applied_count),
      duplicates: num(tm.duplicates),
      bundle_seq: num(tm.bundle_seq),
      commits: num(tm.commits),
      commit_beat: num(tm.commit_beat),
      beat: num(tm.beat),
      last_event: typeof tm.last_event === 'string' && tm.last_mode === 'mirror' ? tm.last_event : null,
      last_event_at: tm.last_mode === 'mirror' ? num(tm.last_event_at, 0) || null : null,
      source_pruned_below: num(tm.source_pruned_below, 1),
      source_node: typeof tm.source_node === 'string' ? tm.source_node : null,
      malformed: num(tm.malformed),
      gaps: num(tm.gaps),
      stalled: false,
      stalled_since: null,
      requests: 0,
      timeouts: 0,
      refused: 0,
      error: null,
      error_at: null,
    };
  }

  start(): void {
    if (this.running || this.stopped) return;
    this.running = this.run();
  }

  /** Stops pulling; what is being applied commits first; the token stays. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    await this.running;
    await this.persist(true);
  }

  status(): MirrorStatus {
    return {
      active: this.running !== undefined && !this.stopped,
      token: this.token,
      high: this.high,
      lag: Math.max(0, this.high - this.token),
      in_flight: this.queue.filter((r) => r.state !== 'unsent' && !r.answer).length,
      window: this.init.window,
      max_in_flight: this.init.inFlight,
      stream: this.init.stream ?? null,
      ...this.t,
    };
  }

  /** An answer for this mount was refused as malformed (mirror-wire's parseBatch): counted; the pull is repeated after its timeout. */
  onMalformed(message: string): void {
    this.t.malformed++;
    this.t.error = message.slice(0, 2000);
    this.t.error_at = this.deps.clock.now();
  }

  /** An answer from the source (verified as `nodeId`); one to a range no longer asked for is ignored. */
  onBatch(batch: MirrorBatch, nodeId: string): void {
    const r = this.queue.find((q) => q.ids.includes(batch.req));
    // A range whose start moved (an answer cut short) is a new request: older answers are stale.
    if (!r || r.answer || batch.from !== r.from) return;
    r.answer = { batch, nodeId };
    this.wake();
  }

  private wake(): void {
    this.woken = true;
    this.wakeFn?.();
  }

  /** Before the first pull: a token built with another stream is reset; the stream is recorded with the token. */
  private async begin(): Promise<void> {
    const stream = tokenStreamOf(this.init.stream);
    if (this.init.resetFromStream !== undefined) {
      await this.deps.node.ns.store.write(() => this.deps.mounts.setResumeTokenIn(this.id, 0));
      this.deps.logger.warn(
        { mount: this.key, was: this.init.resetFromStream, stream },
        'mirror stream changed: its token was built with another stream, so it starts again from 0 (events here already count as duplicates)',
      );
    }
    // Only once the token in the record is this stream's (a crash before it resets again).
    await this.deps.mounts.setTelemetry(this.id, { token_stream: stream });
    this.streamSaved = true;
  }

  private async run(): Promise<void> {
    try {
      await this.begin();
    } catch (err) {
      // The first commit of this run records the stream instead (its token is this stream's).
      this.deps.logger.error({ mount: this.key, err: (err as Error).message }, 'mirror token or stream not recorded');
    }
    while (!this.stopped) {
      const now = this.deps.clock.now();
      try {
        await this.onBeat(now);
        this.expire(now);
        // Asked before applying: the source reads the next windows while this node commits.
        if (now >= this.backoffUntil) this.fill(now);
        void this.persist(false);
        const head = this.queue[0];
        if (head?.answer) {
          await this.applyHead(head);
          continue;
        }
      } catch (err) {
        this.failed(`applying a batch failed: ${(err as Error).message}`);
        this.deps.logger.error({ mount: this.key, err: (err as Error).message }, 'mirror batch not applied; it is asked again');
      }
      await this.waitUntil(this.nextDeadline(this.deps.clock.now()));
    }
  }

  private nextDeadline(now: number): number {
    let d = this.beatAt + this.init.beatMs;
    if (this.backoffUntil > now) d = Math.min(d, this.backoffUntil);
    if (this.queue.length === 0 && this.lastAnswerAt > 0) d = Math.min(d, Math.max(now, this.lastAnswerAt + this.init.beatMs));
    return d;
  }

  private async waitUntil(deadline: number): Promise<void> {
    if (this.stopped) return;
    if (this.woken) {
      this.woken = false;
      return;
    }
    const ms = Math.max(0, deadline - this.deps.clock.now());
    await new Promise<void>((resolve) => {
      const done = () => {
        cancel();
        this.wakeFn = undefined;
        resolve();
      };
      const cancel = after(this.deps.clock, ms, done, { unref: true });
      this.wakeFn = done;
    });
    this.woken = false;
  }

  /** Counts heartbeats; raises mirror.stalled when there is lag and nothing moved for two of them. */
  private async onBeat(now: number): Promise<void> {
    const beat = this.init.beatMs;
    if (now - this.beatAt >= beat) {
      const n = Math.floor((now - this.beatAt) / beat);
      this.t.beat += n;
      this.beatAt += n * beat;
    }
    const lag = this.high - this.token;
    // A source that refuses every pull never says how far ahead it is (lag stays 0): stalled all the same.
    if ((lag > 0 || this.refusing) && !this.t.stalled && now - this.progressAt >= 2 * beat) {
      this.t.stalled = true;
      this.t.stalled_since = this.progressAt;
      const reason = this.t.error ?? `no batch applied for ${now - this.progressAt} ms (two heartbeats are ${2 * beat} ms)`;
      this.deps.logger.warn({ mount: this.key, lag, reason }, 'mirror stalled');
      await this.deps.node
        .emit({ event: FEDERATION_EVENTS.mirrorStalled, payload: { mount: this.key, peer: this.peer, lag, since: this.progressAt, reason: reason.slice(0, 2000) } })
        .catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'mirror.stalled not emitted'));
    }
  }

  /**
   * Requests whose answer is overdue are sent again: after the timeout, or sooner (two beats,
   * at least half a second) when a later request was answered already (the source dropped
   * this one: busy, or lost on the way).
   */
  private expire(now: number): void {
    let late = false;
    const soon = Math.max(500, 2 * this.init.beatMs);
    for (let i = 0; i < this.queue.length; i++) {
      const r = this.queue[i] as Request;
      if (r.state !== 'sent' || r.answer) continue;
      const age = now - r.sentAt;
      const limit = Math.min(MAX_TIMEOUT_MS, this.timeoutMs * 2 ** Math.min(10, r.attempts - 1));
      if (age > limit || (age > soon && this.queue.slice(i + 1).some((q) => q.answer))) {
        r.state = 'unsent';
        this.t.timeouts++;
        late = true;
      }
    }
    if (late) this.failed(`no answer from ${this.peer} in time (${this.timeoutMs} ms and more for each repeat, or ${soon} ms once a later pull was answered)`);
  }

  /**
   * Sends what is unsent and asks for more while there is known backlog, or polls when caught
   * up: at most `inFlight` requests unanswered, and at most as many answers again waiting to
   * be applied (bounded memory: each answer is at most a frame).
   */
  private fill(now: number): void {
    for (const r of this.queue) if (r.state === 'unsent') this.send(r);
    let unanswered = this.queue.filter((r) => !r.answer).length;
    while (unanswered < this.init.inFlight && this.queue.length < 2 * this.init.inFlight) {
      const backlog = this.nextFrom <= this.high;
      const poll = this.queue.length === 0 && now >= this.lastAnswerAt + this.init.beatMs;
      if (!backlog && !poll) break;
      const r: Request = { id: '', ids: [], attempts: 0, from: this.nextFrom, to: this.nextFrom + this.init.window - 1, state: 'unsent', sentAt: 0 };
      this.nextFrom = r.to + 1;
      this.queue.push(r);
      this.send(r);
      unanswered++;
      if (!backlog) break;
    }
  }

  /** Sends (again) the request for `r`'s range; `fresh` when the range changed (older answers no longer fit). */
  private send(r: Request, fresh = false): void {
    const id = `${this.session}:${++this.counter}`;
    if (fresh) {
      r.ids = [];
      r.attempts = 0;
    }
    r.id = id;
    r.ids.push(id);
    if (r.ids.length > 4) r.ids.shift();
    r.attempts++;
    r.state = 'sending';
    r.answer = undefined;
    this.t.requests++;
    const pull: MirrorPull = { mount: this.key, req: id, from: r.from, to: r.to, ...(this.init.stream ? { stream: this.init.stream } : {}) };
    const { mesh } = this.deps;
    // A link that is coming up (just started, reconnecting) is waited for, not failed at once.
    mesh.provider
      .waitForPeer(this.peer, { timeoutMs: 10_000 })
      .then(() => mesh.sendMessage(this.peer, MIRROR_PULL, pull, { timeoutMs: 10_000 }))
      .then(
        () => {
          if (r.id === id && r.state === 'sending') {
            r.state = 'sent';
            r.sentAt = this.deps.clock.now();
          }
        },
        (err: Error) => {
          if (r.id !== id || r.answer) return;
          r.state = 'unsent';
          this.failed(`pull not sent to ${this.peer}: ${err.message}`);
          this.wake();
        },
      );
  }

  /** Records an error and backs off (250 ms, doubling, at most 30 s). */
  private failed(message: string): void {
    const now = this.deps.clock.now();
    this.t.error = message.slice(0, 2000);
    this.t.error_at = now;
    this.backoffMs = Math.min(MAX_BACKOFF_MS, Math.max(250, this.backoffMs * 2));
    this.backoffUntil = now + this.backoffMs;
  }

  private async applyHead(head: Request): Promise<void> {
    const { batch: a, nodeId } = head.answer as NonNullable<Request['answer']>;
    const now = this.deps.clock.now();
    if (this.t.source_node !== null && nodeId !== this.t.source_node) {
      head.answer = undefined;
      await this.halt(
        `${this.peer} now answers with another key (${nodeId}; this mirror's token counts positions in the log of ${this.t.source_node}): another node took over the name, so nothing more is applied from it. Mirror the new node with a mount of another name.`,
      );
      return;
    }
    if (a.error) {
      head.answer = undefined;
      head.state = 'unsent';
      this.t.refused++;
      this.refusing = true;
      this.failed(`${this.peer} refused the pull: ${a.error.code}: ${a.error.message}`);
      return;
    }
    if (a.from !== head.from || a.to > head.to) {
      head.answer = undefined;
      head.state = 'unsent';
      this.failed(`${this.peer} answered ${a.from}..${a.to} to a pull of ${head.from}..${head.to}`);
      return;
    }
    if (a.high < this.token) {
      head.answer = undefined;
      await this.sourceBehind(a.high);
      return;
    }
    if (this.t.source_node === null) {
      // First contact: the token counts positions in this node's log from now on.
      this.t.source_node = nodeId;
      await this.deps.mounts.setTelemetry(this.id, { source_node: nodeId });
    }
    if (this.behind) await this.sourceBack(a.high);
    this.backoffMs = 0;
    this.backoffUntil = 0;
    this.t.error = null;
    this.refusing = false;
    this.lastAnswerAt = now;
    this.high = a.high;
    this.t.source_pruned_below = a.prunedBelow;
    if (a.prunedBelow > this.token + 1) {
      head.answer = undefined;
      try {
        await this.gap(a.prunedBelow);
      } catch (err) {
        head.state = 'unsent';
        throw err;
      }
      return;
    }
    if (a.to < head.from) {
      // Nothing at or after head.from yet: every request behind it is past the end too.
      this.queue = [];
      this.nextFrom = this.token + 1;
      return;
    }
    // The answers waiting behind the head that continue it go in the same transaction (one
    // commit for several windows): each must cover its whole range but the last, keep what the
    // source had at its start (a prune between two reads stops the chain: its gap is said
    // first), and the whole stays within MAX_APPLY events.
    const chain = [head];
    let events = a.events.length;
    for (let i = 1; i < this.queue.length; i++) {
      const prev = (this.queue[i - 1] as Request).answer?.batch as MirrorBatch;
      const r = this.queue[i] as Request;
      const b = r.answer?.batch;
      if (prev.to < (this.queue[i - 1] as Request).to || !b || b.error || b.from !== r.from || b.to > r.to || b.to < r.from) break;
      if (b.prunedBelow > r.from || events + b.events.length > MAX_APPLY) break;
      events += b.events.length;
      chain.push(r);
    }
    const answers = chain.map((r) => r.answer as NonNullable<Request['answer']>);
    for (const r of chain) r.answer = undefined;
    try {
      await this.apply(answers);
    } catch (err) {
      for (const r of chain) r.state = 'unsent';
      throw err;
    }
    const last = chain[chain.length - 1] as Request;
    const z = (answers[answers.length - 1] as NonNullable<Request['answer']>).batch;
    this.high = Math.max(...answers.map((x) => x.batch.high));
    this.queue.splice(0, chain.length - 1);
    if (z.to >= last.to) this.queue.shift();
    else if (z.to < z.high) {
      // Cut short to fit a frame: the rest of the range is asked again.
      last.from = z.to + 1;
      this.send(last, true);
    } else {
      // The source's end: what is queued behind is past it.
      this.queue = [];
      this.nextFrom = this.token + 1;
    }
  }

  /**
   * The source's newest position is below the token: its log was reset or lost (a restore
   * numbers past its mirrors' tokens, so it comes back). Never a silent stall: the mount goes to
   * state `error` with federation.mount.failed; it is polled, backing off, and is `open` again
   * once the source has events past the token.
   */
  private async sourceBehind(high: number): Promise<void> {
    const message = `${this.peer}'s log ends at position ${high}, before this mirror's token ${this.token}: its log was reset or lost; nothing is applied until it has events past ${this.token} again`;
    this.failed(message);
    this.queue = [];
    this.nextFrom = this.token + 1;
    this.high = high;
    this.lastAnswerAt = this.deps.clock.now();
    if (this.behind) return;
    this.behind = true;
    this.deps.logger.error({ mount: this.key, high, token: this.token }, 'mirror source is behind the token');
    await this.deps.mounts.setState(this.id, 'error', message).catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'mount state not written'));
    await this.deps.node
      .emit({ event: FEDERATION_EVENTS.mountFailed, payload: { mount: this.key, peer: this.peer, mode: 'mirror', reason: message.slice(0, 2000) } })
      .catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'federation.mount.failed not emitted'));
  }

  /** The source has events past the token again: the mount is open again. */
  private async sourceBack(high: number): Promise<void> {
    this.behind = false;
    this.deps.logger.info({ mount: this.key, high, token: this.token }, 'mirror source is past the token again');
    await this.deps.mounts.setState(this.id, 'open').catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'mount state not written'));
  }

  /** The mount cannot go on (the source's key changed): state `error`, federation.mount.failed, and pulling stops. */
  private async halt(message: string): Promise<void> {
    this.t.error = message.slice(0, 2000);
    this.t.error_at = this.deps.clock.now();
    this.queue = [];
    this.stopped = true;
    this.deps.logger.error({ mount: this.key }, message);
    await this.deps.mounts.setState(this.id, 'error', message).catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'mount state not written'));
    await this.deps.node
      .emit({ event: FEDERATION_EVENTS.mountFailed, payload: { mount: this.key, peer: this.peer, mode: 'mirror', reason: message.slice(0, 2000) } })
      .catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'federation.mount.failed not emitted'));
  }

  /** The source pruned past the token: say which positions are missing, then continue after them. */
  private async gap(prunedBelow: number): Promise<void> {
    const from = this.token + 1;
    const to = prunedBelow - 1;
    const message = `${this.peer} pruned its log below position ${prunedBelow} before mirror ${this.key} read source positions ${from}–${to}: whatever of them this mirror would have received is missing here; mirroring continues from ${prunedBelow}`;
    this.deps.logger.warn({ mount: this.key, from, to }, 'mirror gap');
    // Raised before the token moves: a crash in between raises it again (the same notification).
    await this.deps.node.emit({ event: FEDERATION_EVENTS.mirrorGap, payload: { mount: this.key, peer: this.peer, from, to, message } });
    await this.deps.node.ns.store.write(() => this.deps.mounts.setResumeTokenIn(this.id, to));
    this.token = to;
    this.streamSaved = true;
    this.t.gaps++;
    this.queue = [];
    this.nextFrom = this.token + 1;
    await this.moved(this.deps.clock.now());
  }

  /** Applies answers' events through the pipeline in one batch, moving the token to the last answer's end in the same transaction. */
  private async apply(answers: ReadonlyArray<{ batch: MirrorBatch; nodeId: string }>): Promise<void> {
    const entries: BusEntry[] = [];
    for (const { batch, nodeId } of answers) {
      const fact: IngressFact = { peerNodeId: nodeId, peerComputer: this.peer, signatureVerified: true };
      const facts = { [INGRESS_FACT]: fact };
      for (const ev of batch.events) {
        if (ev.seq <= this.token) continue;
        const env = await this.stamp(ev.seq, ev.envelope, nodeId);
        if (env) entries.push({ position: `mirror:${this.peer}:${ev.seq}`, envelope: env, logged: false, facts });
      }
    }
    const a = (answers[answers.length - 1] as { batch: MirrorBatch }).batch;
    const to = a.to;
    const moveToken = () => this.deps.mounts.setResumeTokenIn(this.id, to);
    let fresh = 0;
    if (entries.length > 0) {
      const b = await this.deps.node.processor.processBatch(entries, {}, moveToken);
      // What the pipeline took in (passed, or stopped by a stage); the rest was here already (pushed, or applied before).
      fresh = b.passed.length + b.dropped.length;
      const held = b.dropped.filter((d) => d.by === 'trust').length;
      // Kept out by this node's trust evaluator (quarantined or rejected): listed there, the token still moves.
      if (held > 0) this.deps.logger.warn({ mount: this.key, held, reason: String(b.dropped.find((d) => d.by === 'trust')?.reason ?? '') }, 'mirrored events held by the trust evaluator');
    } else await this.deps.node.ns.store.write(moveToken);
    this.token = to;
    // The token in the record is this stream's now.
    this.streamSaved = true;
    this.t.bundle_seq += answers.length;
    this.t.commits++;
    this.t.commit_beat = this.t.beat;
    this.t.applied_count += fresh;
    this.t.duplicates += entries.length - fresh;
    if (entries.length > 0) {
      const last = entries[entries.length - 1] as Extract<BusEntry, { envelope: Envelope }>;
      this.t.last_event = last.envelope.id;
      this.t.last_event_at = this.deps.clock.now();
    }
    await this.moved(this.deps.clock.now());
  }

  /** The token moved: a stall is over. */
  private async moved(now: number): Promise<void> {
    this.progressAt = now;
    if (!this.t.stalled) return;
    this.t.stalled = false;
    this.t.stalled_since = null;
    const lag = Math.max(0, this.high - this.token);
    this.deps.logger.info({ mount: this.key, lag }, 'mirror moves again');
    await this.deps.node
      .emit({ event: FEDERATION_EVENTS.mirrorResumed, payload: { mount: this.key, peer: this.peer, lag } })
      .catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'mirror.resumed not emitted'));
  }

  /** Parses, stamps and checks one envelope as mesh ingress would; a bad one is refused and recorded. */
  private async stamp(seq: number, json: string, nodeId: string): Promise<Envelope | undefined> {
    const ref = `mirror:${this.key}:${seq}`;
    let raw: Record<string, unknown>;
    try {
      raw = JSON.parse(json) as Record<string, unknown>;
      if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error('not an object');
    } catch (err) {
      await this.deps.mesh.reject(nodeId, this.peer, 'ENVELOPE_INVALID', `mirrored position ${seq}: not an envelope (${(err as Error).message})`, { ref, raw: json.slice(0, 4096) });
      return undefined;
    }
    const stamped: Record<string, unknown> = envelopeWith(raw, {
      origin: nodeId,
      sourceComputer: this.peer,
      hops: (typeof raw.hops === 'number' ? raw.hops : 0) + 1,
    });
    const bad = envelopeValidator.firstError(stamped);
    if (bad) {
      await this.deps.mesh.reject(nodeId, this.peer, 'ENVELOPE_INVALID', `mirrored envelope ${String(raw.id ?? '?')}: field '${bad.path}' ${bad.message}`, { ref, field: bad.path, raw: json.slice(0, 4096) });
      return undefined;
    }
    const env = stamped as unknown as Envelope;
    const tooBig = payloadProblem(env.payload);
    if (tooBig) {
      await this.deps.mesh.reject(nodeId, this.peer, tooBig.code === 'PAYLOAD_TOO_DEEP' ? 'ENVELOPE_TOO_DEEP' : 'ENVELOPE_TOO_LARGE', `mirrored envelope ${env.id}: ${tooBig.message}`, { ref, field: '/payload', raw: json.slice(0, 4096) });
      return undefined;
    }
    if ((env.hops ?? 0) > this.maxHops) {
      await this.deps.mesh.reject(nodeId, this.peer, 'ENVELOPE_HOP_LIMIT', `mirrored envelope ${env.id} has travelled ${env.hops} hops`, { ref, field: '/hops', raw: json.slice(0, 4096) });
      return undefined;
    }
    return env;
  }

  /** Writes the telemetry to the mount record, at most once a second (or now, when `force`). */
  private async persist(force: boolean): Promise<void> {
    const now = this.deps.clock.now();
    if (!force && now - this.persistedAt < PERSIST_EVERY_MS) return;
    this.persistedAt = now;
    const s = this.status();
    const patch: MountTelemetry = {
      last_mode: 'mirror',
      lag: s.lag,
      high: s.high,
      active: s.active,
      in_flight: s.in_flight,
      applied_count: s.applied_count,
      duplicates: s.duplicates,
      bundle_seq: s.bundle_seq,
      commits: s.commits,
      commit_beat: s.commit_beat,
      beat: s.beat,
      last_event: s.last_event ?? undefined,
      last_event_at: s.last_event_at ?? undefined,
      source_pruned_below: s.source_pruned_below,
      malformed: s.malformed,
      gaps: s.gaps,
      stalled: s.stalled,
      error: s.error,
    };
    // Never written as missing: a merge with undefined would drop what is recorded.
    if (s.source_node !== null) patch.source_node = s.source_node;
    if (this.streamSaved) patch.token_stream = tokenStreamOf(this.init.stream);
    await this.deps.mounts.setTelemetry(this.id, patch).catch((err: Error) => this.deps.logger.debug({ err: err.message }, 'mirror telemetry not written'));
  }
}
