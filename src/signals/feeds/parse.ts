/**
 * The feed parser: bytes in (as fetched), one normalised {@link ParsedFeed} out, whatever the
 * format (RSS 2.0, Atom, RDF / RSS 1.0, JSON Feed 1.x). feedsmith reads the formats; this file
 * decides the charset, bounds the work, turns HTML into text, makes links absolute and says
 * plainly why a body is refused.
 */
import {
  type AnyFeed,
  type AtomFeed,
  type JsonFeed,
  parseFeed as parseAnyFeed,
  type RdfFeed,
  type RssFeed,
} from 'feedsmith';
import { jsonDepth, stripControlChars } from '../../util/index.js';
import type { FeedItem, ParsedFeed } from '../types.js';
import { decodeFeedBytes } from './decode.js';
import { FeedParseError } from './errors.js';
import { clipText, htmlToText, MAX_TEXT_CHARS, MAX_TITLE_CHARS, plainText } from './html-text.js';

/** Items kept from one feed at most. */
export const MAX_FEED_ITEMS = 10_000;
/** Default byte limit of one feed body (the fetcher's default cap as well). */
export const MAX_FEED_BYTES = 5 * 1024 * 1024;
/** Deepest nesting accepted, XML elements or JSON containers. */
export const MAX_FEED_DEPTH = 100;

/** Authors and categories kept per item, and the length of each. */
const MAX_NAMES = 50;
const MAX_NAME_CHARS = 200;
/** Longest GUID and URL kept (a longer URL is dropped, a longer GUID cut). */
const MAX_GUID_CHARS = 1000;
const MAX_URL_CHARS = 4096;

/** Options of {@link parseFeed}. */
export interface ParseFeedOptions {
  /** The feed's own URL (after redirects): relative links resolve against it. */
  baseUrl?: string;
  /** Items kept at most (default and ceiling 10,000). */
  maxItems?: number;
  /** Bodies longer than this are refused (default 5 MiB). */
  maxBytes?: number;
}

/**
 * Parses a feed body. Throws {@link FeedParseError} naming what was wrong: too large, not XML
 * or JSON, malformed, too deep, or not a feed at all.
 * @example
 * const feed = parseFeed(new TextEncoder().encode('<rss version="2.0"><channel><title>T</title><item><title>Hi</title><link>/a</link></item></channel></rss>'), 'application/rss+xml', { baseUrl: 'https://example.org/feed' });
 * feed.items[0]?.url; // 'https://example.org/a'
 */
export function parseFeed(bytes: Uint8Array, contentType?: string, opts: ParseFeedOptions = {}): ParsedFeed {
  const maxBytes = opts.maxBytes ?? MAX_FEED_BYTES;
  if (bytes.byteLength > maxBytes) {
    throw new FeedParseError(
      'too_large',
      `feed body is ${bytes.byteLength} bytes, over the limit of ${maxBytes}`,
      { details: { bytes: bytes.byteLength, maxBytes } },
    );
  }
  const maxItems = Math.max(0, Math.min(opts.maxItems ?? MAX_FEED_ITEMS, MAX_FEED_ITEMS));
  const { text } = decodeFeedBytes(bytes, contentType);
  const start = firstNonSpace(text);
  const head = text.charCodeAt(start);
  const norm = new Normaliser(opts.baseUrl);
  if (head === 0x7b /* { */) return norm.json(readJsonFeed(text, maxItems), maxItems);
  if (head !== 0x3c /* < */) {
    const what =
      start >= text.length
        ? 'the body is empty'
        : `it starts with ${JSON.stringify(text.slice(start, start + 20))}`;
    throw new FeedParseError('not_xml_or_json', `not a feed: neither XML nor JSON (${what})`);
  }
  let parsed: AnyFeed<string>;
  try {
    parsed = parseAnyFeed<string>(start === 0 ? text : text.slice(start), { maxItems });
  } catch (err) {
    const empty = (err as Error | undefined)?.name === 'ParseError' ? emptyFeed(text, start) : undefined;
    if (empty) return empty;
    throw xmlError(err, text, start);
  }
  switch (parsed.format) {
    case 'rss':
      return norm.rss(parsed.feed, maxItems);
    case 'atom':
      return norm.atom(parsed.feed, maxItems);
    case 'rdf':
      return norm.rdf(parsed.feed, maxItems);
    case 'json':
      return norm.json(parsed.feed, maxItems);
  }
}

