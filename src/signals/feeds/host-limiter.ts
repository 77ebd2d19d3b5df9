/**
 * At most `perHost` requests to one host at a time: polite to the servers we read, and one
 * slow host cannot hold every slot. Waiters are served in order.
 */
export class HostLimiter {
  private readonly hosts = new Map<string, { active: number; waiters: Array<() => void> }>();

  constructor(private readonly perHost: number) {
    if (!Number.isInteger(perHost) || perHost < 1)
      throw new RangeError(`perHost must be a positive integer, not ${perHost}`);
  }

  /**
   * Resolves with a release once a slot for `host` is free; rejects if `signal` aborts first.
   * @example
   * const release = await limiter.acquire('example.org'); try { await get(); } finally { release(); }
   */
  acquire(host: string, signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    let h = this.hosts.get(host);
    if (!h) {
      h = { active: 0, waiters: [] };
      this.hosts.set(host, h);
    }
    const slot = h;
    if (slot.active < this.perHost) {
      slot.active++;
      return Promise.resolve(this.releaser(host, slot));
    }
    return new Promise((resolve, reject) => {
      const grant = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve(this.releaser(host, slot));
      };
      const onAbort = (): void => {
        const i = slot.waiters.indexOf(grant);
        if (i >= 0) slot.waiters.splice(i, 1);
        reject(signal?.reason);
      };
      slot.waiters.push(grant);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Requests running now to `host`. */
  active(host: string): number {
    return this.hosts.get(host)?.active ?? 0;
  }

  private releaser(host: string, slot: { active: number; waiters: Array<() => void> }): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = slot.waiters.shift();
      if (next)
        next(); // the slot passes on; active stays
      else {
        slot.active--;
        if (slot.active === 0) this.hosts.delete(host);
      }
    };
  }
}
