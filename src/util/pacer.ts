/**
 * Paces background work (the recovery index and journal) so it gives way to the node's own
 * traffic. Work is done in slices of about `sliceMs`; before each slice `turn()` waits while the
 * node is busy (its `activity` counter moved within the last `quietMs`, or other work held the
 * event loop since the last slice), but never longer than
 * it takes to keep the background's share of the loop at `share`: a slice that took d ms is
 * followed, under load, by at most d × (1 − share) / share ms of waiting. So an idle node runs
 * the work at once, and a loaded one still gets it done (at the default 10 %, ten times slower
 * at worst), while no event waits behind more than one short slice. On a loop saturated by other
 * work (slices far apart) a slice grows, up to `maxSliceMs`, so the share holds. Slices of all
 * the work sharing one pacer run one at a time.
 *
 * Real time on purpose: it measures the event loop, not the node's logic (tests with a fake
 * clock still pace).
 * @example
 * const pacer = new Pacer(() => store.commits);
 * while (more()) {
 *   const done = await pacer.slice((until) => takeSome(until));
 *   await commit(done);
 * }
 */
import type { EventLoopUtilization } from 'node:perf_hooks';
import { Mutex } from './mutex.js';

/**
 * Other work that held the event loop this long since the last slice makes the node busy even
 * when nothing committed: a peer's large batch is applied for tens of milliseconds before its
 * commit, and slices that ran in each such gap took a fifth of the loop in a burst instead of
 * a tenth. What a slice's own caller does before asking for the next one takes far less.
 */
const BUSY_ACTIVE_MS = 1;
/** A wait counts as quiet when the loop was busy for less than this share of it. */
const QUIET_UTILIZATION = 0.5;

export interface PacerOptions {
  /** Milliseconds one slice of work aims at (default 2). */
  sliceMs?: number;
  /** Share of the loop the work may take while the node is busy, 0 < share ≤ 1 (default 0.1). */
  share?: number;
  /** The node counts as quiet when `activity` did not move for this long (default 10 ms). */
  quietMs?: number;
  /** Milliseconds a slice may grow to when the loop is saturated by other work (default 10). */
  maxSliceMs?: number;
}

export class Pacer {
  readonly sliceMs: number;
  private readonly share: number;
  private readonly quietMs: number;
  private readonly maxSliceMs: number;
  private readonly lock = new Mutex();
  /** Earliest start of the next slice while the node is busy. */
  private next = 0;
  /** When the last slice ended, and `activity` then. */
  private lastEnd = Number.NEGATIVE_INFINITY;
  private activityAtEnd = Number.NaN;
  /** The loop's utilization counters when the last slice ended. */
  private loopAtEnd: EventLoopUtilization | undefined;

  constructor(
    private readonly activity: () => number,
    opts: PacerOptions = {},
  ) {
    this.sliceMs = opts.sliceMs ?? 2;
    this.share = Math.min(1, Math.max(0.01, opts.share ?? 0.1));
    this.quietMs = opts.quietMs ?? 10;
    this.maxSliceMs = Math.max(this.sliceMs, opts.maxSliceMs ?? 10);
  }

  /**
   * Runs one slice of work, synchronously, when its turn comes. `work` gets the performance.now()
   * time it should stop by; the time it takes sets how long the next slice waits under load.
   * Asynchronous follow-ups (an emit, a deferred write) belong after it: they are the node's
   * own work, paced by the node.
   */
  async slice<T>(work: (until: number) => T): Promise<T> {
    const asked = performance.now();
    const release = this.lock.tryAcquire() ?? (await this.lock.acquire());
    try {
      await this.turn();
      const start = performance.now();
      // A loop saturated by other work makes this call wait long for its turn: the slice grows
      // to keep the share (up to maxSliceMs), or background work would starve. (Time the work
      // was not asked for — an idle node between passes — earns nothing.)
      const earned = ((start - Math.max(this.lastEnd, asked)) * this.share) / (1 - this.share);
      const budget = Math.min(this.maxSliceMs, Math.max(this.sliceMs, earned));
      try {
        return work(start + budget);
      } finally {
        const end = performance.now();
        this.lastEnd = end;
        this.activityAtEnd = this.activity();
        this.loopAtEnd = performance.eventLoopUtilization();
        this.next = end + ((end - start) * (1 - this.share)) / this.share;
      }
    } finally {
      release();
    }
  }

  /**
   * Counts `ms` of work done outside a slice on the background's behalf (an emit it made): the
   * next slice waits for it under load as for a slice that long.
   */
  charge(ms: number): void {
    this.next = Math.max(this.next, performance.now() + (ms * (1 - this.share)) / this.share);
    this.activityAtEnd = Number.NaN;
  }

  /** Waits while the node is busy, but not past the slice's share. */
  private async turn(): Promise<void> {
    // Always let what waits on the loop (I/O, timers) go first.
    await new Promise((r) => setImmediate(r));
    for (;;) {
      const now = performance.now();
      if (now >= this.next) return;
      const seen = this.activity();
      // Nothing else happened since the last slice (no commit, next to no other work on the
      // loop): the node is idle, go on at once.
      if (seen === this.activityAtEnd && this.loopAtEnd && performance.eventLoopUtilization(this.loopAtEnd).active < BUSY_ACTIVE_MS) return;
      const loop = performance.eventLoopUtilization();
      await new Promise((r) => setTimeout(r, Math.max(1, Math.min(this.quietMs, this.next - now))));
      if (this.activity() === seen && performance.eventLoopUtilization(loop).utilization < QUIET_UTILIZATION) return;
    }
  }
}
