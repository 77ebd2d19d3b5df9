/**
 * Source lists: sources configured inline, in OPML files (feed readers' export format) or in
 * CSV files, turned into {@link SourceSpec}s with stable ids and one entry per feed URL.
 * YouTube channels and X accounts become the feed URLs that serve them.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { type Opml, parseOpml as parseOpmlDocument } from 'feedsmith';
import { ConfigError } from '../../errors/index.js';
import { stripControlChars } from '../../util/index.js';
import type { SourceKind, SourceSpec } from '../types.js';
import { decodeFeedBytes } from './decode.js';

/** Sources one list may hold. */
export const MAX_SOURCES = 10_000;
/** Bytes a source-list file may have. */
const MAX_LIST_BYTES = 8 * 1024 * 1024;
/** Tags per source, and the length of each. */
const MAX_TAGS = 32;
const MAX_TAG_CHARS = 64;
const MAX_LABEL_CHARS = 200;
/** Nesting of OPML outlines followed. */
const MAX_OUTLINE_DEPTH = 32;

/** A source as written by the user, before it is resolved. */
export interface SourceEntry {
  /** Inferred from the URL when absent: a YouTube channel, an X account, else a feed. */
  readonly kind?: SourceKind;
  /** A feed URL; for `youtube` also a channel id or channel URL; for `x` also a handle or profile URL. */
  readonly url: string;
  readonly label?: string;
  readonly tags?: readonly string[];
  /** Where it was configured: `config` (the default), `file:<path>`, `cli`. */
  readonly origin?: string;
}

/** Options of the list readers. */
export interface SourceListOptions {
  /** The origin given to entries that do not name one (default `config`; `file:<path>` for files). */
  origin?: string;
  /**
   * The feed URL of an X account, with `{handle}` where the handle goes: X serves no feeds of
   * its own, so this points at a bridge the user runs (e.g. `https://nitter.example.net/{handle}/rss`
   * or an RSS-Bridge instance). Unset, X sources are refused with a message that says so.
   */
  xFeedTemplate?: string;
}

/**
 * Resolves entries from every list into sources: feed URLs made absolute and canonical, YouTube
 * channels and X accounts turned into feed URLs, duplicates (the same URL from two lists)
 * collapsed into one whose tags are the union, ids assigned. Throws {@link ConfigError} naming
 * the entry (and its origin) that cannot be used.
 * @example
 * resolveSources([{ url: 'https://example.org/feed.xml', label: 'Example', tags: ['news'] }]);
 * // [{ id: 'example', kind: 'feed', url: 'https://example.org/feed.xml', label: 'Example', tags: ['news'], origin: 'config' }]
 */
export function resolveSources(entries: readonly SourceEntry[], opts: SourceListOptions = {}): SourceSpec[] {
  if (entries.length > MAX_SOURCES)
    throw new ConfigError(`signal sources: ${entries.length} sources, more than the ${MAX_SOURCES} allowed`);
  const byUrl = new Map<
    string,
    { kind: SourceKind; url: string; label: string; tags: Set<string>; origin: string }
  >();
  for (const e of entries) {
    const origin = e.origin ?? opts.origin ?? 'config';
    const kind = e.kind ?? inferKind(e.url);
    const url = feedUrlOf(kind, e.url, opts.xFeedTemplate, origin);
    const tags = normaliseTags(e.tags ?? []);
    const seen = byUrl.get(url);
    if (seen) {
      for (const t of tags) if (seen.tags.size < MAX_TAGS) seen.tags.add(t);
      continue;
    }
    const label = cleanLabel(e.label) || defaultLabel(kind, url, e.url);
    byUrl.set(url, { kind, url, label, tags: new Set(tags), origin });
  }
  const list = [...byUrl.values()];
  const slugCount = new Map<string, number>();
  for (const s of list) {
    const slug = slugify(s.label);
    slugCount.set(slug, (slugCount.get(slug) ?? 0) + 1);
  }
  const used = new Set<string>();
  return list.map((s) => {
    const slug = slugify(s.label);
    let id = slug && slugCount.get(slug) === 1 ? slug : `${slug || 'source'}-${urlHash(s.url, 8)}`;
    if (used.has(id)) id = `${slug || 'source'}-${urlHash(s.url, 16)}`;
    used.add(id);
    return { id, kind: s.kind, url: s.url, label: s.label, tags: [...s.tags], origin: s.origin };
  });
}

