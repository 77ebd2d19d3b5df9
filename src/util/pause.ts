import { type Clock, sleep, systemClock } from './clock.js';

/**
 * Waits `ms` on `clock`'s time, or less when `signal` aborts (it then resolves, never rejects):
 * the backoff of a loop that must stop at once when its owner stops.
 * @example
 * await pause(backoffMs, this.abort.signal, this.deps.clock);
 */
export function pause(ms: number, signal: AbortSignal, clock: Clock = systemClock): Promise<void> {
  return sleep(clock, ms, signal);
}
