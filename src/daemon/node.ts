import { join } from 'node:path';
import { type Bus, RedisBus, SqliteBus } from '../bus/index.js';
import { dedupCartridge, notificationProjector } from '../cartridges/index.js';
import { type Catalog, createDefaultCatalog } from '../catalog/index.js';
import type { EmitInput, Envelope } from '../envelope/index.js';
import {
  type BuildDeps,
  buildEnvelope,
  type Cartridge,
  type CartridgeContext,
  type CommittedBatch,
  Emitter,
  type NodeSelf,
  Pipeline,
  Processor,
} from '../pipeline/index.js';
import { type NodeStore, openNodeStore } from '../store/index.js';
import { type Clock, systemClock } from '../util/clock.js';
import { IdGenerator } from '../util/ids.js';
import { type Logger, silentLogger } from '../util/logger.js';

export interface NodeInit {
  /** Directory holding the node's SQLite file (and later keys, cartridges, logs). */
  dataDir: string;
  computer: string;
  cluster?: string;
  /** Set to use Redis Streams as the local bus instead of the embedded log. */
  redis?: { url: string; stream?: string; group?: string };
  catalog?: Catalog;
  /**
   * Builds the ordered cartridge list from the defaults (dedup, notification projection).
   * Later issues insert the trust, enrichment, correlation, classification and mesh stages.
   */
  cartridges?: (defaults: { dedup: Cartridge; projection: Cartridge }) => Cartridge[];
  batchSize?: number;
  /** Default `source` of locally emitted events (default: `weft@<computer>`). */
  source?: string;
}

export interface NodeDeps {
  clock?: Clock;
  logger?: Logger;
}

/**
 * One Weft node's event core: store, bus, pipeline and processor, wired.
 * @example
 * const node = await createNode({ dataDir: '/tmp/n1', computer: 'laptop' });
 * await node.start();
 * await node.emit({ event: 'system.worker.crashed', payload: { worker: 'w', error: 'boom', restarts: 1 } });
 * await node.stop();
 */
export class WeftNode {
  readonly ns: NodeStore;
  readonly catalog: Catalog;
  readonly bus: Bus;
  readonly pipeline: Pipeline;
  readonly processor: Processor;
  readonly emitter: Emitter;
  readonly self: NodeSelf;
  readonly clock: Clock;
  readonly logger: Logger;
  private started = false;
  private journalTimer: NodeJS.Timeout | undefined;
  private readonly buildDeps: BuildDeps;
  private readonly listeners = new Set<(b: CommittedBatch) => void>();
  private stopping: Promise<void> | undefined;

  constructor(init: NodeInit, deps: NodeDeps = {}) {
    this.clock = deps.clock ?? systemClock;
    this.logger = deps.logger ?? silentLogger;
    this.catalog = init.catalog ?? createDefaultCatalog();
    this.self = { computer: init.computer, ...(init.cluster ? { cluster: init.cluster } : {}) };
    this.ns = openNodeStore({ path: join(init.dataDir, 'weft.db') }, { clock: this.clock, logger: this.logger });
    this.bus = init.redis
      ? new RedisBus({ ...init.redis, consumer: init.computer }, this.logger.child({ mod: 'bus' }))
      : new SqliteBus(this.ns, { consumer: 'pipeline' });
    const defaults = { dedup: dedupCartridge(), projection: notificationProjector() };
    const cartridges = init.cartridges ? init.cartridges(defaults) : [defaults.dedup, defaults.projection];
    this.pipeline = new Pipeline(cartridges, this.ns.store.db, (c, e, err, ctx) => this.onCartridgeFailure(c, e, err, ctx), this.logger);
    const build: BuildDeps = {
      catalog: this.catalog,
      clock: this.clock,
      ids: new IdGenerator(),
      defaultSource: init.source ?? `weft@${init.computer}`,
      computer: init.computer,
    };
    this.buildDeps = build;
    const ns = this.ns;
    const clock = this.clock;
    this.emitter = new Emitter(
      this.bus,
      build,
      4096,
      init.redis
        ? {
            write: (envs) =>
              ns.store.write(() => {
                const now = clock.now();
                for (const e of envs) ns.emitOutbox.add(e, now);
              }),
            appendFailed: (err) =>
              this.logger.warn({ err: (err as Error).message }, 'Redis did not take the events; they wait in the emit journal'),
          }
        : undefined,
    );
    if (this.bus instanceof RedisBus) this.bus.onRecreated = () => void this.processor.flushEmitted(0);
    this.processor = new Processor(
      {
        ns: this.ns,
        bus: this.bus,
        pipeline: this.pipeline,
        catalog: this.catalog,
        clock: this.clock,
        logger: this.logger.child({ mod: 'processor' }),
        self: this.self,
        build,
        onCommitted: (b) => this.publish(b),
      },
      { batchSize: init.batchSize ?? 1024 },
    );
  }

  /** Starts the bus and the processor. Idempotent. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.bus.start();
    await this.processor.flushEmitted(0);
    this.processor.start();
    if (this.bus.kind === 'redis') {
      this.journalTimer = setInterval(() => void this.processor.flushEmitted(3000).catch(() => undefined), 2000);
      this.journalTimer.unref();
    }
  }

  /** Builds (validates, fills defaults, gives an id) an envelope without emitting it. */
  build(input: EmitInput): Envelope {
    return buildEnvelope(input, this.buildDeps);
  }

  /** Sets the node id once the identity is loaded: stamped as `origin` on local events. */
  setNodeId(nodeId: string): void {
    this.self.nodeId = nodeId;
    this.buildDeps.origin = nodeId;
  }

  /** Emits one event; resolves with the envelope once it is durable in the bus. */
  emit(input: unknown): Promise<Envelope> {
    return this.emitter.emit(input);
  }

  /** Emits several events in one commit. */
  emitMany(inputs: readonly unknown[]): Promise<Envelope[]> {
    return this.emitter.emitMany(inputs);
  }

  /** Waits until the processor has consumed everything emitted so far (embedded mode), or `timeoutMs`. */
  async idle(timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const pos = Number(this.processor.committedPosition ?? '0');
      if (this.bus.kind === 'sqlite' && pos >= this.ns.log.maxSeq()) return true;
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Drains in-flight emits and the batch in progress, then closes the store. Idempotent. */
  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      if (this.journalTimer) clearInterval(this.journalTimer);
      await this.emitter.close();
      await this.processor.stop();
      await this.ns.store.close();
    })();
    return this.stopping;
  }

  /** Calls `fn` after every committed batch; returns the unsubscribe function. */
  onCommitted(fn: (b: CommittedBatch) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private publish(b: CommittedBatch): void {
    for (const fn of this.listeners) {
      try {
        fn(b);
      } catch (err) {
        this.logger.error({ err: (err as Error).message }, 'committed-batch listener threw');
      }
    }
  }

  private onCartridgeFailure(cartridge: string, event: Envelope, error: Error, ctx: CartridgeContext): void {
    this.ns.deadLetters.add(event, cartridge, error.message);
    if (event.event === 'system.cartridge.failed') return;
    ctx.emit({
      event: 'system.cartridge.failed',
      payload: { cartridge, eventId: event.id, eventType: event.event, error: error.message.slice(0, 2000) },
    });
  }
}

/** Creates a node (opens its store); call `start()` to run it. */
export async function createNode(init: NodeInit, deps: NodeDeps = {}): Promise<WeftNode> {
  return new WeftNode(init, deps);
}
