import { LEVELS, type LevelName } from '../envelope/index.js';
import { ConfigError, WeftError } from '../errors/index.js';
import type { NodeStore, NotificationChange } from '../store/index.js';
import type { DeliveryChannel, DeliveryStats } from './channel.js';
import type { Clock, Logger } from '../util/index.js';
import { DeliveryTable, type NewDelivery } from './deliveries.js';
import { formatNotification } from './format.js';

/** Change kinds a channel can be told about. `updated` is sent only when it was meaningful. */
export type DeliveredKind = 'created' | 'updated' | 'resolved';

/** User options of the Telegram channel (config keys `telegram.*`). */
export interface TelegramInit {
  /** Bot token from @BotFather (`telegram.bot_token`; keep it in a 0600 file). */
  botToken: string;
  /** Chat to post to: a numeric id or `@channelname` (`telegram.chat_id`). */
  chatId: string | number;
  /** Only notifications at or above this level are sent: 0..3 or a level name (`telegram.min_level`). */
  minLevel: number | LevelName;
  /** Bot API base URL (`telegram.base_url`, default https://api.telegram.org). */
  baseUrl?: string;
  /** Tries before a delivery is marked failed (`telegram.max_attempts`, default 20). Rate-limited tries do not count. */
  maxAttempts?: number;
  /** Which changes are sent (`telegram.notify_on`, default created and meaningful updates). */
  notifyOn?: readonly DeliveredKind[];
  /** `HTML` for bold headlines (`telegram.parse_mode`); default plain text. */
  parseMode?: 'HTML';
  /** First retry delay in ms (default 1000); doubles per attempt. */
  backoffBaseMs?: number;
  /** Longest retry delay in ms (default 300000). */
  backoffMaxMs?: number;
  /** ± share of random jitter on each retry delay (default 0.2). */
  jitter?: number;
  /** A request that takes longer is aborted and retried (default 15000 ms). */
  requestTimeoutMs?: number;
  /** Deliveries held in memory at once; the rest wait in the table (default 256). */
  queueSize?: number;
}

/** Collaborators of the Telegram channel. */
export interface TelegramDeps {
  ns: NodeStore;
  clock: Clock;
  logger: Logger;
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
  /** Waits `ms` (by `clock`) or until `signal` aborts; never rejects. Tests pass one that advances a ManualClock. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Uniform [0, 1) for jitter (default Math.random). */
  random?: () => number;
}

/** Counters of a delivery channel, for metrics. Counters run from `start`; `pending` is read from the table. */
type Outcome =
  | { type: 'sent' }
  | { type: 'retry'; error: string; retryAfterMs?: number }
  | { type: 'rateLimited'; error: string; retryAfterMs: number }
  | { type: 'permanent'; error: string }
  | { type: 'aborted' };

const DEFAULT_BASE_URL = 'https://api.telegram.org';

/**
 * Telegram delivery: notifications at or above `minLevel` go to one chat through the Bot API
 * `sendMessage`. Each change worth sending becomes a `deliveries` row in the node's SQLite file
 * after its batch commits; a loop of its own sends them in order, retries with exponential
 * backoff and jitter, honours 429 `retry_after` (the whole channel pauses), and records every
 * outcome, so a restart resends what was pending and never what was sent. A row whose request
 * was in flight at a crash is sent again (at least once). 4xx answers other than 429 are
 * permanent and mark the row failed.
 * @example
 * const telegram = telegramDelivery(
 *   { botToken: '123:abc', chatId: 42, minLevel: 'workflow' },
 *   { ns: node.ns, clock: systemClock, logger },
 * );
 * node.onCommitted((b) => void telegram.enqueue(b.changes));
 * telegram.start();
 * // on shutdown:
 * await telegram.stop();
 */
export function telegramDelivery(init: TelegramInit, deps: TelegramDeps): DeliveryChannel {
  const cfg = checkInit(init);
  return new TelegramChannel(cfg, deps);
}

