/**
 * signal-ingest: feed items into `signal.ingest.received` events. Each item is admitted once,
 * whichever feed brings it: deduplicated by its GUID, else (an item without one) its URL, then
 * the hash of its content; admitted items are recorded (with a one-line summary, tags and a SimHash) for the
 * clustering pass.
 */
import { createHash } from 'node:crypto';
import type { Statement } from 'better-sqlite3';
import { SIGNAL_EVENTS } from '../catalog/index.js';
import type { EmitInput, Envelope } from '../envelope/index.js';
import type { Store } from '../store/index.js';
import { type Logger, Mutex, stripControlChars } from '../util/index.js';
import { contentHash, keywords, oneLineSummary, simhash64 } from './text.js';
import type { FeedItem, IngestPayload, ParsedFeed, SourceSpec } from './types.js';

/** Source of every `signal.ingest.received` event (one producer, whatever the feed). */
export const INGEST_SOURCE = 'signal-ingest';

/** Tags one item keeps at most. */
const MAX_TAGS = 12;

/** What one admission did. */
export interface IngestResult {
  readonly admitted: number;
  readonly duplicates: number;
  /** New items past the poll's budget (`maxNew`): not admitted, so a later poll may bring them. */
  readonly over: number;
  readonly events: readonly Envelope[];
}

/** Collaborators of the ingest. */
export interface SignalIngestDeps {
  store: Store;
  logger: Logger;
  emitMany(inputs: readonly EmitInput[]): Promise<Envelope[]>;
}

/**
 * A URL as a dedup key: scheme and host lowercased, no fragment, no tracking parameters
 * (utm_*, fbclid, gclid), no trailing slash; undefined when it is no http(s) URL.
 * @example
 * normalizeUrl('HTTPS://Example.com/a/?utm_source=x#top'); // 'https://example.com/a'
 */
export function normalizeUrl(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
  u.hash = '';
  for (const k of [...u.searchParams.keys()]) if (/^(utm_|fbclid$|gclid$|mc_cid$|mc_eid$)/.test(k)) u.searchParams.delete(k);
  u.searchParams.sort();
  const s = u.toString();
  return s.endsWith('/') && u.pathname !== '/' ? s.slice(0, -1) : s.replace(/\/$/, '');
}

/**
 * The GUID as a dedup key: a GUID that is a URL (or a tag: URI, or long enough to be unique
 * by itself) names the article wherever it is syndicated; a short one ("42") only means
 * something inside its own feed.
 */
function guidKey(item: FeedItem, source: SourceSpec): string | undefined {
  const g = item.guid?.trim();
  if (!g) return undefined;
  const url = normalizeUrl(g);
  if (url) return `url:${url}`;
  if (/^(tag|urn):/i.test(g) || g.length >= 24) return `guid:${g}`;
  return `guid:${source.id}#${g}`;
}

function clip(s: string, max: number): string {
  return s.length <= max ? s : s.slice(0, max);
}

/** A dedup key as the event carries it: short ones as they are, long ones (a 300-character link) by their hash. */
function shortKey(key: string): string {
  return key.length <= 300 ? key : `${key.slice(0, key.indexOf(':') + 1)}sha256:${createHash('sha256').update(key).digest('hex')}`;
}

/**
 * An item's text fields without terminal escapes and control characters: its title, summary
 * and tags end in notifications that `weft notifications list` prints to a terminal.
 */
function cleanItem(item: FeedItem): FeedItem {
  const c = (s: string | undefined) => (s === undefined ? undefined : stripControlChars(s));
  return {
    ...item,
    guid: c(item.guid),
    url: c(item.url),
    title: stripControlChars(item.title),
    summary: c(item.summary),
    content: c(item.content),
    publishedAt: c(item.publishedAt),
    authors: item.authors.map(stripControlChars),
    categories: item.categories.map(stripControlChars),
  };
}

/** Admits feed items into the log and the items table. */
export class SignalIngest {
  private readonly find: Statement<[{ guid: string | null; url: string | null; hash: string }]>;
  private readonly insert: Statement;
  /** Admissions run one at a time: two feeds carrying one item must not both pass the check. */
  private readonly lock = new Mutex();