/**
 * Reads an OPML subscription list: every outline with an `xmlUrl` is a source, labelled by its
 * `text` (else `title`); the outlines it sits in, and its `category` attribute, become its tags.
 * @example
 * parseOpml('<opml version="2.0"><body><outline text="Tech"><outline text="Blog" xmlUrl="https://example.org/feed"/></outline></body></opml>');
 * // [{ id: 'blog', kind: 'feed', url: 'https://example.org/feed', label: 'Blog', tags: ['tech'], origin: 'config' }]
 */
export function parseOpml(text: string, opts: SourceListOptions = {}): SourceSpec[] {
  return resolveSources(opmlEntries(text, opts.origin ?? 'config'), opts);
}

/**
 * Reads a CSV source list: `label,url,type[,tags]` per line, a header row optional (with one,
 * the columns may come in any order), `#` starts a comment line, fields may be quoted (`""` is
 * a quote inside). `type` is `rss`/`atom`/`json`/`feed`, `youtube` or `x` (empty: inferred);
 * tags are separated by `;` or `|` (or further columns).
 * @example
 * parseSourceCsv('label,url,type,tags\nExample,https://example.org/feed,rss,news;tech\n');
 * // [{ id: 'example', kind: 'feed', url: 'https://example.org/feed', label: 'Example', tags: ['news', 'tech'], origin: 'config' }]
 */
export function parseSourceCsv(text: string, opts: SourceListOptions = {}): SourceSpec[] {
  return resolveSources(csvEntries(text, opts.origin ?? 'config'), opts);
}

/**
 * Reads a source-list file: OPML for `.opml`/`.xml`, CSV for `.csv`/`.txt`, otherwise by its
 * first character. Sources get the origin `file:<path>`.
 * @example
 * const sources = await loadSourceFile('/home/me/feeds.opml'); // origin 'file:/home/me/feeds.opml'
 */
export async function loadSourceFile(
  path: string,
  opts: Omit<SourceListOptions, 'origin'> = {},
): Promise<SourceSpec[]> {
  const origin = `file:${path}`;
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new ConfigError(`signal sources: cannot read ${path}: ${(err as Error).message}`, { path });
  }
  if (bytes.byteLength > MAX_LIST_BYTES)
    throw new ConfigError(
      `signal sources: ${path} is ${bytes.byteLength} bytes, more than the ${MAX_LIST_BYTES} allowed`,
      { path },
    );
  const { text } = decodeFeedBytes(bytes);
  const ext = extname(path).toLowerCase();
  const opml =
    ext === '.opml' ||
    ext === '.xml' ||
    (ext !== '.csv' && ext !== '.txt' && text.trimStart().startsWith('<'));
  return opml ? parseOpml(text, { ...opts, origin }) : parseSourceCsv(text, { ...opts, origin });
}

/**
 * The feed URL of a YouTube channel, from its id (`UC` + 22 characters), a channel URL
 * (`https://www.youtube.com/channel/<id>`), a legacy user URL (`/user/<name>`) or the feed URL
 * itself. Handles (`@name`) and custom URLs (`/c/name`) need a lookup on youtube.com that this
 * node does not make; they are refused with the way to find the id.
 * @example
 * youtubeFeedUrl('UCabcdefghijklmnopqrstuv'); // 'https://www.youtube.com/feeds/videos.xml?channel_id=UCabcdefghijklmnopqrstuv'
 */
