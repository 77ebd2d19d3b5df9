/**
 * The signal pipeline at work in a node: signal-ingest polls the configured sources and emits
 * `signal.ingest.received`; signal-cluster groups recent items every `cluster_interval` and
 * emits `signal.cluster.formed`; signal-synthesize turns each cluster worth surfacing into a
 * `signal.synthesis.ready`. Domains subscribe to those (the marketing pillar's feed monitor).
 */
import { isAbsolute, resolve } from 'node:path';
import { SIGNAL_EVENTS } from '../catalog/index.js';
import type { EmitInput, Envelope } from '../envelope/index.js';
import { ConfigError, WeftError } from '../errors/index.js';
import type { Store } from '../store/index.js';
import { type Clock, didYouMean, displayUrl, type Logger } from '../util/index.js';
import { clusterItems, clusterPayload, detectBurst, SignalClusterStore } from './cluster.js';
import { FeedFetcher, type FeedFetcherInit, loadSourceFile, type NewItemsVerdict, type PollResult, resolveSources, type SourceEntry, type SourceStatus } from './feeds/index.js';
import { INGEST_SOURCE, SignalIngest } from './ingest.js';
import { commandSummarizer, extractiveSummarizer, type Summarizer, synthesisPayload } from './synthesize.js';
import type { SourceKind, SourceSpec } from './types.js';

/** Sources of the cluster and synthesis events. */
export const CLUSTER_SOURCE = 'signal-cluster';
export const SYNTHESIZE_SOURCE = 'signal-synthesize';

/** Items clustered together must fall within this window (and at most this many at once). */
const CLUSTER_WINDOW_MS = 24 * 3600_000;
const CLUSTER_MAX_ITEMS = 10_000;
/** Syntheses written per pass at most (the rest wait for the next). */
const SYNTHESES_PER_PASS = 50;
/** Polls in flight at once, over all hosts (each host also has its own limit). */
const POLLS_AT_ONCE = 4;
/** Quality under which a cluster is absorbed: recorded, not surfaced. */
const ABSORB_BELOW = 0.3;

/** User options: the config's `signals.*`. */
export interface SignalServiceInit {
  /** `[[signals.sources]]` tables: type, url or path, label, tags. */
  sources: ReadonlyArray<Record<string, unknown>>;
  xFeedTemplate?: string;
  /** Relative `path`s of OPML/CSV sources are read from here (the config file's folder). */
  baseDir?: string;
  fetcher?: FeedFetcherInit;
  clusterIntervalMs?: number;
  retentionDays?: number;
  /** A program writing syntheses; default the built-in extractive summariser. */
  summarizerCommand?: string;
}

/** Collaborators of the service. */
export interface SignalServiceDeps {
  store: Store;
  clock: Clock;
  logger: Logger;
  emitMany(inputs: readonly EmitInput[]): Promise<Envelope[]>;
}

/** What one poll of one source did, for `weft signals poll`. */
export interface PollReport {
  readonly source: string;
  readonly status: PollResult['status'];
  readonly admitted: number;
  readonly duplicates: number;
  /** New items over the source's budget (per poll, per day): not admitted. */
  readonly skipped?: number;
  readonly error?: string;
  /** Deferred: no request before this time (ISO 8601), and why. */
  readonly until?: string;
  readonly reason?: string;
}

/** What one clustering pass did. */
export interface ClusterReport {
  readonly items: number;
  readonly formed: number;
  readonly absorbed: number;
  readonly synthesized: number;
}

const KINDS: Record<string, SourceKind | 'file'> = { rss: 'feed', atom: 'feed', json: 'feed', feed: 'feed', rdf: 'feed', youtube: 'youtube', x: 'x', opml: 'file', csv: 'file' };
/** The keys of one `[[signals.sources]]` table: `url` for a feed, `path` for an OPML or CSV file. */
const SOURCE_KEYS = ['type', 'url', 'path', 'label', 'tags'];

/** A key of a source table that is not one (`tgas`), with the one it most likely is: dropped silently, it would be a tag never given. */
function checkSourceKeys(raw: Record<string, unknown>, i: number, kind: SourceKind | 'file', type: string): void {
  for (const key of Object.keys(raw)) {
    if (SOURCE_KEYS.includes(key)) continue;
    const near = didYouMean(key, SOURCE_KEYS);
    throw new ConfigError(`config key signals.sources[${i}]: unknown key ${key}${near ? ` (did you mean ${near}?)` : `; a source takes ${SOURCE_KEYS.join(', ')}`}`, { key: `signals.sources[${i}].${key}` });
  }
  const misplaced = kind === 'file' ? 'url' : 'path';
  if (raw[misplaced] !== undefined) {
    throw new ConfigError(
      `config key signals.sources[${i}].${misplaced}: a ${type} source takes ${kind === 'file' ? 'path (the file listing feeds)' : 'url (path is for opml and csv lists)'}, not ${misplaced}`,
      { key: `signals.sources[${i}].${misplaced}` },
    );
  }
}