  constructor(private readonly deps: SignalIngestDeps) {
    const db = deps.store.db;
    // Seen before: an item with a GUID by its GUID only (a status page gives every update of
    // one incident its own GUID under the incident's one link: different items); one without,
    // by its link (whoever brought that link, with or without a GUID); its content only counts
    // when one side has neither (status pages repeat one title and text under new GUIDs and
    // URLs: different items).
    this.find = db.prepare(
      `SELECT 1 FROM signal_items WHERE guid_key = @guid OR (@guid IS NULL AND url_key = @url)
         OR (content_hash = @hash AND ((@guid IS NULL AND @url IS NULL) OR (guid_key IS NULL AND url_key IS NULL))) LIMIT 1`,
    );
    this.insert = db.prepare(
      `INSERT OR IGNORE INTO signal_items (source_id, guid_key, url_key, content_hash, event_id, url, title, summary, text, tags, simhash, published_at, fetched_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
  }

  /**
   * Admits the new items of one poll: each that no GUID, URL or content hash seen before (or
   * earlier in the same feed) names becomes one `signal.ingest.received`, then a row of the
   * items table; at most `maxNew` of them, the others counted as `over` and left for later. A crash between the two re-admits the item at the next poll, and the event's
   * idempotency key (source and dedup key) drops the repeat.
   */
  async admit(source: SourceSpec, feed: ParsedFeed, fetchedAt: number, opts: { maxNew?: number } = {}): Promise<IngestResult> {
    const release = await this.lock.acquire();
    try {
      return await this.admitLocked(source, feed, fetchedAt, opts.maxNew ?? Number.POSITIVE_INFINITY);
    } finally {
      release();
    }
  }

  private async admitLocked(source: SourceSpec, feed: ParsedFeed, fetchedAt: number, maxNew: number): Promise<IngestResult> {
    // Within the poll, as the find query does across polls: GUIDs, links (that only an item
    // without a GUID is matched on), content hashes of items with neither, and all of them.
    const guids = new Set<string>();
    const links = new Set<string>();
    const bare = new Set<string>();
    const hashes = new Set<string>();
    let over = 0;
    const rows: Array<{ payload: IngestPayload; guid: string | null; url: string | null; hash: string; text: string; simhash: string; published: number | null }> = [];
    let duplicates = 0;
    for (const raw of feed.items) {
      // The parser already took control characters out; an item from elsewhere loses them here.
      const item = cleanItem(raw);
      const guid = guidKey(item, source) ?? null;
      const url = normalizeUrl(item.url) ?? null;
      const text = item.content ?? item.summary ?? '';
      const hash = contentHash(item.title, text);
      const seen = guid !== null ? guids.has(guid) || bare.has(hash) : url !== null ? links.has(url) || bare.has(hash) : hashes.has(hash);
      if (seen || this.find.get({ guid, url, hash }) !== undefined) {
        duplicates++;
        continue;
      }
      if (guid !== null) guids.add(guid);
      if (url !== null) links.add(url);
      if (guid === null && url === null) bare.add(hash);
      hashes.add(hash);
      // What the item is known by: its GUID, else its link, else its content.
      const key = guid ?? (url === null ? `hash:${hash}` : `url:${url}`);
      if (rows.length >= maxNew) {
        // Past the source's budget (a feed rotating every GUID and link would otherwise bring
        // thousands a poll): not recorded, so a real feed's rest comes with its next poll.
        over++;
        continue;
      }
      const summary = oneLineSummary(item.title, text);
      const tags = [...new Set([...source.tags, ...item.categories.map((c) => c.toLowerCase().trim()).filter((c) => c.length > 0 && c.length <= 100), ...keywords(`${item.title}. ${text}`, 5)])].slice(0, MAX_TAGS);
      const published = item.publishedAt ? Date.parse(item.publishedAt) : Number.NaN;
      rows.push({
        payload: {
          source_id: source.id,
          // An item without a link is named by its GUID, else its content: never ''.
          item_url: clip(item.url ?? url ?? item.guid ?? `urn:weft-signal:${hash}`, 2000),
          raw_title: item.title.slice(0, 500),
          tags,
          published_at: Number.isNaN(published) ? '' : new Date(published).toISOString(),
          fetched_at: new Date(fetchedAt).toISOString(),
          summary: summary.slice(0, 1000),
          dedup_key: shortKey(key),
        },
        guid,
        url,
        hash,
        text: text.slice(0, 20_000),
        simhash: simhash64(`${item.title} ${summary}`),
        published: Number.isNaN(published) ? null : published,
      });
    }
    if (rows.length === 0) return { admitted: 0, duplicates, over, events: [] };
    const inputs = rows.map((r) => ({
      event: SIGNAL_EVENTS.received,
      source: INGEST_SOURCE,
      // The source and what the item is known by, not its link: updates of one incident share
      // a link and are different items (the type's own key, source and link, would drop them).
      idempotencyKey: `${SIGNAL_EVENTS.received}:${source.id}:${r.payload.dedup_key}`,
      description: r.payload.summary || r.payload.raw_title,
      payload: r.payload as unknown as Record<string, unknown>,
    }));
    let events: Array<Envelope | undefined>;
    try {
      events = await this.deps.emitMany(inputs);
    } catch (err) {
      // One item the catalog refuses must not cost the feed its others: one by one, the
      // refused one logged and skipped (not recorded: a fixed feed brings it again).
      if ((err as { code?: string }).code !== 'WEFT_VALIDATION') throw err;
      events = [];
      for (const input of inputs) {
        try {
          events.push((await this.deps.emitMany([input]))[0]);
        } catch (e) {
          if ((e as { code?: string }).code !== 'WEFT_VALIDATION') throw e;
          this.deps.logger.warn({ source: source.id, url: input.payload.item_url, err: (e as Error).message }, 'feed item refused by the catalog: skipped');
          events.push(undefined);
        }
      }
    }
    const admitted = events.filter((e): e is Envelope => e !== undefined);
    await this.deps.store.write(() => {
      rows.forEach((r, i) => {
        const e = events[i];
        if (e) this.insert.run(source.id, r.guid, r.url, r.hash, e.id, r.payload.item_url, r.payload.raw_title, r.payload.summary, r.text, JSON.stringify(r.payload.tags), r.simhash, r.published, fetchedAt);
      });
    });
    return { admitted: admitted.length, duplicates, over, events: admitted };
  }
}
