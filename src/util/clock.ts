/**
 * A clock passed into every module below daemon/, so tests can drive time: readings (`now`)
 * and, where a clock offers them, timers. Timers that measure the node's own logic (resend,
 * backoff, heartbeats, flush intervals) go through `after`, `every` and `sleep` below, so a
 * test clock with timers runs them in milliseconds; bounds on I/O (a request that must answer
 * within N s of wall time) stay on real timers on purpose.
 * @example
 * const clock = systemClock; clock.now(); // ms since the epoch
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /**
   * Runs `fn` once after `ms` of this clock's time; returns a cancel. Clocks without it (the
   * system clock) get real timers.
   */
  setTimer?(fn: () => void, ms: number): () => void;
}

export const systemClock: Clock = { now: () => Date.now() };

/** The system clock shifted by `offsetMs` (a node whose clock is wrong, for the replay tests). */
export function offsetClock(offsetMs: number): Clock {
  return { now: () => Date.now() + offsetMs };
}

/** Options of the timer helpers: `unref` lets the process exit while the timer waits (real timers only). */
export interface TimerOptions {
  unref?: boolean;
}

/** Runs `fn` once after `ms` on `clock`'s time; returns a cancel. */
export function after(clock: Clock, ms: number, fn: () => void, opts: TimerOptions = {}): () => void {
  if (clock.setTimer) return clock.setTimer(fn, ms);
  const t = setTimeout(fn, ms);
  if (opts.unref) t.unref();
  return () => clearTimeout(t);
}

/** Runs `fn` every `ms` on `clock`'s time until the returned cancel is called. */
export function every(clock: Clock, ms: number, fn: () => void, opts: TimerOptions = {}): () => void {
  if (!clock.setTimer) {
    const t = setInterval(fn, ms);
    if (opts.unref) t.unref();
    return () => clearInterval(t);
  }
  let cancel: (() => void) | undefined;
  let stopped = false;
  const arm = () => {
    cancel = after(clock, ms, () => {
      if (stopped) return;
      arm();
      fn();
    });
  };
  arm();
  return () => {
    stopped = true;
    cancel?.();
  };
}

/** Waits `ms` on `clock`'s time, or less when `signal` aborts (it then resolves, never rejects). */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal, opts: TimerOptions = {}): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      cancel();
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const cancel = after(clock, ms, done, opts);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * A clock that only moves when told to. With `{ timers: true }` it also keeps timers, which
 * `advance()` fires in time order, so code waiting on resend, backoff or heartbeat timers runs
 * in milliseconds; without, timers are real ones (what tests that only read the time want).
 */
export class ManualClock implements Clock {
  private timers: Array<{ at: number; seq: number; fn: () => void }> = [];
  private seq = 0;
  readonly setTimer?: (fn: () => void, ms: number) => () => void;

  constructor(
    private t = Date.UTC(2026, 0, 1),
    opts: { timers?: boolean } = {},
  ) {
    if (opts.timers) {
      this.setTimer = (fn, ms) => {
        const timer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn };
        this.timers.push(timer);
        return () => {
          this.timers = this.timers.filter((x) => x !== timer);
        };
      };
    }
  }
  now(): number {
    return this.t;
  }
  /** Moves time forward, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers = this.timers.filter((x) => x !== due);
      this.t = Math.max(this.t, due.at);
      due.fn();
    }
    this.t = end;
  }
  set(ms: number): void {
    this.t = ms;
  }
  /** Timers waiting to fire. */
  get pendingTimers(): number {
    return this.timers.length;
  }
}
