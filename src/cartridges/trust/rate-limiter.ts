/**
 * Per-source token buckets for the trust evaluator. Time comes from the event's own timestamp,
 * clamped to never run ahead of the node's clock nor back in time, so a backlog replayed after
 * downtime is not mistaken for a flood, and a peer cannot earn tokens with forged timestamps.
 */

import type { Store } from '../../store/index.js';

/** A source's allowance: a sustained rate and a burst. */
export interface RateLimit {
  /** Tokens added per second (sustained events per second). */
  perSecond: number;
  /** Bucket size: events a quiet source may send at once. */
  burst: number;
  /**
   * Tokens the bucket must hold again before a throttled source is let through (default half
   * the burst): a flooder cannot trickle through at exactly the refill rate.
   */
  resumeAt?: number;
}

/** What one take() decided. */
export type RateVerdict = 'ok' | 'throttle-start' | 'throttled';

interface Bucket {
  tokens: number;
  last: number;
  throttled: boolean;
  since: number;
  /** Events refused since the episode began, and the allowance it was over. */
  refused: number;
  limit?: RateLimit;
}

/** A throttling episode, as a status page shows it. */
export interface ThrottleEpisode {
  subject: string;
  since: number;
  refused: number;
  perSecond: number;
}

/** The store's transactions, as the limiter follows them. */
type Transactions = Pick<Store, 'inTransaction' | 'onTransactionEnd'>;

/**
 * Token buckets keyed by subject (peer node id, or `local:<source>`). In memory, and following
 * the store's transactions when `take` is given them: a bucket is put back as it was when the
 * transaction that spent its tokens rolls back, so a batch run again (after a cartridge threw,
 * or a failed commit) neither spends a source's tokens twice nor loses the throttle notice its
 * first run raised (the second run starts the throttling again, and raises it again).
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  /** Buckets as they were before the open transaction first touched them (undefined: it made them). */
  private saved: Map<string, Bucket | undefined> | undefined;

  constructor(private readonly maxSubjects = 50_000) {}

  /**
   * Takes one token for `subject` at time `eventMs` (clamped to `nowMs`). A throttled source
   * keeps spending tokens, so it stays throttled for as long as it floods. Inside one of
   * `txns`' transactions, what it changes is put back if that transaction rolls back.
   */
  take(subject: string, limit: RateLimit, eventMs: number, nowMs: number, txns?: Transactions): RateVerdict {
    if (txns?.inTransaction) this.remember(subject, txns);
    let b = this.buckets.get(subject);
    const t0 = Number.isFinite(eventMs) && eventMs < nowMs ? eventMs : nowMs;
    if (!b) {
      if (this.buckets.size >= this.maxSubjects) this.sweep(nowMs, limit);
      b = { tokens: limit.burst, last: t0, throttled: false, since: 0, refused: 0 };
      this.buckets.set(subject, b);
    }
    const t = Math.max(t0, b.last);
    if (t > b.last) {
      b.tokens = Math.min(limit.burst, b.tokens + ((t - b.last) / 1000) * limit.perSecond);
      b.last = t;
    }
    if (b.throttled && b.tokens >= (limit.resumeAt ?? limit.burst / 2)) b.throttled = false;
    if (!b.throttled && b.tokens >= 1) {
      b.tokens -= 1;
      return 'ok';
    }
    b.tokens = Math.max(0, b.tokens - 1);
    if (b.throttled) {
      b.refused++;
      return 'throttled';
    }
    b.throttled = true;
    b.since = t;
    b.refused = 1;
    b.limit = limit;
    return 'throttle-start';
  }

  /** Whether a subject is throttled now (for status pages). */
  isThrottled(subject: string): boolean {
    return this.buckets.get(subject)?.throttled ?? false;
  }

  /**
   * Subjects throttled, with the time their episode began and what it refused. With `nowMs`,
   * one whose bucket has refilled past its resume mark since its last event is not listed (it
   * stopped flooding; its next event goes through).
   */
  throttled(nowMs?: number): ThrottleEpisode[] {
    const out: ThrottleEpisode[] = [];
    for (const [subject, b] of this.buckets) {
      if (!b.throttled) continue;
      const limit = b.limit;
      if (nowMs !== undefined && limit) {
        const tokens = Math.min(limit.burst, b.tokens + (Math.max(0, nowMs - b.last) / 1000) * limit.perSecond);
        if (tokens >= (limit.resumeAt ?? limit.burst / 2)) continue;
      }
      out.push({ subject, since: b.since, refused: b.refused, perSecond: limit?.perSecond ?? 0 });
    }
    return out;
  }

  private remember(subject: string, txns: Transactions): void {
    if (this.saved === undefined) {
      const saved = new Map<string, Bucket | undefined>();
      this.saved = saved;
      txns.onTransactionEnd((committed) => {
        this.saved = undefined;
        if (committed) return;
        for (const [k, b] of saved) {
          if (b) this.buckets.set(k, b);
          else this.buckets.delete(k);
        }
      });
    }
    if (this.saved.has(subject)) return;
    const b = this.buckets.get(subject);
    this.saved.set(subject, b ? { ...b } : undefined);
  }

  // Forgets buckets that have refilled completely: they behave like new ones.
  private sweep(nowMs: number, limit: RateLimit): void {
    for (const [k, b] of this.buckets) {
      if (!b.throttled && b.tokens + ((nowMs - b.last) / 1000) * limit.perSecond >= limit.burst)
        this.buckets.delete(k);
    }
  }
}