function firstNonSpace(s: string): number {
  let i = 0;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d && c !== 0xfeff) break;
    i++;
  }
  return i;
}

/** feedsmith's errors, said as what was wrong with the body. */
function xmlError(err: unknown, text: string, start: number): FeedParseError {
  const name = (err as Error | undefined)?.name;
  const cause = (err as { cause?: unknown } | undefined)?.cause;
  const detail = cause instanceof Error ? cause.message : err instanceof Error ? err.message : String(err);
  if (/nested tags exceeded/i.test(detail)) {
    return new FeedParseError('too_deep', `not a feed: XML nested deeper than ${MAX_FEED_DEPTH} elements`, {
      cause: err,
    });
  }
  if (name === 'MalformedError')
    return new FeedParseError('malformed_xml', `malformed XML: ${clipText(detail, 200)}`, { cause: err });
  const root = rootElement(text, start);
  if (name !== 'DetectError') {
    // Detected as a feed, then not readable as one (an <rss> without a <channel>), or the parser
    // itself failed on odd input: either way the body is refused, not the poll crashed.
    return new FeedParseError(
      'not_a_feed',
      `not a feed: ${root ? `<${root}>` : 'the document'} could not be read as RSS, Atom or RDF (${clipText(detail, 200)})`,
      { cause: err, details: root ? { root } : undefined },
    );
  }
  if (root?.toLowerCase() === 'html') {
    return new FeedParseError(
      'not_a_feed',
      'not a feed: an HTML page (no RSS, Atom, RDF or JSON Feed; the feed URL may have moved)',
      { cause: err, details: { root } },
    );
  }
  return new FeedParseError(
    'not_a_feed',
    `not a feed: ${root ? `XML with root element <${root}>` : 'XML'} is none of RSS 2.0, Atom, RDF (RSS 1.0) or JSON Feed`,
    { cause: err, details: root ? { root } : undefined },
  );
}

/**
 * A feed with nothing in it (`<rss><channel/></rss>`, `<feed/>`) is a feed, just an empty one:
 * feedsmith refuses it, and refusing it here would count toward disabling a quiet source.
 */
function emptyFeed(text: string, start: number): ParsedFeed | undefined {
  const root = rootElement(text, start)?.toLowerCase();
  if (root === 'rss' && /<channel[\s/>]/i.test(text.slice(start, start + 4096)))
    return { format: 'rss', items: [] };
  if (root === 'feed' || root?.endsWith(':feed')) return { format: 'atom', items: [] };
  if (root === 'rdf:rdf') return { format: 'rdf', items: [] };
  return undefined;
}

/** The first element's name, skipping the declaration, comments and a doctype. */
function rootElement(text: string, from: number): string | undefined {
  let i = from;
  for (let guard = 0; guard < 64; guard++) {
    const lt = text.indexOf('<', i);
    if (lt < 0) return undefined;
    const c = text.charCodeAt(lt + 1);
    if (c === 0x3f /* ? */ || c === 0x21 /* ! */) {
      const end = text.startsWith('<!--', lt) ? text.indexOf('-->', lt) : text.indexOf('>', lt);
      if (end < 0) return undefined;
      i = end + 1;
      continue;
    }
    const m = /^<([A-Za-z_][\w.:-]{0,60})/.exec(text.slice(lt, lt + 64));
    return m?.[1];
  }
  return undefined;
}

