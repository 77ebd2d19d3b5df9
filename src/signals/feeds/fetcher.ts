/**
 * The feed fetcher: keeps each source's polling state in the node's store (table
 * signal_sources) and polls like a good citizen: conditional GETs on every repeat poll, one
 * request per host at a time, Retry-After and Cache-Control honoured, an interval that follows
 * the feed's pace, backoff on errors, a byte cap and a deadline per request, and a source
 * disabled after N bodies in a row that are no readable feed. It schedules nothing itself: the
 * ingest loop asks what is {@link FeedFetcher.due} and polls it, so all timing reads the
 * injected clock.
 */
import type { Statement } from 'better-sqlite3';
import { NotFoundError, requireDeps, ValidationError, WeftError } from '../../errors/index.js';
import type { Store } from '../../store/index.js';
import { type Clock, displayUrl, linkedSignal, type Logger } from '../../util/index.js';
import { VERSION } from '../../version.js';
import type { ParsedFeed, SourceKind, SourceSpec } from '../types.js';
import { FeedParseError } from './errors.js';
import { getFeed } from './http.js';
import { HostLimiter } from './host-limiter.js';
import { MAX_FEED_BYTES, parseFeed } from './parse.js';
import {
  backoffMs,
  clampInterval,
  type IntervalBounds,
  intervalFromItems,
  intervalFromNewItems,
  parseMaxAge,
  parseRetryAfter,
} from './schedule.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/**
 * A poll counts toward flagging a source only when its feed lists at least this many items, all
 * new: a feed of two posts that were both new is just a quiet feed that published.
 */
export const FLOOD_MIN_ITEMS = 10;

/** User options of the fetcher; every one has a default. */
export interface FeedFetcherInit {
  /** Requests to one host at a time (default 1). */
  perHost?: number;
  /** Body cap in bytes (default 5 MiB): reading stops and the connection drops past it. */
  maxBytes?: number;
  /** Deadline of one poll, redirects and body included (default 15 s, wall time). */
  timeoutMs?: number;
  /** Redirects followed (default 5), http and https only. */
  maxRedirects?: number;
  /** Shortest polling interval (default 5 min). */
  minIntervalMs?: number;
  /** Longest polling interval, and the ceiling of error backoff (default 6 h). */
  maxIntervalMs?: number;
  /** Interval of a source never polled (default 15 min). */
  initialIntervalMs?: number;
  /** Bodies in a row that are no readable feed (or too large) before the source is disabled (default 5). */
  maxParseErrors?: number;
  /** A Retry-After further away than this is cut to it (default 24 h): a server cannot mute a source for ever. */
  maxRetryAfterMs?: number;
  /** The User-Agent header (default `Weft/<version> (feed fetcher)`). */
  userAgent?: string;
  /** New items one poll of one source may admit (default 1,000); the rest wait for its next poll. */
  maxNewPerPoll?: number;
  /** New items one source may admit in a rolling day (default 10,000); once spent, it waits for the day's end. */
  maxNewPerDay?: number;
  /** Polls in a row on which every item (at least {@link FLOOD_MIN_ITEMS}) was new before the source is flagged and backs off (default 3). */
  floodPolls?: number;
}

/** Collaborators of the fetcher. */
export interface FeedFetcherDeps {
  /** The node's store; migration 10 created signal_sources. */
  store: Store;
  /** Every schedule (next poll, Retry-After, backoff) reads this clock. */
  clock: Clock;
  logger: Logger;
}

/** A source with its polling state, as stored. Times are ms since the epoch. */
export interface SourceState extends SourceSpec {
  readonly intervalMs: number;
  readonly nextPollAt: number;
  readonly retryAfterUntil: number | null;
  readonly etag: string | null;
  readonly lastModified: string | null;
  /** Bodies in a row that were no readable feed (or too large). */
  readonly parseErrors: number;
  /** Polls in a row that failed on the network or with an HTTP error. */
  readonly fetchErrors: number;
  readonly disabledReason: string | null;
  readonly lastPolledAt: number | null;
  readonly lastStatus: string | null;
  readonly lastNewItems: number;
  readonly itemsSeen: number;
}

/**
 * What the new items of a poll did to a source's budget and flag (see
 * {@link FeedFetcher.recordNewItems}): each episode is reported once, on the poll that began it.
 */
export interface NewItemsVerdict {
  /** The source was flagged by this poll: every item new on `allNewPolls` polls in a row. */
  readonly flagged?: { readonly since: number; readonly allNewPolls: number };
  /** This poll spent the day's budget of new items: nothing more until `until`. */
  readonly budgetSpent?: { readonly since: number; readonly until: number };
  readonly newToday: number;
  readonly allNewPolls: number;
  /** The next poll, after any backoff this verdict added. */
  readonly nextPollAt: number;
}

