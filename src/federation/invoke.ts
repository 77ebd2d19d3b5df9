/**
 * Invoke: a remote call of a named handler on a peer, with a deadline and budgets.
 *
 * The caller sends `invoke.request` (the deadline as *remaining* milliseconds, taken just
 * before the request is encoded, so the two clocks never have to agree and time spent waiting
 * for the link counts) and waits for `invoke.result`; at the deadline it gives up with
 * WEFT_INVOKE_TIMEOUT, raises `transport.invoke.timeout` and sends `invoke.cancel`. The callee
 * checks, before any work and in this order: the caller and every node the call was forwarded
 * for are trusted here (so an untrusted peer learns nothing else), the handler exists, the
 * payload fits, a slot is free, the budgets are not spent, the enclave policy admits the
 * caller and every enclave of the chain (pipeline, edge). Each refusal answers at once with its
 * code, is audited and raised (`transport.invoke.rejected`, `sec.limit.hit`,
 * `sec.pipeline.reject`, `sec.edge.deny`). Then the handler runs with a signal that aborts at
 * min(deadline, wall budget, CPU budget) or on the caller's cancel; a handler that does not
 * stop has its result discarded (a cartridge's sandbox process is killed). Results are
 * bounded in bytes. Stopping the organ waits (bounded) for the calls it serves to answer.
 */
import { randomUUID } from 'node:crypto';
import { FEDERATION_EVENTS } from '../catalog/index.js';
import { type ErrorCode, WeftError } from '../errors/index.js';
import { fingerprintOfNodeId } from '../identity/index.js';
import type { InboundMessage, KnownPeer } from '../mesh/index.js';
import { after, jsonDepth, untilAborted } from '../util/index.js';
import {
  type ApprovedPipeline,
  type BudgetName,
  type BudgetRefusal,
  BUDGET_LIMITS,
  type ChainLink,
  checkBudgets,
  checkEnclaves,
  enclaveOf,
  fillBudgets,
  type InvokeBudgets,
  type PipelineMeta,
} from './budgets.js';
import { builtinHandlers } from './invoke-builtins.js';
import {
  cancelCheck,
  handlerNamePattern,
  INVOKE_CODES,
  INVOKE_MESSAGES,
  type InvokeCode,
  type InvokeRequestWire,
  type InvokeResultWire,
  REFUSAL_CODES,
  requestCheck,
  resultCheck,
  wireProblem,
} from './invoke-wire.js';
import type { EgressCheck } from './mirror-source.js';
import type { OrganDeps } from './ports.js';

export type { ApprovedPipeline, ChainLink, InvokeBudgets, PipelineMeta } from './budgets.js';

export interface InvokeInit {
  /** This node's enclave (default: its cluster, else its computer name). */
  enclave: string;
  /** Enclave of a peer by computer name, node id or fingerprint; default the peer's cluster. */
  enclaves: Record<string, string>;
  /** Accepted cross-enclave edges, "from->to". */
  edges: string[];
  pipelines: ApprovedPipeline[];
  /** Calls this node runs for peers at once; more are refused with BUSY. */
  maxConcurrent: number;
  /** The longest deadline a call may ask for, ms (longer ones are cut to it). */
  maxDeadlineMs: number;
  /** Calls this node may wait on at once (default 1024); more fail with WEFT_LIMIT. */
  maxPending?: number;
  /** Largest payload one call carries, bytes of JSON (default 1 MiB). */
  maxPayloadBytes?: number;
  /** Largest result a handler may return, bytes of JSON (default 1 MiB); larger is a TOO_LARGE error. */
  maxResultBytes?: number;
  /**
   * Whether this node serves `invoke.forward` (config `federation.invoke_forward`, default
   * false): off, a call of it is refused with NO_HANDLER.
   */
  forward?: boolean;
}

/** How a call is made, beyond what it asks the callee. */
export interface CallOptions {
  /** Aborting it gives up the call (the callee is told to cancel). */
  signal?: AbortSignal;
  /** Calls before this one in the chain (invoke.forward passes its own hop + 1). */
  hop?: number;
  /** The callers this call is made for, oldest first (invoke.forward appends the caller it verified). */
  chain?: readonly ChainLink[];
  /**
   * How long this node waits for the answer, ms (default: the deadline). A shorter wait gives
   * up like a deadline does (WEFT_INVOKE_TIMEOUT, `transport.invoke.timeout`, the callee told
   * to cancel) while the callee was given the whole deadline.
   */
  timeoutMs?: number;
}

export interface InvokeCall {
  peer: string;
  handler: string;
  payload?: unknown;
  /** Remaining milliseconds (clock-skew safe). */
  deadlineMs: number;
  budgets?: InvokeBudgets;
  pipeline?: PipelineMeta;
}

export interface InvokeResult {
  callId: string;
  peer: string;
  handler: string;
  result: unknown;
  /** Round trip as this node measured it, ms. */
  elapsedMs: number;
  /** How long the callee worked on it, ms (its own measure). */
  remoteElapsedMs?: number;
}

/** What a handler is given; `signal` aborts when the caller cancels or the deadline passes. */
export interface InvokeContext {
  callId: string;
  /** The caller's computer name (from its pinned key). */
  caller: string;
  callerNodeId: string;
  /** The caller's enclave as this node sees it. */
  enclave: string;
  /** This node's clock when the call must be done. */
  deadlineAt: number;
  /** This node's clock when the request arrived. */
  receivedAt: number;
  budgets: Required<InvokeBudgets>;
  pipeline: PipelineMeta | undefined;
  /** The handler's name as called. */
  handler: string;
  /** Calls before this one in the chain (0: called by the node that started it). */
  hop: number;
  /** The nodes the call was forwarded for, oldest first, as the forwarding nodes verified them (empty for a first call). */
  chain: readonly ChainLink[];
  /** Bytes of the payload as received (charged to the byte budget). */
  payloadBytes: number;
  signal: AbortSignal;
}