type Checked = Required<Omit<TelegramInit, 'parseMode' | 'minLevel'>> & {
  minLevel: number;
  parseMode: 'HTML' | undefined;
};

function checkInit(init: TelegramInit): Checked {
  const bad = (key: string, value: unknown, allowed: string): never => {
    throw new ConfigError(`telegram.${key}: ${JSON.stringify(value)} is not allowed; expected ${allowed}`, {
      key: `telegram.${key}`,
    });
  };
  if (typeof init.botToken !== 'string' || !/^\S+$/.test(init.botToken)) {
    bad('bot_token', init.botToken ? '<set>' : init.botToken, 'a bot token from @BotFather (no spaces)');
  }
  if (
    !(typeof init.chatId === 'number' && Number.isInteger(init.chatId)) &&
    !(typeof init.chatId === 'string' && init.chatId.trim() !== '')
  ) {
    bad('chat_id', init.chatId, 'a numeric chat id or @channelname');
  }
  const minLevel = typeof init.minLevel === 'string' ? LEVELS[init.minLevel] : init.minLevel;
  if (typeof minLevel !== 'number' || !Number.isInteger(minLevel) || minLevel < 0 || minLevel > 3) {
    bad('min_level', init.minLevel, '0..3 or infrastructure | operational | workflow | business');
  }
  const baseUrl = (init.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, '');
  if (!/^https?:\/\/[^\s/]+/.test(baseUrl)) bad('base_url', init.baseUrl, 'an http(s) URL');
  const positive = (key: string, v: number | undefined, dflt: number, min = 1): number => {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) bad(key, v, `a number ≥ ${min}`);
    return v;
  };
  const notifyOn = init.notifyOn ?? ['created', 'updated'];
  for (const k of notifyOn)
    if (!['created', 'updated', 'resolved'].includes(k))
      bad('notify_on', notifyOn, 'created | updated | resolved');
  if (init.parseMode !== undefined && init.parseMode !== 'HTML')
    bad('parse_mode', init.parseMode, "'HTML' or unset");
  const jitter = init.jitter ?? 0.2;
  if (typeof jitter !== 'number' || jitter < 0 || jitter >= 1) bad('jitter', jitter, 'a number in [0, 1)');
  return {
    botToken: init.botToken,
    chatId: init.chatId,
    minLevel: minLevel as number,
    baseUrl,
    maxAttempts: Math.floor(positive('max_attempts', init.maxAttempts, 20)),
    notifyOn,
    parseMode: init.parseMode,
    backoffBaseMs: positive('backoff_base_ms', init.backoffBaseMs, 1000),
    backoffMaxMs: positive('backoff_max_ms', init.backoffMaxMs, 300_000),
    jitter,
    requestTimeoutMs: positive('request_timeout_ms', init.requestTimeoutMs, 15_000),
    queueSize: Math.floor(positive('queue_size', init.queueSize, 256)),
  };
}

/** Waits by real time; resolves early (never rejects) when `signal` aborts. */
function realSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, Math.max(0, ms));
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

interface Queued {
  id: number;
  text: string;
  attempts: number;
}

class TelegramChannel implements DeliveryChannel {
  readonly channel = 'telegram';
  private readonly table: DeliveryTable;
  private readonly log: Logger;
  private readonly fetch: typeof fetch;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly random: () => number;
  private readonly url: string;
  private readonly queue: Queued[] = [];
  /** Ids in the queue or in flight, so a refill and an enqueue never hold one row twice. */
  private readonly held = new Set<number>();
  /** Rows due now may wait in the table only: the next refill reads them in order. */
  private backlog = true;
  private pausedUntil = 0;
  private state: 'idle' | 'running' | 'stopped' = 'idle';
  private readonly stopper = new AbortController();
  private loopDone: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private woken = false;
  private readonly writes = new Set<Promise<unknown>>();
  private readonly counters = { enqueued: 0, sent: 0, failed: 0, retries: 0, rateLimited: 0 };
  private lastError: string | null = null;