export function youtubeFeedUrl(channel: string): string {
  const s = channel.trim();
  if (CHANNEL_ID.test(s)) return `${YOUTUBE_FEED}?channel_id=${s}`;
  const u = parseHttpUrl(s);
  if (u && isYoutubeHost(u.hostname)) {
    const parts = u.pathname.split('/').filter(Boolean);
    if (parts[0] === 'channel' && parts[1] && CHANNEL_ID.test(parts[1]))
      return `${YOUTUBE_FEED}?channel_id=${parts[1]}`;
    if (parts[0] === 'user' && parts[1] && /^[A-Za-z0-9_.-]{1,100}$/.test(parts[1]))
      return `${YOUTUBE_FEED}?user=${parts[1]}`;
    if (parts[0] === 'feeds' && parts[1] === 'videos.xml') {
      for (const key of ['channel_id', 'playlist_id', 'user']) {
        const v = u.searchParams.get(key);
        if (v && /^[A-Za-z0-9_.-]{1,100}$/.test(v)) return `${YOUTUBE_FEED}?${key}=${v}`;
      }
    }
  }
  throw new ConfigError(
    `YouTube source '${s}': give the channel id (UC followed by 22 characters: on the channel page, About → Share channel → Copy channel ID) or a https://www.youtube.com/channel/<id> URL; handles (@name) and /c/ URLs cannot be turned into a feed without asking YouTube`,
    { source: s },
  );
}

/**
 * The feed URL of an X account through `template` (`{handle}` replaced). X has no public feed,
 * so without a template this throws a {@link ConfigError} that says which setting to make. An
 * http(s) URL that is not on x.com/twitter.com is taken as the feed URL already.
 * @example
 * xFeedUrl('@weftdev', 'https://nitter.example.net/{handle}/rss'); // 'https://nitter.example.net/weftdev/rss'
 */
export function xFeedUrl(account: string, template: string | undefined): string {
  const s = account.trim();
  const u = parseHttpUrl(s);
  let handle: string | undefined;
  if (u) {
    if (!isXHost(u.hostname)) return u.href;
    handle = u.pathname.split('/').filter(Boolean)[0];
  } else handle = s.startsWith('@') ? s.slice(1) : s;
  if (!handle || !/^[A-Za-z0-9_]{1,15}$/.test(handle)) {
    throw new ConfigError(`X source '${s}': not an X handle (1 to 15 letters, digits or _) or profile URL`, {
      source: s,
    });
  }
  if (!template) {
    throw new ConfigError(
      `X source '@${handle}': X publishes no feeds; set the X feed-URL template to a bridge you run, with {handle} where the handle goes (e.g. a self-hosted nitter 'https://nitter.example.net/{handle}/rss' or RSS-Bridge), or give the feed URL itself`,
      { source: s, handle },
    );
  }
  if (!template.includes('{handle}') || !parseHttpUrl(template.replaceAll('{handle}', 'x'))) {
    throw new ConfigError(`X feed-URL template '${template}': must be an http(s) URL containing {handle}`, {
      template,
    });
  }
  return new URL(template.replaceAll('{handle}', encodeURIComponent(handle))).href;
}

const CHANNEL_ID = /^UC[A-Za-z0-9_-]{22}$/;
const YOUTUBE_FEED = 'https://www.youtube.com/feeds/videos.xml';

function isYoutubeHost(h: string): boolean {
  return h === 'youtube.com' || h === 'www.youtube.com' || h === 'm.youtube.com';
}

function isXHost(h: string): boolean {
  return (
    h === 'x.com' ||
    h === 'www.x.com' ||
    h === 'twitter.com' ||
    h === 'www.twitter.com' ||
    h === 'mobile.twitter.com' ||
    h === 'mobile.x.com'
  );
}

function parseHttpUrl(s: string): URL | undefined {
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u : undefined;
  } catch {
    return undefined;
  }
}

function inferKind(ref: string): SourceKind {
  const s = ref.trim();
  if (CHANNEL_ID.test(s)) return 'youtube';
  if (s.startsWith('@')) return 'x';
  const u = parseHttpUrl(s);
  if (u && isYoutubeHost(u.hostname)) return 'youtube';
  if (u && isXHost(u.hostname)) return 'x';
  return 'feed';
}