function readJsonFeed(text: string, maxItems: number): JsonFeed.Feed<string> {
  const depth = jsonDepth(text, MAX_FEED_DEPTH);
  if (depth > MAX_FEED_DEPTH)
    throw new FeedParseError('too_deep', `not a feed: JSON nested deeper than ${MAX_FEED_DEPTH} levels`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new FeedParseError('malformed_json', `malformed JSON: ${clipText((err as Error).message, 200)}`, {
      cause: err,
    });
  }
  const version = (value as { version?: unknown }).version;
  if (typeof version !== 'string' || !version.startsWith('https://jsonfeed.org/version/')) {
    throw new FeedParseError(
      'not_a_feed',
      `not a feed: JSON without a JSON Feed version (expected "version": "https://jsonfeed.org/version/1.1")`,
    );
  }
  const items = (value as { items?: unknown }).items;
  if (Array.isArray(items) && items.length === 0) {
    // An empty feed is a feed (feedsmith refuses one with nothing else in it).
    const { title, home_page_url } = value as { title?: unknown; home_page_url?: unknown };
    return {
      title: typeof title === 'string' ? title : undefined,
      home_page_url: typeof home_page_url === 'string' ? home_page_url : undefined,
      items: [],
    };
  }
  try {
    const parsed = parseAnyFeed<string>(value, { maxItems });
    if (parsed.format !== 'json') throw new Error(`detected ${parsed.format}`);
    return parsed.feed;
  } catch (err) {
    throw new FeedParseError(
      'not_a_feed',
      `not a feed: a JSON Feed that does not follow the spec (${(err as Error).message})`,
      { cause: err },
    );
  }
}


type AtomText = AtomFeed.Text | AtomFeed.Content | undefined;

/** Turns each format's shape into {@link FeedItem}s. */
class Normaliser {
  constructor(private readonly baseUrl: string | undefined) {}

  rss(feed: RssFeed.Feed<string>, maxItems: number): ParsedFeed {
    const items = (feed.items ?? []).slice(0, maxItems).map((it): FeedItem => {
      const guid = it.guid?.value;
      const permalink = guid !== undefined && it.guid?.isPermaLink !== false ? this.url(guid) : undefined;
      const summary = this.html(it.description);
      const content = this.html(it.content?.encoded);
      return {
        guid: this.guid(guid),
        url: this.url(it.link) ?? permalink,
        title: this.title(it.title, summary ?? content, true),
        summary,
        content,
        publishedAt:
          isoDate(it.pubDate) ??
          isoDate(it.dc?.dates?.[0]) ??
          isoDate(it.dcterms?.created?.[0]) ??
          isoDate(it.atom?.published),
        authors: names([...(it.authors ?? []).map((a) => a.name ?? a.email), ...(it.dc?.creators ?? [])]),
        categories: names([...(it.categories ?? []).map((c) => c.name), ...(it.dc?.subjects ?? [])]),
      };
    });
    return { format: 'rss', title: this.feedTitle(feed.title, true), link: this.url(feed.link), items };
  }

  atom(feed: AtomFeed.Feed<string>, maxItems: number): ParsedFeed {
    const items = (feed.entries ?? []).slice(0, maxItems).map((e): FeedItem => {
      const summary = this.atomText(e.summary);
      const content = e.content?.src ? undefined : this.atomText(e.content);
      return {
        guid: this.guid(e.id),
        url: this.atomLink(e.links) ?? this.url(e.content?.src),
        title: this.title(this.atomTitle(e.title), summary ?? content, false),
        summary,
        content,
        publishedAt: isoDate(e.published) ?? isoDate(e.updated),
        authors: names((e.authors ?? feed.authors ?? []).map((a) => a.name)),
        categories: names((e.categories ?? []).map((c) => c.label ?? c.term)),
      };
    });
    return {
      format: 'atom',
      title: this.feedTitle(this.atomTitle(feed.title), false),
      link: this.atomLink(feed.links),
      items,
    };
  }

  rdf(feed: RdfFeed.Feed<string>, maxItems: number): ParsedFeed {
    const items = (feed.items ?? []).slice(0, maxItems).map((it): FeedItem => {
      const summary = this.html(it.description ?? it.dc?.descriptions?.[0]);
      const content = this.html(it.content?.encoded);
      return {
        guid: this.guid(it.rdf?.about ?? it.link),
        url: this.url(it.link) ?? this.url(it.rdf?.about),
        title: this.title(it.title ?? it.dc?.titles?.[0], summary ?? content, true),
        summary,
        content,
        publishedAt: isoDate(it.dc?.dates?.[0]) ?? isoDate(it.dcterms?.created?.[0]),
        authors: names(it.dc?.creators ?? []),
        categories: names(it.dc?.subjects ?? []),
      };
    });
    return { format: 'rdf', title: this.feedTitle(feed.title, true), link: this.url(feed.link), items };
  }

