import type { Logger } from '../../util/index.js';
import { valueDepth } from '../../envelope/index.js';
import { CartridgeLoadError, SandboxStoppedError, SandboxUnavailableError } from '../errors.js';
import { type CartridgePackage, validatePackage } from '../package.js';
import { ChildHandle, type ExitReason } from './child.js';
import { SANDBOX_EVENT_ERRORS as E, type SandboxEventErrorCode } from './protocol.js';
import {
  decodeOutcome,
  failure,
  minimalEventValidator,
  type SandboxEventError,
  type SandboxEventResult,
} from './result.js';
import type { CartridgeStats, Sandbox, SandboxDeps, SandboxInit, SandboxStatus } from './types.js';

/** Levels of nesting a cartridge may add to its input before its result passes `maxDepth`. */
const INPUT_DEPTH_MARGIN = 16;

interface Entry {
  pkg: CartridgePackage;
  emits: ReadonlySet<string>;
  suspended: boolean;
  loadError: string | null;
  inChild: boolean;
  stats: {
    -readonly [K in keyof Omit<CartridgeStats, 'name' | 'version' | 'status'>]: CartridgeStats[K];
  };
}

type Job =
  | { kind: 'load'; pkg: CartridgePackage; resolve: () => void; reject: (err: Error) => void }
  | { kind: 'unload'; name: string; resolve: () => void }
  | { kind: 'evict'; name: string }
  | {
      kind: 'run';
      name: string;
      texts: string[];
      /** Where each text's result goes in `results`. */
      slots: number[];
      results: SandboxEventResult[];
      resolve: () => void;
    };

const noStats = (): Entry['stats'] => ({
  invocations: 0,
  successes: 0,
  failures: 0,
  timeouts: 0,
  memoryFailures: 0,
  kills: 0,
  consecutiveFailures: 0,
  lastInvokedAt: null,
  lastError: null,
});

/**
 * Creates the sandboxed cartridge runtime: isolated-vm engines (one per cartridge, no I/O of
 * any kind) inside one child process the host kills on deadline or memory cap and restarts.
 *
 * @example
 * const sandbox = createSandbox({ timeoutMs: 50 }, { logger, clock: systemClock, onSuspended: (s) => report(s) });
 * await sandbox.start();
 * await sandbox.load(await readPackageDir('./tagger'));
 * const results = await sandbox.process('tagger', events);
 * await sandbox.stop();
 */
export function createSandbox(init: SandboxInit, deps: SandboxDeps): Sandbox {
  return new SandboxRuntime(init, deps);
}

class SandboxRuntime implements Sandbox {
  private readonly o: Required<Omit<SandboxInit, 'engineTimeoutMs'>> & { engineTimeoutMs: number };
  private readonly logger: Logger;
  private state: 'stopped' | 'started' = 'stopped';
  private stopping: Promise<void> | null = null;
  private child: ChildHandle | null = null;
  private readonly entries = new Map<string, Entry>();
  private readonly queue: Job[] = [];
  private pumping = false;
  private seq = 0;
  private pendingEvents = 0;

  constructor(
    init: SandboxInit,
    private readonly deps: SandboxDeps,
  ) {
    const timeoutMs = init.timeoutMs ?? 100;
    this.o = {
      timeoutMs,
      memoryLimitMb: Math.max(8, init.memoryLimitMb ?? 32),
      rssCapMb: init.rssCapMb ?? 384,
      suspendAfter: init.suspendAfter ?? 5,
      killGraceMs: init.killGraceMs ?? 1000,
      maxBatch: Math.max(1, init.maxBatch ?? 256),
      maxPendingEvents: init.maxPendingEvents ?? 65_536,
      maxResultChars: init.maxResultChars ?? 1024 * 1024,
      maxEmitsPerEvent: init.maxEmitsPerEvent ?? 64,
      maxDepth: init.maxDepth ?? 64,
      loadTimeoutMs: init.loadTimeoutMs ?? 1000,
      startTimeoutMs: init.startTimeoutMs ?? 15_000,
      rssPollMs: init.rssPollMs ?? 100,
      engineTimeoutMs: init.engineTimeoutMs ?? timeoutMs,
      validateEvent: init.validateEvent ?? minimalEventValidator,
    };
    this.logger = deps.logger.child({ module: 'sandbox' });
  }

