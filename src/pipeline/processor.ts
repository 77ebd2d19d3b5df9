import type { Bus, BusEntry } from '../bus/index.js';
import { WeftError } from '../errors/index.js';
import type { Catalog } from '../catalog/index.js';
import { type EmitInput, type Envelope, serializeEnvelope } from '../envelope/index.js';
import type { NodeStore, NotificationChange, RejectionInput } from '../store/index.js';
import { type Clock, type Logger, sleep } from '../util/index.js';
import { type BuildDeps, buildEnvelope } from './build.js';
import { type CartridgeContext, LOGGED_FACT, type NodeSelf } from './cartridge.js';
import { type Pipeline, RunAgainWithSavepoints, type RunOutcome } from './pipeline.js';

/** Published after each batch commits. */
export interface CommittedBatch {
  changes: NotificationChange[];
  /** Events that passed the whole pipeline. */
  passed: Envelope[];
  /** Events emitted by cartridges during the batch. */
  emitted: Envelope[];
  /** Events a cartridge stopped, with the trust outcome and reason when trust stopped them. */
  dropped: Array<{ event: Envelope; by: string; trust?: unknown; reason?: unknown }>;
  /** Events a cartridge threw on (each kept as a dead letter, with a `system.cartridge.failed` event). */
  failed: Array<{ event: Envelope; by: string; error: string }>;
  /** Milliseconds the batch took, for the latency histogram. */
  durationMs: number;
  entries: number;
}

export interface ProcessorInit {
  /** Consumer name for the position (default 'pipeline'). */
  consumer?: string;
  batchSize?: number;
  /** Events caused by events caused by ... at most this deep (default 16): two cartridges feeding each other stop there. */
  maxCausationDepth?: number;
  /** Events one cartridge may emit per second (default 1,000, bursts of 5,000). */
  emitRate?: { perSecond: number; burst: number };
  /**
   * After a cartridge threw in a batch run without savepoints (which is then run again with
   * them), batches keep a savepoint per event for this long (default 60 s): a stage failing
   * again soon costs no second run of its batch.
   */
  savepointsAfterFailureMs?: number;
}

/** The emits of one cartridge, as a token bucket. */
interface EmitBucket {
  tokens: number;
  at: number;
}

/** How deep a known event sits in its causation chain; bounded, oldest forgotten first. */
const MAX_TRACKED_DEPTHS = 100_000;

export interface ProcessorDeps {
  ns: NodeStore;
  bus: Bus;
  pipeline: Pipeline;
  catalog: Catalog;
  clock: Clock;
  logger: Logger;
  self: NodeSelf;
  build: BuildDeps;
  onCommitted?: (batch: CommittedBatch) => void;
  /** A cartridge's emit was refused by a limit (causation depth, emit rate); called inside the batch. */
  onLimited?: (cartridge: string, code: 'CAUSATION_DEPTH' | 'EMIT_RATE', reason: string) => void;
  /** Called after the commit with the bus entries refused in the batch for the first time. */
  onRejected?: (rejected: RejectionInput[]) => void;
  /** Called when a batch fails as a whole (a bug or a full disk): the processor retries it with backoff. */
  onBatchError?: (err: Error, attempt: number) => void;
}

export interface ProcessorStats {
  batches: number;
  processed: number;
  passed: number;
  dropped: number;
  failed: number;
  rejected: number;
  duplicates: number;
  batchErrors: number;
  /** Batches rolled back and run again with a savepoint per event, a cartridge having thrown in the first run. */
  reruns: number;
}

/**
 * Consumes the bus at least once and applies each batch exactly once: the events' effects,
 * the events cartridges emit, the invocation counts and the consumer position commit in one
 * transaction; only then is the bus told (XACK) and are listeners notified.
 */
export class Processor {
  private running: Promise<void> | undefined;
  private stopping = false;
  /** The loop's own batch is being applied. */
  private inLoopBatch = false;
  /** Emits waiting for the pipeline to catch up (`whenTakesEmits`), woken after each loop batch. */
  private emitWaiters: Array<(ok: boolean) => void> = [];
  readonly stats: ProcessorStats = {
    batches: 0,
    processed: 0,
    passed: 0,
    dropped: 0,
    failed: 0,
    rejected: 0,
    duplicates: 0,
    batchErrors: 0,
    reruns: 0,
  };
  private readonly consumer: string;
  private readonly batchSize: number;
  private readonly maxDepth: number;
  private readonly rate: { perSecond: number; burst: number };
  private readonly savepointsFor: number;
  /** Until when (clock ms) batches run with a savepoint per event, after a failure without. */
  private savepointsUntil = Number.NEGATIVE_INFINITY;
  private readonly buckets = new Map<string, EmitBucket>();
  private readonly depths = new Map<string, number>();
  /** Called when a whole batch fails (set by the daemon to report `system.worker.crashed`). */
  onBatchErrorHook: ((err: Error, attempt: number) => void) | undefined;
  /** Bus position of the last committed batch. */
  committedPosition: string | undefined;