  json(feed: JsonFeed.Feed<string>, maxItems: number): ParsedFeed {
    const items = (feed.items ?? []).slice(0, maxItems).map((it): FeedItem => {
      const summary = it.summary ? plainText(it.summary) || undefined : undefined;
      const content = it.content_html
        ? this.html(it.content_html)
        : it.content_text
          ? plainText(it.content_text) || undefined
          : undefined;
      return {
        guid: this.guid(it.id),
        url: this.url(it.url) ?? this.url(it.external_url),
        title: this.title(it.title, summary ?? content, false),
        summary,
        content,
        publishedAt: isoDate(it.date_published) ?? isoDate(it.date_modified),
        authors: names((it.authors ?? feed.authors ?? []).map((a) => a.name)),
        categories: names(it.tags ?? []),
      };
    });
    return {
      format: 'json',
      title: this.feedTitle(feed.title, false),
      link: this.url(feed.home_page_url),
      items,
    };
  }

  /** An absolute http(s) URL, or nothing (a `javascript:` link is not a link we keep). */
  url(raw: string | undefined): string | undefined {
    const s = raw?.trim();
    if (!s || s.length > MAX_URL_CHARS) return undefined;
    try {
      const u = this.baseUrl ? new URL(s, this.baseUrl) : new URL(s);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
      return u.href.length > MAX_URL_CHARS ? undefined : u.href;
    } catch {
      return undefined;
    }
  }

  guid(raw: string | undefined): string | undefined {
    const s = raw === undefined ? undefined : stripControlChars(raw).trim();
    return s ? clipText(s, MAX_GUID_CHARS) : undefined;
  }

  html(raw: string | undefined): string | undefined {
    if (!raw) return undefined;
    return htmlToText(raw, { maxChars: MAX_TEXT_CHARS }) || undefined;
  }

  /** The item's title; an item without one is named by the start of its text (JSON Feed allows that). */
  title(raw: string | undefined, text: string | undefined, escapedHtml: boolean): string {
    const t = raw ? plainText(raw, { maxChars: MAX_TITLE_CHARS, html: escapedHtml }) : '';
    if (t) return t;
    return text ? clipText(text.replace(/\s+/g, ' '), Math.min(120, MAX_TITLE_CHARS)) : '';
  }

  feedTitle(raw: string | undefined, escapedHtml: boolean): string | undefined {
    return raw ? plainText(raw, { maxChars: MAX_TITLE_CHARS, html: escapedHtml }) || undefined : undefined;
  }

  atomTitle(t: AtomFeed.Text | undefined): string | undefined {
    if (!t?.value) return undefined;
    return t.type === 'html' || t.type === 'xhtml'
      ? htmlToText(t.value, { maxChars: MAX_TITLE_CHARS }).replace(/\n/g, ' ')
      : t.value;
  }

  atomText(t: AtomText): string | undefined {
    if (!t?.value) return undefined;
    const type = t.type ?? 'text';
    if (type === 'html' || type === 'xhtml' || type.includes('html')) return this.html(t.value);
    return plainText(t.value) || undefined;
  }

  /** `rel="alternate"` first, then a link without a rel, then any. */
  atomLink(links: ReadonlyArray<AtomFeed.Link<string>> | undefined): string | undefined {
    if (!links?.length) return undefined;
    const pick =
      links.find((l) => l.rel === 'alternate') ??
      links.find((l) => !l.rel) ??
      links.find((l) => l.rel !== 'self') ??
      links[0];
    return this.url(pick?.href);
  }
}

/** ISO 8601 of an RFC 822 / RFC 3339 / W3CDTF date, or nothing when it does not read as one. */
function isoDate(raw: string | undefined): string | undefined {
  const s = raw?.trim();
  if (!s || s.length > 100) return undefined;
  const ms = Date.parse(s);
  if (Number.isNaN(ms)) return undefined;
  // Years before 1970 or far ahead are feed errors (an epoch of 0, a typo); better no date than a wrong one.
  const year = new Date(ms).getUTCFullYear();
  if (year < 1971 || year > 9999) return undefined;
  return new Date(ms).toISOString();
}

function names(list: ReadonlyArray<string | undefined>): string[] {
  const seen = new Set<string>();
  for (const raw of list) {
    if (seen.size >= MAX_NAMES) break;
    const s = raw ? plainText(raw, { maxChars: MAX_NAME_CHARS }) : '';
    if (s) seen.add(s);
  }
  return [...seen];
}
