import { LEVELS, type LevelName } from '../envelope/index.js';
import { WeftError } from '../errors/index.js';
import type { NodeStore, NotificationChange } from '../store/index.js';
import { type Clock, linkedSignal, type Logger, sleep as clockSleep } from '../util/index.js';
import type { DeliveryChannel, DeliveryStats } from './channel.js';
import { DeliveryTable, type NewDelivery } from './deliveries.js';
import { configProblem, type DeliverySender, type SendOutcome } from './sender.js';

/** Change kinds a channel can be told about. `updated` is sent only when it was meaningful. */
export type DeliveredKind = 'created' | 'updated' | 'resolved';

/** User options every durable channel takes (config keys `{channel}.*`). */
export interface DurableInit {
  /** Only notifications at or above this level are sent: 0..3 or a level name (`{channel}.min_level`). */
  minLevel: number | LevelName;
  /** Tries before a delivery is marked failed (default 20). Rate-limited tries do not count. */
  maxAttempts?: number;
  /** Which changes are sent (default created and meaningful updates). */
  notifyOn?: readonly DeliveredKind[];
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
  /**
   * Deliveries that may wait in the table (default 10,000): past it, a new one is recorded as
   * failed (`not queued: …`) rather than queued, so an endpoint down for days cannot grow the
   * node's database without bound.
   */
  maxPending?: number;
  /** Sent and failed rows kept per channel, the newest (default 10,000); older ones are deleted. */
  keepFinished?: number;
  /**
   * Longest pause a rate limit (or a `Retry-After` on a 5xx) may impose, in ms (default one hour):
   * a longer time is cut to this and the channel asks again then, so a wrong or absurd answer
   * cannot silence it for long; a real long ban costs one request per period.
   */
  maxPauseMs?: number;
}

/** Collaborators of a durable channel. */
export interface DeliveryDeps {
  ns: NodeStore;
  clock: Clock;
  logger: Logger;
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
  /** Waits `ms` or until `signal` aborts; never rejects. Defaults to `sleep` on `clock`. Tests pass one that advances a ManualClock. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Uniform [0, 1) for jitter (default Math.random). */
  random?: () => number;
}

type Checked = Required<Omit<DurableInit, 'minLevel'>> & { minLevel: number };

/** What one try came to, with the engine's own outcome: stopped while the request was out. */
type Outcome = SendOutcome | { type: 'aborted' };

/**
 * A durable delivery channel around one sender: each change worth sending becomes a
 * `deliveries` row in the node's SQLite file after its batch commits; a loop of its own sends
 * the rows in order through `sender`, retries a row that failed with exponential backoff and
 * jitter before any later one (so none overtakes another) until it is sent or given up, pauses
 * the whole channel when the API rate-limits (for the time it named), and records every outcome,
 * so a restart resends what was pending and never what was sent. A row whose request was in
 * flight at a crash is sent again (at least once). The sender only builds requests and reads
 * answers; the table, timers, backoff, rate limits and stats are all here.
 * @example
 * const discord = durableChannel(
 *   { minLevel: 'workflow' },
 *   { ns: node.ns, clock: systemClock, logger },
 *   discordSender({ webhookUrl: 'https://discord.com/api/webhooks/1/abc' }),
 * );
 * node.onCommitted((b) => void discord.enqueue(b.changes));
 * discord.start();
 * // on shutdown:
 * await discord.stop();
 */
export function durableChannel(
  init: DurableInit,
  deps: DeliveryDeps,
  sender: DeliverySender,
): DeliveryChannel {
  return new DurableChannel(checkDurableInit(sender.channel, init), deps, sender);
}

