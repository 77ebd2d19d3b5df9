/**
 * Something retried on a timer that fails for as long as what it needs is away (a Redis
 * server, a NATS registry): the log gets one warning when the failures start, a reminder with
 * the count at most every `remindEveryMs`, and one line when it works again, instead of a line
 * per try; the state stays readable for status and health.
 */
import type { Clock } from './clock.js';
import type { Logger } from './logger.js';

/** An outage as status shows it. */
export interface FailureState {
  /** When the first failure of this streak happened (ms since the epoch). */
  since: number;
  failures: number;
  lastError: string;
}

/**
 * @example
 * const streak = new FailureStreak('peer discovery', logger, clock);
 * try { await discover(); streak.succeeded(); } catch (err) { streak.failed((err as Error).message); }
 * streak.state(); // { since, failures, lastError } while it fails, else null
 */
export class FailureStreak {
  private current: FailureState | undefined;
  private lastLoggedAt = 0;

  constructor(
    /** What fails, as the log names it ("peer discovery"). */
    private readonly what: string,
    private readonly logger: Logger,
    private readonly clock: Clock,
    /** What the warnings add (e.g. "keeping the peers known so far"). */
    private readonly consequence = '',
    private readonly remindEveryMs = 60_000,
  ) {}

  failed(error: string): void {
    const now = this.clock.now();
    const tail = this.consequence ? `; ${this.consequence}` : '';
    if (this.current === undefined) {
      this.current = { since: now, failures: 1, lastError: error };
      this.lastLoggedAt = now;
      this.logger.warn({ err: error }, `${this.what} failed${tail}`);
      return;
    }
    this.current.failures++;
    this.current.lastError = error;
    if (now - this.lastLoggedAt >= this.remindEveryMs) {
      this.lastLoggedAt = now;
      this.logger.warn(
        { err: error, failures: this.current.failures, forSeconds: Math.round((now - this.current.since) / 1000) },
        `${this.what} still fails${tail}`,
      );
    }
  }

  succeeded(): void {
    const c = this.current;
    if (c === undefined) return;
    this.current = undefined;
    this.logger.info(
      { failures: c.failures, forSeconds: Math.round((this.clock.now() - c.since) / 1000) },
      `${this.what} works again`,
    );
  }

  /** The streak going on, or null. */
  state(): FailureState | null {
    return this.current ? { ...this.current } : null;
  }
}
