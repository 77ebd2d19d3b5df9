import type { Catalog } from '../catalog/index.js';
import type { Envelope } from '../envelope/index.js';
import { IllegalTransitionError, WeftError } from '../errors/index.js';
import { type Cartridge, type CommittedBatch, RefusalNotices } from '../pipeline/index.js';
import type { NodeStore } from '../store/index.js';
import type { Clock, Logger } from '../util/index.js';
import { type AlphaQueueStats, AlphaLanes } from './alpha-lanes.js';
import {
  cartridgeSource,
  cartridgeStage,
  controlTypes,
  controlTypesProblem,
  envelopeCheck,
  TimeBudget,
  type TimeBudgetInit,
} from './cartridge-stage.js';
import { orderByDependencies } from './dag.js';
import { ManifestError, SovereigntyError } from './errors.js';
import { type CartridgeManifest, type CartridgePackage, readPackageDir } from './package.js';
import {
  type CartridgeRegistry,
  createCartridgeRegistry,
  type InstalledCartridge,
  type InstallOptions,
  type InstallResult,
} from './registry.js';
import { type CartridgeSuspension, createSandbox, type Sandbox, type SandboxInit, type SandboxStatus } from './sandbox/index.js';

/** User options of the cartridge runtime. */
export interface CartridgeRuntimeInit {
  /** The node's data directory (cartridge files live under `<dataDir>/cartridges/`). */
  dataDir: string;
  /** Limits of the sandboxes (time budget, memory, suspension after N failures...). */
  sandbox?: Omit<SandboxInit, 'validateEvent'>;
  /**
   * Names of the built-in stages an installed cartridge may declare as dependencies. They
   * always run first; an installed cartridge may not take one of these names.
   */
  builtins?: readonly string[];
  /** Events that may wait for one alpha cartridge; beyond it they are dropped and counted. Default 10,000. */
  alphaQueueLimit?: number;
  /** Events sent to an alpha cartridge per sandbox round trip. Default 256. */
  alphaBatch?: number;
  /**
   * Time an approved cartridge may take per event, on average over its last `window` events
   * (default 25 ms over 50, judged after 20): it runs inside the pipeline, so a slower one
   * holds up every event behind it, and is suspended instead.
   */
  timeBudget?: TimeBudgetInit;
  /**
   * A cartridge that fails on an event lets it pass unchanged (a dead letter keeps it); such
   * failures are raised at most once per this window per cartridge, with their count. Default 60 s.
   */
  failureNoticeMs?: number;
}

/** Resident memory a sandbox process needs before any cartridge is loaded, MB. */
const SANDBOX_BASE_MB = 64;

/** What the runtime needs of a node (a `WeftNode` fits). */
export interface RuntimeNode {
  readonly ns: NodeStore;
  readonly catalog: Catalog;
  emitMany(inputs: readonly unknown[]): Promise<Envelope[]>;
  onCommitted(fn: (batch: CommittedBatch) => void): () => void;
}

/** Collaborators of the cartridge runtime. */
export interface CartridgeRuntimeDeps {
  node: RuntimeNode;
  logger: Logger;
  clock: Clock;
  /**
   * Called with the new approved stages (in dependency order) whenever the active set changes
   * (activate, reject, promote, suspension), so the owner can call
   * `pipeline.replace([...systemStages, ...stages])`.
   */
  onStagesChanged?: (stages: Cartridge[]) => void;
  /** The registry to use; default: one over `node.ns.store` and `init.dataDir`. */
  registry?: CartridgeRegistry;
}

/** What the runtime is doing. */
export interface CartridgeRuntimeStatus {
  readonly state: 'stopped' | 'started';
  /** Approved (active) cartridges, in pipeline order. */
  readonly active: readonly string[];
  readonly alpha: readonly string[];
  /** The sandbox of approved cartridges; `stopped` when it was never needed. */
  readonly approvedSandbox: SandboxStatus;
  /** The sandbox of alpha cartridges, a separate process so alpha work never delays approved work. */
  readonly alphaSandbox: SandboxStatus;
  readonly alphaQueue: AlphaQueueStats;
}

