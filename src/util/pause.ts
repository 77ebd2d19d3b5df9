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
 * Resolves with the work's value, or rejects with the signal's reason as soon as it aborts (the
 * work goes on; its later outcome is dropped). No signal: the work itself.
 * @example
 * const v = await untilAborted(fetchSomething(), AbortSignal.timeout(1000));
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
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
