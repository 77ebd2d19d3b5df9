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

/**
 * Whether a process with this pid exists (ours or another user's: EPERM means it exists).
 * @example
 * processAlive(process.pid) // true
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
