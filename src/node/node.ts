import { join } from 'node:path';
import { type Bus, RedisBus, type RedisBusInit, SqliteBus } from '../bus/index.js';

/**
 * The Redis bus's options a node takes. Stream and group default to this computer's own
 * (`{prefix}events:{computer}`, `{prefix}pipeline:{computer}`; with `cluster`,
 * `{prefix}{computer}:events`); trimming defaults to on only
 * for streams under the prefix (Weft never trims another program's stream).
 */
export type RedisBusOptions = Omit<RedisBusInit, 'consumer' | 'stream' | 'group'> & {
  stream?: string;
  group?: string;
  prefix?: string;
};
import { dedupCartridge, notificationProjector } from '../cartridges/index.js';
import { type Catalog, createDefaultCatalog } from '../catalog/index.js';
import { DEFAULT_REDIS_PREFIX, redisKeys } from '../config/index.js';
import type { EmitInput, Envelope } from '../envelope/index.js';
import {
  type BuildDeps,
  buildEnvelope,
  type Cartridge,
  type CartridgeStores,
  type CartridgeContext,
  type CommittedBatch,
  type EmitOutcome,
  type EmitResult,
  Emitter,
  type NodeSelf,
  Pipeline,
  Processor,
  type RefusalDetail,
  RefusalNotices,
  type StoppedAtEmit,
} from '../pipeline/index.js';
import { type NodeStore, openNodeStore, type RejectionInput } from '../store/index.js';
import { type Clock, IdGenerator, type Logger, silentLogger, systemClock } from '../util/index.js';

export interface NodeInit {
  /** Directory holding the node's SQLite file (and later keys, cartridges, logs). */
  dataDir: string;
  computer: string;
  cluster?: string;
  /** Set to use Redis Streams as the local bus instead of the embedded log. */
  redis?: RedisBusOptions;
  catalog?: Catalog;
  /**
   * Builds the ordered cartridge list from the defaults (dedup, notification projection, bound
   * to this node's stores) and the stores, for cartridge factories (`x(init)(stores)`).
   */
  cartridges?: (defaults: { dedup: Cartridge; projection: Cartridge }, stores: CartridgeStores) => Cartridge[];
  batchSize?: number;
  /** Default `source` of locally emitted events (default: `weft@<computer>`). */
  source?: string;
}

/**
 * How long an emit waits for this node's earlier events to be applied before it takes the bus
 * instead (Redis: one round trip through the stream, a few milliseconds when Redis answers).
 */