/** One line of `weft signals sources`. Times are ISO 8601. */
export interface SourceStatus {
  readonly id: string;
  readonly label: string;
  readonly url: string;
  readonly kind: SourceKind;
  readonly origin: string;
  readonly tags: readonly string[];
  readonly intervalS: number;
  /** `null` while disabled. */
  readonly nextPollAt: string | null;
  readonly retryAfterUntil: string | null;
  readonly lastPolledAt: string | null;
  readonly lastStatus: string | null;
  readonly parseErrors: number;
  readonly fetchErrors: number;
  readonly disabledReason: string | null;
  readonly itemsSeen: number;
  readonly lastNewItems: number;
  /** New items admitted in the current day (against `signals.max_new_per_day`). */
  readonly newToday: number;
  /** Since when every item has been new poll after poll (flagged; polled less often), or `null`. */
  readonly floodingSince: string | null;
  /** Until when the day's budget of new items is spent (no poll before), or `null`. */
  readonly budgetSpentUntil: string | null;
}

/** Why a poll failed: `parse` and `too_large` count toward disabling, the rest only back off. */
export type PollFailure = 'parse' | 'too_large' | 'network' | 'timeout' | 'http' | 'redirect' | 'aborted';

/** The outcome of one poll. */
export type PollResult =
  | {
      readonly status: 'new';
      readonly feed: ParsedFeed;
      readonly fetchedAt: number;
      readonly nextPollAt: number;
    }
  | { readonly status: 'not_modified'; readonly nextPollAt: number }
  /** Not polled, or told to wait (429, 503 with Retry-After): nothing is sent to the host before `until`. */
  | {
      readonly status: 'deferred';
      readonly until: number;
      /** Why: the host's answer (`HTTP 429, Retry-After ...`), or which host holds it back. */
      readonly reason: string;
    }
  | {
      readonly status: 'failed';
      readonly reason: PollFailure;
      readonly error: string;
      /** True on the poll that disabled the source (the one time to tell the user). */
      readonly disabled: boolean;
      readonly nextPollAt: number | null;
    };

/** Options of {@link FeedFetcher.sync}. */
export interface SyncOptions {
  /**
   * Which stored sources this sync owns and so removes when they are not in the list (default:
   * every origin but `cli`, so sources added from the command line survive a config reload).
   */
  owns?: (origin: string) => boolean;
}

/** What a sync changed. */
export interface SyncResult {
  readonly added: string[];
  readonly updated: string[];
  readonly removed: string[];
}

interface SourceRow {
  id: string;
  url: string;
  kind: string;
  label: string;
  tags: string;
  origin: string;
  etag: string | null;
  last_modified: string | null;
  interval_s: number;
  next_poll_at: number;
  retry_after_until: number | null;
  parse_errors: number;
  fetch_errors: number;
  disabled_reason: string | null;
  last_polled_at: number | null;
  last_status: string | null;
  last_new_items: number;
  items_seen: number;
  budget_since: number | null;
  new_today: number;
  all_new_polls: number;
  flagged_at: number | null;
  budget_spent_at: number | null;
}

const MAX_STATUS_CHARS = 300;
const ACCEPT =
  'application/atom+xml, application/rss+xml, application/feed+json, application/rdf+xml;q=0.9, application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5';

/**
 * Polls feed sources over the node's store.
 * @example
 * const fetcher = new FeedFetcher({}, { store, clock: systemClock, logger });
 * await fetcher.sync(resolveSources([{ url: 'https://example.org/feed.xml' }]));
 * for (const source of fetcher.due()) {
 *   const r = await fetcher.poll(source);
 *   if (r.status === 'new') console.log(r.feed.items.length);
 * }
 */
export class FeedFetcher {
  private readonly store: Store;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly bounds: IntervalBounds;
  private readonly opts: Required<Omit<FeedFetcherInit, 'minIntervalMs' | 'maxIntervalMs'>>;
  private readonly limiter: HostLimiter;
  /** Hosts that answered 429/503 with Retry-After: no source on them is polled before the time. */
  private readonly hostNotBefore = new Map<string, number>();
  private readonly inflight = new Map<string, Promise<PollResult>>();
  /**
   * Feeds without usable dates, polled and waiting for {@link recordNewItems} to say how many of
   * their items were new: their pace is set then, from this poll's count (at most one entry per
   * source).
   */
  private readonly undatedPolls = new Map<string, { polledAt: number; maxAgeS: number | undefined }>();
  private readonly stopping = new AbortController();
  private closing: Promise<void> | undefined;
  private stmts:
    | Record<'get' | 'byUrl' | 'insert' | 'update' | 'setId' | 'del' | 'state', Statement>
    | undefined;

