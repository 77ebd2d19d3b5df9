import { type Clock, every, type Logger } from '../util/index.js';

export interface RefusalNoticesInit {
  /** One notification per key per window (ms, default 60 s). */
  windowMs?: number;
  /** Keys remembered at most (default 10,000): beyond, the oldest window is forgotten. */
  maxKeys?: number;
}

export interface RefusalNoticesDeps {
  clock: Clock;
  logger: Logger;
  /** Raises the notification; `count` is how many refusals it stands for. */
  raise: (key: string, detail: RefusalDetail, count: number) => Promise<unknown>;
}

/** What a notification says about the refusals it stands for (the first one of the window). */
export type RefusalDetail = Record<string, string | undefined>;

interface Window {
  startedAt: number;
  /** Refusals since the last notification. */
  unreported: number;
  detail: RefusalDetail;
}

/**
 * Turns a burst of refusals into one notification per key (a source and a reason) per
 * window: the first refusal is raised at once with count 1; those that follow within the
 * window are folded into one more notification at its end, with their count. A flood of
 * garbage is two lines, never thousands, and never silence.
 */
export class RefusalNotices {
  private readonly windows = new Map<string, Window>();
  private readonly windowMs: number;
  private readonly maxKeys: number;
  /** Cancels the flush timer while one runs. */
  private timer: (() => void) | undefined;

  constructor(
    init: RefusalNoticesInit,
    private readonly deps: RefusalNoticesDeps,
  ) {
    this.windowMs = init.windowMs ?? 60_000;
    this.maxKeys = init.maxKeys ?? 10_000;
  }

  /** Counts one refusal under `key`. */
  note(key: string, detail: RefusalDetail): void {
    const now = this.deps.clock.now();
    const w = this.windows.get(key);
    if (w && now - w.startedAt < this.windowMs) {
      w.unreported++;
      this.schedule();
      return;
    }
    if (w) this.flush(key, w);
    if (this.windows.size >= this.maxKeys) {
      const oldest = this.windows.keys().next().value as string;
      const ow = this.windows.get(oldest) as Window;
      this.flush(oldest, ow);
      this.windows.delete(oldest);
    }
    this.windows.delete(key);
    this.windows.set(key, { startedAt: now, unreported: 0, detail });
    this.send(key, detail, 1);
  }

  /** Raises what the current windows still hold. */
  flushAll(): void {
    const now = this.deps.clock.now();
    for (const [key, w] of this.windows) {
      if (now - w.startedAt >= this.windowMs) {
        this.flush(key, w);
        this.windows.delete(key);
      }
    }
    if (this.windows.size === 0 && this.timer) {
      this.timer();
      this.timer = undefined;
    }
  }

  /** Raises every folded count now and stops the timer. */
  close(): void {
    this.timer?.();
    this.timer = undefined;
    for (const [key, w] of this.windows) this.flush(key, w);
    this.windows.clear();
  }

  private flush(key: string, w: Window): void {
    if (w.unreported > 0) this.send(key, w.detail, w.unreported);
    w.unreported = 0;
  }

  private send(key: string, detail: RefusalDetail, count: number): void {
    this.deps.raise(key, detail, count).catch((err) => this.deps.logger.error({ err: (err as Error).message, key }, 'raising a refusal notification failed'));
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = every(this.deps.clock, Math.max(10, Math.floor(this.windowMs / 2)), () => this.flushAll(), { unref: true });
  }
}