/** The canonical feed URL of an entry: absolute http(s), fragment dropped. */
function feedUrlOf(kind: SourceKind, ref: string, xTemplate: string | undefined, origin: string): string {
  let url: string;
  try {
    if (kind === 'youtube') url = youtubeFeedUrl(ref);
    else if (kind === 'x') url = xFeedUrl(ref, xTemplate);
    else url = ref.trim();
  } catch (err) {
    if (err instanceof ConfigError)
      throw new ConfigError(`${origin}: ${err.message}`, { ...err.details, origin });
    throw err;
  }
  const u = parseHttpUrl(url);
  if (!u) throw new ConfigError(`${origin}: source '${ref}' is not an http(s) URL`, { origin, source: ref });
  u.hash = '';
  return u.href;
}

function defaultLabel(kind: SourceKind, url: string, ref: string): string {
  const u = new URL(url);
  if (kind === 'youtube')
    return `youtube ${u.searchParams.get('channel_id') ?? u.searchParams.get('user') ?? u.searchParams.get('playlist_id') ?? ''}`.trim();
  if (kind === 'x') {
    const r = ref.trim();
    const handle = parseHttpUrl(r) ? new URL(r).pathname.split('/').filter(Boolean)[0] : r.replace(/^@/, '');
    return `@${handle ?? u.hostname}`;
  }
  const path = u.pathname.replace(/\/(feed|rss|atom)?(\.(xml|rss|atom|json))?\/?$/i, '');
  return `${u.hostname.replace(/^www\./, '')}${path === '/' ? '' : path}`;
}

function cleanLabel(label: string | undefined): string {
  if (!label) return '';
  // An OPML export names feeds by their own titles: a feed's text, shown in `weft signals sources`.
  const s = stripControlChars(label).replace(/\s+/g, ' ').trim();
  return s.length > MAX_LABEL_CHARS ? s.slice(0, MAX_LABEL_CHARS).trimEnd() : s;
}

function normaliseTags(tags: readonly string[]): string[] {
  const out = new Set<string>();
  for (const t of tags) {
    const s = stripControlChars(t).replace(/\s+/g, ' ').trim().toLowerCase().slice(0, MAX_TAG_CHARS);
    if (s) out.add(s);
    if (out.size >= MAX_TAGS) break;
  }
  return [...out];
}

/** Lowercase ASCII words joined by `-`: `Café Crème!` → `cafe-creme`. */
function slugify(label: string): string {
  return label
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 48)
    .replace(/-$/, '');
}

function urlHash(url: string, chars: number): string {
  return createHash('sha256').update(url).digest('hex').slice(0, chars);
}

/** OPML outlines to entries, parents' names as tags. */
function opmlEntries(text: string, origin: string): SourceEntry[] {
  let doc: Opml.Document<string>;
  try {
    doc = parseOpmlDocument(text);
  } catch (err) {
    throw new ConfigError(`${origin}: not an OPML file (${(err as Error).message})`, { origin });
  }
  const out: SourceEntry[] = [];
  const walk = (
    outlines: readonly Opml.Outline<string>[] | undefined,
    parents: readonly string[],
    depth: number,
  ): void => {
    if (!outlines || depth > MAX_OUTLINE_DEPTH) return;
    for (const o of outlines) {
      const name = cleanLabel(o.text || o.title);
      const own = (o.category ?? '').split(',').flatMap((c) => c.split('/'));
      if (o.xmlUrl) {
        if (out.length >= MAX_SOURCES)
          throw new ConfigError(`${origin}: more than ${MAX_SOURCES} sources`, { origin });
        const type = o.type?.toLowerCase();
        const kind: SourceKind | undefined =
          type === 'youtube' ? 'youtube' : type === 'x' || type === 'twitter' ? 'x' : undefined;
        out.push({ kind, url: o.xmlUrl, label: name || undefined, tags: [...parents, ...own], origin });
      }
      walk(o.outlines, name ? [...parents, name] : parents, depth + 1);
    }
  };
  walk(doc.body?.outlines, [], 0);
  return out;
}