const CATCH_UP_WAIT_MS = 100;

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
  private readonly buildDeps: BuildDeps;
  private readonly listeners = new Set<(b: CommittedBatch) => void>();
  private stopping: Promise<void> | undefined;
  /** Rate-limited notifications about refused input (bus entries here; the mesh has its own). */
  readonly refusals: RefusalNotices;
  /** And about cartridge emits refused by a limit. */
  private readonly limits: RefusalNotices;

  constructor(init: NodeInit, deps: NodeDeps = {}) {
    this.clock = deps.clock ?? systemClock;
    this.logger = deps.logger ?? silentLogger;
    this.catalog = init.catalog ?? createDefaultCatalog();
    this.self = { computer: init.computer, ...(init.cluster ? { cluster: init.cluster } : {}) };
    this.ns = openNodeStore(
      { path: join(init.dataDir, 'weft.db') },
      { clock: this.clock, logger: this.logger },
    );
    this.bus = init.redis
      ? new RedisBus(
          {
            ...redisBusInit(init.redis, init.computer),
            // Raw-class data never goes to Redis, not even this node's own stream on a shared server.
            keepLocal: (e) => this.catalog.get(e.event)?.dataClass === 'raw',
          },
          {
            store: this.ns.store,
            journal: this.ns.emitJournal,
            clock: this.clock,
            logger: this.logger.child({ mod: 'bus' }),
          },
        )
      : new SqliteBus(this.ns, { consumer: 'pipeline' });
    const defaults = { dedup: dedupCartridge()(this.ns), projection: notificationProjector()(this.ns) };
    const cartridges = init.cartridges ? init.cartridges(defaults, this.ns) : [defaults.dedup, defaults.projection];
    this.pipeline = new Pipeline(
      cartridges,
      this.ns.store.db,
      (c, e, err, ctx) => this.onCartridgeFailure(c, e, err, ctx),
      this.logger,
    );
    const build: BuildDeps = {
      catalog: this.catalog,
      clock: this.clock,
      ids: new IdGenerator(),
      defaultSource: init.source ?? `weft@${init.computer}`,
      computer: init.computer,
    };
    this.buildDeps = build;
    const notices = (raise: (d: RefusalDetail, count: number) => Promise<unknown>) =>
      new RefusalNotices(
        {},
        { clock: this.clock, logger: this.logger, raise: (_key, d, count) => raise(d, count) },
      );
    this.refusals = notices((d, count) =>
      this.emit({
        event: 'system.entry.rejected',
        payload: {
          origin: d.origin ?? 'bus',
          entryId: d.entryId ?? '',
          code: d.code ?? 'ENTRY_INVALID',
          reason: (d.reason ?? '').slice(0, 2000),
          ...(d.field ? { field: d.field } : {}),
          count,
        },
      }),
    );
    this.limits = notices((d, count) =>
      this.emit({
        event: 'system.cartridge.limited',
        payload: {
          cartridge: d.cartridge ?? '?',
          code: d.code ?? 'LIMIT',
          reason: (d.reason ?? '').slice(0, 2000),
          count,
        },
      }),
    );
    this.emitter = new Emitter(this.bus, build, 4096);
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
        onRejected: (list) => this.onRejected(list),
        onLimited: (cartridge, code, reason) => {
          this.logger.warn({ cartridge, code, reason }, 'a cartridge emit was refused by a limit');
          this.limits.note(`${cartridge}|${code}`, { cartridge, code, reason });
        },
      },
      { batchSize: init.batchSize ?? 1024 },
    );
    // An emit that comes while the pipeline is caught up is appended and applied in one
    // transaction (one commit and fsync instead of two; on Redis, also no round trip through
    // the stream before it is applied: the stream gets it after the commit, for its other
    // readers); otherwise, or if that fails, it goes through the bus as before.
    this.emitter.direct = async (envs) => {
      // On Redis, this node's waiting events (one a cartridge emitted, say) come back within
      // milliseconds: wait for them rather than send this batch, and the next, the long way.
      const may = this.processor.takesEmits() || (this.bus.catchesUpSoon?.() === true && (await this.processor.whenTakesEmits(CATCH_UP_WAIT_MS)));
      if (!may) return false;
      try {
        return stoppedOf(await this.processor.processEmitted(envs));
      } catch (err) {
        this.logger.warn({ err: (err as Error).message, events: envs.length }, 'applying an emit at once failed; it goes through the bus');
        return false;
      }
    };
  }

  /** Starts the bus and the processor. Idempotent. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.bus.start();
    this.processor.start();
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

  /** Emits one event; resolves with the envelope once it is durable on this node. */
  emit(input: unknown): Promise<Envelope> {
    return this.emitter.emit(input);
  }

  /** Emits several events in one commit. */
  emitMany(inputs: readonly unknown[]): Promise<Envelope[]> {
    return this.emitter.emitMany(inputs);
  }

  /**
   * As `emitMany`, with what became of each event: applied by the pipeline in the commit that
   * stored it, dropped there by a stage (a duplicate's idempotency key, trust), failed there (a
   * cartridge threw: a dead letter), or queued behind events waiting for the pipeline.
   */
  emitManyReported(inputs: readonly unknown[]): Promise<EmitResult[]> {
    return this.emitter.emitManyReported(inputs);
  }

  /** Waits until the pipeline has applied everything emitted on this node so far, or `timeoutMs`. */
  async idle(timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.bus.pending() === 0) return true;
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Drains in-flight emits and the batch in progress, then closes the store. Idempotent. */
  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      this.refusals.close();
      this.limits.close();
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

  /** Bus entries refused: each logged with its reason and field, bursts raised as one notification per source and reason per minute. */
  private onRejected(list: RejectionInput[]): void {
    for (const r of list) {
      this.logger.warn(
        { origin: r.origin, entry: r.ref, code: r.code, field: r.field ?? null, reason: r.reason },
        'bus entry refused (left on the stream, unacknowledged)',
      );
      this.refusals.note(`${r.origin}|${r.code}|${r.field ?? ''}`, {
        origin: r.origin,
        code: r.code,
        field: r.field,
        entryId: r.ref,
        reason: r.reason,
      });
    }
  }

  private onCartridgeFailure(cartridge: string, event: Envelope, error: Error, ctx: CartridgeContext): void {
    this.ns.deadLetters.add(event, cartridge, error.message);
    if (event.event === 'system.cartridge.failed') return;
    try {
      ctx.emit({
        event: 'system.cartridge.failed',
        payload: {
          cartridge,
          eventId: event.id,
          eventType: event.event,
          error: error.message.slice(0, 2000),
        },
      });
    } catch (err) {
      // A limit (causation depth, emit rate) said no: the dead letter above keeps the evidence.
      this.logger.warn({ cartridge, err: (err as Error).message }, 'system.cartridge.failed not emitted');
    }
  }
}

function redisBusInit(o: RedisBusOptions, computer: string): RedisBusInit {
  const { prefix = DEFAULT_REDIS_PREFIX, ...rest } = o;
  const keys = redisKeys(prefix, computer, { cluster: o.cluster === true });
  const stream = o.stream ?? keys.busStream;
  return {
    ...rest,
    stream,
    group: o.group ?? keys.busGroup,
    consumer: computer,
    trim: o.trim ?? stream.startsWith(prefix),
  };
}

/** Creates a node (opens its store); call `start()` to run it. */
export async function createNode(init: NodeInit, deps: NodeDeps = {}): Promise<WeftNode> {
  return new WeftNode(init, deps);
}

const NONE_STOPPED: StoppedAtEmit = new Map();

/** The events of a batch applied at emit that a stage stopped or a cartridge failed on, by id. */
function stoppedOf(b: CommittedBatch): StoppedAtEmit {
  if (b.dropped.length === 0 && b.failed.length === 0) return NONE_STOPPED;
  const out = new Map<string, Extract<EmitOutcome, { state: 'dropped' | 'failed' }>>();
  for (const d of b.dropped) {
    out.set(d.event.id, {
      state: 'dropped',
      by: d.by,
      ...(typeof d.trust === 'string' ? { trust: d.trust } : {}),
      ...(typeof d.reason === 'string' ? { reason: d.reason } : {}),
    });
  }
  for (const f of b.failed) out.set(f.event.id, { state: 'failed', by: f.by, error: f.error });
  return out;
}