  async start(): Promise<void> {
    if (this.state === 'started') return;
    if (this.stopping) await this.stopping;
    this.stopping = null;
    this.state = 'started';
  }

  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.state = 'stopped';
    for (const job of this.queue.splice(0)) this.abandon(job);
    const child = this.child;
    if (child) {
      child.kill('stop');
      await child.exit;
    }
    this.child = null;
    this.entries.clear();
  }

  async load(pkg: CartridgePackage, options?: { signal?: AbortSignal }): Promise<void> {
    options?.signal?.throwIfAborted();
    const valid = validatePackage(pkg);
    if (this.state !== 'started') throw new SandboxStoppedError();
    return new Promise<void>((resolve, reject) => {
      this.enqueue({ kind: 'load', pkg: valid, resolve, reject });
    });
  }

  async unload(name: string): Promise<void> {
    if (this.state !== 'started') return;
    return new Promise<void>((resolve) => this.enqueue({ kind: 'unload', name, resolve }));
  }

  resume(name: string): void {
    const entry = this.entries.get(name);
    if (!entry) return;
    entry.suspended = false;
    entry.loadError = null;
    entry.stats.consecutiveFailures = 0;
    this.logger.info({ cartridge: name }, 'cartridge resumed');
  }

  async process(
    name: string,
    events: readonly object[],
    options?: { signal?: AbortSignal },
  ): Promise<SandboxEventResult[]> {
    options?.signal?.throwIfAborted();
    if (this.state !== 'started') throw new SandboxStoppedError();
    const results = new Array<SandboxEventResult>(events.length);
    if (events.length === 0) return results;
    if (this.pendingEvents + events.length > this.o.maxPendingEvents) {
      return results.fill(
        failure(E.OVERLOADED, `more than ${this.o.maxPendingEvents} events are waiting for the sandbox`),
      );
    }
    const waits: Promise<void>[] = [];
    let texts: string[] = [];
    let slots: number[] = [];
    const flush = () => {
      if (texts.length === 0) return;
      const job: Extract<Job, { kind: 'run' }> = {
        kind: 'run',
        name,
        texts,
        slots,
        results,
        resolve: () => undefined,
      };
      waits.push(
        new Promise<void>((resolve) => {
          job.resolve = resolve;
        }),
      );
      this.pendingEvents += texts.length;
      this.enqueue(job);
      texts = [];
      slots = [];
    };
    for (let i = 0; i < events.length; i++) {
      let text: string | undefined;
      try {
        text = JSON.stringify(events[i]);
      } catch (err) {
        results[i] = failure(E.BAD_INPUT, `event is not JSON: ${(err as Error).message}`);
        continue;
      }
      if (typeof text !== 'string') {
        results[i] = failure(E.BAD_INPUT, 'event has no JSON form');
        continue;
      }
      // An input this deep could push a cartridge that passes it on past the result limit: the
      // failure would be the input's, so it is refused here and never counts against the cartridge.
      const depth = valueDepth(events[i], this.o.maxDepth);
      if (depth > this.o.maxDepth - INPUT_DEPTH_MARGIN) {
        results[i] = failure(E.BAD_INPUT, `event is nested ${depth} levels deep; cartridges take at most ${this.o.maxDepth - INPUT_DEPTH_MARGIN}`);
        continue;
      }
      texts.push(text);
      slots.push(i);
      if (texts.length >= this.o.maxBatch) flush();
    }
    flush();
    await Promise.all(waits);
    return results;
  }

  stats(name: string): CartridgeStats | undefined {
    const entry = this.entries.get(name);
    return entry ? this.snapshot(name, entry) : undefined;
  }

  allStats(): CartridgeStats[] {
    return [...this.entries].map(([name, entry]) => this.snapshot(name, entry));
  }

  status(): SandboxStatus {
    if (this.state === 'stopped') return { type: 'stopped' };
    const child = this.child;
    if (!child || child.done) return { type: 'idle' };
    return { type: 'running', pid: child.pid, rss: child.rss };
  }

  private snapshot(name: string, entry: Entry): CartridgeStats {
    const status = entry.suspended ? 'suspended' : entry.loadError ? 'failed' : 'active';
    return { name, version: entry.pkg.manifest.version, status, ...entry.stats };
  }

  // ---- the queue: one request in flight to the child at a time ----

  private enqueue(job: Job): void {
    this.queue.push(job);
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0) {
        const job = this.queue.shift() as Job;
        if (this.state !== 'started') {
          this.abandon(job);
          continue;
        }
        try {
          await this.execute(job);
        } catch (err) {
          // execute settles its job on every path; this is a bug guard, not a flow.
          this.logger.error({ err: (err as Error).message }, 'sandbox job failed unexpectedly');
          this.abandon(job, err as Error);
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Settles a job that will not run. */
  private abandon(job: Job, err?: Error): void {
    switch (job.kind) {
      case 'load':
        job.reject(err ?? new SandboxStoppedError());
        return;
      case 'unload':
        job.resolve();
        return;
      case 'evict':
        return;
      case 'run':
        this.fill(job, failure(err ? E.UNAVAILABLE : E.STOPPED, err?.message ?? 'the sandbox was stopped'));
        return;
    }
  }

  private fill(job: Extract<Job, { kind: 'run' }>, result: SandboxEventResult): void {
    for (const slot of job.slots) job.results[slot] = result;
    this.pendingEvents -= job.texts.length;
    job.resolve();
  }

  private async execute(job: Job): Promise<void> {
    switch (job.kind) {
      case 'load':
        return this.executeLoad(job);
      case 'unload': {
        const entry = this.entries.get(job.name);
        this.entries.delete(job.name);
        if (entry?.inChild) await this.tellChild({ t: 'unload', seq: ++this.seq, name: job.name });
        this.stopIfIdle();
        job.resolve();
        return;
      }
      case 'evict': {
        const entry = this.entries.get(job.name);
        if (entry?.inChild) {
          entry.inChild = false;
          await this.tellChild({ t: 'unload', seq: ++this.seq, name: job.name });
        }
        this.stopIfIdle();
        return;
      }
      case 'run':
        return this.executeRun(job);
    }
  }

  private async tellChild(msg: { t: 'unload'; seq: number; name: string }): Promise<void> {
    const child = this.child;
    if (child && !child.done) await child.request(msg, this.o.killGraceMs);
  }

  private async executeLoad(job: Extract<Job, { kind: 'load' }>): Promise<void> {
    const { name } = job.pkg.manifest;
    let child: ChildHandle;
    try {
      child = await this.ensureChild(name);
    } catch (err) {
      job.reject(err as Error);
      return;
    }
    const outcome = await child.request(this.loadMessage(job.pkg), this.o.loadTimeoutMs + this.o.killGraceMs);
    const previous = this.entries.get(name);
    if (outcome.type === 'reply' && outcome.msg.t === 'loaded' && outcome.msg.error === undefined) {
      this.entries.set(name, {
        pkg: job.pkg,
        emits: new Set(job.pkg.manifest.emits),
        suspended: false,
        loadError: null,
        inChild: true,
        stats: previous ? { ...previous.stats, consecutiveFailures: 0 } : noStats(),
      });
      this.logger.info(
        { cartridge: name, version: job.pkg.manifest.version },
        'cartridge loaded into the sandbox',
      );
      job.resolve();
      return;
    }
    // The child dropped any previous version before trying: so does the host.
    this.entries.delete(name);
    const why =
      outcome.type === 'dead'
        ? outcome.detail
        : outcome.msg.t === 'loaded'
          ? (outcome.msg.error ?? 'unknown error')
          : 'unexpected answer';
    this.stopIfIdle();
    job.reject(new CartridgeLoadError(name, why));
  }

  private loadMessage(pkg: CartridgePackage) {
    return {
      t: 'load' as const,
      seq: ++this.seq,
      name: pkg.manifest.name,
      source: pkg.source,
      entryPoint: pkg.manifest.entryPoint,
      emits: [...pkg.manifest.emits],
      memoryLimitMb: this.o.memoryLimitMb,
      timeoutMs: this.o.loadTimeoutMs,
    };
  }

  private async executeRun(job: Extract<Job, { kind: 'run' }>): Promise<void> {
    const entry = this.entries.get(job.name);
    if (!entry)
      return this.fill(job, failure(E.NOT_LOADED, `cartridge '${job.name}' is not loaded in the sandbox`));
    if (entry.suspended) {
      return this.fill(
        job,
        failure(E.SUSPENDED, `cartridge '${job.name}' is suspended after repeated failures`),
      );
    }
    let child: ChildHandle;
    try {
      child = await this.ensureChild();
      if (!entry.inChild && !entry.loadError) await this.reload(child, job.name, entry);
    } catch (err) {
      return this.fill(job, failure(E.UNAVAILABLE, (err as Error).message));
    }
    if (entry.loadError) {
      return this.fill(
        job,
        failure(E.NOT_LOADED, `cartridge '${job.name}' did not reload: ${entry.loadError}`),
      );
    }
    const n = job.texts.length;
    const outcome = await child.request(
      {
        t: 'run',
        seq: ++this.seq,
        name: job.name,
        events: job.texts,
        timeoutMs: this.o.engineTimeoutMs,
        maxResultChars: this.o.maxResultChars,
        maxEmits: this.o.maxEmitsPerEvent,
        stopAfterFailures: Math.max(1, this.o.suspendAfter - entry.stats.consecutiveFailures),
      },
      this.o.timeoutMs * n + this.o.killGraceMs,
    );
    if (outcome.type === 'dead' && (outcome.reason === 'stop' || outcome.reason === 'idle')) {
      // Stopped by the host on purpose: not the cartridge's failure.
      return this.fill(job, failure(E.STOPPED, outcome.detail));
    }
    const stats = entry.stats;
    stats.invocations += n;
    stats.lastInvokedAt = this.deps.clock.now();
    if (outcome.type === 'dead') {
      const code: SandboxEventErrorCode = outcome.reason === 'crash' ? E.CRASHED : E.KILLED;
      const error = { code, message: outcome.detail };
      stats.failures += n;
      stats.kills += 1;
      if (outcome.reason === 'timeout') stats.timeouts += 1;
      // One kill is one incident, however many events were in the batch.
      this.noteFailure(job.name, entry, error);
      this.fill(job, { ok: false, error });
      return;
    }
    const texts = outcome.msg.t === 'ran' ? outcome.msg.results : [];
    for (let i = 0; i < n; i++) {
      const text = texts[i];
      // Not run: the child stopped the batch at the failure that suspends the cartridge.
      if (entry.suspended && typeof text === 'string' && text.startsWith(`{"x":"${E.SUSPENDED}"`)) {
        stats.invocations -= 1;
        job.results[job.slots[i] as number] = failure(E.SUSPENDED, `cartridge '${job.name}' is suspended after repeated failures`);
        continue;
      }
      // Sized here as well: the child's own bound is only as good as the engine it runs.
      const result =
        typeof text === 'string' && text.length > this.o.maxResultChars
          ? failure(E.RESULT_TOO_LARGE, `the cartridge's result and emits are ${text.length} characters; at most ${this.o.maxResultChars}`)
          : decodeOutcome(text, entry.emits, this.o.validateEvent, this.o.maxDepth, this.o.maxEmitsPerEvent);
      job.results[job.slots[i] as number] = result;
      if (result.ok) {
        stats.successes += 1;
        stats.consecutiveFailures = 0;
      } else {
        stats.failures += 1;
        if (result.error.code === E.TIMEOUT) stats.timeouts += 1;
        if (result.error.code === E.MEMORY) stats.memoryFailures += 1;
        this.noteFailure(job.name, entry, result.error);
      }
    }
    this.pendingEvents -= n;
    job.resolve();
  }

  private noteFailure(name: string, entry: Entry, error: SandboxEventError): void {
    entry.stats.consecutiveFailures += 1;
    entry.stats.lastError = error;
    if (entry.suspended || entry.stats.consecutiveFailures < this.o.suspendAfter) return;
    entry.suspended = true;
    this.logger.warn(
      { cartridge: name, consecutiveFailures: entry.stats.consecutiveFailures, code: error.code },
      'cartridge suspended after repeated failures',
    );
    // Free its engine; it stays known so `resume` can bring it back.
    this.queue.unshift({ kind: 'evict', name });
    try {
      this.deps.onSuspended?.({
        name,
        version: entry.pkg.manifest.version,
        consecutiveFailures: entry.stats.consecutiveFailures,
        lastError: error,
        stats: this.snapshot(name, entry),
      });
    } catch (err) {
      this.logger.error({ cartridge: name, err: (err as Error).message }, 'onSuspended callback threw');
    }
  }

  // ---- the child process ----

  /** Cartridges that should be loaded in the process. */
  private wanted(): Array<[string, Entry]> {
    return [...this.entries].filter(([, e]) => !e.suspended && !e.loadError);
  }

  private stopIfIdle(): void {
    const child = this.child;
    if (this.wanted().length === 0 && child && !child.done) {
      this.logger.debug({ pid: child.pid }, 'no cartridge left: sandbox process exits');
      child.kill('idle');
    }
  }

  /** The running child, or a fresh one with every wanted cartridge (but `skip`) loaded again. */
  private async ensureChild(skip?: string): Promise<ChildHandle> {
    if (this.child && !this.child.done) return this.child;
    let child: ChildHandle | undefined;
    try {
      child = await ChildHandle.spawn(
        {
          rssCapBytes: this.o.rssCapMb * 1024 * 1024,
          rssPollMs: this.o.rssPollMs,
          startTimeoutMs: this.o.startTimeoutMs,
        },
        this.logger,
        (reason, detail) => this.onChildExit(child, reason, detail),
      );
    } catch (err) {
      throw new SandboxUnavailableError((err as Error).message, err);
    }
    this.child = child;
    this.logger.debug({ pid: child.pid }, 'sandbox process started');
    for (const [name, entry] of this.wanted()) {
      if (name !== skip) await this.reload(child, name, entry);
    }
    return child;
  }

  private async reload(child: ChildHandle, name: string, entry: Entry): Promise<void> {
    const outcome = await child.request(
      this.loadMessage(entry.pkg),
      this.o.loadTimeoutMs + this.o.killGraceMs,
    );
    if (outcome.type === 'reply' && outcome.msg.t === 'loaded' && outcome.msg.error === undefined) {
      entry.inChild = true;
      return;
    }
    entry.loadError =
      outcome.type === 'dead' ? outcome.detail : outcome.msg.t === 'loaded' ? (outcome.msg.error ?? '') : '?';
    this.logger.warn({ cartridge: name, err: entry.loadError }, 'cartridge did not reload into the sandbox');
    if (outcome.type === 'dead') throw new SandboxUnavailableError(outcome.detail);
  }

  private onChildExit(child: ChildHandle | undefined, reason: ExitReason, detail: string): void {
    // `child` is undefined when it died while starting: it never became `this.child`.
    if (child === undefined) return;
    if (this.child === child) {
      this.child = null;
      for (const entry of this.entries.values()) entry.inChild = false;
    }
    if (reason === 'stop' || reason === 'idle') return;
    this.logger.warn(
      { pid: child.pid, reason, detail },
      'sandbox process exited; a new one starts at the next request',
    );
  }
}
