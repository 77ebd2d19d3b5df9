/**
 * Bounds the request body bytes the API reads at once. Each body is bounded (`bodyLimit`), but
 * a client with many connections could send many at once: 150 concurrent 8 MiB bodies took an
 * embedded daemon to 876 MB, and the process kept most of it (freed memory that glibc's heap
 * could not hand back). A request with a body takes its size (its `Content-Length`, or the body
 * limit when it has none) from the budget before its body is read; when the budget is spent it
 * waits, first come first served, and its socket is not read meanwhile (TCP holds the rest on
 * the client's side). Its bytes come back when its response is finished or its connection
 * closes; the API closes a connection whose body has not arrived 60 s after its turn came, so
 * the queue always moves.
 */

/** Body bytes read at once by default: eight of the largest bodies. */
export const DEFAULT_BODY_BYTES_IN_FLIGHT = 64 * 1024 * 1024;

export interface BodyBudgetStats {
  /** Bytes taken by requests whose bodies are being read or handled. */
  readonly inFlight: number;
  readonly max: number;
  /** Requests waiting for their bytes. */
  readonly waiting: number;
  /** The most ever taken at once (never above `max`). */
  readonly peak: number;
  /** Bodies that did not arrive in time once their turn came (their connections were closed). */
  readonly timedOut: number;
}

interface Waiter {
  bytes: number;
  grant: () => void;
}

export class BodyBudget {
  private used = 0;
  private peak = 0;
  private readonly queue: Waiter[] = [];
  /** Counted by the API when a body misses its deadline. */
  timedOut = 0;

  constructor(readonly max: number = DEFAULT_BODY_BYTES_IN_FLIGHT) {}

  /**
   * Takes `bytes` (at most `max`) when they fit. `ready` resolves then; `release` gives them
   * back, or leaves the queue when called before that (both at most once).
   * @example
   * const t = budget.take(bodyBytes);
   * reply.raw.once('close', t.release);
   * await t.ready;
   */
  take(bytes: number): { ready: Promise<void>; release: () => void } {
    const n = Math.min(Math.max(0, bytes), this.max);
    let state: 'waiting' | 'held' | 'done' = 'waiting';
    let grant: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => {
      grant = () => {
        if (state !== 'waiting') return;
        state = 'held';
        this.used += n;
        if (this.used > this.peak) this.peak = this.used;
        resolve();
      };
    });
    const waiter: Waiter = { bytes: n, grant };
    if (this.queue.length === 0 && this.used + n <= this.max) grant();
    else this.queue.push(waiter);
    const release = () => {
      if (state === 'held') {
        this.used -= n;
        this.grantWaiting();
      } else if (state === 'waiting') {
        const i = this.queue.indexOf(waiter);
        if (i >= 0) this.queue.splice(i, 1);
        // The head may have been what held the others back.
        if (i === 0) this.grantWaiting();
      }
      state = 'done';
    };
    return { ready, release };
  }

  stats(): BodyBudgetStats {
    return { inFlight: this.used, max: this.max, waiting: this.queue.length, peak: this.peak, timedOut: this.timedOut };
  }

  private grantWaiting(): void {
    for (;;) {
      const head = this.queue[0];
      if (!head || this.used + head.bytes > this.max) return;
      this.queue.shift();
      head.grant();
    }
  }
}