  constructor(
    private readonly deps: ProcessorDeps,
    init: ProcessorInit = {},
  ) {
    this.consumer = init.consumer ?? 'pipeline';
    this.batchSize = init.batchSize ?? 512;
    this.maxDepth = init.maxCausationDepth ?? 16;
    this.rate = init.emitRate ?? { perSecond: 1000, burst: 5000 };
    this.savepointsFor = init.savepointsAfterFailureMs ?? 60_000;
  }

  /** Refuses an emit that would go too deep or too fast; records the new event's depth. */
  private admitEmit(cartridge: string, parent: Envelope | undefined, child: Envelope): void {
    const depth = parent ? (this.depths.get(parent.id) ?? 0) + 1 : 0;
    if (depth > this.maxDepth) {
      const reason = `event ${parent?.id} (${parent?.event}) is ${depth - 1} causes deep; events may cause chains at most ${this.maxDepth} deep (two cartridges feeding each other?)`;
      this.deps.onLimited?.(cartridge, 'CAUSATION_DEPTH', reason);
      throw new WeftError('WEFT_LIMIT', `ctx.emit refused: ${reason}`);
    }
    const now = this.deps.clock.now();
    const b = this.buckets.get(cartridge) ?? { tokens: this.rate.burst, at: now };
    b.tokens = Math.min(this.rate.burst, b.tokens + ((now - b.at) / 1000) * this.rate.perSecond);
    b.at = now;
    if (b.tokens < 1) {
      const reason = `cartridge '${cartridge}' emits more than ${this.rate.perSecond} events per second (bursts of ${this.rate.burst})`;
      this.deps.onLimited?.(cartridge, 'EMIT_RATE', reason);
      throw new WeftError('WEFT_LIMIT', `ctx.emit refused: ${reason}`);
    }
    b.tokens--;
    this.buckets.set(cartridge, b);
    if (this.buckets.size > 10_000) this.buckets.delete(this.buckets.keys().next().value as string);
    if (depth > 0) {
      this.depths.set(child.id, depth);
      if (this.depths.size > MAX_TRACKED_DEPTHS) this.depths.delete(this.depths.keys().next().value as string);
    }
  }

  start(): void {
    if (this.running) return;
    this.committedPosition = this.deps.ns.offsets.get(this.consumer);
    this.stopping = false;
    this.running = this.loop();
  }

  /** Finishes the batch in flight, then stops. Idempotent. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.deps.bus.stop();
    await this.running;
    this.running = undefined;
  }

  private async loop(): Promise<void> {
    let attempt = 0;
    while (!this.stopping) {
      const entries = await this.deps.bus.next(this.batchSize);
      if (entries.length === 0) continue;
      this.inLoopBatch = true;
      try {
        await this.processBatch(entries);
        attempt = 0;
      } catch (err) {
        attempt++;
        this.stats.batchErrors++;
        const e = err instanceof Error ? err : new Error(String(err));
        this.deps.logger.error({ err: e.message, attempt }, 'pipeline batch failed; it will be retried');
        this.deps.onBatchError?.(e, attempt);
        this.onBatchErrorHook?.(e, attempt);
        this.deps.bus.rewind(this.deps.ns.offsets.get(this.consumer));
        await sleep(this.deps.clock, Math.min(50 * 2 ** Math.min(attempt, 6), 5000));
      } finally {
        this.inLoopBatch = false;
        if (this.emitWaiters.length > 0 && this.takesEmits()) this.wakeEmitWaiters(true);
      }
    }
    this.wakeEmitWaiters(false);
  }

  private wakeEmitWaiters(ok: boolean): void {
    const w = this.emitWaiters;
    this.emitWaiters = [];
    for (const fn of w) fn(ok);
  }

  /**
   * Processes one batch of entries in one transaction. The loop calls it for bus entries; the
   * mesh ingress calls it directly for verified peer events (with `batchFacts.ingress`), and
   * a quarantine release with `batchFacts.released`, so their acknowledgement follows the
   * local commit. Every event of the batch starts with `batchFacts` in `ctx.facts`.
   */
  processBatch(
    entries: readonly BusEntry[],
    batchFacts?: Readonly<Record<string, unknown>>,
    /** Runs inside the batch transaction, before the commit (e.g. the replay guard's record). */
    inTransaction?: () => void,
  ): Promise<CommittedBatch> {
    return this.apply(entries, batchFacts, inTransaction, false);
  }