/** Lowercase words joined by '-', as ids are made from labels (sources.ts). */
function labelSlug(label: string): string {
  return label.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

function text(v: unknown, key: string, i: number): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length === 0 || v.length > 4096) throw new ConfigError(`config key signals.sources[${i}].${key} must be a non-empty string`, { key: `signals.sources[${i}].${key}` });
  return v;
}

/**
 * The configured sources, with OPML and CSV files read: `[[signals.sources]]` tables
 * `{ type, url | path, label, tags }`.
 * @throws {ConfigError} naming the entry and the key.
 */
export async function configuredSources(init: Pick<SignalServiceInit, 'sources' | 'xFeedTemplate' | 'baseDir'>): Promise<SourceSpec[]> {
  const entries: SourceEntry[] = [];
  const files: SourceSpec[] = [];
  // Inline entries by feed URL and by label: the same feed listed twice, or two sources with one
  // label (which would both get a hashed id, so `weft signals poll <label>` found neither), are
  // mistakes to say, not to merge or rename silently.
  const byUrl = new Map<string, number>();
  const byLabel = new Map<string, number>();
  for (const [i, raw] of init.sources.entries()) {
    const type = (text(raw.type, 'type', i) ?? 'rss').toLowerCase();
    const kind = KINDS[type];
    if (!kind) throw new ConfigError(`config key signals.sources[${i}].type: '${type}' is not one of ${Object.keys(KINDS).join(', ')}`, { key: `signals.sources[${i}].type` });
    checkSourceKeys(raw, i, kind, type);
    const tags = raw.tags === undefined ? [] : Array.isArray(raw.tags) && raw.tags.every((t) => typeof t === 'string') ? (raw.tags as string[]) : undefined;
    if (tags === undefined) throw new ConfigError(`config key signals.sources[${i}].tags must be a list of strings`, { key: `signals.sources[${i}].tags` });
    const label = text(raw.label, 'label', i);
    if (kind === 'file') {
      const path = text(raw.path, 'path', i);
      if (!path) throw new ConfigError(`config key signals.sources[${i}]: a ${type} source needs path (the ${type.toUpperCase()} file)`, { key: `signals.sources[${i}].path` });
      const full = isAbsolute(path) ? path : resolve(init.baseDir ?? process.cwd(), path);
      const specs = await loadSourceFile(full, init.xFeedTemplate ? { xFeedTemplate: init.xFeedTemplate } : {});
      files.push(...specs.map((s) => ({ ...s, tags: [...new Set([...s.tags, ...tags])] })));
      continue;
    }
    const url = text(raw.url, 'url', i);
    if (!url) throw new ConfigError(`config key signals.sources[${i}]: a ${type} source needs url`, { key: `signals.sources[${i}].url` });
    const entry: SourceEntry = { kind, url, tags, origin: 'config', ...(label ? { label } : {}) };
    const feed = (resolveSources([entry], init.xFeedTemplate ? { xFeedTemplate: init.xFeedTemplate } : {})[0] as SourceSpec).url;
    const sameUrl = byUrl.get(feed);
    if (sameUrl !== undefined) {
      throw new ConfigError(`config key signals.sources[${i}].url: ${displayUrl(feed)} is already signals.sources[${sameUrl}] (the same feed listed twice); keep one entry, with the tags of both`, { key: `signals.sources[${i}].url` });
    }
    byUrl.set(feed, i);
    const slug = label ? labelSlug(label) : '';
    const sameLabel = slug ? byLabel.get(slug) : undefined;
    if (sameLabel !== undefined) {
      throw new ConfigError(
        `config key signals.sources[${i}].label: '${label}' names signals.sources[${sameLabel}] already; a label is the source's id (weft signals poll ${slug}), give each source its own`,
        { key: `signals.sources[${i}].label` },
      );
    }
    if (slug) byLabel.set(slug, i);
    entries.push(entry);
  }
  const all = [...entries, ...files.map((f) => ({ kind: f.kind, url: f.url, label: f.label, tags: f.tags, origin: f.origin }))];
  return resolveSources(all, init.xFeedTemplate ? { xFeedTemplate: init.xFeedTemplate } : {});
}

