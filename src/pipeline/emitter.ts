import type { Bus } from '../bus/index.js';
import type { Envelope } from '../envelope/index.js';
import { WeftError } from '../errors/index.js';
import { type BuildDeps, buildEnvelope } from './build.js';

interface Pending {
  envs: Envelope[];
  resolve: (v: Envelope[]) => void;
  reject: (e: unknown) => void;
}

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
   * Applies a batch at once when it may (appended and processed in one commit); false: it may
   * not, or it failed with nothing written, and the batch goes to the bus instead.
   */
  direct: ((envs: Envelope[]) => Promise<boolean>) | undefined;

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
    if (this.closed) return Promise.reject(new WeftError('WEFT_STOPPED', 'node is stopping: emit refused'));
    let envs: Envelope[];
    try {
      envs = inputs.map((i) => buildEnvelope(i, this.build));
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ envs, resolve, reject });
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
        if (!(this.direct && (await this.direct(all)))) await this.bus.append(all);
        this.emittedCount += all.length;
        for (const p of batch) p.resolve(p.envs);
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
    this.flushing = undefined;
  }
}