/** Installed cartridges at work: approved ones as pipeline stages, alpha ones beside the pipeline. */
export interface CartridgeRuntime {
  readonly registry: CartridgeRegistry;
  /**
   * Loads active and alpha cartridges. Active ones are ordered by their dependencies first.
   * Idempotent.
   * @throws {DependencyCycleError} naming the cycle; {@link MissingDependencyError} naming the
   * cartridge and what it lacks. Nothing keeps running when it throws.
   */
  start(options?: { signal?: AbortSignal }): Promise<void>;
  /** Drops queued alpha work (counted), waits for work in flight, kills the sandboxes. Idempotent. */
  stop(): Promise<void>;
  /** One pipeline stage per active cartridge, in dependency order. */
  stages(): Cartridge[];
  /** Every recorded cartridge with its invocation count. */
  list(): InstalledCartridge[];
  /**
   * Installs a package as `pending_activation` (see `CartridgeRegistry.install`).
   * @throws `WEFT_CONFLICT` when the name is a built-in stage's; {@link ManifestError} when it
   * emits one of the node's control types (`catalog.isControl`).
   */
  install(pkg: CartridgePackage, options: InstallOptions): Promise<InstallResult>;
  /** Reads a package directory (`manifest.json` + `cartridge.js`) and installs it. */
  installDir(dir: string, options: { origin: string; signal?: AbortSignal }): Promise<InstallResult>;
  /**
   * Activates a pending (or suspended) cartridge: loads it into the sandbox, then records it;
   * an active one joins the pipeline at once, an alpha one (`{ alpha: true }`) starts receiving
   * copies of the pipeline's output.
   * @throws {IllegalTransitionError} wrong status, a dependency that is not active, a cycle, or
   * an emitted type this node's catalog does not know; {@link CartridgeLoadError} when it does
   * not load. The cartridge's state is unchanged when it throws.
   */
  activate(name: string, options?: { alpha?: boolean }): Promise<InstalledCartridge>;
  /**
   * Rejects a cartridge in any state; it stops running and its files are deleted.
   * @throws {IllegalTransitionError} when an active cartridge depends on it, or it is already rejected.
   */
  reject(name: string): Promise<InstalledCartridge>;
  /** Alpha → active: it moves into the approved pipeline. */
  promote(name: string): Promise<InstalledCartridge>;
  status(): CartridgeRuntimeStatus;
  /** Resolves once queued alpha work and pending bookkeeping are done (tests, shutdown). */
  idle(): Promise<void>;
}

type Tier = 'approved' | 'alpha';

interface Loaded {
  readonly manifest: CartridgeManifest;
  readonly tier: Tier;
}

/**
 * Creates the runtime of installed cartridges. Approved (active) cartridges become pipeline
 * stages that run in a sandbox; alpha cartridges get copies of each committed batch's output
 * in a second sandbox and may only add events. No sandbox process exists until a cartridge is
 * loaded into it.
 * @example
 * const runtime = createCartridgeRuntime({ dataDir, builtins: node.pipeline.order }, {
 *   node, logger, clock: node.clock,
 *   onStagesChanged: (stages) => node.pipeline.replace([...system, ...stages]),
 * });
 * await runtime.start(); // throws on a dependency cycle
 * node.pipeline.replace([...system, ...runtime.stages()]);
 */
export function createCartridgeRuntime(init: CartridgeRuntimeInit, deps: CartridgeRuntimeDeps): CartridgeRuntime {
  return new Runtime(init, deps);
}