function checkDurableInit(channel: string, init: DurableInit): Checked {
  const bad = configProblem(channel);
  const minLevel = typeof init.minLevel === 'string' ? LEVELS[init.minLevel] : init.minLevel;
  if (typeof minLevel !== 'number' || !Number.isInteger(minLevel) || minLevel < 0 || minLevel > 3) {
    bad('min_level', init.minLevel, '0..3 or infrastructure | operational | workflow | business');
  }
  const positive = (key: string, v: number | undefined, dflt: number, min = 1): number => {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) bad(key, v, `a number ≥ ${min}`);
    return v;
  };
  const notifyOn = init.notifyOn ?? ['created', 'updated'];
  for (const k of notifyOn)
    if (!['created', 'updated', 'resolved'].includes(k))
      bad('notify_on', notifyOn, 'created | updated | resolved');
  const jitter = init.jitter ?? 0.2;
  if (typeof jitter !== 'number' || jitter < 0 || jitter >= 1) bad('jitter', jitter, 'a number in [0, 1)');
  return {
    minLevel: minLevel as number,
    maxAttempts: Math.floor(positive('max_attempts', init.maxAttempts, 20)),
    notifyOn,
    backoffBaseMs: positive('backoff_base_ms', init.backoffBaseMs, 1000),
    backoffMaxMs: positive('backoff_max_ms', init.backoffMaxMs, 300_000),
    jitter,
    requestTimeoutMs: positive('request_timeout_ms', init.requestTimeoutMs, 15_000),
    queueSize: Math.floor(positive('queue_size', init.queueSize, 256)),
    maxPending: Math.floor(positive('max_pending', init.maxPending, 10_000)),
    keepFinished: Math.floor(positive('keep_finished', init.keepFinished, 10_000, 0)),
    maxPauseMs: positive('max_pause_ms', init.maxPauseMs, 3_600_000),
  };
}

interface Queued {
  id: number;
  text: string;
  attempts: number;
  /** Epoch ms of its next try (a retry waits for its backoff; the rows after it wait too). */
  dueAt: number;
}

class DurableChannel implements DeliveryChannel {
  readonly channel: string;
  private readonly table: DeliveryTable;
  private readonly log: Logger;
  private readonly fetch: typeof fetch;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly random: () => number;
  /** Longest first, so a secret that contains another is replaced whole. */
  private readonly secrets: string[];
  private readonly queue: Queued[] = [];
  /** Ids in the queue or in flight, so a refill and an enqueue never hold one row twice. */
  private readonly held = new Set<number>();
  /** Pending rows may wait in the table only: the next refill reads them in order. */
  private backlog = true;
  private pausedUntil = 0;
  /** Rate limits in a row (named time or not): each waits at least the backoff for that many. */
  private limitsInARow = 0;
  /**
   * Refusals in a row, and until when they hold the channel: a wrong token or a deleted webhook
   * refuses every message, and without a pace the channel would spend its whole backlog (each
   * row marked failed) in a burst of refused requests, which some APIs punish with a ban.
   */
  private refusalsInARow = 0;
  private refusedUntil = 0;
  private state: 'idle' | 'running' | 'stopped' = 'idle';
  private readonly stopper = new AbortController();
  private loopDone: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private woken = false;
  private readonly writes = new Set<Promise<unknown>>();
  private readonly counters = { enqueued: 0, sent: 0, failed: 0, retries: 0, rateLimited: 0 };
  /** Rows finished (sent or failed) since the last prune of the old ones. */
  private finishedSincePrune = 0;
  /** Whether the last enqueue found the table full (its warning is logged once per overflow). */
  private overflowing = false;
  private lastError: string | null = null;
  /** Tries that failed since the last one that went through (any kind: retried, rate limited, refused). */
  private failing: { since: number; tries: number } | undefined;

  constructor(
    private readonly cfg: Checked,
    private readonly deps: DeliveryDeps,
    private readonly sender: DeliverySender,
  ) {
    this.channel = sender.channel;
    this.table = new DeliveryTable(deps.ns.store, this.channel);
    this.log = deps.logger.child({ mod: 'delivery', channel: this.channel });
    this.fetch = deps.fetch ?? globalThis.fetch;
    this.sleep = deps.sleep ?? ((ms, signal) => clockSleep(deps.clock, ms, signal));
    this.random = deps.random ?? Math.random;
    this.secrets = sender.secrets.filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
  }

  start(): void {
    if (this.state === 'running') return;
    if (this.state === 'stopped')
      throw new WeftError('WEFT_STOPPED', `${this.channel} delivery was stopped; create a new one`);
    this.state = 'running';
    this.resumeFailing();
    this.loopDone = this.loop().catch((err: unknown) => {
      this.log.error({ err: this.redact(errorMessage(err)) }, 'delivery loop ended with an error');
    });
  }