  /**
   * Whether an emit may be applied at once (`processEmitted`): the processor runs, no batch of
   * its own is in flight, and the embedded bus holds nothing appended but not applied (so the
   * emit passes no earlier event).
   */
  takesEmits(): boolean {
    return this.running !== undefined && !this.stopping && !this.inLoopBatch && this.deps.bus.caughtUp?.() === true;
  }

  /**
   * Resolves true as soon as an emit may be applied at once (`takesEmits`), after one of the
   * loop's batches; false after `maxWaitMs`, or when the processor stops. For a bus whose own
   * events reach the pipeline by a round trip (Redis): while one event a cartridge emitted is
   * on its way there, every emit of a burst would otherwise take the long way too, each
   * adding to what the pipeline has to catch up.
   */
  whenTakesEmits(maxWaitMs: number): Promise<boolean> {
    if (this.takesEmits()) return Promise.resolve(true);
    if (this.running === undefined || this.stopping) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      // A real timer on purpose: it bounds how long an emit waits, not the node's logic.
      const t = setTimeout(() => {
        this.emitWaiters = this.emitWaiters.filter((w) => w !== done);
        resolve(false);
      }, maxWaitMs);
      const done = (ok: boolean) => {
        clearTimeout(t);
        resolve(ok);
      };
      this.emitWaiters.push(done);
    });
  }

  /**
   * This node's own new events (from `emit`), appended to the log and applied by the pipeline
   * in one transaction: one commit for both, where the bus path takes two (the append, then
   * the batch). Throws, with nothing written, when the batch fails; the caller then appends
   * them to the bus, whose loop retries them.
   */
  processEmitted(envs: readonly Envelope[]): Promise<CommittedBatch> {
    return this.apply(
      envs.map((envelope) => ({ position: 'emit', envelope, logged: false })),
      undefined,
      undefined,
      true,
    );
  }

  private async apply(
    entries: readonly BusEntry[],
    batchFacts: Readonly<Record<string, unknown>> | undefined,
    inTransaction: (() => void) | undefined,
    /** `processEmitted`: new events of this node, not from the bus (no position to move). */
    emittedHere: boolean,
    /** The run again after a cartridge threw in a run without savepoints. */
    again = false,
  ): Promise<CommittedBatch> {
    const { ns, pipeline, bus } = this.deps;
    // A savepoint per event only when a stage says noRerun or one failed lately: see Pipeline.
    const savepoints = again || !pipeline.optimistic || this.deps.clock.now() < this.savepointsUntil;
    const fromBus = !batchFacts && !emittedHere;
    const t0 = performance.now();
    const changes: NotificationChange[] = [];
    const passed: Envelope[] = [];
    const emitted: Envelope[] = [];
    const dropped: CommittedBatch['dropped'] = [];
    const failed: CommittedBatch['failed'] = [];
    const rejected: RejectionInput[] = [];
    const facts = new Map<string, unknown>();
    let current: Envelope | undefined;
    const build = this.deps.build;
    const local = { processed: 0, passed: 0, dropped: 0, failed: 0, rejected: 0, duplicates: 0 };

    const ctx: CartridgeContext = {
      catalog: this.deps.catalog,
      clock: this.deps.clock,
      logger: this.deps.logger,
      self: this.deps.self,
      now: ns.store.nowIso(),
      facts,
      notify: (c) => changes.push(c),
      emit: (input: EmitInput) => {
        const parent = current;
        const withLineage: EmitInput = parent
          ? { causationId: parent.id, correlationId: parent.correlationId ?? parent.id, ...input }
          : input;
        const env = buildEnvelope(withLineage, build);
        this.admitEmit(ctx.cartridge ?? 'pipeline', parent, env);
        bus.stage(env);
        emitted.push(env);
        return env;
      },
    };

    // processEmitted: the bus journals them first, so on its stream they come before what
    // the cartridges emit from them.
    const ownNew = emittedHere ? entries.map((e) => (e as { envelope: Envelope }).envelope) : undefined;
    const rolledBack = await ns.store.writeAsync(async () => {
      // Serialized once for the bus's journal and the log (the same envelopes, not changed in between).
      const ownBodies = ownNew && bus.stageApplied ? ownNew.map(serializeEnvelope) : undefined;
      if (ownNew) bus.stageApplied?.(ownNew, ownBodies);
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i] as BusEntry;
        if ('error' in e) {
          const r: RejectionInput = { origin: `bus:${bus.kind}`, ref: e.position, code: 'ENTRY_INVALID', reason: e.error, field: e.field, raw: e.raw };
          if (ns.rejections.add(r)) rejected.push(r);
          local.rejected++;
          continue;
        }
        // Entries that did not come through emit() (the Redis stream, a peer) get our names and shapes.
        let env = e.logged || emittedHere ? e.envelope : this.deps.catalog.normalize(e.envelope);
        // And our payload filters (the secrets filter on terminal.command), as emit() runs them.
        if (!e.logged && !emittedHere) {
          const payload = this.deps.catalog.filterPayload(env.event, env.payload);
          if (payload !== env.payload) env = { ...env, payload };
        }
        if (!e.logged && ns.log.append(env, emittedHere ? 'emitted' : batchFacts !== undefined, ownBodies?.[i]) === 0) {
          local.duplicates++;
          continue;
        }
        local.processed++;
        current = env;
        facts.clear();
        if (batchFacts) for (const k in batchFacts) facts.set(k, batchFacts[k]);
        if (e.facts) for (const k in e.facts) facts.set(k, e.facts[k]);
        facts.set(LOGGED_FACT, env);
        let r = pipeline.run(env, ctx, savepoints);
        if (r instanceof Promise) r = await r;
        const out = r as RunOutcome;
        if (out.kind === 'passed') {
          local.passed++;
          passed.push(out.event);
          // A logged event run again from outside the bus (a quarantine release) passed this time.
          if (e.logged && batchFacts) ns.log.unwithhold(env.id);
        } else {
          if (out.kind === 'dropped') {
            local.dropped++;
            dropped.push({ event: env, by: out.by, trust: facts.get('trust'), reason: facts.get('trust.reason') });
          } else {
            local.failed++;
            failed.push({ event: env, by: out.by, error: out.error.message });
          }
          // This node's own event (from the bus) did not pass: it was never pushed, so no mirror of this node gets it either.
          if (!batchFacts) ns.log.withhold(env.id);
        }
      }
      current = undefined;
      const last = entries[entries.length - 1];
      if (last && fromBus) ns.offsets.set(this.consumer, last.position);
      if (fromBus) bus.consumed(entries);
      for (const [name, n] of pipeline.takeCounts()) ns.stats.add(name, n, ctx.now);
      inTransaction?.();
    }).catch((err) => {
      pipeline.discardCounts();
      if (!(err instanceof RunAgainWithSavepoints)) throw err;
      return err;
    });
    if (rolledBack !== undefined) {
      // Everything of the first run was rolled back (its arrays here are dropped with it).
      this.stats.reruns++;
      this.savepointsUntil = this.deps.clock.now() + this.savepointsFor;
      this.deps.logger.debug({ cartridge: rolledBack.cartridge, eventId: rolledBack.eventId }, 'a cartridge failed in a batch without savepoints: running the batch again with them');
      return this.apply(entries, batchFacts, inTransaction, emittedHere, true);
    }

    if (fromBus && entries.length > 0) this.committedPosition = (entries[entries.length - 1] as BusEntry).position;
    const s = this.stats;
    s.batches++;
    s.processed += local.processed;
    s.passed += local.passed;
    s.dropped += local.dropped;
    s.failed += local.failed;
    s.rejected += local.rejected;
    s.duplicates += local.duplicates;

    if (fromBus) await bus.committed(entries);
    else if (ownNew) bus.flushApplied?.(ownNew);
    bus.flush(emitted);
    if (rejected.length > 0) this.deps.onRejected?.(rejected);
    const batch: CommittedBatch = {
      changes,
      passed,
      emitted,
      dropped,
      failed,
      durationMs: performance.now() - t0,
      entries: entries.length,
    };
    this.deps.onCommitted?.(batch);
    return batch;
  }
}