class Runtime implements CartridgeRuntime {
  readonly registry: CartridgeRegistry;
  private readonly logger: Logger;
  private readonly node: RuntimeNode;
  private readonly builtins: ReadonlySet<string>;
  private state: 'stopped' | 'started' = 'stopped';
  private starting: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;
  private readonly sandboxes: { approved: Sandbox | null; alpha: Sandbox | null } = { approved: null, alpha: null };
  private readonly loaded = new Map<string, Loaded>();
  /** Active cartridge names in dependency order. */
  private order: string[] = [];
  private stageList: Cartridge[] = [];
  private readonly alpha: AlphaLanes;
  private readonly budget: TimeBudget;
  private readonly tasks = new Set<Promise<void>>();
  /** The event a cartridge was last given, to name it when the cartridge is suspended. */
  private readonly lastEvent = new Map<string, { id: string; type: string }>();
  /**
   * Cartridges being suspended: set at once, checked per event, so the rest of a batch skips
   * them (recording the suspension waits for that batch's transaction) and it is reported once.
   */
  private readonly suspending = new Set<string>();
  /** Per-event failures, one notice a minute per cartridge with the count (`system.cartridge.failed`). */
  private readonly failures: RefusalNotices;
  /** The latest failure of each cartridge: what a folded notice names. */
  private readonly lastFailure = new Map<string, { eventId: string; eventType: string; error: string }>();
  private unsubscribe: (() => void) | null = null;
  /** Serialises activate / reject / promote / suspension so stage lists are rebuilt in order. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly init: CartridgeRuntimeInit,
    private readonly deps: CartridgeRuntimeDeps,
  ) {
    this.node = deps.node;
    this.logger = deps.logger.child({ module: 'cartridges' });
    this.registry =
      deps.registry ?? createCartridgeRegistry({ dataDir: init.dataDir }, { store: deps.node.ns.store });
    this.builtins = new Set(init.builtins ?? []);
    this.budget = new TimeBudget(init.timeBudget);
    this.failures = new RefusalNotices(
      { windowMs: init.failureNoticeMs ?? 60_000 },
      { clock: deps.clock, logger: this.logger, raise: (name, detail, count) => this.raiseFailures(name, detail, count) },
    );
    this.alpha = new AlphaLanes(
      { queueLimit: Math.max(1, init.alphaQueueLimit ?? 10_000), batch: Math.max(1, init.alphaBatch ?? 256) },
      {
        node: this.node,
        logger: this.logger,
        sandbox: () => this.sandboxes.alpha,
        manifest: (name) => (this.suspending.has(name) ? undefined : this.loaded.get(name)?.manifest),
        running: () => this.state === 'started',
        onRun: (name, event) => this.noteRun(name, event),
        track: (task) => this.track(task),
        onFailed: (name, event, error) => this.noteFailure(name, event, error),
      },
    );
  }

  // ---- lifecycle ----

  start(options?: { signal?: AbortSignal }): Promise<void> {
    if (this.state === 'started') return Promise.resolve();
    this.starting ??= this.doStart(options?.signal).finally(() => {
      this.starting = null;
    });
    return this.starting;
  }

  private async doStart(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.stopping) await this.stopping;
    this.stopping = null;
    const active = this.registry.list({ status: 'active' });
    const alpha = this.registry.list({ status: 'alpha' });
    // Fail fast, before any process starts: the error names the cycle or the missing dependency.
    this.orderActive(active.map((c) => c.manifest));
    try {
      for (const c of active) {
        signal?.throwIfAborted();
        await this.loadAtStart(c, 'approved');
      }
      // A cartridge that did not load is suspended: its dependents now lack it, and start fails.
      this.order = this.orderActive(
        active.filter((c) => this.loaded.has(c.name)).map((c) => c.manifest),
      ).map((m) => m.name);
      for (const c of alpha) {
        signal?.throwIfAborted();
        if (await this.loadAtStart(c, 'alpha')) this.alpha.open(c.name);
      }
    } catch (err) {
      await this.killSandboxes();
      this.loaded.clear();
      this.alpha.clear();
      this.order = [];
      throw err;
    }
    this.rebuildStages();
    this.unsubscribe = this.node.onCommitted((batch) => this.alpha.offer(batch));
    this.state = 'started';
    this.logger.info({ active: this.order, alpha: this.alpha.names() }, 'cartridge runtime started');
  }

  /** Loads one installed cartridge; on failure suspends it (recorded) and answers false. */
  private async loadAtStart(c: InstalledCartridge, tier: Tier): Promise<boolean> {
    try {
      const pkg = await this.registry.readPackage(c.name);
      await this.sandbox(tier).load(pkg);
      this.loaded.set(c.name, { manifest: pkg.manifest, tier });
      return true;
    } catch (err) {
      const reason = (err as Error).message;
      this.logger.error({ cartridge: c.name, err: reason }, 'installed cartridge did not load; it is suspended');
      await this.registry.suspend(c.name, reason).catch(() => undefined);
      return false;
    }
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    if (this.starting) await this.starting.catch(() => undefined);
    this.state = 'stopped';
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.alpha.drain();
    await this.chain.catch(() => undefined);
    await this.idle();
    this.failures.close();
    await this.killSandboxes();
    this.loaded.clear();
    this.alpha.clear();
    this.order = [];
    this.stageList = [];
  }