  constructor(init: FeedFetcherInit, deps: FeedFetcherDeps) {
    requireDeps('FeedFetcher', deps, {
      store: "the node's Store",
      clock: 'the clock every schedule reads',
      logger: 'a Logger',
    });
    this.store = deps.store;
    this.clock = deps.clock;
    this.logger = deps.logger;
    const minMs = init.minIntervalMs ?? 5 * MINUTE;
    const maxMs = init.maxIntervalMs ?? 6 * HOUR;
    if (!(minMs > 0 && maxMs >= minMs))
      throw new ValidationError(
        `signal fetcher: intervals must satisfy 0 < min (${minMs} ms) <= max (${maxMs} ms)`,
      );
    this.bounds = { minMs, maxMs };
    this.opts = {
      perHost: init.perHost ?? 1,
      maxBytes: init.maxBytes ?? MAX_FEED_BYTES,
      timeoutMs: init.timeoutMs ?? 15_000,
      maxRedirects: init.maxRedirects ?? 5,
      initialIntervalMs: clampInterval(init.initialIntervalMs ?? 15 * MINUTE, this.bounds),
      maxParseErrors: Math.max(1, init.maxParseErrors ?? 5),
      maxRetryAfterMs: init.maxRetryAfterMs ?? 24 * HOUR,
      userAgent: init.userAgent ?? `Weft/${VERSION} (feed fetcher)`,
      maxNewPerPoll: init.maxNewPerPoll ?? 1000,
      maxNewPerDay: init.maxNewPerDay ?? 10_000,
      floodPolls: init.floodPolls ?? 3,
    };
    const o = this.opts;
    const problems = [
      Number.isInteger(o.perHost) && o.perHost >= 1 ? '' : 'perHost must be a positive integer',
      o.maxBytes > 0 ? '' : 'maxBytes must be positive',
      o.timeoutMs > 0 ? '' : 'timeoutMs must be positive',
      Number.isInteger(o.maxRedirects) && o.maxRedirects >= 0 ? '' : 'maxRedirects must be a whole number',
      Number.isInteger(o.maxNewPerPoll) && o.maxNewPerPoll >= 1 ? '' : 'maxNewPerPoll must be a positive integer',
      Number.isInteger(o.maxNewPerDay) && o.maxNewPerDay >= 1 ? '' : 'maxNewPerDay must be a positive integer',
      Number.isInteger(o.floodPolls) && o.floodPolls >= 1 ? '' : 'floodPolls must be a positive integer',
    ].filter(Boolean);
    if (problems.length > 0) throw new ValidationError(`signal fetcher: ${problems.join('; ')}`);
    this.limiter = new HostLimiter(o.perHost);
  }

  /**
   * Makes the stored sources match `sources`: new ones are added (due at once), known ones keep
   * their polling state (a changed URL starts afresh), and stored sources this sync owns (see
   * {@link SyncOptions.owns}) that are no longer listed are removed. A source whose id changed
   * but whose URL did not keeps its state under the new id.
   * @example
   * await fetcher.sync(resolveSources(entries), { owns: (o) => o !== 'cli' });
   */
  async sync(sources: readonly SourceSpec[], opts: SyncOptions = {}): Promise<SyncResult> {
    this.assertOpen();
    checkUnique(sources);
    const owns = opts.owns ?? ((origin: string) => origin !== 'cli');
    const s = this.statements();
    return this.store.write(() => {
      const now = this.clock.now();
      const result: SyncResult = { added: [], updated: [], removed: [] };
      const keep = new Set<string>();
      for (const spec of sources) {
        const change = this.apply(spec, now);
        if (change === 'added') result.added.push(spec.id);
        else if (change === 'updated') result.updated.push(spec.id);
        keep.add(spec.id);
      }
      const rows = this.store.db.prepare('SELECT id, origin FROM signal_sources').all() as Array<{
        id: string;
        origin: string;
      }>;
      for (const row of rows) {
        if (keep.has(row.id)) continue;
        // Rows moved aside because a listed source took their id are gone whatever their origin.
        if (row.id.startsWith(ASIDE) || owns(row.origin)) {
          s.del.run(row.id);
          if (!row.id.startsWith(ASIDE)) result.removed.push(row.id);
        }
      }
      return result;
    });
  }

  /**
   * Adds or updates one source without touching the others (a source added at run time).
   * @example
   * await fetcher.upsert({ ...resolveSources([{ url }], { origin: 'cli' })[0]! });
   */
  async upsert(source: SourceSpec): Promise<'added' | 'updated' | 'unchanged'> {
    this.assertOpen();
    this.statements();
    return this.store.write(() => {
      const change = this.apply(source, this.clock.now());
      this.store.db.prepare('DELETE FROM signal_sources WHERE substr(id, 1, ?) = ?').run(ASIDE.length, ASIDE);
      return change;
    });
  }

  /** Removes a source; false if there was none. */
  async remove(id: string): Promise<boolean> {
    this.assertOpen();
    const s = this.statements();
    return this.store.write(() => s.del.run(id).changes > 0);
  }

  /**
   * Enables a disabled source again, its error counts reset and due at once.
   * @example
   * await fetcher.enable('example-blog');
   */
  async enable(id: string): Promise<void> {
    this.assertOpen();
    const changed = await this.store.write(
      () =>
        this.store.db
          .prepare(
            'UPDATE signal_sources SET disabled_reason = NULL, parse_errors = 0, fetch_errors = 0, retry_after_until = NULL, next_poll_at = ?, updated_at = ? WHERE id = ?',
          )
          .run(this.clock.now(), this.clock.now(), id).changes,
    );
    if (changed === 0) throw new NotFoundError('signal source', id);
  }

