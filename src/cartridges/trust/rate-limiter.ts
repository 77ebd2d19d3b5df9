/**
 * Per-source token buckets for the trust evaluator. Time comes from the event's own timestamp,
 * clamped to never run ahead of the node's clock nor back in time, so a backlog replayed after
 * downtime is not mistaken for a flood, and a peer cannot earn tokens with forged timestamps.
 */

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
}

/** Token buckets keyed by subject (peer node id, or `local:<source>`). In memory. */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly maxSubjects = 50_000) {}

  /**
   * Takes one token for `subject` at time `eventMs` (clamped to `nowMs`). A throttled source
   * keeps spending tokens, so it stays throttled for as long as it floods.
   */
  take(subject: string, limit: RateLimit, eventMs: number, nowMs: number): RateVerdict {
    let b = this.buckets.get(subject);
    const t0 = Number.isFinite(eventMs) && eventMs < nowMs ? eventMs : nowMs;
    if (!b) {
      if (this.buckets.size >= this.maxSubjects) this.sweep(nowMs, limit);
      b = { tokens: limit.burst, last: t0, throttled: false, since: 0 };
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
    if (b.throttled) return 'throttled';
    b.throttled = true;
    b.since = t;
    return 'throttle-start';
  }

  /** Whether a subject is throttled now (for status pages). */
  isThrottled(subject: string): boolean {
    return this.buckets.get(subject)?.throttled ?? false;
  }

  /** Subjects currently throttled, with the time their episode began. */
  throttled(): Array<{ subject: string; since: number }> {
    const out: Array<{ subject: string; since: number }> = [];
    for (const [subject, b] of this.buckets) if (b.throttled) out.push({ subject, since: b.since });
    return out;
  }

  // Forgets buckets that have refilled completely: they behave like new ones.
  private sweep(nowMs: number, limit: RateLimit): void {
    for (const [k, b] of this.buckets) {
      if (!b.throttled && b.tokens + ((nowMs - b.last) / 1000) * limit.perSecond >= limit.burst)
        this.buckets.delete(k);
    }
  }
}
