/**
 * Installed cartridges as invoke handlers: an active cartridge whose manifest lists a name
 * under `invoke` serves calls of that name. Each run happens in a sandbox of its own (an
 * isolated-vm engine in a child process, see sovereignty/sandbox): the payload goes in as an
 * event-like input, the object the cartridge returns is the result (its `payload` when it has
 * one). A run is never shared with the pipeline's sandboxes, so a call that hangs holds up no
 * event; when the call is cancelled or its time is up, its sandbox process is killed.
 * Finished sandboxes are kept warm (a few per cartridge) and stopped after a quiet minute.
 * Once the source is stopped no sandbox outlives it: one still loading is stopped when its
 * load ends, one still running is stopped when its run ends, and no reaper is started.
 */
import {
  type CartridgePackage,
  createSandbox,
  type InstalledCartridge,
  type Sandbox,
} from '../sovereignty/index.js';
import { WeftError } from '../errors/index.js';
import { type Clock, every, type Logger } from '../util/index.js';
import type { InvokeContext, InvokeHandler, InvokeHandlerSource } from './invoke.js';

/** What the source needs of the cartridge registry (`runtime.registry` fits). */
export interface InvokeCartridgeRegistry {
  list(options?: { status?: 'active' }): readonly InstalledCartridge[];
  readPackage(name: string): Promise<CartridgePackage>;
}

export interface CartridgeHandlersInit {
  /** Engine heap of one run, MB (default 32). */
  memoryLimitMb?: number;
  /** Resident memory cap of one sandbox process, MB (default 256). */
  rssCapMb?: number;
  /** Longest a run may take whatever its budget says, ms (default 600,000: the organ stops it first). */
  maxRunMs?: number;
  /** Warm sandboxes kept per cartridge between calls (default 2). */
  warmPerCartridge?: number;
  /** A warm sandbox unused this long is stopped, ms (default 60,000). */
  idleMs?: number;
}

export interface CartridgeHandlersDeps {
  logger: Logger;
  clock: Clock;
  /** Where events a cartridge emits through `ctx.emit` go (its manifest declares them). */
  emit?: (input: { event: string; source: string; payload: Record<string, unknown> }) => Promise<unknown>;
}

interface Slot {
  name: string;
  sha: string;
  sandbox: Sandbox;
  lastUsed: number;
  killed: boolean;
}

/**
 * The installed cartridges that declare `invoke`, as a handler source for the invoke organ.
 * @example
 * organ.addSource(cartridgeInvokeHandlers(sov.runtime.registry, {}, { logger, clock, emit: (i) => node.emit(i) }));
 */
export function cartridgeInvokeHandlers(registry: InvokeCartridgeRegistry, init: CartridgeHandlersInit, deps: CartridgeHandlersDeps): InvokeHandlerSource & { status(): Record<string, unknown>; stop(): Promise<void> } {
  return new CartridgeHandlers(registry, init, deps);
}

class CartridgeHandlers implements InvokeHandlerSource {
  readonly kind = 'cartridge';
  private readonly warm = new Map<string, Slot[]>();
  private readonly busy = new Set<Slot>();
  private readonly logger: Logger;
  private stopReaper: (() => void) | undefined;
  private stopped = false;
  private runs = 0;
  private kills = 0;

  constructor(
    private readonly registry: InvokeCartridgeRegistry,
    private readonly init: CartridgeHandlersInit,
    private readonly deps: CartridgeHandlersDeps,
  ) {
    this.logger = deps.logger.child({ mod: 'invoke-cartridges' });
  }

  names(): string[] {
    return this.registry.list({ status: 'active' }).flatMap((c) => c.manifest.invoke ?? []);
  }

  resolve(name: string): InvokeHandler | undefined {
    const c = this.registry.list({ status: 'active' }).find((x) => x.manifest.invoke?.includes(name));
    if (!c) return undefined;
    return (payload, ctx) => this.run(c, name, payload, ctx);
  }

  status(): Record<string, unknown> {
    return { warm: [...this.warm.values()].reduce((n, l) => n + l.length, 0), busy: this.busy.size, runs: this.runs, kills: this.kills };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopReaper?.();
    this.stopReaper = undefined;
    const all = [...this.busy, ...[...this.warm.values()].flat()];
    this.warm.clear();
    this.busy.clear();
    await Promise.all(all.map((s) => s.sandbox.stop()));
  }

