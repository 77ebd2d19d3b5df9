/**
 * Waits `ms`, or less when `signal` aborts (it then resolves, never rejects): the backoff of a
 * loop that must stop at once when its owner stops.
 * @example
 * await pause(backoffMs, this.abort.signal);
 */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
