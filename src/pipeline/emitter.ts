import type { Bus } from '../bus/index.js';
import type { Envelope } from '../envelope/index.js';
import { WeftError } from '../errors/index.js';
import { type BuildDeps, buildEnvelope } from './build.js';

/**
 * What became of an emitted event by the time its emit answered. Every one is stored (durable)
 * either way; `applied`, `dropped` and `failed` come from the pipeline's run in the same commit.
 */
export type EmitOutcome =
  /** Stored, and the pipeline passed it in the same commit. */
  | { state: 'applied' }
  /** Stored, and a stage of the pipeline stopped it in the same commit: `dedup` (its idempotency key was processed before), `trust` (with its outcome and reason), another cartridge. */
  | { state: 'dropped'; by: string; trust?: string; reason?: string }
  /** Stored, and a cartridge threw on it in the same commit: it is a dead letter now, and a `system.cartridge.failed` event says so. */
  | { state: 'failed'; by: string; error: string }
  /** Stored; the pipeline applies it after the events waiting before it. */
  | { state: 'queued' };

/** An emitted envelope and what became of it. */
export interface EmitResult {
  envelope: Envelope;
  outcome: EmitOutcome;
}

/** The events a pipeline run applied at once stopped or failed on, by envelope id (`direct`'s answer). */
export type StoppedAtEmit = ReadonlyMap<string, Extract<EmitOutcome, { state: 'dropped' | 'failed' }>>;

interface Pending {
  envs: Envelope[];
  /** `stopped`: the batch was applied at once, and these were dropped or failed; undefined: it went to the bus. */
  resolve: (stopped: StoppedAtEmit | undefined) => void;
  reject: (e: unknown) => void;
}

const APPLIED: EmitOutcome = Object.freeze({ state: 'applied' });
const QUEUED: EmitOutcome = Object.freeze({ state: 'queued' });

/**
 * emit(): validates and builds envelopes at once (errors are thrown to the producer), then
 * group-commits: every emit made while a write is in flight joins the next single append.
 * The promise resolves when the events are durable on this node (the bus's SQLite commit:
 * the log, or Redis mode's journal), whatever a Redis server is doing. A batch that comes
 * while the pipeline is caught up is appended and applied in one commit (`direct`); the
 * promise then resolves once it is applied.
 */
export class Emitter {
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private closed = false;
  private emittedCount = 0;

  /**
   * Applies a batch at once when it may (appended and processed in one commit), answering the
   * events a stage dropped or a cartridge failed on; false: it may not, or it failed with
   * nothing written, and the batch goes to the bus instead.
   */
  direct: ((envs: Envelope[]) => Promise<StoppedAtEmit | false>) | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly build: BuildDeps,
    private readonly maxBatch = 4096,
  ) {}

  /** Emits one event. */
  async emit(input: unknown): Promise<Envelope> {
    const [env] = await this.emitMany([input]);
    return env as Envelope;
  }

  /** Emits several events; all are validated before any is written. */
  emitMany(inputs: readonly unknown[]): Promise<Envelope[]> {
    return this.enqueue(inputs, (envs) => envs);
  }

  /** As `emitMany`, with what became of each event (applied at once, dropped by a stage, failed, or queued). */
  emitManyReported(inputs: readonly unknown[]): Promise<EmitResult[]> {
    return this.enqueue(inputs, (envs, stopped) =>
      envs.map((envelope) => {
        if (stopped === undefined) return { envelope, outcome: QUEUED };
        return { envelope, outcome: (stopped.size === 0 ? undefined : stopped.get(envelope.id)) ?? APPLIED };
      }),
    );
  }

  private enqueue<T>(inputs: readonly unknown[], finish: (envs: Envelope[], stopped: StoppedAtEmit | undefined) => T): Promise<T> {
    if (this.closed) return Promise.reject(new WeftError('WEFT_STOPPED', 'node is stopping: emit refused'));
    let envs: Envelope[];
    try {
      envs = inputs.map((i) => buildEnvelope(i, this.build));
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ envs, resolve: (stopped) => resolve(finish(envs, stopped)), reject });
      if (!this.flushing) this.flushing = this.flushLoop();
    });
  }

  get emitted(): number {
    return this.emittedCount;
  }

  /** Waits for queued emits, then refuses new ones. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flushing;
  }

  private async flushLoop(): Promise<void> {
    // Let the emits of this tick join the batch.
    await new Promise<void>((r) => setImmediate(r));
    while (this.queue.length > 0) {
      const batch: Pending[] = [];
      let n = 0;
      let i = 0;
      const q = this.queue;
      while (i < q.length && (n === 0 || n + (q[i] as Pending).envs.length <= this.maxBatch)) {
        const p = q[i++] as Pending;
        batch.push(p);
        n += p.envs.length;
      }
      this.queue = i === q.length ? [] : q.slice(i);
      const all = batch.length === 1 ? (batch[0] as Pending).envs : batch.flatMap((p) => p.envs);
      try {
        const stopped = this.direct ? await this.direct(all) : false;
        if (stopped === false) await this.bus.append(all);
        this.emittedCount += all.length;
        for (const p of batch) p.resolve(stopped === false ? undefined : stopped);
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
    this.flushing = undefined;
  }
}