export type InvokeHandler = (payload: unknown, ctx: InvokeContext) => Promise<unknown> | unknown;

/** Handlers found elsewhere than `register` (installed cartridges that declare `invoke`). */
export interface InvokeHandlerSource {
  /** What kind of handler it serves, for the audit and `weft invoke --list`. */
  readonly kind: string;
  /** Names it serves now. */
  names(): string[];
  /** The handler of a name, or undefined. */
  resolve(name: string): InvokeHandler | undefined;
  /** Stops what it runs (sandboxes). */
  stop?(): Promise<void>;
}

/** Counters since start (`node.health` and `GET /api/invoke` show them). */
export interface InvokeStats {
  /** Calls this node made. */
  calls: number;
  ok: number;
  timeouts: number;
  /** Calls refused or failed on the callee. */
  rejected: number;
  unavailable: number;
  /** Calls this node ran for peers. */
  served: number;
  /** Requests refused here, by code. */
  refused: Partial<Record<InvokeCode, number>>;
  /** Runs stopped here (cancel, deadline, wall or CPU budget, stop). */
  cancelled: number;
}

/** Refusal events and audit entries per (peer, cause) in a minute before the rest are only counted. */
const LOUD_PER_MINUTE = 20;
const REFUSAL_EVENTS: Partial<Record<InvokeCode, string>> = {
  LIMIT: FEDERATION_EVENTS.limitHit,
  PIPELINE: FEDERATION_EVENTS.pipelineReject,
  EDGE: FEDERATION_EVENTS.edgeDeny,
};
/** How long a stopped run may take to settle before its audit entry says it did not stop. */
const STOP_GRACE_MS = 2000;
const MAX_PAYLOAD_DEPTH = 64;

interface Pending {
  callId: string;
  peer: string;
  nodeId: string;
  handler: string;
  /** How long this node waits (the deadline, or a shorter `timeoutMs`). */
  deadlineMs: number;
  /** The deadline the callee was given. */
  remoteDeadlineMs: number;
  t0: number;
  settle(err: Error | undefined, value?: InvokeResult): void;
}

interface Running {
  key: string;
  callId: string;
  peer: string;
  handler: string;
  kind: string;
  t0: number;
  ac: AbortController;
  why?: 'cancel' | 'deadline' | 'wall' | 'cpu' | 'stop';
}

interface Refusal {
  code: InvokeCode;
  reason: string;
  budget?: BudgetName;
  remaining?: number;
  needed?: number;
  enclave?: string;
  from?: string;
  to?: string;
}

/** What a refusal is reported with (the request when it was readable). */
interface RefusalContext {
  peer: string;
  callId: string | undefined;
  handler: string;
  pipeline: PipelineMeta | undefined;
  chain: readonly ChainLink[];
}

/** A window per key: the first `limit` in a minute pass, the rest are counted. */
class LoudGate {
  private readonly windows = new Map<string, { start: number; n: number; suppressed: number }>();
  constructor(private readonly now: () => number) {}
  /** Whether to be loud about `key`; `suppressedBefore` is what the previous window swallowed. */
  take(key: string): { loud: boolean; suppressedBefore: number } {
    const now = this.now();
    let w = this.windows.get(key);
    let suppressedBefore = 0;
    if (!w || now - w.start >= 60_000) {
      suppressedBefore = w?.suppressed ?? 0;
      if (this.windows.size >= 10_000) this.windows.clear();
      w = { start: now, n: 0, suppressed: 0 };
      this.windows.set(key, w);
    }
    w.n++;
    if (w.n > LOUD_PER_MINUTE) w.suppressed++;
    return { loud: w.n <= LOUD_PER_MINUTE, suppressedBefore };
  }
}

const round1 = (ms: number) => Math.round(ms * 10) / 10;

/** The invoke organ of one node; see the module comment. */
export class InvokeOrgan {
  readonly stats: InvokeStats = { calls: 0, ok: 0, timeouts: 0, rejected: 0, unavailable: 0, served: 0, refused: {}, cancelled: 0 };
  private readonly registered = new Map<string, InvokeHandler>();
  private readonly sources: InvokeHandlerSource[] = [];
  private readonly pending = new Map<string, Pending>();
  private readonly running = new Map<string, Running>();
  /** What this node is still doing for its callers (serving, auditing a stop); stop waits for it, bounded. */
  private readonly serving = new Set<Promise<void>>();
  private readonly loud: LoudGate;
  private readonly builtinForward: InvokeHandler | undefined;
  private egress: EgressCheck | undefined;
  private unsubs: Array<() => void> = [];
  private started = false;
  private stopping: Promise<void> | undefined;
  private startedAt = 0;

  constructor(
    readonly init: InvokeInit,
    readonly deps: OrganDeps,
  ) {
    this.loud = new LoudGate(() => deps.clock.now());
    const builtins = builtinHandlers({
      deps,
      startedAt: () => this.startedAt,
      stats: () => ({ ...this.stats, running: this.running.size, pending: this.pending.size }),
      call: (c, o) => this.call(c, o),
      handlers: () => this.handlers(),
      egress: () => this.egress,
      onwardSpent: (ctx, r) => this.onwardSpent(ctx, r),
    });
    for (const [name, h] of Object.entries(builtins)) this.registered.set(name, h);
    this.builtinForward = builtins['invoke.forward'];
  }

  /**
   * Installs the sharing policy's egress check (the node's privacy layer, as the mirror's
   * source and the publisher use): `query.events` answers only events it lets through to the
   * caller and to every known node the call was forwarded for.
   */
  setEgress(check: EgressCheck | undefined): void {
    this.egress = check;
  }