  /**
   * Sources due at `now`: next poll reached, not disabled, not inside a Retry-After window (their
   * own or their host's). Earliest first.
   * @example
   * for (const s of fetcher.due()) await fetcher.poll(s);
   */
  due(now: number = this.clock.now(), limit = 1000): SourceState[] {
    this.assertOpen();
    for (const [host, until] of this.hostNotBefore) if (until <= now) this.hostNotBefore.delete(host);
    const rows = this.store.reader
      .prepare(
        `SELECT * FROM signal_sources
         WHERE disabled_reason IS NULL AND next_poll_at <= ? AND (retry_after_until IS NULL OR retry_after_until <= ?)
         ORDER BY next_poll_at, id LIMIT ?`,
      )
      .all(now, now, limit) as SourceRow[];
    return rows.map(toState).filter((s) => (this.hostNotBefore.get(hostOf(s.url)) ?? 0) <= now);
  }

  /**
   * When the next source falls due (its next poll or the end of its Retry-After window,
   * whichever is later), or `undefined` when no source is enabled: how long the ingest loop
   * may sleep.
   */
  nextDueAt(): number | undefined {
    this.assertOpen();
    const row = this.store.reader
      .prepare(
        'SELECT MIN(MAX(next_poll_at, COALESCE(retry_after_until, 0))) AS at FROM signal_sources WHERE disabled_reason IS NULL',
      )
      .get() as { at: number | null };
    return row.at ?? undefined;
  }

  /** One source's state, or `undefined`. */
  get(id: string): SourceState | undefined {
    this.assertOpen();
    const row = this.store.reader.prepare('SELECT * FROM signal_sources WHERE id = ?').get(id) as
      | SourceRow
      | undefined;
    return row ? toState(row) : undefined;
  }

  /**
   * Polls one source now (whether due or not, unless inside a Retry-After window): a
   * conditional GET when validators are stored, then the state written back. A second call for
   * a source already being polled returns the same promise. Throws {@link NotFoundError} for an
   * unknown source and `WEFT_CONFLICT` for a disabled one; every network or feed problem is a
   * `failed` result, never a throw.
   * @example
   * const r = await fetcher.poll('example-blog');
   * if (r.status === 'failed' && r.disabled) notifyUser(r.error);
   */
  poll(source: SourceSpec | string, opts: { signal?: AbortSignal } = {}): Promise<PollResult> {
    try {
      this.assertOpen();
      opts.signal?.throwIfAborted();
    } catch (err) {
      return Promise.reject(err);
    }
    const id = typeof source === 'string' ? source : source.id;
    const running = this.inflight.get(id);
    if (running) return running;
    const p = this.pollOnce(id, opts.signal).finally(() => this.inflight.delete(id));
    this.inflight.set(id, p);
    return p;
  }

  /**
   * New items the next poll of a source may admit: `maxNewPerPoll`, or what is left of its
   * day's `maxNewPerDay` when that is less (0 once spent).
   * @example
   * const got = await ingest.admit(source, feed, now, { maxNew: fetcher.newItemBudget(source.id) });
   */
  newItemBudget(id: string): number {
    this.assertOpen();
    const row = this.row(id);
    if (!row) return 0;
    const today = row.budget_since !== null && this.clock.now() - row.budget_since < DAY ? row.new_today : 0;
    return Math.max(0, Math.min(this.opts.maxNewPerPoll, this.opts.maxNewPerDay - today));
  }

