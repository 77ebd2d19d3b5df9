/** A bounded async queue consumed as an AsyncIterable: producers wait when it is full. */
import { after, type Clock, systemClock } from '../util/index.js';

export class BoundedQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private readonly takers: Array<(r: IteratorResult<T>) => void> = [];
  private readonly spaceWaiters: Array<() => void> = [];
  private closed = false;

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.items.length;
  }

  /** Adds an item, waiting while the queue is full. Returns false once the queue is closed. */
  async push(item: T): Promise<boolean> {
    while (!this.closed && this.items.length >= this.capacity && this.takers.length === 0) {
      await new Promise<void>((r) => this.spaceWaiters.push(r));
    }
    if (this.closed) return false;
    const taker = this.takers.shift();
    if (taker) taker({ value: item, done: false });
    else this.items.push(item);
    return true;
  }

  /** Ends iteration; waiting producers and consumers are released. Items still queued are dropped. */
  close(): T[] {
    this.closed = true;
    for (const t of this.takers.splice(0)) t({ value: undefined, done: true });
    for (const w of this.spaceWaiters.splice(0)) w();
    return this.items.splice(0);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private next(): Promise<IteratorResult<T>> {
    const item = this.items.shift();
    if (item !== undefined) {
      this.spaceWaiters.shift()?.();
      return Promise.resolve({ value: item, done: false });
    }
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((r) => this.takers.push(r));
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.next(),
      // `break` ends this consumer only; the queue keeps its items for the next one.
      return: async () => ({ value: undefined, done: true }),
    };
  }
}

/** Resolves after `ms` on `clock`'s time, or rejects early when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal, clock: Clock = systemClock): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const cancel = after(clock, ms, () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    });
    const onAbort = () => {
      cancel();
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
