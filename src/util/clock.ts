/**
 * A clock passed into every module below daemon/, so tests can drive time.
 * @example
 * const clock = systemClock; clock.now(); // ms since the epoch
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/**
 * TESTS ONLY: `WEFT_TEST_CLOCK_OFFSET_MS` shifts this process's clock, so the chaos suite can
 * run a real daemon whose clock is minutes off (its frames must be refused by the replay guard).
 */
const TEST_CLOCK_OFFSET_MS = Number(process.env.WEFT_TEST_CLOCK_OFFSET_MS ?? 0) || 0;

export const systemClock: Clock =
  TEST_CLOCK_OFFSET_MS === 0 ? { now: () => Date.now() } : { now: () => Date.now() + TEST_CLOCK_OFFSET_MS };

/** A clock that only moves when told to. */
export class ManualClock implements Clock {
  constructor(private t = Date.UTC(2026, 0, 1)) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
  set(ms: number): void {
    this.t = ms;
  }
}
