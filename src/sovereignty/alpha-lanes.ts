/**
 * Alpha cartridges run beside the pipeline: each gets copies of what committed batches passed,
 * in a bounded queue of its own, drained a batch per sandbox round trip. They may only add
 * events, and those stay on this node.
 */
import type { Catalog } from '../catalog/index.js';
import type { EmitInput, Envelope } from '../envelope/index.js';
import type { WeftError } from '../errors/index.js';
import type { CommittedBatch } from '../pipeline/index.js';
import type { NodeStore } from '../store/index.js';
import type { Logger } from '../util/index.js';
import {
  cartridgeSource,
  cartridgeWants,
  controlTypes,
  controlTypesProblem,
  EMIT_CONTROL,
  invokedInput,
  PASSIVE_FAILURES,
} from './cartridge-stage.js';
import type { CartridgeManifest } from './package.js';
import type { Sandbox, SandboxEventResult } from './sandbox/index.js';

/** Counters of the alpha side. */
export interface AlphaQueueStats {
  /** Events waiting for an alpha cartridge, all cartridges together. */
  readonly queued: number;
  /** Events dropped because a queue was full or the runtime stopped, since start. */
  readonly dropped: number;
  /** Alpha cartridges with a batch in the sandbox right now. */
  readonly running: number;
}

/** Limits of the alpha lanes. */
export interface AlphaLanesInit {
  /** Events that may wait for one alpha cartridge; beyond it they are dropped and counted. */
  queueLimit: number;
  /** Events sent per sandbox round trip. */
  batch: number;
}

/** What the lanes need from the runtime. */
export interface AlphaLanesDeps {
  node: { readonly ns: NodeStore; readonly catalog: Pick<Catalog, 'isControl'>; emitMany(inputs: readonly unknown[]): Promise<Envelope[]> };
  logger: Logger;
  /** The alpha sandbox, or null when there is none. */
  sandbox(): Sandbox | null;
  /** The manifest of a loaded alpha cartridge. */
  manifest(name: string): CartridgeManifest | undefined;
  /** Whether the runtime is started (lanes stop draining when it is not). */
  running(): boolean;
  /** Called with the first event of each batch given to a cartridge. */
  onRun(name: string, event: Envelope): void;
  /** Runs a background task the runtime waits for on `idle()` / stop. */
  track(task: Promise<void>): void;
  /** Called with each event an alpha cartridge failed on (its own failure), for the rate-limited notice. */
  onFailed(name: string, event: Envelope, error: string): void;
}

interface Lane {
  queue: Envelope[];
  running: boolean;
}

/**
 * The queues of the alpha cartridges.
 * @example
 * const lanes = new AlphaLanes({ queueLimit: 10_000, batch: 256 }, deps);
 * lanes.open('tagger');
 * node.onCommitted((b) => lanes.offer(b));
 */
export class AlphaLanes {
  private readonly lanes = new Map<string, Lane>();
  private dropped = 0;

  constructor(
    private readonly init: AlphaLanesInit,
    private readonly deps: AlphaLanesDeps,
  ) {}

  names(): string[] {
    return [...this.lanes.keys()];
  }

  open(name: string): void {
    this.lanes.set(name, { queue: [], running: false });
  }

  /** Closes one lane; what it still held is counted as dropped. */
  close(name: string): void {
    const lane = this.lanes.get(name);
    if (!lane) return;
    this.dropped += lane.queue.length;
    lane.queue = [];
    this.lanes.delete(name);
  }

  /** Drops everything queued (counted), keeping the lanes (the runtime is stopping). */
  drain(): void {
    for (const lane of this.lanes.values()) {
      this.dropped += lane.queue.length;
      lane.queue = [];
    }
  }

  clear(): void {
    this.lanes.clear();
  }

  stats(): AlphaQueueStats {
    let queued = 0;
    let running = 0;
    for (const lane of this.lanes.values()) {
      queued += lane.queue.length;
      if (lane.running) running++;
    }
    return { queued, dropped: this.dropped, running };
  }