const CSV_COLUMNS: Record<string, 'label' | 'url' | 'type' | 'tags'> = {
  label: 'label',
  name: 'label',
  title: 'label',
  text: 'label',
  url: 'url',
  feed: 'url',
  xmlurl: 'url',
  feed_url: 'url',
  type: 'type',
  kind: 'type',
  tags: 'tags',
  tag: 'tags',
  categories: 'tags',
  category: 'tags',
};

/** CSV rows to entries. */
function csvEntries(text: string, origin: string): SourceEntry[] {
  const rows = readCsv(text);
  const out: SourceEntry[] = [];
  let columns: Array<'label' | 'url' | 'type' | 'tags' | undefined> = ['label', 'url', 'type', 'tags'];
  let first = true;
  for (const { fields, line } of rows) {
    if (first) {
      first = false;
      const named = fields.map((f) => CSV_COLUMNS[f.trim().toLowerCase()]);
      if (named.includes('url') && !fields.some((f) => parseHttpUrl(f.trim()))) {
        columns = named;
        continue;
      }
    }
    const row: { label?: string; url?: string; type?: string; tags: string[] } = { tags: [] };
    fields.forEach((f, i) => {
      const col = i < columns.length ? columns[i] : 'tags';
      if (col === 'tags') row.tags.push(...f.split(/[;|]/));
      else if (col) row[col] = f.trim();
    });
    if (!row.url)
      throw new ConfigError(`${origin}: line ${line} has no URL (columns: label,url,type,tags)`, {
        origin,
        line,
      });
    if (out.length >= MAX_SOURCES)
      throw new ConfigError(`${origin}: more than ${MAX_SOURCES} sources`, { origin });
    out.push({
      kind: kindOf(row.type, origin, line),
      url: row.url,
      label: row.label || undefined,
      tags: row.tags,
      origin,
    });
  }
  return out;
}

function kindOf(type: string | undefined, origin: string, line: number): SourceKind | undefined {
  const t = (type ?? '').toLowerCase();
  if (t === '') return undefined;
  if (t === 'rss' || t === 'atom' || t === 'rdf' || t === 'json' || t === 'jsonfeed' || t === 'feed')
    return 'feed';
  if (t === 'youtube' || t === 'yt') return 'youtube';
  if (t === 'x' || t === 'twitter') return 'x';
  throw new ConfigError(
    `${origin}: line ${line}: unknown type '${type}' (rss, atom, json, feed, youtube or x)`,
    { origin, line },
  );
}

/**
 * RFC 4180 records, with `#` comment lines and blank lines skipped; `line` is where each
 * record starts. One pass, quoted fields may span lines.
 */
function readCsv(text: string): Array<{ fields: string[]; line: number }> {
  const out: Array<{ fields: string[]; line: number }> = [];
  const n = text.length;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  while (i < n) {
    // Start of a record: skip comment and blank lines.
    let j = i;
    while (j < n && (text[j] === ' ' || text[j] === '\t')) j++;
    if (text[j] === '#' || text[j] === '\n' || text[j] === '\r' || j >= n) {
      const nl = text.indexOf('\n', j);
      i = nl < 0 ? n : nl + 1;
      line++;
      continue;
    }
    const start = line;
    const fields: string[] = [];
    let field = '';
    let quoted = false;
    let atFieldStart = true;
    for (; i < n; i++) {
      const c = text[i];
      if (quoted) {
        if (c === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i++;
          } else quoted = false;
        } else {
          if (c === '\n') line++;
          field += c;
        }
        continue;
      }
      if (c === '"' && atFieldStart) {
        quoted = true;
        atFieldStart = false;
        field = '';
      } else if (c === ',') {
        fields.push(field);
        field = '';
        atFieldStart = true;
      } else if (c === '\n' || c === '\r') {
        if (c === '\r' && text[i + 1] === '\n') i++;
        i++;
        line++;
        break;
      } else {
        if (atFieldStart && (c === ' ' || c === '\t')) {
          field += c;
          continue;
        }
        atFieldStart = false;
        field += c;
      }
    }
    fields.push(field);
    out.push({ fields, line: start });
  }
  return out;
}