  private async killSandboxes(): Promise<void> {
    const { approved, alpha } = this.sandboxes;
    this.sandboxes.approved = null;
    this.sandboxes.alpha = null;
    await Promise.all([approved?.stop(), alpha?.stop()]);
  }

  async idle(): Promise<void> {
    while (this.tasks.size > 0) await Promise.allSettled([...this.tasks]);
  }

  /** The sandbox of a tier, created (without a process) on first use. */
  private sandbox(tier: Tier): Sandbox {
    const existing = this.sandboxes[tier];
    if (existing) return existing;
    const sandbox = createSandbox(
      // Alpha results are ignored (alpha cartridges only add events), so any returned object is fine.
      { ...this.init.sandbox, validateEvent: tier === 'approved' ? envelopeCheck : () => null },
      {
        logger: this.logger.child({ tier }),
        clock: this.deps.clock,
        onSuspended: (s) => this.onSuspended(tier, s),
      },
    );
    void sandbox.start();
    this.sandboxes[tier] = sandbox;
    return sandbox;
  }

  // ---- operations ----

  stages(): Cartridge[] {
    return [...this.stageList];
  }

  list(): InstalledCartridge[] {
    return this.registry.list();
  }

  status(): CartridgeRuntimeStatus {
    return {
      state: this.state,
      active: [...this.order],
      alpha: this.alpha.names(),
      approvedSandbox: this.sandboxes.approved?.status() ?? { type: 'stopped' },
      alphaSandbox: this.sandboxes.alpha?.status() ?? { type: 'stopped' },
      alphaQueue: this.alpha.stats(),
    };
  }

  async install(pkg: CartridgePackage, options: InstallOptions): Promise<InstallResult> {
    const name = (pkg.manifest as { name?: unknown } | undefined)?.name;
    if (typeof name === 'string' && this.builtins.has(name)) {
      throw new WeftError('WEFT_CONFLICT', `'${name}' is the name of a built-in pipeline stage; rename the cartridge`, {
        details: { name },
      });
    }
    const emits = (pkg.manifest as { emits?: unknown } | undefined)?.emits;
    const control = Array.isArray(emits) ? controlTypes(this.node.catalog, emits.filter((t): t is string => typeof t === 'string')) : [];
    if (control.length > 0) {
      throw new ManifestError(controlTypesProblem(String(name), control), { field: 'emits', types: control });
    }
    return this.registry.install(pkg, options);
  }

  async installDir(dir: string, options: { origin: string; signal?: AbortSignal }): Promise<InstallResult> {
    options.signal?.throwIfAborted();
    return this.install(await readPackageDir(dir), options);
  }