  /**
   * A restart keeps what the table says of the failing: the first waiting row's error and tries,
   * failing since it was written. Without it `weft status` showed no problem after a restart
   * while thousands of notifications waited, until the first row's backoff (up to 5 minutes, or
   * an hour of rate limit) let a new try fail.
   */
  private resumeFailing(): void {
    try {
      if (this.deps.ns.store.isClosed) return;
      const [head] = this.table.head(1);
      if (!head?.lastError) return;
      this.failing = { since: head.createdAt, tries: Math.max(1, head.attempts) };
      this.lastError = head.lastError;
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'cannot read the waiting deliveries');
    }
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
      const overflowError = `not queued: ${this.cfg.maxPending} notifications already wait on ${this.channel}`;
      const write = this.table.insert(rows, now, { maxPending: this.cfg.maxPending, overflowError }).then(
        ({ ids, refused }) => {
          const added = ids.filter((id) => id !== null).length;
          this.counters.enqueued += added;
          if (refused > 0) {
            this.counters.failed += refused;
            this.finished(refused);
            if (!this.overflowing) {
              this.log.error(
                { refused, maxPending: this.cfg.maxPending },
                'too many deliveries wait; new ones are recorded as failed until the backlog shrinks',
              );
            }
          }
          this.overflowing = refused > 0;
          if (added > 0) this.admit(ids, rows, now);
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
      this.log.error({ err: this.redact(errorMessage(err)) }, 'cannot prepare deliveries');
      return Promise.resolve(0);
    }
  }