  private async run(c: InstalledCartridge, handler: string, payload: unknown, ctx: InvokeContext): Promise<unknown> {
    const slot = await this.take(c, ctx.signal);
    const onAbort = () => {
      // Killing the process is the only way to stop code that loops inside the engine.
      slot.killed = true;
      this.kills++;
      this.logger.info({ cartridge: c.name, handler, callId: ctx.callId }, 'invoke run stopped: sandbox process killed');
      void slot.sandbox.stop();
    };
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    try {
      this.runs++;
      const input = {
        id: ctx.callId,
        event: 'invoke.call',
        source: `invoke:${ctx.caller}`,
        timestamp: new Date(this.deps.clock.now()).toISOString(),
        handler,
        caller: ctx.caller,
        enclave: ctx.enclave,
        deadlineMs: Math.max(0, ctx.deadlineAt - this.deps.clock.now()),
        budgets: ctx.budgets,
        ...(ctx.pipeline ? { pipeline: ctx.pipeline } : {}),
        payload,
      };
      const [r] = await slot.sandbox.process(c.name, [input]);
      if (slot.killed) throw new WeftError('WEFT_CARTRIDGE', `sandbox run of cartridge '${c.name}' stopped: its process was killed`);
      if (!r) throw new WeftError('WEFT_CARTRIDGE', `cartridge '${c.name}' gave no result`);
      if (!r.ok) throw new WeftError('WEFT_CARTRIDGE', `cartridge '${c.name}': ${r.error.code}: ${r.error.message}`);
      for (const e of r.emitted) {
        void this.deps.emit?.({ event: e.type, source: `cartridge:${c.name}`, payload: e.payload }).catch((err: Error) =>
          this.logger.warn({ cartridge: c.name, event: e.type, err: err.message }, 'an event a cartridge emitted while invoked was not accepted'),
        );
      }
      const out = r.event;
      return out === null ? null : 'payload' in out ? out.payload : out;
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
      this.release(slot);
    }
  }

  /** A warm sandbox with this version of the cartridge, or a new one (its process starts with the load). */
  private async take(c: InstalledCartridge, signal: AbortSignal): Promise<Slot> {
    signal.throwIfAborted();
    if (this.stopped) throw new WeftError('WEFT_STOPPED', 'cartridge invoke handlers are stopped');
    const list = this.warm.get(c.name) ?? [];
    let slot: Slot | undefined;
    while (list.length > 0 && !slot) {
      const s = list.pop() as Slot;
      if (s.sha === c.sha256) slot = s;
      else void s.sandbox.stop();
    }
    if (slot) {
      this.busy.add(slot);
      return slot;
    }
    const pkg = await this.registry.readPackage(c.name);
    if (this.stopped) throw new WeftError('WEFT_STOPPED', 'cartridge invoke handlers are stopped');
    signal.throwIfAborted();
    const maxRunMs = this.init.maxRunMs ?? 600_000;
    const sandbox = createSandbox(
      {
        timeoutMs: maxRunMs,
        memoryLimitMb: this.init.memoryLimitMb ?? 32,
        rssCapMb: this.init.rssCapMb ?? 256,
        maxBatch: 1,
        maxPendingEvents: 1,
        // A failing call is its caller's problem, not a reason to stop serving the next one.
        suspendAfter: Number.MAX_SAFE_INTEGER,
        validateEvent: () => null,
      },
      { logger: this.logger, clock: this.deps.clock },
    );
    slot = { name: c.name, sha: c.sha256, sandbox, lastUsed: 0, killed: false };
    this.busy.add(slot);
    const s = slot;
    const onAbort = () => {
      s.killed = true;
      void sandbox.stop();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await sandbox.start();
      await sandbox.load(pkg, { signal });
    } catch (err) {
      this.busy.delete(s);
      void sandbox.stop();
      signal.throwIfAborted();
      throw err;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    if (this.stopped) {
      // Stopped while it loaded: stop() may have missed this process, so it is stopped here.
      this.busy.delete(s);
      await sandbox.stop();
      throw new WeftError('WEFT_STOPPED', 'cartridge invoke handlers are stopped');
    }
    this.stopReaper ??= every(this.deps.clock, 30_000, () => this.reap(), { unref: true });
    return s;
  }

  private release(slot: Slot): void {
    this.busy.delete(slot);
    if (slot.killed) return;
    if (this.stopped) {
      // Its run outlived stop(): nothing keeps it warm, so nothing may keep its process.
      void slot.sandbox.stop();
      return;
    }
    const list = this.warm.get(slot.name) ?? [];
    if (list.length >= (this.init.warmPerCartridge ?? 2)) {
      void slot.sandbox.stop();
      return;
    }
    slot.lastUsed = this.deps.clock.now();
    list.push(slot);
    this.warm.set(slot.name, list);
  }

  private reap(): void {
    const now = this.deps.clock.now();
    const idle = this.init.idleMs ?? 60_000;
    for (const [name, list] of this.warm) {
      const keep = list.filter((s) => now - s.lastUsed < idle);
      for (const s of list) if (!keep.includes(s)) void s.sandbox.stop();
      if (keep.length > 0) this.warm.set(name, keep);
      else this.warm.delete(name);
    }
  }
}