  /**
   * Records what a poll's items were to the ingest (after dedup): `count` admitted, and with
   * `poll` how many the feed listed, how many were known and how many were over the budget.
   * Shown in the status; counted against the day's budget (spent: no poll before the day is
   * over); and a source whose every item (at least {@link FLOOD_MIN_ITEMS}) is new on
   * `floodPolls` polls in a row, its first poll aside, is flagged and its next poll backs off
   * (doubling with each such poll, up to the longest interval) until a poll lists an item it
   * listed before.
   * @example
   * const v = await fetcher.recordNewItems(source.id, got.admitted, { items: feed.items.length, duplicates: got.duplicates, over: got.over });
   * if (v.flagged) tellTheUser(v);
   */
  async recordNewItems(
    id: string,
    count: number,
    poll?: { items: number; duplicates: number; over: number },
  ): Promise<NewItemsVerdict> {
    this.assertOpen();
    const n = Math.max(0, Math.floor(count));
    return this.store.write(() => {
      const row = this.statements().get.get(id) as SourceRow | undefined;
      const now = this.clock.now();
      if (!row) return { newToday: 0, allNewPolls: 0, nextPollAt: now };
      const dayOver = row.budget_since === null || now - row.budget_since >= DAY;
      const since = dayOver ? now : (row.budget_since as number);
      const newToday = (dayOver ? 0 : row.new_today) + n;
      const spent = newToday >= this.opts.maxNewPerDay;
      const allNew =
        poll !== undefined && row.items_seen > 0 && poll.items >= FLOOD_MIN_ITEMS && poll.duplicates === 0;
      const allNewPolls = allNew ? row.all_new_polls + 1 : 0;
      const flagged = allNewPolls >= this.opts.floodPolls;
      let next = row.next_poll_at;
      let intervalS = row.interval_s;
      const undated = this.undatedPolls.get(id);
      if (undated) {
        this.undatedPolls.delete(id);
        const interval = this.withMaxAge(intervalFromNewItems(row.interval_s * 1000, n, this.bounds), undated.maxAgeS);
        intervalS = Math.round(interval / 1000);
        next = undated.polledAt + interval;
      }
      if (flagged)
        next = Math.max(
          next,
          now + backoffMs(row.interval_s * 1000, allNewPolls - this.opts.floodPolls + 1, this.bounds),
        );
      if (spent) next = Math.max(next, since + DAY);
      const flaggedAt = flagged ? (row.flagged_at ?? now) : null;
      const spentAt = spent ? (dayOver ? now : (row.budget_spent_at ?? now)) : null;
      this.store.db
        .prepare(
          `UPDATE signal_sources SET last_new_items = ?, items_seen = items_seen + ?, budget_since = ?, new_today = ?,
             all_new_polls = ?, flagged_at = ?, budget_spent_at = ?, interval_s = ?, next_poll_at = ?, updated_at = ? WHERE id = ?`,
        )
        .run(n, n, since, newToday, allNewPolls, flaggedAt, spentAt, intervalS, next, now, id);
      if (flagged && row.flagged_at === null)
        this.logger.warn(
          { source: id, url: displayUrl(row.url), allNewPolls, next: iso(next) },
          'feed source flagged: every item new poll after poll; polled less often',
        );
      else if (!flagged && row.flagged_at !== null)
        this.logger.info({ source: id }, 'feed source no longer flagged: a poll listed known items again');
      if (spent && (dayOver || row.budget_spent_at === null))
        this.logger.warn(
          { source: id, newToday, until: iso(since + DAY), skipped: poll?.over ?? 0 },
          "feed source spent its day's budget of new items",
        );
      return {
        ...(flagged && row.flagged_at === null ? { flagged: { since: now, allNewPolls } } : {}),
        ...(spent && (dayOver || row.budget_spent_at === null)
          ? { budgetSpent: { since, until: since + DAY } }
          : {}),
        newToday,
        allNewPolls,
        nextPollAt: next,
      };
    });
  }

  /**
   * Every source with its state, for `weft signals sources`.
   * @example
   * for (const s of fetcher.status()) console.log(s.id, s.lastStatus, s.nextPollAt);
   */
  status(): SourceStatus[] {
    this.assertOpen();
    const rows = this.store.reader
      .prepare('SELECT * FROM signal_sources ORDER BY label, id')
      .all() as SourceRow[];
    const now = this.clock.now();
    return rows.map((r) => {
      // A host held by another source's 429 holds this one too, stored or not yet.
      const held = Math.max(r.retry_after_until ?? 0, this.hostNotBefore.get(hostOf(r.url)) ?? 0);
      return {
      id: r.id,
      label: r.label,
      // Shown, never fetched: a feed's user, password or token stays out of the listing.
      url: displayUrl(r.url),
      kind: r.kind as SourceKind,
      origin: r.origin,
      tags: parseTags(r.tags),
      intervalS: r.interval_s,
      nextPollAt: r.disabled_reason === null ? iso(Math.max(r.next_poll_at, held)) : null,
      retryAfterUntil: held > now ? iso(held) : null,
      lastPolledAt: r.last_polled_at === null ? null : iso(r.last_polled_at),
      lastStatus: r.last_status,
      parseErrors: r.parse_errors,
      fetchErrors: r.fetch_errors,
      disabledReason: r.disabled_reason,
      itemsSeen: r.items_seen,
      lastNewItems: r.last_new_items,
      newToday: r.budget_since !== null && this.clock.now() - r.budget_since < DAY ? r.new_today : 0,
      floodingSince: r.flagged_at === null ? null : iso(r.flagged_at),
      budgetSpentUntil:
        r.budget_spent_at !== null && r.budget_since !== null && r.budget_since + DAY > this.clock.now()
          ? iso(r.budget_since + DAY)
          : null,
      };
    });
  }