  constructor(
    private readonly cfg: Checked,
    private readonly deps: TelegramDeps,
  ) {
    this.table = new DeliveryTable(deps.ns.store, this.channel);
    this.log = deps.logger.child({ mod: 'delivery', channel: this.channel });
    this.fetch = deps.fetch ?? globalThis.fetch;
    this.sleep = deps.sleep ?? realSleep;
    this.random = deps.random ?? Math.random;
    this.url = `${cfg.baseUrl}/bot${cfg.botToken}/sendMessage`;
  }

  start(): void {
    if (this.state === 'running') return;
    if (this.state === 'stopped')
      throw new WeftError('WEFT_STOPPED', 'telegram delivery was stopped; create a new one');
    this.state = 'running';
    this.loopDone = this.loop().catch((err: unknown) => {
      this.log.error({ err: this.redact(errorMessage(err)) }, 'delivery loop ended with an error');
    });
  }

  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    const wasRunning = this.state === 'running';
    this.state = 'stopped';
    this.stopper.abort();
    this.wake();
    this.stopping = (async () => {
      if (wasRunning) await this.loopDone;
      await Promise.allSettled([...this.writes]);
    })();
    return this.stopping;
  }

  enqueue(changes: readonly NotificationChange[]): Promise<number> {
    if (this.deps.ns.store.isClosed) {
      this.log.warn({ changes: changes.length }, 'store closed; changes not recorded for delivery');
      return Promise.resolve(0);
    }
    try {
      const rows = this.select(changes);
      if (rows.length === 0) return Promise.resolve(0);
      const now = this.deps.clock.now();
      // The insert is requested synchronously, so it queues on the store's write lock ahead
      // of a store.close() the caller starts right after (shutdown keeps what was committed).
      const write = this.table.insert(rows, now).then(
        (ids) => {
          const added = ids.filter((id) => id !== null).length;
          this.counters.enqueued += added;
          if (added > 0) this.admit(ids, rows);
          return added;
        },
        (err: unknown) => {
          this.log.error(
            { err: errorMessage(err), changes: rows.length },
            'cannot record deliveries; they are lost',
          );
          return 0;
        },
      );
      this.track(write);
      return write;
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'cannot prepare deliveries');
      return Promise.resolve(0);
    }
  }

  stats(): DeliveryStats {
    let pending = -1;
    try {
      if (!this.deps.ns.store.isClosed) pending = this.table.pendingCount();
    } catch {
      // A closed or busy store: report unknown rather than fail a scrape.
    }
    return {
      channel: this.channel,
      ...this.counters,
      queued: this.queue.length,
      pending,
      lastError: this.lastError,
    };
  }

  /** The changes worth sending, read back as committed and rendered now. */
  private select(changes: readonly NotificationChange[]): NewDelivery[] {
    const out: NewDelivery[] = [];
    const seen = new Set<string>();
    for (const c of changes) {
      if (!this.wanted(c)) continue;
      let n: ReturnType<NodeStore['notifications']['get']>;
      try {
        n = this.deps.ns.notifications.get(c.id);
      } catch (err) {
        this.log.warn(
          { id: c.id, err: errorMessage(err) },
          'notification of a committed change is gone; not delivered',
        );
        continue;
      }
      if (n.level < this.cfg.minLevel) continue;
      const version = `${n.updatedAt}/${n.eventId}`;
      const key = `${n.id}|${c.kind}|${version}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({
        notificationId: n.id,
        changeKind: c.kind,
        version,
        level: n.level,
        text: formatNotification(n, c.kind, this.cfg.parseMode ? { parseMode: this.cfg.parseMode } : {}),
      });
    }
    return out;
  }

  private wanted(c: NotificationChange): boolean {
    const on = this.cfg.notifyOn;
    if (c.kind === 'created') return on.includes('created');
    if (c.kind === 'updated') return c.meaningful && on.includes('updated');
    if (c.kind === 'resolved') return on.includes('resolved');
    return false;
  }

  /** Puts fresh rows in memory when nothing older waits in the table; wakes the loop. */
  private admit(ids: ReadonlyArray<number | null>, rows: readonly NewDelivery[]): void {
    if (!this.backlog && this.state !== 'stopped') {
      for (const [i, id] of ids.entries()) {
        const row = rows[i];
        if (id === null || !row || this.held.has(id)) continue;
        if (this.queue.length >= this.cfg.queueSize) {
          this.backlog = true;
          break;
        }
        this.queue.push({ id, text: row.text, attempts: 0 });
        this.held.add(id);
      }
    }
    this.wake();
  }

  private track(p: Promise<unknown>): void {
    this.writes.add(p);
    void p.finally(() => this.writes.delete(p));
  }

  private wake(): void {
    const w = this.wakeUp;
    if (w) {
      this.wakeUp = undefined;
      w();
    } else {
      this.woken = true;
    }
  }

  /** Waits for a wake-up, stop, or `ms` (when given). */
  private async wait(ms: number | undefined): Promise<void> {
    if (this.woken || this.stopper.signal.aborted) {
      this.woken = false;
      return;
    }
    const timer = new AbortController();
    const stop = () => timer.abort();
    this.stopper.signal.addEventListener('abort', stop, { once: true });
    try {
      const woke = new Promise<void>((r) => {
        this.wakeUp = r;
      });
      await Promise.race(ms === undefined ? [woke] : [woke, this.sleep(ms, timer.signal)]);
    } finally {
      this.wakeUp = undefined;
      this.woken = false;
      timer.abort();
      this.stopper.signal.removeEventListener('abort', stop);
    }
  }

  private refill(now: number): void {
    const rows = this.table.due(now, this.cfg.queueSize);
    for (const r of rows) {
      if (this.held.has(r.id)) continue;
      this.queue.push({ id: r.id, text: r.text, attempts: r.attempts });
      this.held.add(r.id);
    }
    this.backlog = rows.length >= this.cfg.queueSize;
  }

  private async loop(): Promise<void> {
    const signal = this.stopper.signal;
    while (!signal.aborted) {
      if (this.deps.ns.store.isClosed) {
        this.log.warn('store closed before delivery stopped; pending rows wait for the next start');
        return;
      }
      const now = this.deps.clock.now();
      if (this.pausedUntil > now) {
        await this.wait(this.pausedUntil - now);
        continue;
      }
      if (this.queue.length === 0) this.refill(now);
      const item = this.queue.shift();
      if (!item) {
        const next = this.table.nextDueAt();
        await this.wait(next === undefined ? undefined : Math.max(0, next - now));
        continue;
      }
      let requeued = false;
      try {
        requeued = await this.deliver(item, signal);
      } finally {
        if (!requeued) this.held.delete(item.id);
      }
    }
  }

  /** Sends one row and records the outcome; true when the row went back to the head of the queue. */
  private async deliver(item: Queued, signal: AbortSignal): Promise<boolean> {
    const outcome = await this.send(item.text, signal);
    const now = this.deps.clock.now();
    const attempt = item.attempts + 1;
    try {
      switch (outcome.type) {
        case 'aborted':
          return false;
        case 'sent':
          this.counters.sent++;
          await this.table.markSent(item.id, now);
          this.log.debug({ delivery: item.id, attempt }, 'sent');
          return false;
        case 'rateLimited': {
          this.counters.rateLimited++;
          this.lastError = outcome.error;
          const at = now + outcome.retryAfterMs;
          this.pausedUntil = Math.max(this.pausedUntil, at);
          // First in line again once the pause ends, so rate limiting keeps the order.
          this.queue.unshift(item);
          this.log.warn(
            { delivery: item.id, retryAfterMs: outcome.retryAfterMs },
            'rate limited by the Bot API; pausing',
          );
          await this.table.markDeferred(item.id, outcome.error, at);
          return true;
        }
        case 'permanent':
          this.counters.failed++;
          this.lastError = outcome.error;
          await this.table.markFailed(item.id, outcome.error);
          this.log.error(
            { delivery: item.id, err: outcome.error },
            'delivery refused by the Bot API; not retried',
          );
          return false;
        case 'retry': {
          this.lastError = outcome.error;
          if (attempt >= this.cfg.maxAttempts) {
            this.counters.failed++;
            await this.table.markFailed(item.id, `${outcome.error} (gave up after ${attempt} attempts)`);
            this.log.error({ delivery: item.id, attempt, err: outcome.error }, 'delivery failed; giving up');
            return false;
          }
          this.counters.retries++;
          const delay = Math.max(outcome.retryAfterMs ?? 0, this.backoff(attempt));
          await this.table.markRetry(item.id, outcome.error, now + delay);
          this.log.warn(
            { delivery: item.id, attempt, delayMs: delay, err: outcome.error },
            'delivery failed; will retry',
          );
          return false;
        }
      }
    } catch (err) {
      // The store closed under us (shutdown): the row stays as it was and is retried after restart.
      this.log.warn({ delivery: item.id, err: errorMessage(err) }, 'cannot record delivery outcome');
      return outcome.type === 'rateLimited';
    }
  }

  /** Exponential backoff with ± jitter: base·2^(attempt-1), capped. */
  private backoff(attempt: number): number {
    const raw = Math.min(this.cfg.backoffMaxMs, this.cfg.backoffBaseMs * 2 ** Math.min(attempt - 1, 30));
    return Math.round(raw * (1 + this.cfg.jitter * (2 * this.random() - 1)));
  }

  private async send(text: string, stop: AbortSignal): Promise<Outcome> {
    if (stop.aborted) return { type: 'aborted' };
    const body: Record<string, unknown> = {
      chat_id: this.cfg.chatId,
      text,
      link_preview_options: { is_disabled: true },
    };
    if (this.cfg.parseMode) body.parse_mode = this.cfg.parseMode;
    const timeout = AbortSignal.timeout(this.cfg.requestTimeoutMs);
    let res: Response;
    let json: TelegramAnswer | undefined;
    try {
      res = await this.fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.any([stop, timeout]),
      });
      const raw = await res.text();
      try {
        json = JSON.parse(raw) as TelegramAnswer;
      } catch {
        json = undefined;
      }
    } catch (err) {
      if (stop.aborted) return { type: 'aborted' };
      if (timeout.aborted)
        return { type: 'retry', error: `no answer within ${this.cfg.requestTimeoutMs} ms` };
      return { type: 'retry', error: this.redact(networkMessage(err)) };
    }
    if (res.ok && json?.ok === true) return { type: 'sent' };
    const detail = `${res.status}${json?.description ? ` ${json.description}` : ''}`;
    if (res.status === 429) {
      const secs = Number(json?.parameters?.retry_after ?? res.headers.get('retry-after'));
      const retryAfterMs = Number.isFinite(secs) && secs >= 0 ? secs * 1000 : this.backoff(1);
      return { type: 'rateLimited', error: `rate limited: ${detail}`, retryAfterMs };
    }
    if (res.ok) return { type: 'retry', error: `unexpected answer: ${detail}` };
    if (res.status >= 400 && res.status < 500 && res.status !== 408) {
      return { type: 'permanent', error: this.redact(`Bot API refused: ${detail}`) };
    }
    return { type: 'retry', error: this.redact(`Bot API error: ${detail}`) };
  }

  /** The token must never reach a log line or the table. */
  private redact(s: string): string {
    return s.split(this.cfg.botToken).join('<token>');
  }
}

/** The Bot API's answer envelope. */
interface TelegramAnswer {
  ok: boolean;
  description?: string;
  error_code?: number;
  parameters?: { retry_after?: number; migrate_to_chat_id?: number };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** fetch's "fetch failed" hides the reason in `cause`. */
function networkMessage(err: unknown): string {
  const msg = errorMessage(err);
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : undefined;
  const code = cause && 'code' in cause ? String((cause as { code: unknown }).code) : undefined;
  return cause ? `${msg}: ${code ?? cause.message}` : msg;
}
