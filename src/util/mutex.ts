/**
 * A FIFO async mutex. Writers to the one SQLite connection take it so that an asynchronous
 * transaction (a pipeline batch waiting on a sandboxed cartridge) is never joined by another
 * writer's statements.
 */
export class Mutex {
  private locked = false;
  private readonly waiters: Array<() => void> = [];

  get isLocked(): boolean {
    return this.locked;
  }

  /** Resolves with a release function once the lock is held. */
  acquire(): Promise<() => void> {
    if (!this.locked) {
      this.locked = true;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve) => this.waiters.push(() => resolve(this.releaser())));
  }

  /** Takes the lock only if free, without waiting. */
  tryAcquire(): (() => void) | undefined {
    if (this.locked) return undefined;
    this.locked = true;
    return this.releaser();
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiters.shift();
      if (next) next();
      else this.locked = false;
    };
  }
}