  activate(name: string, options: { alpha?: boolean } = {}): Promise<InstalledCartridge> {
    return this.serial(async () => {
      this.assertStarted();
      const c = this.registry.get(name);
      if (c.status !== 'pending_activation' && c.status !== 'suspended') {
        throw new IllegalTransitionError(`cannot activate cartridge '${name}': it is ${c.status}`, {
          name,
          from: c.status,
          action: 'activate',
        });
      }
      const tier: Tier = options.alpha ? 'alpha' : 'approved';
      const control = controlTypes(this.node.catalog, c.manifest.emits);
      if (control.length > 0) {
        throw new IllegalTransitionError(`cannot activate: ${controlTypesProblem(name, control)}`, { name, types: control });
      }
      for (const type of c.manifest.emits) {
        if (!this.node.catalog.has(type)) {
          throw new IllegalTransitionError(
            `cannot activate cartridge '${name}': it emits '${type}', which this node's event catalog does not know`,
            { name, type },
          );
        }
      }
      if (tier === 'approved') this.checkOrder('activate', name, c.manifest);
      // Each loaded cartridge may use its whole engine heap: they must all fit under the process cap.
      const heapMb = Math.max(8, this.init.sandbox?.memoryLimitMb ?? 32);
      const capMb = this.init.sandbox?.rssCapMb ?? 384;
      const fit = Math.max(1, Math.floor((capMb - SANDBOX_BASE_MB) / heapMb));
      const inTier = [...this.loaded.entries()].filter(([n, l]) => l.tier === tier && n !== name).length;
      if (inTier + 1 > fit) {
        throw new WeftError(
          'WEFT_CONFLICT',
          `cannot activate cartridge '${name}': ${inTier + 1} ${tier} cartridges of up to ${heapMb} MB each would not fit the sandbox's ${capMb} MB cap (at most ${fit}); reject or suspend one first, or raise the sandbox's rssCapMb`,
          { details: { name, fit, heapMb, capMb } },
        );
      }
      const pkg = await this.registry.readPackage(name);
      await this.unloadEverywhere(name);
      await this.sandbox(tier).load(pkg);
      let record: InstalledCartridge;
      try {
        record = await this.registry.activate(name, options);
      } catch (err) {
        await this.sandbox(tier).unload(name);
        throw err;
      }
      this.suspending.delete(name);
      this.loaded.set(name, { manifest: pkg.manifest, tier });
      if (tier === 'approved') this.setActiveOrder([...this.order, name]);
      else this.alpha.open(name);
      this.logger.info({ cartridge: name, version: record.version, status: record.status }, 'cartridge activated');
      return record;
    });
  }

  reject(name: string): Promise<InstalledCartridge> {
    return this.serial(async () => {
      const c = this.registry.get(name);
      if (c.status === 'active') {
        const dependents = this.order.filter(
          (n) => n !== name && this.loaded.get(n)?.manifest.dependencies.includes(name),
        );
        if (dependents.length > 0) {
          throw new IllegalTransitionError(
            `cannot reject cartridge '${name}': active cartridge(s) ${dependents.map((d) => `'${d}'`).join(', ')} depend on it; reject them first`,
            { name, dependents },
          );
        }
      }
      const record = await this.registry.reject(name);
      await this.forget(name);
      this.logger.info({ cartridge: name }, 'cartridge rejected');
      return record;
    });
  }

  promote(name: string): Promise<InstalledCartridge> {
    return this.serial(async () => {
      this.assertStarted();
      const c = this.registry.get(name);
      if (c.status !== 'alpha') {
        throw new IllegalTransitionError(`cannot promote cartridge '${name}': it is ${c.status}, not alpha`, {
          name,
          from: c.status,
          action: 'promote',
        });
      }
      this.checkOrder('promote', name, c.manifest);
      const pkg = await this.registry.readPackage(name);
      await this.sandbox('approved').load(pkg);
      let record: InstalledCartridge;
      try {
        record = await this.registry.promote(name);
      } catch (err) {
        await this.sandbox('approved').unload(name);
        throw err;
      }
      this.alpha.close(name);
      await this.sandboxes.alpha?.unload(name);
      this.loaded.set(name, { manifest: pkg.manifest, tier: 'approved' });
      this.setActiveOrder([...this.order, name]);
      this.logger.info({ cartridge: name, version: record.version }, 'cartridge promoted to active');
      return record;
    });
  }