  /** Aborts polls in flight and waits for them to settle. Idempotent; later calls fail with WEFT_STOPPED. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.stopping.abort(new WeftError('WEFT_STOPPED', 'feed fetcher closed'));
    this.closing = Promise.allSettled([...this.inflight.values()]).then(() => undefined);
    return this.closing;
  }

  private async pollOnce(id: string, signal: AbortSignal | undefined): Promise<PollResult> {
    const row = this.row(id);
    if (!row) throw new NotFoundError('signal source', id);
    if (row.disabled_reason !== null) {
      throw new WeftError(
        'WEFT_CONFLICT',
        `signal source ${id} is disabled (${row.disabled_reason}); enable it to poll again: weft signals enable ${id}`,
        { details: { id } },
      );
    }
    const host = hostOf(row.url);
    const own = row.retry_after_until ?? 0;
    const held = this.hostNotBefore.get(host) ?? 0;
    if (Math.max(own, held) > this.clock.now()) {
      if (own >= held) return { status: 'deferred', until: own, reason: row.last_status?.replace(/^deferred: /, '') ?? 'the host asked to wait' };
      return this.heldByHost(row, host, held);
    }
    const linked = signal ? linkedSignal([signal, this.stopping.signal]) : undefined;
    const abort = linked?.signal ?? this.stopping.signal;
    let release: () => void;
    try {
      release = await this.limiter.acquire(host, abort);
    } catch {
      linked?.release();
      return {
        status: 'failed',
        reason: 'aborted',
        error: 'aborted while waiting for the host',
        disabled: false,
        nextPollAt: row.next_poll_at,
      };
    }
    let got: Awaited<ReturnType<typeof getFeed>>;
    try {
      // Another source on this host may have been told to wait while this one queued.
      const hostUntil = this.hostNotBefore.get(host) ?? 0;
      if (hostUntil > this.clock.now()) return this.heldByHost(row, host, hostUntil);
      got = await getFeed(row.url, {
        headers: this.headers(row),
        maxBytes: this.opts.maxBytes,
        timeoutMs: this.opts.timeoutMs,
        maxRedirects: this.opts.maxRedirects,
        signal: abort,
      });
    } finally {
      release();
      linked?.release();
    }
    const now = this.clock.now();
    if (got.type === 'failed') {
      if (got.reason === 'aborted')
        return {
          status: 'failed',
          reason: 'aborted',
          error: got.message,
          disabled: false,
          nextPollAt: row.next_poll_at,
        };
      if (got.reason === 'too_large') return this.contentFailure(row, now, 'too_large', got.message);
      return this.fetchFailure(row, now, got.reason, got.message);
    }
    const maxAge = parseMaxAge(got.headers.get('cache-control'));
    if (got.status === 304) {
      const interval = this.withMaxAge(clampInterval(row.interval_s * 1000 * 1.25, this.bounds), maxAge);
      const next = now + interval;
      await this.writeState(row, {
        etag: got.headers.get('etag') ?? row.etag,
        last_modified: got.headers.get('last-modified') ?? row.last_modified,
        interval_s: Math.round(interval / 1000),
        next_poll_at: next,
        retry_after_until: null,
        fetch_errors: 0,
        last_polled_at: now,
        last_status: 'not_modified',
      });
      return { status: 'not_modified', nextPollAt: next };
    }
    if (got.status === 429 || got.status === 503) {
      const told = parseRetryAfter(got.headers.get('retry-after'), now);
      if (told !== undefined || got.status === 429) {
        const errors = row.fetch_errors + 1;
        // The server's time, but never sooner than a minute (Retry-After: 0, a date in the past
        // or a negative number would otherwise mean a poll a tick) nor later than maxRetryAfterMs.
        const floor = now + Math.min(this.bounds.minMs, 60_000);
        const until =
          told !== undefined
            ? Math.min(Math.max(told, floor), now + this.opts.maxRetryAfterMs)
            : now + backoffMs(row.interval_s * 1000, errors, this.bounds);
        this.hostNotBefore.set(host, Math.max(until, this.hostNotBefore.get(host) ?? 0));
        await this.writeState(row, {
          retry_after_until: until,
          next_poll_at: until,
          fetch_errors: errors,
          last_polled_at: now,
          last_status: `deferred: HTTP ${got.status}${told !== undefined ? `, Retry-After until ${iso(until)}` : ''}`,
        });
        this.logger.info(
          { source: row.id, status: got.status, until: iso(until) },
          'feed host asked to wait',
        );
        return {
          status: 'deferred',
          until,
          reason: `HTTP ${got.status}${told !== undefined ? `, Retry-After until ${iso(until)}` : `, no Retry-After: backing off until ${iso(until)}`}`,
        };
      }
    }
    if (got.status !== 200 || !got.body) return this.fetchFailure(row, now, 'http', `HTTP ${got.status}`);
    let feed: ParsedFeed;
    try {
      feed = parseFeed(got.body, got.headers.get('content-type') ?? undefined, {
        baseUrl: got.url,
        maxBytes: this.opts.maxBytes,
      });
    } catch (err) {
      if (err instanceof FeedParseError) return this.contentFailure(row, now, 'parse', err.message);
      // A parser bug must cost one source a poll, not the ingest loop its life.
      this.logger.error({ source: row.id, err: (err as Error).message }, 'feed parser failed unexpectedly');
      return this.contentFailure(row, now, 'parse', `parser failed: ${(err as Error).message}`);
    }
    const fromItems = intervalFromItems(feed.items, now, this.bounds);
    // Without dates the pace follows how many items were new, which only the ingest knows: the
    // interval stays as it is until recordNewItems sets it from this poll's count (it was set
    // from the previous poll's, so a poll bringing new items made the next one later).
    if (fromItems === undefined) this.undatedPolls.set(row.id, { polledAt: now, maxAgeS: maxAge });
    else this.undatedPolls.delete(row.id);
    const interval = this.withMaxAge(fromItems ?? row.interval_s * 1000, maxAge);
    const next = now + interval;
    await this.writeState(row, {
      etag: got.headers.get('etag'),
      last_modified: got.headers.get('last-modified'),
      interval_s: Math.round(interval / 1000),
      next_poll_at: next,
      retry_after_until: null,
      parse_errors: 0,
      fetch_errors: 0,
      last_polled_at: now,
      last_status: `new: ${feed.items.length} items`,
    });
    return { status: 'new', feed, fetchedAt: now, nextPollAt: next };
  }

  /**
   * Another source of the same host was told to wait (429/503): this one waits too, and its
   * state says until when and why (its next poll is not a time in the past, its status not
   * blank), also across a restart.
   */
  private async heldByHost(row: SourceRow, host: string, until: number): Promise<PollResult> {
    const reason = `host ${host} asked to wait (another of its sources got HTTP 429 or 503) until ${iso(until)}`;
    if ((row.retry_after_until ?? 0) < until) {
      await this.writeState(row, { retry_after_until: until, last_status: `deferred: ${reason}` });
    }
    return { status: 'deferred', until, reason };
  }