  /** Queues copies of a committed batch's passed events for each alpha cartridge that consumes them. */
  offer(batch: CommittedBatch): void {
    if (!this.deps.running() || this.lanes.size === 0 || batch.passed.length === 0) return;
    for (const [name, lane] of this.lanes) {
      const manifest = this.deps.manifest(name);
      if (!manifest) continue;
      for (const event of batch.passed) {
        if (!cartridgeWants(name, manifest, event)) continue;
        if (lane.queue.length >= this.init.queueLimit) this.dropped++;
        else lane.queue.push(event);
      }
      if (lane.queue.length > 0 && !lane.running) this.deps.track(this.run(name, lane));
    }
  }

  /** Runs one alpha cartridge over its queue, a batch per round trip, never touching approved output. */
  private async run(name: string, lane: Lane): Promise<void> {
    lane.running = true;
    try {
      while (lane.queue.length > 0 && this.deps.running() && this.lanes.get(name) === lane) {
        const events = lane.queue.splice(0, this.init.batch);
        const sandbox = this.deps.sandbox();
        const manifest = this.deps.manifest(name);
        if (!sandbox || !manifest) {
          this.dropped += events.length;
          continue;
        }
        this.deps.onRun(name, events[0] as Envelope);
        let results: SandboxEventResult[];
        try {
          results = await sandbox.process(name, events);
        } catch (err) {
          this.deps.logger.warn({ cartridge: name, err: (err as Error).message }, 'alpha batch not run');
          this.dropped += events.length;
          continue;
        }
        const inputs: EmitInput[] = [];
        let ok = 0;
        let failed = 0;
        let lastError = '';
        results.forEach((r, i) => {
          if (r && !r.ok && !PASSIVE_FAILURES.has(r.error.code)) {
            failed++;
            lastError = `${r.error.code}: ${r.error.message}`;
            this.deps.onFailed(name, events[i] as Envelope, lastError);
          }
          if (!r?.ok) return;
          const event = events[i] as Envelope;
          const control = controlTypes(this.deps.node.catalog, r.emitted.map((e) => e.type));
          if (control.length > 0) {
            failed++;
            lastError = `${EMIT_CONTROL}: ${controlTypesProblem(name, [...new Set(control)])}`;
            this.deps.onFailed(name, event, lastError);
            return;
          }
          ok++;
          for (const e of r.emitted) {
            inputs.push({
              event: e.type,
              payload: e.payload,
              source: cartridgeSource(name),
              // Alpha output is unreviewed: it stays on this node.
              visibility: 'local',
              causationId: event.id,
              correlationId: event.correlationId ?? event.id,
            });
          }
          inputs.push(invokedInput(name, manifest.version, 'alpha', event, r.emitted.length));
        });
        if (ok === 0 && failed === 0) continue;
        if (inputs.length > 0) await this.emitAll(name, inputs);
        const ns = this.deps.node.ns;
        await ns.store
          .write(() => {
            const now = ns.store.nowIso();
            if (ok > 0) ns.stats.add(name, ok, now);
            if (failed > 0) ns.failures.add(name, failed, now, lastError);
          })
          .catch((err) => {
            this.deps.logger.warn({ cartridge: name, err: (err as Error).message }, 'alpha invocation counts not recorded');
          });
      }
    } finally {
      lane.running = false;
    }
  }

  /** Emits in one commit; when one input is invalid, emits the others one by one. */
  private async emitAll(name: string, inputs: readonly EmitInput[]): Promise<void> {
    if (inputs.length === 0) return;
    try {
      await this.deps.node.emitMany(inputs);
      return;
    } catch (err) {
      if ((err as WeftError).code === 'WEFT_STOPPED') return;
    }
    for (const input of inputs) {
      try {
        await this.deps.node.emitMany([input]);
      } catch (err) {
        this.deps.logger.warn(
          { cartridge: name, type: input.event, err: (err as Error).message },
          'event emitted by an alpha cartridge was refused',
        );
      }
    }
  }
}