  // ---- ordering and stages ----

  /**
   * Orders active manifests. Built-in stage names and suspended cartridges count as present
   * dependencies: a suspension must not keep the node from starting, only a cycle or a
   * dependency that is not installed at all does.
   */
  private orderActive(manifests: readonly CartridgeManifest[]): CartridgeManifest[] {
    const names = new Set(manifests.map((m) => m.name));
    const present = new Set([
      ...this.builtins,
      ...this.registry.list({ status: 'suspended' }).map((c) => c.name),
    ]);
    const nodes = [
      ...[...present].filter((n) => !names.has(n)).map((name) => ({ name, dependencies: [] as string[], builtin: true })),
      ...manifests.map((m) => ({ name: m.name, dependencies: m.dependencies, builtin: false })),
    ];
    const byName = new Map(manifests.map((m) => [m.name, m]));
    return orderByDependencies(nodes)
      .filter((n) => !n.builtin)
      .map((n) => byName.get(n.name) as CartridgeManifest);
  }

  /** Would the active set still order with this cartridge in it? Answers with a 409 naming why not. */
  private checkOrder(action: string, name: string, manifest: CartridgeManifest): void {
    const manifests = this.order.map((n) => (this.loaded.get(n) as Loaded).manifest);
    try {
      this.orderActive([...manifests, manifest]);
    } catch (err) {
      if (!(err instanceof SovereigntyError)) throw err;
      throw new IllegalTransitionError(`cannot ${action} cartridge '${name}': ${err.message}`, {
        name,
        reason: err.reason,
        ...err.details,
      });
    }
  }

  /** Sets the active order (re-sorted when possible) and tells the owner. */
  private setActiveOrder(names: readonly string[]): void {
    try {
      this.order = this.orderActive(names.map((n) => (this.loaded.get(n) as Loaded).manifest)).map((m) => m.name);
    } catch (err) {
      // Removing a cartridge from a valid order keeps it valid; only log the surprise.
      this.logger.warn({ err: (err as Error).message }, 'active cartridges kept in their previous order');
      this.order = [...names];
    }
    this.rebuildStages();
    try {
      this.deps.onStagesChanged?.(this.stages());
    } catch (err) {
      this.logger.error({ err: (err as Error).message }, 'onStagesChanged threw');
    }
  }

  private rebuildStages(): void {
    this.stageList = this.order.map((name) =>
      cartridgeStage(name, (this.loaded.get(name) as Loaded).manifest, {
        sandbox: () => (this.loaded.get(name)?.tier === 'approved' && !this.suspending.has(name) ? this.sandboxes.approved : null),
        ns: this.node.ns,
        logger: this.logger,
        onRun: (event) => this.noteRun(name, event),
        onTimed: (ms) => this.timed(name, ms),
        onFailed: (event, error) => this.noteFailure(name, event, error),
      }),
    );
  }

  /** The event a cartridge was last given, to name it if the cartridge is suspended. */
  private noteRun(name: string, event: Envelope): void {
    this.lastEvent.set(name, { id: event.id, type: event.event });
  }

  /** Counts one event a cartridge failed on towards its rate-limited notice. */
  private noteFailure(name: string, event: Envelope, error: string): void {
    const failure = { eventId: event.id, eventType: event.event, error: error.slice(0, 2000) };
    this.lastFailure.set(name, failure);
    if (this.lastFailure.size > 10_000) this.lastFailure.delete(this.lastFailure.keys().next().value as string);
    this.failures.note(name, failure);
  }