/** Creates the service (nothing runs until `start`). */
export function createSignalService(init: SignalServiceInit, deps: SignalServiceDeps): SignalService {
  return new SignalService(init, deps);
}

/** The three signal stages of one node. */
export class SignalService {
  readonly fetcher: FeedFetcher;
  readonly clusters: SignalClusterStore;
  private readonly ingest: SignalIngest;
  private readonly summarizer: Summarizer;
  private readonly clusterEveryMs: number;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private polling: Promise<PollReport[]> | undefined;
  private clustering: Promise<ClusterReport> | undefined;
  private nextClusterAt = 0;
  private sources: SourceSpec[] = [];
  private lastCluster: ClusterReport | null = null;
  /** Aborts a summariser program in flight when the service stops. */
  private readonly stopping = new AbortController();

  constructor(
    private readonly init: SignalServiceInit,
    private readonly deps: SignalServiceDeps,
  ) {
    this.fetcher = new FeedFetcher(init.fetcher ?? {}, { store: deps.store, clock: deps.clock, logger: deps.logger });
    this.clusters = new SignalClusterStore(deps.store);
    this.ingest = new SignalIngest({ store: deps.store, logger: deps.logger, emitMany: deps.emitMany });
    this.summarizer = init.summarizerCommand ? commandSummarizer(init.summarizerCommand, { timeoutMs: 60_000 }, { logger: deps.logger }) : extractiveSummarizer();
    this.clusterEveryMs = Math.max(1000, init.clusterIntervalMs ?? 900_000);
  }

