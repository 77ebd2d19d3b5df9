/** The sandbox's contract: its options, collaborators, status and the `Sandbox` interface. */
import type { Clock, Logger } from '../../util/index.js';
import type { CartridgePackage } from '../package.js';
import type { EventValidator, SandboxEventError, SandboxEventResult } from './result.js';

/** User options of the sandbox. Every field has a default. */
export interface SandboxInit {
  /** Time budget of one event, in ms, enforced inside the engine. Default 100. */
  timeoutMs?: number;
  /** Heap limit of each cartridge's engine (isolate), in MB; at least 8. Default 32. */
  memoryLimitMb?: number;
  /** Resident memory cap of the whole sandbox process, in MB; past it the host kills it. Default 384. */
  rssCapMb?: number;
  /** Consecutive failures after which a cartridge is suspended. Default 5. */
  suspendAfter?: number;
  /**
   * Slack added to a batch's deadline (`timeoutMs × events + killGraceMs`) before the host
   * kills the process: the second layer, for native code the engine cannot interrupt. Default 1000.
   */
  killGraceMs?: number;
  /** Largest number of events sent in one round trip; bigger calls are split. Default 256. */
  maxBatch?: number;
  /** Events that may wait for the sandbox; beyond it calls get `WEFT_SANDBOX_OVERLOADED`. Default 65,536. */
  maxPendingEvents?: number;
  /** Largest JSON text of one event's result plus its emitted events, in characters. Default 1 MiB. */
  maxResultChars?: number;
  /** Most events one event may emit. Default 64. */
  maxEmitsPerEvent?: number;
  /** Deepest nesting accepted in results and emitted payloads. Default 64. */
  maxDepth?: number;
  /** Time budget of a cartridge's top-level code when it is loaded, in ms. Default 1000. */
  loadTimeoutMs?: number;
  /** How long the process may take to boot, in ms. Default 15,000. */
  startTimeoutMs?: number;
  /** How often the host reads the process's resident memory, in ms. Default 100. */
  rssPollMs?: number;
  /**
   * The in-engine interrupt, in ms; defaults to `timeoutMs`. Only tests set it higher, to show
   * that the host's deadline alone still stops code the engine fails to interrupt.
   */
  engineTimeoutMs?: number;
  /** Checks a returned event; default {@link minimalEventValidator}. Pass the envelope validator. */
  validateEvent?: EventValidator;
}

/** Collaborators the sandbox needs. */
export interface SandboxDeps {
  logger: Logger;
  clock: Clock;
  /**
   * Called once when a cartridge is suspended after repeated failures, so the node can emit
   * `system.cartridge.failed`. Exceptions it throws are logged and ignored.
   */
  onSuspended?: (suspension: CartridgeSuspension) => void;
}

/** What `onSuspended` receives. */
export interface CartridgeSuspension {
  readonly name: string;
  readonly version: string;
  readonly consecutiveFailures: number;
  readonly lastError: SandboxEventError;
  readonly stats: CartridgeStats;
}

/** Counters of one cartridge, since it was first loaded into this sandbox. */
export interface CartridgeStats {
  readonly name: string;
  readonly version: string;
  /** `active` runs; `suspended` is refused until `resume`; `failed` did not reload after a restart. */
  readonly status: 'active' | 'suspended' | 'failed';
  /** Events handed to the cartridge (refused ones not counted). */
  readonly invocations: number;
  readonly successes: number;
  readonly failures: number;
  /** Events stopped by the in-engine time budget, plus host kills on deadline. */
  readonly timeouts: number;
  /** Events stopped by the engine's memory limit. */
  readonly memoryFailures: number;
  /** Times the sandbox process was killed or died while running this cartridge. */
  readonly kills: number;
  readonly consecutiveFailures: number;
  /** Clock time of the last event handed to the cartridge, or null. */
  readonly lastInvokedAt: number | null;
  readonly lastError: SandboxEventError | null;
}

/** Where the sandbox is. */
export type SandboxStatus =
  | { readonly type: 'stopped' }
  /** Started, but no process exists (no cartridge loaded yet, or all unloaded). */
  | { readonly type: 'idle' }
  | { readonly type: 'running'; readonly pid: number; readonly rss: number };

/** The sandboxed (alpha) cartridge runtime. */
export interface Sandbox {
  /** Makes the sandbox usable. Starts no process: that happens at the first `load`. Idempotent. */
  start(): Promise<void>;
  /**
   * Kills the process and fails waiting work (`WEFT_SANDBOX_STOPPED` per event; loads reject).
   * Idempotent: a second call returns the same promise.
   */
  stop(): Promise<void>;
  /**
   * Validates the package and loads it into its own engine in the sandbox process (starting the
   * process if needed). Loading a name again replaces that cartridge and clears a suspension.
   * @throws {ManifestError} invalid package; {@link CartridgeLoadError} source does not load;
   * {@link SandboxStoppedError} not started.
   */
  load(pkg: CartridgePackage, options?: { signal?: AbortSignal }): Promise<void>;
  /** Removes a cartridge; when none is left, the process exits. Unknown names are ignored. */
  unload(name: string): Promise<void>;
  /** Clears a suspension; the cartridge is loaded again at its next event. */
  resume(name: string): void;
  /**
   * Runs events through a cartridge, many per round trip, and answers one result per event, in
   * order. Never rejects for what a cartridge does: every failure is a per-event error.
   * @throws {SandboxStoppedError} not started; the signal's reason when it is aborted.
   * @example
   * const [r] = await sandbox.process('tagger', [event]);
   * if (r?.ok) for (const e of r.emitted) emit(e.type, e.payload);
   */
  process(
    name: string,
    events: readonly object[],
    options?: { signal?: AbortSignal },
  ): Promise<SandboxEventResult[]>;
  /** Counters of one cartridge, or undefined when it is not loaded. */
  stats(name: string): CartridgeStats | undefined;
  /** Counters of every loaded cartridge. */
  allStats(): CartridgeStats[];
  /** Stopped, idle (no process) or running. */
  status(): SandboxStatus;
}

