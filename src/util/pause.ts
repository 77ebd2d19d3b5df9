import { setMaxListeners } from 'node:events';
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
 * A signal that aborts when any of `signals` aborts (with its reason) or after `timeoutMs` (a
 * TimeoutError), and `release()` to unhook it once the operation is over. Not `AbortSignal.any`:
 * on Node 20 a long-lived signal keeps every signal made from it by `any` for good (400,000
 * calls with a node's stop signal: 400,000 kept after a full collection, 45 MB of heap), so one
 * per request or per XACK grew a daemon's memory without bound. Each source holds one listener
 * per operation in flight (its limit is lifted: those are bounded by the callers).
 * @example
 * const { signal, release } = linkedSignal([this.abort.signal], 5000);
 * try { await untilAborted(work(), signal); } finally { release(); }
 */
export function linkedSignal(signals: readonly AbortSignal[], timeoutMs?: number): { signal: AbortSignal; release: () => void } {
  const ac = new AbortController();
  const unhook: Array<() => void> = [];
  let timer: NodeJS.Timeout | undefined;
  const release = () => {
    if (timer) clearTimeout(timer);
    for (const u of unhook.splice(0)) u();
  };
  const abortWith = (reason: unknown) => {
    release();
    ac.abort(reason);
  };
  const aborted = signals.find((s) => s.aborted);
  if (aborted) {
    ac.abort(aborted.reason);
    return { signal: ac.signal, release };
  }
  for (const s of signals) {
    const onAbort = () => abortWith(s.reason);
    setMaxListeners(0, s);
    s.addEventListener('abort', onAbort, { once: true });
    unhook.push(() => s.removeEventListener('abort', onAbort));
  }
  if (timeoutMs !== undefined) {
    timer = setTimeout(() => abortWith(new DOMException(`timed out after ${timeoutMs} ms`, 'TimeoutError')), timeoutMs);
    timer.unref();
  }
  return { signal: ac.signal, release };
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