  /** Raises `count` failures of one cartridge: a log line and one `system.cartridge.failed` naming the latest. */
  private raiseFailures(name: string, detail: Record<string, string | undefined>, count: number): Promise<unknown> {
    const last = this.lastFailure.get(name) ?? { eventId: detail.eventId ?? '-', eventType: detail.eventType ?? '-', error: detail.error ?? '' };
    this.logger.warn({ cartridge: name, count, eventId: last.eventId, err: last.error }, 'cartridge failed on events; they passed on unchanged (dead letters)');
    return this.node
      .emitMany([
        {
          event: 'system.cartridge.failed',
          source: cartridgeSource(name),
          payload: { cartridge: name, eventId: last.eventId, eventType: last.eventType, error: last.error, count },
        },
      ])
      .catch((err) => {
        // The folded count of a window still open when the node stops: the log line above has it.
        if ((err as WeftError).code !== 'WEFT_STOPPED') throw err;
      });
  }

  private track(task: Promise<void>): void {
    const t = task.catch((err) => {
      this.logger.error({ err: (err as Error).message }, 'cartridge runtime task failed');
    });
    this.tasks.add(t);
    void t.finally(() => this.tasks.delete(t));
  }

  // ---- suspension and removal ----

  /** Suspends an approved cartridge whose recent events took longer than its budget on average. */
  private timed(name: string, ms: number): void {
    const over = this.budget.record(name, ms);
    if (!over) return;
    const { meanMs } = this.budget.limit;
    const mean = Math.round(over.meanMs);
    this.logger.warn({ cartridge: name, meanMs: mean, budgetMs: meanMs }, 'cartridge over its time budget: suspended');
    this.suspendCartridge('approved', name, `WEFT_CARTRIDGE_OVER_BUDGET: ${mean} ms per event on average over its last ${over.samples} events; the budget is ${meanMs} ms (it holds up every event behind it)`);
  }

  private onSuspended(tier: Tier, s: CartridgeSuspension): void {
    this.suspendCartridge(tier, s.name, `${s.lastError.code}: ${s.lastError.message}`);
  }

  /** Suspends a running cartridge (recorded), takes it out of the pipeline, and raises system.cartridge.failed. */
  private suspendCartridge(tier: Tier, name: string, reason: string): void {
    const s = { name };
    if (this.loaded.get(s.name)?.tier !== tier || this.suspending.has(name)) return;
    this.suspending.add(name);
    const last = this.lastEvent.get(s.name);
    const error = reason.slice(0, 2000);
    this.track(
      this.serial(async () => {
        const c = this.registry.find(s.name);
        if (c && (c.status === 'active' || c.status === 'alpha')) await this.registry.suspend(s.name, error);
        await this.forget(s.name);
      }),
    );
    this.track(
      this.node
        .emitMany([
          {
            event: 'system.cartridge.failed',
            source: cartridgeSource(s.name),
            payload: {
              cartridge: s.name,
              eventId: last?.id ?? '-',
              eventType: last?.type ?? '-',
              error,
              suspended: true,
              // Each suspension is its own notification (suspended, activated, suspended again).
              suspendedAt: new Date(this.deps.clock.now()).toISOString(),
            },
          },
        ])
        .then(() => undefined),
    );
  }

  /** Stops running a cartridge (rejected or suspended). */
  private async forget(name: string): Promise<void> {
    const loaded = this.loaded.get(name);
    this.alpha.close(name);
    this.lastEvent.delete(name);
    this.budget.forget(name);
    await this.unloadEverywhere(name);
    // Not loaded any more, so nothing runs it; a later activation starts it afresh.
    this.suspending.delete(name);
    if (loaded?.tier === 'approved') this.setActiveOrder(this.order.filter((n) => n !== name));
  }

  private async unloadEverywhere(name: string): Promise<void> {
    const was = this.loaded.get(name);
    this.loaded.delete(name);
    if (was?.tier === 'approved') this.order = this.order.filter((n) => n !== name);
    await Promise.all([this.sandboxes.approved?.unload(name), this.sandboxes.alpha?.unload(name)]);
  }

  private assertStarted(): void {
    if (this.state !== 'started') throw new WeftError('WEFT_STOPPED', 'the cartridge runtime is not running');
  }

  /** Runs state changes one at a time. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }
}