  stats(): DeliveryStats {
    let pending = -1;
    let oldestPendingAt: number | null = null;
    try {
      if (!this.deps.ns.store.isClosed) {
        pending = this.table.pendingCount();
        oldestPendingAt = pending > 0 ? (this.table.oldestPendingAt() ?? null) : null;
      }
    } catch {
      // A closed or busy store: report unknown rather than fail a scrape.
    }
    const now = this.deps.clock.now();
    return {
      channel: this.channel,
      ...this.counters,
      queued: this.queue.length,
      pending,
      lastError: this.lastError,
      failingSince: this.failing?.since ?? null,
      failuresInARow: this.failing?.tries ?? 0,
      oldestPendingAt,
      pausedUntil: this.pausedUntil > now ? this.pausedUntil : null,
      maxPending: this.cfg.maxPending,
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
        text: this.sender.render(n, c.kind),
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
  private admit(ids: ReadonlyArray<number | null>, rows: readonly NewDelivery[], dueAt: number): void {
    if (!this.backlog && this.state !== 'stopped') {
      for (const [i, id] of ids.entries()) {
        const row = rows[i];
        if (id === null || !row || this.held.has(id)) continue;
        if (this.queue.length >= this.cfg.queueSize) {
          this.backlog = true;
          break;
        }
        this.queue.push({ id, text: row.text, attempts: 0, dueAt });
        this.held.add(id);
      }
    }
    this.wake();
  }

  /** Counts rows that became sent or failed, and deletes the oldest finished ones now and then. */
  private finished(n: number): void {
    this.finishedSincePrune += n;
    // Pruning scans the newest keepFinished rows; doing it every so many rows keeps that cheap.
    if (this.finishedSincePrune < Math.max(100, Math.min(1000, this.cfg.keepFinished))) return;
    this.finishedSincePrune = 0;
    const prune = this.table.pruneFinished(this.cfg.keepFinished).then(
      (deleted) => {
        if (deleted > 0) this.log.debug({ deleted }, 'old finished deliveries deleted');
      },
      (err: unknown) => this.log.warn({ err: errorMessage(err) }, 'cannot delete old finished deliveries'),
    );
    this.track(prune);
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

  /** Reads the pending rows in the order they are sent, whether due yet or not (the first may wait for its retry). */
  private refill(): void {
    const rows = this.table.head(this.cfg.queueSize);
    for (const r of rows) {
      if (this.held.has(r.id)) continue;
      this.queue.push({ id: r.id, text: r.text, attempts: r.attempts, dueAt: r.nextAttemptAt });
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
      const holdUntil = Math.max(this.pausedUntil, this.refusedUntil);
      if (holdUntil > now) {
        await this.wait(holdUntil - now);
        continue;
      }
      if (this.queue.length === 0) this.refill();
      const head = this.queue[0];
      if (!head) {
        await this.wait(undefined);
        continue;
      }
      // In order: a row waiting for its retry holds the ones behind it.
      if (head.dueAt > now) {
        await this.wait(head.dueAt - now);
        continue;
      }
      const item = this.queue.shift() as Queued;
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
    if (outcome.type !== 'rateLimited' && outcome.type !== 'aborted') this.limitsInARow = 0;
    if (outcome.type !== 'permanent' && outcome.type !== 'aborted') this.refusalsInARow = 0;
    if (outcome.type === 'sent') this.failing = undefined;
    else if (outcome.type !== 'aborted') {
      this.failing ??= { since: now, tries: 0 };
      this.failing.tries++;
    }
    let requeued = false;
    try {
      switch (outcome.type) {
        case 'aborted':
          return false;
        case 'sent':
          this.counters.sent++;
          if (outcome.pauseMs !== undefined && outcome.pauseMs > 0) this.pause(now, outcome.pauseMs);
          await this.table.markSent(item.id, now);
          this.finished(1);
          this.log.debug({ delivery: item.id, attempt }, 'sent');
          return false;
        case 'rateLimited': {
          this.counters.rateLimited++;
          this.lastError = outcome.error;
          // The named time, but never less than the backoff for the limits in a row: an API that
          // names 0 (`Retry-After: 0`, a date in the past) or a few ms would otherwise be asked
          // again at once, in a tight loop, for as long as it keeps refusing.
          const floor = this.backoff(++this.limitsInARow);
          const at = this.pause(now, Math.max(outcome.retryAfterMs ?? 0, floor));
          // First in line again once the pause ends, so rate limiting keeps the order.
          this.queue.unshift(item);
          requeued = true;
          this.log.warn(
            { delivery: item.id, retryAfterMs: at - now },
            `rate limited by ${this.sender.api}; pausing`,
          );
          await this.table.markDeferred(item.id, outcome.error, at);
          return true;
        }
        case 'permanent': {
          this.counters.failed++;
          this.lastError = outcome.error;
          // One refusal is about its message; from the second in a row on, the next request
          // waits the backoff (1 s, 2 s, … up to 5 minutes), so a refusal of every message costs
          // a few rows while the person fixes the config, not the whole backlog at once.
          const refusals = ++this.refusalsInARow;
          if (refusals >= 2) this.refusedUntil = now + this.backoff(refusals - 1);
          await this.table.markFailed(item.id, outcome.error);
          this.finished(1);
          this.log.error(
            { delivery: item.id, err: outcome.error },
            `delivery refused by ${this.sender.api}; not retried`,
          );
          return false;
        }
        case 'retry': {
          this.lastError = outcome.error;
          if (attempt >= this.cfg.maxAttempts) {
            this.counters.failed++;
            await this.table.markFailed(item.id, `${outcome.error} (gave up after ${attempt} attempts)`);
            this.finished(1);
            this.log.error({ delivery: item.id, attempt, err: outcome.error }, 'delivery failed; giving up');
            return false;
          }
          this.counters.retries++;
          const delay = Math.max(
            Math.min(outcome.retryAfterMs ?? 0, this.cfg.maxPauseMs),
            this.backoff(attempt),
          );
          // First in line again, when its backoff ends: the rows behind it wait, so none overtakes it.
          this.queue.unshift({ ...item, attempts: attempt, dueAt: now + delay });
          requeued = true;
          await this.table.markRetry(item.id, outcome.error, now + delay);
          this.log.warn(
            { delivery: item.id, attempt, delayMs: delay, err: outcome.error },
            'delivery failed; will retry',
          );
          return true;
        }
      }
    } catch (err) {
      // The store closed under us (shutdown): the row stays as it was and is retried after restart.
      this.log.warn({ delivery: item.id, err: errorMessage(err) }, 'cannot record delivery outcome');
      return requeued;
    }
  }

  /** Holds every request of the channel until `now + ms` (capped); returns that time. */
  private pause(now: number, ms: number): number {
    const at = now + Math.min(Math.max(0, ms), this.cfg.maxPauseMs);
    this.pausedUntil = Math.max(this.pausedUntil, at);
    return at;
  }

  /** Exponential backoff with ± jitter: base·2^(attempt-1), capped. */
  private backoff(attempt: number): number {
    const raw = Math.min(this.cfg.backoffMaxMs, this.cfg.backoffBaseMs * 2 ** Math.min(attempt - 1, 30));
    return Math.round(raw * (1 + this.cfg.jitter * (2 * this.random() - 1)));
  }

  private async send(text: string, stop: AbortSignal): Promise<Outcome> {
    if (stop.aborted) return { type: 'aborted' };
    const timeout = AbortSignal.timeout(this.cfg.requestTimeoutMs);
    const bound = linkedSignal([stop, timeout]);
    let outcome: SendOutcome;
    try {
      const req = this.sender.request(text);
      const res = await this.fetch(req.url, {
        method: req.method,
        headers: req.headers,
        body: req.body,
        signal: bound.signal,
        // A redirect is not followed: a 301/302 turns the POST into a GET that a login page
        // answers 200 (counted as sent, the message lost), and a 307/308 sends the message to
        // a host nobody configured.
        redirect: 'manual',
      });
      if (res.status >= 300 && res.status < 400) {
        await res.body?.cancel().catch(() => undefined);
        return { type: 'permanent', error: this.redact(redirectMessage(res, req.url)) };
      }
      const body = await readCapped(res, MAX_ANSWER_BYTES);
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      outcome = this.sender.classify({
        status: res.status,
        headers: res.headers,
        body,
        json,
        at: this.deps.clock.now(),
      });
    } catch (err) {
      if (stop.aborted) return { type: 'aborted' };
      if (timeout.aborted)
        return { type: 'retry', error: `no answer within ${this.cfg.requestTimeoutMs} ms` };
      return { type: 'retry', error: this.redact(networkMessage(err)) };
    } finally {
      bound.release();
    }
    return outcome.type === 'sent' ? outcome : { ...outcome, error: this.redact(outcome.error) };
  }

  /** Secrets must never reach a log line or the table. */
  private redact(s: string): string {
    let out = s;
    for (const secret of this.secrets) out = out.split(secret).join('<token>');
    return out;
  }
}

/**
 * The most of an answer's body the engine reads. Every API's real answer is a few KiB at most;
 * an endpoint that sends more (or never ends) must not make the daemon hold all of it.
 */
export const MAX_ANSWER_BYTES = 64 * 1024;

/**
 * The first `max` bytes of `res`'s body as UTF-8 text; the rest is not read: the stream is
 * cancelled, which closes the connection. A character cut at the limit reads as U+FFFD.
 */
async function readCapped(res: Response, max: number): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < max) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    // Whatever is left (more than the cap, or unread after a failure) is dropped, not buffered.
    await reader.cancel().catch(() => undefined);
  }
  return new TextDecoder().decode(Buffer.concat(chunks, size).subarray(0, max));
}

/** A refused redirect, naming where it pointed: the origin alone, as the rest may hold a token. */
function redirectMessage(res: Response, from: string): string {
  const location = res.headers.get('location');
  let to = 'no Location';
  if (location) {
    try {
      to = new URL(location, from).origin;
    } catch {
      to = 'an unreadable Location';
    }
  }
  return `redirected (${res.status} to ${to}); redirects are not followed: set the URL the endpoint answers at`;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * fetch's "fetch failed" hides the reason in `cause`: its code, and its words when they say
 * more (`UND_ERR_SOCKET (other side closed)`, `DEPTH_ZERO_SELF_SIGNED_CERT (self-signed
 * certificate)`, `ENOTFOUND (getaddrinfo ENOTFOUND ntfy.example)`).
 */
function networkMessage(err: unknown): string {
  const msg = errorMessage(err);
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : undefined;
  if (!cause) return msg;
  const code = 'code' in cause ? String((cause as { code: unknown }).code) : undefined;
  const words = cause.message.slice(0, 200);
  if (code === undefined || words === '' || words === code) return `${msg}: ${code ?? words}`;
  return `${msg}: ${code} (${words})`;
}