  /** Listens for requests, results and cancels. Idempotent. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.startedAt = this.deps.clock.now();
    const { mesh } = this.deps;
    this.unsubs.push(mesh.onMessage(INVOKE_MESSAGES.request, (m) => this.onRequest(m)));
    this.unsubs.push(mesh.onMessage(INVOKE_MESSAGES.result, (m) => this.onResult(m)));
    this.unsubs.push(mesh.onMessage(INVOKE_MESSAGES.cancel, (m) => this.onCancel(m)));
  }

  /**
   * Stops listening, fails the calls this node waits on (WEFT_STOPPED; their callees are told
   * to cancel), stops the runs it serves and waits (at most STOP_GRACE_MS) for them to answer
   * their callers and be audited, then stops the handler sources' sandboxes. Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const u of this.unsubs) u();
      this.unsubs = [];
      for (const p of [...this.pending.values()]) {
        void this.sendCancel(p.peer, p.callId);
        p.settle(new WeftError('WEFT_STOPPED', `the node is stopping: the call of ${p.handler} on ${p.peer} was cancelled`));
      }
      for (const r of this.running.values()) this.abortRun(r, 'stop');
      await this.settleServing(STOP_GRACE_MS);
      await Promise.all(this.sources.map((s) => s.stop?.().catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'invoke handler source did not stop cleanly'))));
    })();
    return this.stopping;
  }

  /** Waits until nothing is served or audited for a caller any more (what settles may add more), at most `graceMs`. */
  private async settleServing(graceMs: number): Promise<void> {
    const until = performance.now() + graceMs;
    while (this.serving.size > 0) {
      const left = until - performance.now();
      if (left <= 0) {
        this.deps.logger.warn({ serving: this.serving.size, graceMs }, 'invoke calls being served did not finish within the grace; stopping anyway');
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.serving]),
        new Promise<void>((r) => {
          timer = setTimeout(r, left);
          timer.unref();
        }),
      ]);
      clearTimeout(timer);
    }
  }

  /**
   * Registers a handler by name (built-ins: node.health, query.events, invoke.forward,
   * invoke.list); returns its removal.
   * @example
   * organ.register('echo', (payload) => payload);
   */
  register(name: string, handler: InvokeHandler): () => void {
    if (!handlerNamePattern.test(name)) throw new WeftError('WEFT_VALIDATION', `handler name '${name}' is not allowed: letters, digits and ._:- (at most 128)`);
    if (this.registered.has(name)) throw new WeftError('WEFT_CONFLICT', `handler '${name}' is registered already`);
    this.registered.set(name, handler);
    return () => {
      if (this.registered.get(name) === handler) this.registered.delete(name);
    };
  }

  /**
   * Adds a source of handlers (the daemon passes the installed cartridges that declare
   * `invoke`); a registered name wins over a source's. Returns its removal. The organ's stop
   * stops its sources.
   */
  addSource(source: InvokeHandlerSource): () => void {
    this.sources.push(source);
    return () => {
      const i = this.sources.indexOf(source);
      if (i >= 0) this.sources.splice(i, 1);
    };
  }

  /** Names of the handlers this node serves. */
  handlers(): string[] {
    const names = new Set([...this.registered.keys()].filter((n) => !this.forwardOff(n)));
    for (const s of this.sources) {
      try {
        for (const n of s.names()) names.add(n);
      } catch (err) {
        this.deps.logger.warn({ source: s.kind, err: (err as Error).message }, 'invoke handler source could not list its handlers');
      }
    }
    return [...names].sort();
  }

  /** The handlers with where each comes from. */
  describeHandlers(): Array<{ name: string; kind: string }> {
    const out = new Map<string, string>();
    for (const n of this.registered.keys()) if (!this.forwardOff(n)) out.set(n, 'builtin');
    for (const s of this.sources) {
      try {
        for (const n of s.names()) if (!out.has(n)) out.set(n, s.kind);
      } catch {
        // listed as unavailable by handlers()
      }
    }
    return [...out].map(([name, kind]) => ({ name, kind })).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Whether `name` is the built-in invoke.forward while federation.invoke_forward is off. */
  private forwardOff(name: string): boolean {
    return name === 'invoke.forward' && this.init.forward !== true && this.builtinForward !== undefined && this.registered.get(name) === this.builtinForward;
  }

  /**
   * Calls `handler` on `peer` and resolves with its result.
   * @throws WeftError WEFT_INVOKE_TIMEOUT (no answer within the deadline or `opts.timeoutMs`;
   * the callee was told to cancel), WEFT_INVOKE_REJECTED (refused or failed there;
   * `details.code` says why), WEFT_PEER_UNAVAILABLE, WEFT_NOT_FOUND (no such peer),
   * WEFT_VALIDATION (a deadline under BUDGET_LIMITS.minDeadlineMs among others),
   * WEFT_TOO_LARGE, WEFT_LIMIT (too many calls waiting), WEFT_STOPPED; the signal's reason
   * when it aborts.
   * @example
   * const r = await organ.call({ peer: 'saturn', handler: 'node.health', deadlineMs: 2000 });
   */
  async call(c: InvokeCall, opts: CallOptions = {}): Promise<InvokeResult> {
    opts.signal?.throwIfAborted();
    if (!this.started || this.stopping) throw new WeftError('WEFT_STOPPED', 'invoke is not running (the node is stopping)');
    if (typeof c.handler !== 'string' || !handlerNamePattern.test(c.handler)) {
      throw new WeftError('WEFT_VALIDATION', `handler '${String(c.handler).slice(0, 200)}' is not a handler name: letters, digits and ._:- (at most 128)`);
    }
    if (typeof c.deadlineMs !== 'number' || !(c.deadlineMs > 0) || !Number.isFinite(c.deadlineMs)) {
      throw new WeftError('WEFT_VALIDATION', `the deadline must be a positive number of milliseconds, got ${String(c.deadlineMs)}`);
    }
    if (c.deadlineMs < BUDGET_LIMITS.minDeadlineMs) {
      throw new WeftError('WEFT_VALIDATION', `the deadline must be at least ${BUDGET_LIMITS.minDeadlineMs} ms, got ${c.deadlineMs}`);
    }
    if (opts.timeoutMs !== undefined && (typeof opts.timeoutMs !== 'number' || !(opts.timeoutMs > 0) || !Number.isFinite(opts.timeoutMs))) {
      throw new WeftError('WEFT_VALIDATION', `the wait must be a positive number of milliseconds, got ${String(opts.timeoutMs)}`);
    }
    for (const [k, v] of Object.entries(c.budgets ?? {})) {
      if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v))) throw new WeftError('WEFT_VALIDATION', `budget ${k} must be a number, got ${String(v)}`);
    }
    const peer = this.deps.peers.byName(c.peer);
    if (!peer || peer.wire === 'teleclaude') throw new WeftError('WEFT_NOT_FOUND', `no Weft peer named '${c.peer}' (see 'weft peers list')`);
    const offered = this.deps.mesh.offeredCaps(peer.computer);
    const lacking = (['reliable', 'ordered'] as const).filter((x) => !offered.includes(x));
    if (lacking.length > 0) {
      throw new WeftError('WEFT_PEER_UNAVAILABLE', `invoke needs a reliable, ordered link; ${this.deps.mesh.provider.name} to ${peer.computer} lacks ${lacking.join(' and ')}`, {
        details: { peer: peer.computer, handler: c.handler },
      });
    }
    let payload: string | undefined;
    try {
      payload = JSON.stringify(c.payload === undefined ? null : c.payload);
    } catch (err) {
      throw new WeftError('WEFT_VALIDATION', `the payload is not JSON: ${(err as Error).message}`);
    }
    if (typeof payload !== 'string') throw new WeftError('WEFT_VALIDATION', 'the payload has no JSON form');
    const maxPayload = this.init.maxPayloadBytes ?? BUDGET_LIMITS.defaultBytes;
    const bytes = Buffer.byteLength(payload);
    if (bytes > maxPayload) throw new WeftError('WEFT_TOO_LARGE', `the payload is ${bytes} bytes; an invoke carries at most ${maxPayload}`);
    const maxPending = this.init.maxPending ?? 1024;
    if (this.pending.size >= maxPending) {
      throw new WeftError('WEFT_LIMIT', `${this.pending.size} invoke calls are waiting for answers already (at most ${maxPending}); try again shortly`);
    }
    const deadlineMs = Math.min(c.deadlineMs, this.init.maxDeadlineMs);
    const waitMs = Math.min(deadlineMs, opts.timeoutMs ?? deadlineMs);
    const budgets = fillBudgets(c.budgets, deadlineMs);
    const callId = randomUUID();
    const t0 = performance.now();
    const startedAt = this.deps.clock.now();
    const clock = this.deps.clock;
    this.stats.calls++;
    return new Promise<InvokeResult>((resolve, reject) => {
      let cancelTimer: () => void = () => undefined;
      const onAbort = () => {
        if (!this.pending.has(callId)) return;
        void this.sendCancel(peer.computer, callId);
        p.settle(opts.signal?.reason instanceof Error ? opts.signal.reason : new WeftError('WEFT_STOPPED', `the call of ${c.handler} on ${peer.computer} was cancelled`));
      };
      const p: Pending = {
        callId,
        peer: peer.computer,
        nodeId: peer.nodeId,
        handler: c.handler,
        deadlineMs: waitMs,
        remoteDeadlineMs: deadlineMs,
        t0,
        settle: (err, value) => {
          if (!this.pending.delete(callId)) return;
          cancelTimer();
          opts.signal?.removeEventListener('abort', onAbort);
          if (err) reject(err);
          else resolve(value as InvokeResult);
        },
      };
      this.pending.set(callId, p);
      cancelTimer = after(this.deps.clock, waitMs, () => this.onDeadline(p));
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const wire: InvokeRequestWire = {
        callId,
        handler: c.handler,
        payload,
        // What remains, read when the mesh encodes the frame: the time it waited for the link
        // (its key, a sequence) is spent from the deadline, never handed on to the callee.
        get deadlineMs() {
          return Math.max(0, deadlineMs - (clock.now() - startedAt));
        },
        budgets,
        ...(c.pipeline ? { pipeline: c.pipeline } : {}),
        hop: opts.hop ?? 0,
        ...(opts.chain && opts.chain.length > 0 ? { chain: opts.chain.map((l) => ({ nodeId: l.nodeId, computer: l.computer, enclave: l.enclave })) } : {}),
      };
      this.deps.mesh.sendMessage(peer.computer, INVOKE_MESSAGES.request, wire, { timeoutMs: deadlineMs }).catch((err: Error) => {
        if (!this.pending.has(callId)) return;
        this.stats.unavailable++;
        p.settle(
          new WeftError('WEFT_PEER_UNAVAILABLE', `${peer.computer} cannot be reached: ${err.message.slice(0, 500)}`, {
            cause: err,
            details: { peer: peer.computer, handler: c.handler, callId },
          }),
        );
      });
    });
  }

  // ---- the caller's side ----

  private onDeadline(p: Pending): void {
    if (!this.pending.has(p.callId)) return;
    const elapsedMs = round1(performance.now() - p.t0);
    this.stats.timeouts++;
    p.settle(
      new WeftError('WEFT_INVOKE_TIMEOUT', `${p.peer} did not answer ${p.handler} within ${p.deadlineMs < p.remoteDeadlineMs ? `the ${p.deadlineMs} ms this node waits (its deadline: ${p.remoteDeadlineMs} ms)` : `its ${p.deadlineMs} ms deadline`}; it was told to cancel`, {
        details: { peer: p.peer, handler: p.handler, callId: p.callId, code: 'TIMEOUT', budget: 'deadline', deadlineMs: p.deadlineMs, elapsedMs },
      }),
    );
    // After the caller has its answer: the event's commit is not on the caller's clock.
    setImmediate(() => {
      void this.sendCancel(p.peer, p.callId);
      this.deps.logger.info({ peer: p.peer, handler: p.handler, callId: p.callId, deadlineMs: p.deadlineMs }, 'invoke timed out; cancel sent');
      if (this.loud.take(`${p.peer}|timeout`).loud) {
        this.raise(FEDERATION_EVENTS.invokeTimeout, {
          peer: p.peer,
          handler: p.handler,
          callId: p.callId,
          deadlineMs: Math.round(p.deadlineMs),
          elapsedMs: Math.round(elapsedMs),
        });
      }
    });
  }

  private onResult(m: InboundMessage): void {
    if (!resultCheck.Check(m.data)) {
      this.deps.logger.warn({ peer: m.computer, problem: wireProblem(resultCheck, m.data) }, 'a malformed invoke result was dropped');
      return;
    }
    const r = m.data;
    const p = this.pending.get(r.callId);
    // Only the node we called answers a call: anything else is late, or not ours.
    if (!p || p.nodeId !== m.nodeId) return;
    const elapsedMs = round1(performance.now() - p.t0);
    const base = { peer: p.peer, handler: p.handler, callId: p.callId };
    if (r.ok) {
      const text = r.result ?? 'null';
      let result: unknown;
      try {
        if (jsonDepth(text, MAX_PAYLOAD_DEPTH) > MAX_PAYLOAD_DEPTH) throw new Error(`nested deeper than ${MAX_PAYLOAD_DEPTH} levels`);
        result = JSON.parse(text);
      } catch (err) {
        this.stats.rejected++;
        p.settle(new WeftError('WEFT_INVOKE_REJECTED', `${p.peer} answered ${p.handler} with a result that is not readable JSON: ${(err as Error).message}`, { details: { ...base, code: 'INVALID' } }));
        return;
      }
      this.stats.ok++;
      p.settle(undefined, { ...base, result, elapsedMs, ...(r.elapsedMs !== undefined ? { remoteElapsedMs: r.elapsedMs } : {}) });
      return;
    }
    const code: InvokeCode = r.code ?? 'FAILED';
    const reason = r.reason ?? 'no reason given';
    const details = { ...base, code, reason, ...(r.budget ? { budget: r.budget } : {}), ...(r.at ? { at: r.at } : {}), elapsedMs };
    if (code === 'TIMEOUT') {
      this.stats.timeouts++;
      p.settle(new WeftError('WEFT_INVOKE_TIMEOUT', `${p.handler} on ${p.peer} ran out of time: ${reason}`, { details }));
      if (this.loud.take(`${p.peer}|timeout`).loud) {
        this.raise(FEDERATION_EVENTS.invokeTimeout, { ...base, deadlineMs: Math.round(p.deadlineMs), elapsedMs: Math.round(elapsedMs) });
      }
      return;
    }
    this.stats.rejected++;
    const refused = REFUSAL_CODES.has(code);
    // A refusal relayed by invoke.forward names the node that refused in its reason.
    const message = r.at && r.at !== p.peer ? `${p.handler} on ${p.peer}: ${reason}` : refused ? `${p.peer} refused ${p.handler}: ${code}: ${reason}` : `${p.handler} on ${p.peer} failed (${code}): ${reason}`;
    p.settle(new WeftError('WEFT_INVOKE_REJECTED', message, { details }));
    if (refused && this.loud.take(`${p.peer}|out|${code}`).loud) {
      this.raise(FEDERATION_EVENTS.invokeRejected, { ...base, code, reason: reason.slice(0, 2000), direction: 'outbound' });
    }
  }

  private sendCancel(peer: string, callId: string): Promise<void> {
    return this.deps.mesh.sendMessage(peer, INVOKE_MESSAGES.cancel, { callId }, { timeoutMs: 5000 }).catch((err: Error) => {
      this.deps.logger.info({ peer, callId, err: err.message }, 'invoke cancel not delivered');
    });
  }

  // ---- the callee's side ----

  private resolve(name: string): { handler: InvokeHandler; kind: string } | undefined {
    if (this.forwardOff(name)) return undefined;
    const own = this.registered.get(name);
    if (own) return { handler: own, kind: 'builtin' };
    for (const s of this.sources) {
      try {
        const h = s.resolve(name);
        if (h) return { handler: h, kind: s.kind };
      } catch (err) {
        this.deps.logger.warn({ source: s.kind, handler: name, err: (err as Error).message }, 'invoke handler source failed to resolve a handler');
      }
    }
    return undefined;
  }

  /**
   * Takes the request off the ingress at once: the work runs beside it, so a slow handler
   * never holds a mesh slot. The organ's stop waits (bounded) for what it still serves.
   */
  private onRequest(m: InboundMessage): void {
    this.track(this.serve(m).catch((err: Error) => this.deps.logger.error({ peer: m.computer, err: err.message }, 'serving an invoke failed')));
  }

  /** Keeps `work` in what stop waits for until it settles. */
  private track(work: Promise<void>): void {
    this.serving.add(work);
    void work.finally(() => this.serving.delete(work));
  }

  /** The enclave of a node as this node sees it (federation.enclaves, else its cluster, else its name). */
  private enclaveOfNode(computer: string, nodeId: string, peer: KnownPeer | undefined): string {
    let fingerprint: string | undefined;
    if (Object.keys(this.init.enclaves).length > 0) {
      try {
        fingerprint = fingerprintOfNodeId(nodeId);
      } catch {
        fingerprint = undefined;
      }
    }
    return enclaveOf({ computer, nodeId, ...(fingerprint ? { fingerprint } : {}), ...(peer?.cluster ? { cluster: peer.cluster } : {}) }, this.init.enclaves);
  }

  private async serve(m: InboundMessage): Promise<void> {
    const t0 = performance.now();
    const receivedAt = this.deps.clock.now();
    const peer = this.deps.peers.get(m.nodeId) ?? this.deps.peers.byName(m.computer);
    const data = m.data as { callId?: unknown; handler?: unknown } | null;
    const rawCallId = typeof data?.callId === 'string' && /^[A-Za-z0-9._:-]{1,100}$/.test(data.callId) ? data.callId : undefined;
    const rawHandler = typeof data?.handler === 'string' ? data.handler.slice(0, 200) : '?';
    // Trust first, before even the request's shape: an untrusted peer learns nothing here.
    if (!peer || peer.trustLevel === 'untrusted') {
      this.refuse(m, { peer: m.computer, callId: rawCallId, handler: rawHandler, pipeline: undefined, chain: [] }, {
        code: 'FORBIDDEN',
        reason: `${m.computer} is ${peer ? 'untrusted' : 'not a known peer'} here: it may not invoke`,
      });
      return;
    }
    if (!requestCheck.Check(m.data)) {
      this.refuse(m, { peer: m.computer, callId: rawCallId, handler: rawHandler, pipeline: undefined, chain: [] }, {
        code: 'INVALID',
        reason: `malformed invoke request: ${wireProblem(requestCheck, m.data)}`,
      });
      return;
    }
    const req = m.data;
    const key = `${m.nodeId}|${req.callId}`;
    if (this.running.has(key)) return; // the same request again: it is being served
    const chain: readonly ChainLink[] = req.chain ?? [];
    const rc: RefusalContext = { peer: m.computer, callId: req.callId, handler: req.handler, pipeline: req.pipeline, chain };
    const enclave = this.enclaveOfNode(m.computer, m.nodeId, peer);
    const payloadBytes = Buffer.byteLength(req.payload);
    const refusal = this.admit(req, m, enclave, chain, payloadBytes);
    if ('code' in refusal) {
      this.refuse(m, rc, { ...refusal, enclave });
      return;
    }
    const { found, deadlineMs, budgets } = refusal;
    let payload: unknown;
    try {
      if (jsonDepth(req.payload, MAX_PAYLOAD_DEPTH) > MAX_PAYLOAD_DEPTH) throw new Error(`nested deeper than ${MAX_PAYLOAD_DEPTH} levels`);
      payload = JSON.parse(req.payload);
    } catch (err) {
      this.refuse(m, rc, { code: 'INVALID', reason: `the payload is not readable JSON: ${(err as Error).message}`, enclave });
      return;
    }
    const run: Running = { key, callId: req.callId, peer: m.computer, handler: req.handler, kind: found.kind, t0, ac: new AbortController() };
    this.running.set(key, run);
    // The handler stops at the deadline or when its wall or CPU budget is spent, whichever is
    // first (CPU is charged as elapsed time: Node cannot meter one call's CPU).
    const stopAt = stopLimit(deadlineMs, budgets);
    const stopTimer = after(this.deps.clock, stopAt.ms, () => this.abortRun(run, stopAt.why));
    const ctx: InvokeContext = {
      callId: req.callId,
      caller: m.computer,
      callerNodeId: m.nodeId,
      enclave,
      deadlineAt: receivedAt + deadlineMs,
      receivedAt,
      budgets,
      pipeline: req.pipeline,
      handler: req.handler,
      hop: req.hop,
      chain,
      payloadBytes,
      signal: run.ac.signal,
    };
    const work = Promise.resolve().then(() => found.handler(payload, ctx));
    let answer: InvokeResultWire;
    try {
      const value = await untilAborted(work, run.ac.signal);
      answer = this.resultAnswer(req.callId, value);
      this.stats.served++;
    } catch (err) {
      answer = run.why ? this.stoppedAnswer(req.callId, run, deadlineMs, budgets) : failedAnswer(req.callId, err);
      if (!run.why) this.deps.logger.info({ peer: m.computer, handler: req.handler, callId: req.callId, err: (err as Error).message }, 'invoke handler failed');
    } finally {
      stopTimer();
      this.running.delete(key);
    }
    answer.elapsedMs = round1(performance.now() - t0);
    if (run.why) {
      this.stats.cancelled++;
      this.track(this.auditStop(run, work));
    }
    // A caller that cancelled is gone: nobody waits for an answer.
    if (run.why !== 'cancel') await this.reply(m.computer, answer);
  }

  /**
   * The checks before any work, in order: every node the call was forwarded for is trusted
   * here (the direct caller was checked already), the node is not stopping, the handler
   * exists, the payload fits, a slot is free, the budgets, the enclave policy for the caller's
   * enclave and every enclave of the chain.
   */
  private admit(
    req: InvokeRequestWire,
    m: InboundMessage,
    enclave: string,
    chain: readonly ChainLink[],
    payloadBytes: number,
  ): Refusal | { found: { handler: InvokeHandler; kind: string }; deadlineMs: number; budgets: Required<InvokeBudgets> } {
    // A forwarder never lends its trust: a node untrusted here may not call through another.
    const froms = [enclave];
    for (const link of chain) {
      const known = this.deps.peers.get(link.nodeId);
      if (known?.trustLevel === 'untrusted') {
        return { code: 'FORBIDDEN', reason: `${m.computer} forwarded the call for ${link.computer.slice(0, 200)}, which is untrusted here: it may not invoke` };
      }
      // Its enclave as the forwarder judged it, and as this node judges it when it knows it.
      froms.push(link.enclave);
      if (known) froms.push(this.enclaveOfNode(known.computer, link.nodeId, known));
    }
    if (this.stopping) return { code: 'STOPPING', reason: 'the node is stopping' };
    const found = this.resolve(req.handler);
    if (!found) {
      return {
        code: 'NO_HANDLER',
        reason:
          req.handler === 'invoke.forward' && this.forwardOff(req.handler)
            ? 'invoke.forward is off here (federation.invoke_forward = false)'
            : `no handler named '${req.handler}' here (invoke.list names them)`,
      };
    }
    const maxPayload = this.init.maxPayloadBytes ?? BUDGET_LIMITS.defaultBytes;
    if (payloadBytes > maxPayload) return { code: 'TOO_LARGE', reason: `the payload is ${payloadBytes} bytes; this node takes at most ${maxPayload} in one call` };
    if (this.running.size >= this.init.maxConcurrent) {
      return { code: 'BUSY', reason: `${this.running.size} calls are running here already (federation.invoke_max_concurrent = ${this.init.maxConcurrent})` };
    }
    const deadlineMs = Math.min(req.deadlineMs, this.init.maxDeadlineMs);
    const budgets: Required<InvokeBudgets> = { ...req.budgets, hops: Math.min(req.budgets.hops, BUDGET_LIMITS.maxHops) };
    const spent = checkBudgets({ deadlineMs, budgets, payloadBytes });
    if (spent) return { code: 'LIMIT', ...spent };
    const depth = Math.max(req.hop, chain.length);
    if (depth >= BUDGET_LIMITS.maxHops) return { code: 'LIMIT', budget: 'hops', remaining: 0, needed: 1, reason: `the chain is ${depth} calls deep; at most ${BUDGET_LIMITS.maxHops}` };
    const policy = checkEnclaves({ from: froms, to: this.init.enclave, handler: req.handler, pipeline: req.pipeline, pipelines: this.init.pipelines, edges: this.init.edges });
    if (policy) {
      const via = policy.from !== enclave ? ` (the call was forwarded by ${m.computer} for ${chain.map((l) => l.computer).join(', ')})` : '';
      return { code: policy.kind === 'edge' ? 'EDGE' : 'PIPELINE', reason: `${policy.reason}${via}`, from: policy.from, to: policy.to };
    }
    return { found, deadlineMs, budgets };
  }

  /**
   * invoke.forward's own refusal to call onward (what is left of the deadline is too little):
   * counted, audited and raised here as `sec.limit.hit` like any refusal; the error it answers
   * goes back to the caller as LIMIT, naming this node.
   */
  private onwardSpent(ctx: InvokeContext, r: BudgetRefusal): WeftError {
    const refusal: Refusal = { code: 'LIMIT', ...r, reason: `${r.reason}: not forwarded`, enclave: ctx.enclave };
    this.stats.refused.LIMIT = (this.stats.refused.LIMIT ?? 0) + 1;
    this.report({ peer: ctx.caller, callId: ctx.callId, handler: ctx.handler, pipeline: ctx.pipeline, chain: ctx.chain }, refusal);
    return new WeftError('WEFT_LIMIT', refusal.reason, {
      details: { code: 'LIMIT', budget: r.budget, remaining: r.remaining, ...(r.needed !== undefined ? { needed: r.needed } : {}), at: this.deps.node.self.computer },
    });
  }

  /** Answers a refusal at once, then audits and raises it (at most LOUD_PER_MINUTE per peer and code). */
  private refuse(m: InboundMessage, rc: RefusalContext, r: Refusal): void {
    this.stats.refused[r.code] = (this.stats.refused[r.code] ?? 0) + 1;
    if (rc.callId) void this.reply(m.computer, { callId: rc.callId, ok: false, code: r.code, reason: r.reason.slice(0, 4000), ...(r.budget ? { budget: r.budget } : {}) });
    this.report(rc, r);
  }

  /** Logs, audits and raises a refusal (at most LOUD_PER_MINUTE per peer and code). */
  private report(rc: RefusalContext, r: Refusal): void {
    const { peer, callId, handler } = rc;
    const gate = this.loud.take(`${peer}|in|${r.code}`);
    this.deps.logger.info({ peer, handler, callId, code: r.code, reason: r.reason }, 'invoke refused');
    if (!gate.loud) return;
    const pipeline = rc.pipeline;
    const origin = {
      ...(r.enclave ? { enclave: r.enclave.slice(0, 200) } : {}),
      ...(pipeline?.pipeline_id ? { pipeline_id: pipeline.pipeline_id } : {}),
      ...(pipeline?.stage_id ? { stage_id: pipeline.stage_id } : {}),
      ...(pipeline?.dag_run_id ? { dag_run_id: pipeline.dag_run_id } : {}),
      ...(pipeline?.hop_index !== undefined ? { hop_index: pipeline.hop_index } : {}),
    };
    void this.deps.audit
      .record(
        'invoke.refused',
        peer,
        {
          callId: callId ?? null,
          handler,
          code: r.code,
          reason: r.reason.slice(0, 2000),
          ...(r.budget ? { budget: r.budget, remaining: r.remaining ?? null, needed: r.needed ?? null } : {}),
          ...(Object.keys(origin).length ? { origin } : {}),
          ...(rc.chain.length > 0 ? { chain: rc.chain.map((l) => ({ computer: l.computer, nodeId: l.nodeId, enclave: l.enclave })) } : {}),
          ...(gate.suppressedBefore ? { suppressedBefore: gate.suppressedBefore } : {}),
        },
        false,
      )
      .catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'invoke refusal not audited'));
    const base = { peer, handler: handler.slice(0, 200), callId: callId ?? '-', reason: r.reason.slice(0, 2000) };
    const type = REFUSAL_EVENTS[r.code];
    if (type === FEDERATION_EVENTS.limitHit) {
      this.raise(type, { ...base, origin, budget: r.budget ?? 'deadline', remaining: r.remaining ?? 0, ...(r.needed !== undefined ? { needed: r.needed } : {}) });
    } else if (type === FEDERATION_EVENTS.edgeDeny) {
      this.raise(type, { ...base, origin, from: r.from ?? '?', to: r.to ?? this.init.enclave });
    } else if (type) {
      this.raise(type, { ...base, origin });
    } else {
      this.raise(FEDERATION_EVENTS.invokeRejected, { ...base, code: r.code, direction: 'inbound' });
    }
  }

  private resultAnswer(callId: string, value: unknown): InvokeResultWire {
    let text: string | undefined;
    try {
      text = JSON.stringify(value === undefined ? null : value);
    } catch (err) {
      return { callId, ok: false, code: 'FAILED', reason: `the handler's result is not JSON: ${(err as Error).message}` };
    }
    if (typeof text !== 'string') return { callId, ok: false, code: 'FAILED', reason: "the handler's result has no JSON form" };
    const max = this.init.maxResultBytes ?? 1024 * 1024;
    const bytes = Buffer.byteLength(text);
    if (bytes > max) return { callId, ok: false, code: 'TOO_LARGE', reason: `the result is ${bytes} bytes; at most ${max} are sent back` };
    return { callId, ok: true, result: text };
  }

  private stoppedAnswer(callId: string, run: Running, deadlineMs: number, budgets: Required<InvokeBudgets>): InvokeResultWire {
    switch (run.why) {
      case 'wall':
        return { callId, ok: false, code: 'TIMEOUT', budget: 'wall_ms', reason: `stopped when its wall-clock budget of ${Math.round(budgets.wallMs)} ms was spent` };
      case 'cpu':
        return { callId, ok: false, code: 'TIMEOUT', budget: 'cpu_ms', reason: `stopped when its CPU budget of ${Math.round(budgets.cpuMs)} ms was spent (charged as elapsed time)` };
      case 'deadline':
        return { callId, ok: false, code: 'TIMEOUT', budget: 'deadline', reason: `stopped at its deadline of ${Math.round(deadlineMs)} ms` };
      case 'stop':
        return { callId, ok: false, code: 'STOPPING', reason: 'the node is stopping: the run was stopped' };
      default:
        return { callId, ok: false, code: 'CANCELLED', reason: 'cancelled by the caller' };
    }
  }

  private onCancel(m: InboundMessage): void {
    if (!cancelCheck.Check(m.data)) return;
    const run = this.running.get(`${m.nodeId}|${m.data.callId}`);
    if (!run) return; // finished already, or never ours
    this.deps.logger.info({ peer: m.computer, handler: run.handler, callId: run.callId }, 'invoke cancelled by its caller');
    this.abortRun(run, 'cancel');
  }

  private abortRun(run: Running, why: NonNullable<Running['why']>): void {
    if (run.why) return;
    run.why = why;
    run.ac.abort(new WeftError('WEFT_INVOKE_TIMEOUT', `invoke ${run.callId} stopped (${why})`));
  }

  /** Records a stopped run once it has settled (a cartridge's sandbox run killed), or that it did not within the grace. */
  private async auditStop(run: Running, work: Promise<unknown>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const settled = await Promise.race([
      work.then(
        () => 'it finished anyway; its result was discarded',
        (err: Error) => err.message.slice(0, 500),
      ),
      new Promise<undefined>((r) => {
        timer = setTimeout(() => r(undefined), STOP_GRACE_MS);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
    if (!this.loud.take(`${run.peer}|stopped`).loud) return;
    const reason = {
      cancel: 'cancelled by the caller',
      deadline: 'its deadline passed',
      wall: 'its wall-clock budget was spent',
      cpu: 'its CPU budget was spent',
      stop: 'the node is stopping',
    }[run.why ?? 'cancel'];
    await this.deps.audit
      .record(
        'invoke.cancelled',
        run.peer,
        {
          callId: run.callId,
          handler: run.handler,
          kind: run.kind,
          why: run.why ?? 'cancel',
          reason,
          elapsedMs: round1(performance.now() - run.t0),
          stopped: settled !== undefined,
          detail: settled ?? `the handler did not stop within ${STOP_GRACE_MS} ms; its result is discarded`,
        },
        true,
      )
      .catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'invoke cancellation not audited'));
  }

  private reply(peer: string, answer: InvokeResultWire): Promise<void> {
    return this.deps.mesh.sendMessage(peer, INVOKE_MESSAGES.result, answer, { timeoutMs: 5000 }).catch((err: Error) => {
      this.deps.logger.info({ peer, callId: answer.callId, err: err.message }, 'invoke result not delivered');
    });
  }

  /** Raises an event once the current answer is on its way (never on a caller's clock). */
  private raise(event: string, payload: Record<string, unknown>): void {
    setImmediate(() => {
      void this.deps.node.emit({ event, payload }).catch((err: Error) => this.deps.logger.warn({ event, err: err.message }, 'invoke event not raised'));
    });
  }
}

/** When and why a run is stopped: the first of its deadline, its wall budget and its CPU budget (ties: the deadline). */
function stopLimit(deadlineMs: number, b: Required<InvokeBudgets>): { ms: number; why: 'deadline' | 'wall' | 'cpu' } {
  let at: { ms: number; why: 'deadline' | 'wall' | 'cpu' } = { ms: deadlineMs, why: 'deadline' };
  if (b.wallMs < at.ms) at = { ms: b.wallMs, why: 'wall' };
  if (b.cpuMs < at.ms) at = { ms: b.cpuMs, why: 'cpu' };
  return at;
}

const INVOKE_CODE_SET: ReadonlySet<string> = new Set<string>(INVOKE_CODES);

/** A handler's failure as an answer: an onward refusal keeps its code (invoke.forward), anything else is FAILED. */
function failedAnswer(callId: string, err: unknown): InvokeResultWire {
  const message = (err as Error)?.message ?? String(err);
  if (err instanceof WeftError) {
    const d = err.details as { code?: unknown; budget?: unknown; peer?: unknown; at?: unknown } | undefined;
    const code = typeof d?.code === 'string' && INVOKE_CODE_SET.has(d.code) ? (d.code as InvokeCode) : undefined;
    if (code) {
      // An onward call's answer (invoke.forward): its code goes back, with where it came from.
      const at = typeof d?.at === 'string' ? d.at : typeof d?.peer === 'string' ? d.peer : undefined;
      return { callId, ok: false, code, reason: message.slice(0, 4000), ...(typeof d?.budget === 'string' ? { budget: d.budget.slice(0, 20) } : {}), ...(at ? { at: at.slice(0, 200) } : {}) };
    }
    const mapped: Partial<Record<ErrorCode, InvokeCode>> = { WEFT_VALIDATION: 'INVALID', WEFT_TOO_LARGE: 'TOO_LARGE', WEFT_INVOKE_TIMEOUT: 'TIMEOUT' };
    return { callId, ok: false, code: mapped[err.code] ?? 'FAILED', reason: message.slice(0, 4000) };
  }
  return { callId, ok: false, code: 'FAILED', reason: message.slice(0, 4000) };
}