  /**
   * Reads the sources (OPML/CSV files too) and starts polling and clustering.
   * @throws {ConfigError} for a source the config gets wrong.
   */
  async start(): Promise<void> {
    this.sources = await configuredSources(this.init);
    const r = await this.fetcher.sync(this.sources);
    this.deps.logger.info({ sources: this.sources.length, ...r, summarizer: this.summarizer.name }, 'signal sources loaded');
    this.running = true;
    this.nextClusterAt = this.deps.clock.now() + this.clusterEveryMs;
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => void this.tick(), Math.max(0, ms));
    this.timer.unref();
  }

  /**
   * Polls what is due and starts a clustering pass when it is time (beside the polls, not in
   * their way), then sleeps until the next due source: at least a second when this pass
   * polled nothing (a source due but held by its host's Retry-After), at most a minute.
   */
  private async tick(): Promise<void> {
    let polled = 0;
    try {
      polled = (await this.pollDue()).length;
      if (this.running && this.deps.clock.now() >= this.nextClusterAt) {
        this.nextClusterAt = this.deps.clock.now() + this.clusterEveryMs;
        void this.clusterNow()
          .then(() => (this.running ? this.clusters.prune(this.init.retentionDays ?? 30) : undefined))
          .catch((err) => this.running && this.deps.logger.warn({ err: (err as Error).message }, 'signal clustering pass failed; the next one tries again'));
      }
    } catch (err) {
      if (this.running) this.deps.logger.error({ err: (err as Error).message }, 'signal pass failed; it is tried again');
    }
    if (!this.running) return;
    const now = this.deps.clock.now();
    const next = Math.min(this.fetcher.nextDueAt() ?? now + 60_000, this.nextClusterAt);
    this.schedule(Math.min(60_000, Math.max(polled === 0 ? 1000 : 250, next - now)));
  }

  private pollDue(): Promise<PollReport[]> {
    this.polling ??= (async () => {
      try {
        const due = this.fetcher.due(this.deps.clock.now(), 1000);
        return await this.pollAll(due.map((s) => s.id));
      } finally {
        this.polling = undefined;
      }
    })();
    return this.polling;
  }

  /**
   * Polls sources host by host: each worker takes one host's sources in turn, so a slow host
   * holds one worker, never all of them.
   */
  private async pollAll(ids: readonly string[]): Promise<PollReport[]> {
    const byHost = new Map<string, string[]>();
    for (const id of ids) {
      const url = this.fetcher.get(id)?.url ?? '';
      let host = '';
      try {
        host = new URL(url).host;
      } catch {
        // a bad URL fails in its poll
      }
      byHost.set(host, [...(byHost.get(host) ?? []), id]);
    }
    const groups = [...byHost.values()];
    const out: PollReport[] = [];
    let next = 0;
    const worker = async () => {
      while (next < groups.length && this.running) {
        for (const id of groups[next++] as string[]) {
          if (!this.running) break;
          out.push(await this.pollOne(id));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(POLLS_AT_ONCE, groups.length) }, worker));
    return out;
  }

  /** Polls one source and admits what it brought; never throws for the source's sake. */
  private async pollOne(id: string): Promise<PollReport> {
    const source = this.fetcher.get(id);
    if (!source) return { source: id, status: 'failed', admitted: 0, duplicates: 0, error: 'no such source' };
    let r: PollResult;
    try {
      r = await this.fetcher.poll(source);
    } catch (err) {
      return { source: id, status: 'failed', admitted: 0, duplicates: 0, error: (err as Error).message };
    }
    if (r.status === 'failed') {
      if (r.disabled) {
        await this.deps
          .emitMany([
            {
              event: SIGNAL_EVENTS.sourceDisabled,
              source: INGEST_SOURCE,
              description: `signal source ${source.label || source.id} given up: ${r.error}`.slice(0, 4000),
              // Its time makes each giving-up a notification (enabled, failing again: a new one).
              payload: { source_id: source.id, url: displayUrl(source.url), reason: r.error.slice(0, 2000), parse_errors: this.fetcher.get(id)?.parseErrors ?? 0, disabled_at: new Date(this.deps.clock.now()).toISOString() },
            },
          ])
          .catch((err) => this.deps.logger.warn({ err: (err as Error).message }, 'signal.source.disabled not emitted'));
      }
      return { source: id, status: 'failed', admitted: 0, duplicates: 0, error: r.error };
    }
    if (r.status === 'deferred') return { source: id, status: r.status, admitted: 0, duplicates: 0, until: new Date(r.until).toISOString(), reason: r.reason };
    if (r.status !== 'new') return { source: id, status: r.status, admitted: 0, duplicates: 0 };
    try {
      const got = await this.ingest.admit(source, r.feed, r.fetchedAt, { maxNew: this.fetcher.newItemBudget(id) });
      const verdict = await this.fetcher.recordNewItems(id, got.admitted, { items: r.feed.items.length, duplicates: got.duplicates, over: got.over });
      if (verdict.flagged || verdict.budgetSpent) await this.tellFlooding(source, verdict, got.admitted, got.over);
      return { source: id, status: 'new', admitted: got.admitted, duplicates: got.duplicates, ...(got.over > 0 ? { skipped: got.over } : {}) };
    } catch (err) {
      this.deps.logger.error({ source: id, err: (err as Error).message }, 'feed items not admitted; they come again with the next full fetch');
      return { source: id, status: 'failed', admitted: 0, duplicates: 0, error: (err as Error).message };
    }
  }

  /**
   * `signal.source.flooding`, once per episode: the source was flagged by this poll (every item
   * new poll after poll), or this poll spent its day's budget of new items.
   */
  private async tellFlooding(source: SourceSpec, v: NewItemsVerdict, admitted: number, skipped: number): Promise<void> {
    const name = source.label || source.id;
    const next = new Date(v.nextPollAt).toISOString();
    const inputs: EmitInput[] = [];
    const base = { source_id: source.id, url: displayUrl(source.url), new_items: admitted, skipped, all_new_polls: v.allNewPolls, new_today: v.newToday, next_poll_at: next };
    if (v.flagged)
      inputs.push({
        event: SIGNAL_EVENTS.sourceFlooding,
        source: INGEST_SOURCE,
        description: `signal source ${name}: every item was new on ${v.flagged.allNewPolls} polls in a row (a feed rotating its GUIDs and links?); polled less often now, next at ${next}`.slice(0, 4000),
        payload: { ...base, reason: 'all_new', since: new Date(v.flagged.since).toISOString() },
      });
    if (v.budgetSpent)
      inputs.push({
        event: SIGNAL_EVENTS.sourceFlooding,
        source: INGEST_SOURCE,
        description: `signal source ${name} brought ${v.newToday} new items in a day, its budget (signals.max_new_per_day)${skipped > 0 ? `; ${skipped} more skipped` : ''}; next poll at ${next}`.slice(0, 4000),
        payload: { ...base, reason: 'daily_budget', since: new Date(v.budgetSpent.since).toISOString() },
      });
    await this.deps.emitMany(inputs).catch((err) => this.deps.logger.warn({ err: (err as Error).message }, 'signal.source.flooding not emitted'));
  }

  /** Polls sources now (all, or one), whatever their schedule says, Retry-After excepted. */
  async pollNow(id?: string): Promise<PollReport[]> {
    // A scheduled pass in flight finishes first: the two never poll one source at once.
    await this.polling?.catch(() => undefined);
    if (id !== undefined && !this.fetcher.get(id)) {
      const known = this.fetcher.status().map((s) => s.id);
      throw new WeftError('WEFT_NOT_FOUND', `no signal source '${id}'${known.length > 0 ? ` (the sources: ${known.slice(0, 20).join(', ')}${known.length > 20 ? ', ...' : ''})` : ''}`, { details: { what: 'signal source', id } });
    }
    const ids = id ? [id] : this.fetcher.status().filter((s) => !s.disabledReason).map((s) => s.id);
    return this.pollAll(ids);
  }

  /**
   * One clustering pass: the recent items not in a cluster yet are grouped; every group of two
   * or more becomes a `signal.cluster.formed` (a lone item waits for company until it leaves
   * the window); each cluster worth surfacing gets its `signal.synthesis.ready`, the others
   * are absorbed (recorded, not surfaced).
   */
  clusterNow(): Promise<ClusterReport> {
    this.clustering ??= this.doCluster().finally(() => {
      this.clustering = undefined;
    });
    return this.clustering;
  }

  private async doCluster(): Promise<ClusterReport> {
    const now = this.deps.clock.now();
    const items = this.clusters.unclustered(now - CLUSTER_WINDOW_MS, CLUSTER_MAX_ITEMS);
    let formed = 0;
    let absorbed = 0;
    if (items.length >= 2) {
      const rates = this.clusters.sourceRates(3600_000, now);
      const burstSources = detectBurst(rates);
      await this.clusters.updateBaselines(rates);
      const recentTags = this.clusters.recentTags(24, now);
      for (const c of clusterItems(items, { burstSources, recentTags, absorbBelow: ABSORB_BELOW })) {
        if (!this.running) break;
        if (c.items.length < 2 || this.clusters.cluster(c.id)) continue;
        // Emitted first, recorded after: a crash in between emits it again next time, and its
        // idempotency key (the cluster id) drops the repeat; a cluster is never recorded unsaid.
        const [e] = await this.deps.emitMany([
          { event: SIGNAL_EVENTS.clusterFormed, source: CLUSTER_SOURCE, description: `${c.items.length} signals: ${c.title}`.slice(0, 1000), payload: clusterPayload(c) as unknown as Record<string, unknown> },
        ]);
        if (!(await this.clusters.recordCluster(c, now))) continue;
        formed++;
        if (c.absorbed) absorbed++;
        if (e) await this.clusters.markEmitted(c.id, e.id);
      }
    }
    const synthesized = await this.synthesizePending();
    this.lastCluster = { items: items.length, formed, absorbed, synthesized };
    return this.lastCluster;
  }

  /** Writes the syntheses of clusters worth surfacing that have none yet. */
  private async synthesizePending(): Promise<number> {
    let n = 0;
    for (const c of this.clusters.pendingSynthesis(SYNTHESES_PER_PASS, ABSORB_BELOW)) {
      if (!this.running) break;
      const input = { clusterId: c.id, title: c.title, tags: c.tags, items: this.clusters.members(c.id) };
      const result = await this.summarizer.summarize(input, { signal: this.stopping.signal });
      if (result.fallback) this.deps.logger.warn({ cluster: c.id, why: result.fallback }, 'summariser failed; the extractive one wrote the synthesis');
      const [e] = await this.deps.emitMany([
        { event: SIGNAL_EVENTS.synthesisReady, source: SYNTHESIZE_SOURCE, description: c.title.slice(0, 1000), payload: synthesisPayload(input, result) as unknown as Record<string, unknown> },
      ]);
      await this.clusters.markSynthesized(c.id, e?.id ?? null);
      n++;
    }
    return n;
  }

  /** Sources with their polling state, and the last clustering pass. */
  status(): { sources: SourceStatus[]; lastCluster: ClusterReport | null; summarizer: string } {
    return { sources: this.fetcher.status(), lastCluster: this.lastCluster, summarizer: this.summarizer.name };
  }

  /** Turns a disabled source back on. */
  async enable(id: string): Promise<void> {
    await this.fetcher.enable(id);
  }

  /** Stops the timer and waits for a pass in flight. Idempotent. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    // A summariser program in flight is killed: a stop never waits for it.
    this.stopping.abort(new Error('the signal service is stopping'));
    await this.polling?.catch(() => undefined);
    await this.clustering?.catch(() => undefined);
    this.fetcher.close();
  }
}