  /** Network and HTTP errors: back off, never disable (the feed may be fine tomorrow). */
  private async fetchFailure(
    row: SourceRow,
    now: number,
    reason: PollFailure,
    message: string,
  ): Promise<PollResult> {
    const errors = row.fetch_errors + 1;
    const next = now + backoffMs(row.interval_s * 1000, errors, this.bounds);
    await this.writeState(row, {
      fetch_errors: errors,
      next_poll_at: next,
      last_polled_at: now,
      last_status: `failed: ${reason}: ${message}`,
    });
    this.logger.warn({ source: row.id, reason, err: message, errors }, 'feed fetch failed');
    return { status: 'failed', reason, error: message, disabled: false, nextPollAt: next };
  }

  /** A body that is no readable feed: back off, and disable after N in a row. */
  private async contentFailure(
    row: SourceRow,
    now: number,
    reason: 'parse' | 'too_large',
    message: string,
  ): Promise<PollResult> {
    const errors = row.parse_errors + 1;
    const disabled = errors >= this.opts.maxParseErrors;
    const next = now + backoffMs(row.interval_s * 1000, errors, this.bounds);
    const disabledReason = disabled ? clip(`${errors} unreadable bodies in a row; last: ${message}`) : null;
    await this.writeState(row, {
      parse_errors: errors,
      fetch_errors: 0,
      next_poll_at: next,
      disabled_reason: disabledReason,
      last_polled_at: now,
      last_status: `failed: ${reason}: ${message}`,
    });
    if (disabled)
      this.logger.warn({ source: row.id, url: displayUrl(row.url), reason: disabledReason }, 'feed source disabled');
    else this.logger.warn({ source: row.id, reason, err: message, errors }, 'feed body refused');
    return { status: 'failed', reason, error: message, disabled, nextPollAt: disabled ? null : next };
  }

  private withMaxAge(intervalMs: number, maxAgeS: number | undefined): number {
    if (maxAgeS === undefined) return intervalMs;
    return Math.min(this.bounds.maxMs, Math.max(intervalMs, maxAgeS * 1000));
  }

  private headers(row: SourceRow): Record<string, string> {
    const h: Record<string, string> = { 'user-agent': this.opts.userAgent, accept: ACCEPT };
    if (row.etag) h['if-none-match'] = row.etag;
    if (row.last_modified) h['if-modified-since'] = row.last_modified;
    return h;
  }

  /** Writes state columns of a source, unless it was removed or given another URL meanwhile. */
  private async writeState(row: SourceRow, changes: Partial<SourceRow>): Promise<void> {
    const cols = Object.keys(changes) as Array<keyof SourceRow>;
    const values = cols.map((c) => {
      const v = changes[c];
      return typeof v === 'string' && c === 'last_status' ? clip(v) : (v ?? null);
    });
    const sql = `UPDATE signal_sources SET ${cols.map((c) => `${c} = ?`).join(', ')}, updated_at = ? WHERE id = ? AND url = ?`;
    await this.store.write(() => {
      this.store.db.prepare(sql).run(...values, this.clock.now(), row.id, row.url);
    });
  }

