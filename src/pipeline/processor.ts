import type { Bus, BusEntry } from '../bus/index.js';
import type { Catalog } from '../catalog/index.js';
import type { EmitInput, Envelope } from '../envelope/index.js';
import type { NodeStore, NotificationChange } from '../store/index.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { type BuildDeps, buildEnvelope } from './build.js';
import type { CartridgeContext, NodeSelf } from './cartridge.js';
import type { Pipeline, RunOutcome } from './runtime.js';

/** Published after each batch commits. */
export interface CommittedBatch {
  changes: NotificationChange[];
  /** Events that passed the whole pipeline. */
  passed: Envelope[];
  /** Events emitted by cartridges during the batch. */
  emitted: Envelope[];
  /** Events a cartridge stopped, with the trust outcome and reason when trust stopped them. */
  dropped: Array<{ event: Envelope; by: string; trust?: unknown; reason?: unknown }>;
  /** Milliseconds the batch took, for the latency histogram. */
  durationMs: number;
  entries: number;
}

export interface ProcessorInit {
  /** Consumer name for the position (default 'pipeline'). */
  consumer?: string;
  batchSize?: number;
}

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
}

/**
 * Consumes the bus at least once and applies each batch exactly once: the events' effects,
 * the events cartridges emit, the invocation counts and the consumer position commit in one
 * transaction; only then is the bus told (XACK) and are listeners notified.
 */
export class Processor {
  private running: Promise<void> | undefined;
  private stopping = false;
  readonly stats: ProcessorStats = {
    batches: 0,
    processed: 0,
    passed: 0,
    dropped: 0,
    failed: 0,
    rejected: 0,
    duplicates: 0,
    batchErrors: 0,
  };
  private readonly consumer: string;
  private readonly batchSize: number;
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
        await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** Math.min(attempt, 6), 5000)));
      }
    }
  }

  /**
   * Processes one batch of entries in one transaction. The loop calls it for bus entries; the
   * mesh ingress calls it directly for verified peer events (with `batchFacts.ingress`), and
   * a quarantine release with `batchFacts.released`, so their acknowledgement follows the
   * local commit. Every event of the batch starts with `batchFacts` in `ctx.facts`.
   */
  async processBatch(
    entries: readonly BusEntry[],
    batchFacts?: Readonly<Record<string, unknown>>,
    /** Runs inside the batch transaction, before the commit (e.g. the replay guard's record). */
    inTransaction?: () => void,
  ): Promise<CommittedBatch> {
    const { ns, pipeline, bus } = this.deps;
    const t0 = performance.now();
    const changes: NotificationChange[] = [];
    const passed: Envelope[] = [];
    const emitted: Envelope[] = [];
    const dropped: CommittedBatch['dropped'] = [];
    const facts = new Map<string, unknown>();
    let current: Envelope | undefined;
    const redisMode = bus.kind === 'redis';
    const build = this.deps.build;
    const local = { processed: 0, passed: 0, dropped: 0, failed: 0, rejected: 0, duplicates: 0 };

    const ctx: CartridgeContext = {
      catalog: this.deps.catalog,
      store: ns,
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
        if (redisMode) ns.emitOutbox.add(env, this.deps.clock.now());
        else ns.log.append(env);
        emitted.push(env);
        return env;
      },
    };

    await ns.store.writeAsync(async () => {
      for (const e of entries) {
        if ('error' in e) {
          ns.rejections.add(`bus:${bus.kind}`, e.position, e.error, e.raw);
          local.rejected++;
          continue;
        }
        const env = e.envelope;
        if (!e.logged && ns.log.append(env, batchFacts !== undefined) === 0) {
          local.duplicates++;
          continue;
        }
        local.processed++;
        current = env;
        facts.clear();
        if (batchFacts) for (const k in batchFacts) facts.set(k, batchFacts[k]);
        if (e.facts) for (const k in e.facts) facts.set(k, e.facts[k]);
        let r = pipeline.run(env, ctx);
        if (r instanceof Promise) r = await r;
        const out = r as RunOutcome;
        if (out.kind === 'passed') {
          local.passed++;
          passed.push(out.event);
        } else if (out.kind === 'dropped') {
          local.dropped++;
          dropped.push({ event: env, by: out.by, trust: facts.get('trust'), reason: facts.get('trust.reason') });
        }
        else local.failed++;
      }
      current = undefined;
      const last = entries[entries.length - 1];
      if (last && !batchFacts) ns.offsets.set(this.consumer, last.position);
      if (redisMode && !batchFacts) {
        const ids: string[] = [];
        for (const e of entries) if ('envelope' in e) ids.push(e.envelope.id);
        ns.emitOutbox.remove(ids);
      }
      for (const [name, n] of pipeline.takeCounts()) ns.stats.add(name, n, ctx.now);
      inTransaction?.();
    }).catch((err) => {
      pipeline.discardCounts();
      throw err;
    });

    if (!batchFacts && entries.length > 0) this.committedPosition = (entries[entries.length - 1] as BusEntry).position;
    const s = this.stats;
    s.batches++;
    s.processed += local.processed;
    s.passed += local.passed;
    s.dropped += local.dropped;
    s.failed += local.failed;
    s.rejected += local.rejected;
    s.duplicates += local.duplicates;

    if (!batchFacts) await bus.committed(entries);
    if (emitted.length > 0) {
      if (redisMode) {
        // Journaled in the batch; on the stream now (or later by the journal's resend).
        await bus.append(emitted).catch((err) => this.deps.logger.warn({ err: (err as Error).message }, 'cartridge events wait in the emit journal'));
      } else (bus as { poke?: () => void }).poke?.();
    }
    const batch: CommittedBatch = {
      changes,
      passed,
      emitted,
      dropped,
      durationMs: performance.now() - t0,
      entries: entries.length,
    };
    this.deps.onCommitted?.(batch);
    return batch;
  }

  /**
   * Puts journaled events on the bus. Embedded mode: cartridge emits are already in the log
   * (wake the reader). Redis mode: events the processor has not applied yet and that were last
   * put on the stream more than `olderThanMs` ago go on it again (all of them with 0, after
   * Redis restarted empty); a duplicate is skipped by its id.
   */
  async flushEmitted(olderThanMs = 0): Promise<number> {
    const { bus, ns, clock } = this.deps;
    if (bus.kind !== 'redis') {
      (bus as { poke?: () => void }).poke?.();
      return 0;
    }
    let after = 0;
    let sent = 0;
    const cutoff = clock.now() - olderThanMs;
    for (;;) {
      const rows = ns.emitOutbox.stale(cutoff, after, 1000);
      if (rows.length === 0) return sent;
      try {
        await bus.append(rows.map((r) => r.envelope));
      } catch (err) {
        this.deps.logger.warn({ err: (err as Error).message, pending: ns.emitOutbox.count() }, 'events wait in the emit journal until Redis takes them');
        return sent;
      }
      const first = (rows[0] as { seq: number }).seq;
      after = (rows[rows.length - 1] as { seq: number }).seq;
      await ns.store.write(() => ns.emitOutbox.touch(first, after, clock.now()));
      sent += rows.length;
    }
  }
}