  /** Inside a write: one spec applied (see {@link sync}). */
  private apply(spec: SourceSpec, now: number): 'added' | 'updated' | 'unchanged' {
    const s = this.statements();
    const byId = s.get.get(spec.id) as SourceRow | undefined;
    const byUrl = s.byUrl.get(spec.url) as SourceRow | undefined;
    const tags = JSON.stringify([...spec.tags]);
    if (byUrl) {
      let changed = false;
      if (byUrl.id !== spec.id) {
        // The URL is known under another id: it keeps its state under the new one.
        if (byId) s.setId.run(`${ASIDE}${byId.id}`, byId.id);
        s.setId.run(spec.id, byUrl.id);
        changed = true;
      }
      if (
        changed ||
        byUrl.kind !== spec.kind ||
        byUrl.label !== spec.label ||
        byUrl.tags !== tags ||
        byUrl.origin !== spec.origin
      ) {
        s.update.run(spec.kind, spec.label, tags, spec.origin, now, spec.id);
        return 'updated';
      }
      return 'unchanged';
    }
    if (byId) {
      // The same id with a new URL: a new feed as far as polling goes.
      s.state.run(
        spec.url,
        spec.kind,
        spec.label,
        tags,
        spec.origin,
        Math.round(this.opts.initialIntervalMs / 1000),
        now,
        now,
        spec.id,
      );
      return 'updated';
    }
    s.insert.run(
      spec.id,
      spec.url,
      spec.kind,
      spec.label,
      tags,
      spec.origin,
      Math.round(this.opts.initialIntervalMs / 1000),
      now,
      now,
    );
    return 'added';
  }

  private row(id: string): SourceRow | undefined {
    return this.store.reader.prepare('SELECT * FROM signal_sources WHERE id = ?').get(id) as
      | SourceRow
      | undefined;
  }

  private statements(): NonNullable<FeedFetcher['stmts']> {
    if (this.stmts) return this.stmts;
    const db = this.store.db;
    this.stmts = {
      get: db.prepare('SELECT * FROM signal_sources WHERE id = ?'),
      byUrl: db.prepare('SELECT * FROM signal_sources WHERE url = ?'),
      insert: db.prepare(
        `INSERT INTO signal_sources (id, url, kind, label, tags, origin, interval_s, next_poll_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      update: db.prepare(
        'UPDATE signal_sources SET kind = ?, label = ?, tags = ?, origin = ?, updated_at = ? WHERE id = ?',
      ),
      setId: db.prepare('UPDATE signal_sources SET id = ? WHERE id = ?'),
      del: db.prepare('DELETE FROM signal_sources WHERE id = ?'),
      state: db.prepare(
        `UPDATE signal_sources SET url = ?, kind = ?, label = ?, tags = ?, origin = ?, etag = NULL, last_modified = NULL, interval_s = ?,
           next_poll_at = ?, retry_after_until = NULL, parse_errors = 0, fetch_errors = 0, disabled_reason = NULL, last_status = NULL,
           last_new_items = 0, all_new_polls = 0, flagged_at = NULL, budget_spent_at = NULL, updated_at = ? WHERE id = ?`,
      ),
    };
    return this.stmts;
  }

  private assertOpen(): void {
    if (this.closing) throw new WeftError('WEFT_STOPPED', 'feed fetcher closed');
  }
}

/** Prefix of a row whose id a listed source took, until its URL is claimed or the sync ends. */
const ASIDE = '~aside~';

function checkUnique(sources: readonly SourceSpec[]): void {
  const ids = new Set<string>();
  const urls = new Set<string>();
  for (const s of sources) {
    if (ids.has(s.id))
      throw new ValidationError(`signal sources: id '${s.id}' is listed twice`, { id: s.id });
    if (urls.has(s.url))
      throw new ValidationError(`signal sources: URL ${displayUrl(s.url)} is listed twice`, { url: displayUrl(s.url) });
    ids.add(s.id);
    urls.add(s.url);
  }
}

function toState(r: SourceRow): SourceState {
  return {
    id: r.id,
    kind: r.kind as SourceKind,
    url: r.url,
    label: r.label,
    tags: parseTags(r.tags),
    origin: r.origin,
    intervalMs: r.interval_s * 1000,
    nextPollAt: r.next_poll_at,
    retryAfterUntil: r.retry_after_until,
    etag: r.etag,
    lastModified: r.last_modified,
    parseErrors: r.parse_errors,
    fetchErrors: r.fetch_errors,
    disabledReason: r.disabled_reason,
    lastPolledAt: r.last_polled_at,
    lastStatus: r.last_status,
    lastNewItems: r.last_new_items,
    itemsSeen: r.items_seen,
  };
}

function parseTags(json: string): string[] {
  try {
    const v = JSON.parse(json) as unknown;
    return Array.isArray(v) ? v.filter((t): t is string => typeof t === 'string') : [];
  } catch {
    return [];
  }
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function clip(s: string): string {
  return s.length > MAX_STATUS_CHARS ? `${s.slice(0, MAX_STATUS_CHARS - 1)}…` : s;
}
