import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigError, WeftError } from '../../src/errors/index.js';
import {
  backoffMs,
  FeedFetcher,
  type FeedFetcherInit,
  FeedParseError,
  htmlToText,
  intervalFromItems,
  loadSourceFile,
  parseFeed,
  parseMaxAge,
  parseOpml,
  parseRetryAfter,
  parseSourceCsv,
  resolveSources,
  type SourceState,
  xFeedUrl,
  youtubeFeedUrl,
} from '../../src/signals/feeds/index.js';
import type { SourceSpec } from '../../src/signals/types.js';
import { Store } from '../../src/store/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { tempDir } from '../helpers/tmp.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const T0 = Date.UTC(2026, 0, 10, 12, 0, 0);
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

// ---------------------------------------------------------------------------------------------
// Fixtures the tests write.

interface ItemFx {
  title: string;
  link?: string;
  guid?: string;
  date?: number;
  html?: string;
}

function rss(items: readonly ItemFx[], opts: { title?: string; prolog?: string } = {}): string {
  const body = items
    .map(
      (i) =>
        `<item><title>${i.title}</title>${i.link ? `<link>${i.link}</link>` : ''}${i.guid ? `<guid isPermaLink="false">${i.guid}</guid>` : ''}` +
        `${i.date !== undefined ? `<pubDate>${new Date(i.date).toUTCString()}</pubDate>` : ''}${i.html ? `<description>${escapeXml(i.html)}</description>` : ''}</item>`,
    )
    .join('');
  return `${opts.prolog ?? '<?xml version="1.0" encoding="UTF-8"?>'}<rss version="2.0"><channel><title>${opts.title ?? 'Fixture'}</title><link>https://example.org/</link>${body}</channel></rss>`;
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const ATOM = `<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title type="text">Atom fixture</title>
  <link rel="self" href="https://example.org/atom.xml"/>
  <link rel="alternate" href="https://example.org/"/>
  <id>urn:uuid:feed</id><updated>2026-01-09T10:00:00Z</updated>
  <author><name>Feed Author</name></author>
  <entry>
    <title type="html">Kestrel &lt;em&gt;2.0&lt;/em&gt; released</title>
    <link rel="edit" href="/edit/1"/>
    <link rel="alternate" type="text/html" href="/posts/kestrel-2"/>
    <id>tag:example.org,2026:1</id>
    <published>2026-01-09T09:00:00+01:00</published>
    <updated>2026-01-09T10:00:00Z</updated>
    <summary type="html">&lt;p&gt;Faster &amp;amp; smaller.&lt;/p&gt;</summary>
    <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Full <b>text</b> here.</p><script>evil()</script></div></content>
    <category term="databases" label="Databases"/>
  </entry>
  <entry>
    <title>Plain title &amp; more</title>
    <link href="https://other.example/p/2"/>
    <id>tag:example.org,2026:2</id>
    <updated>2026-01-08T10:00:00Z</updated>
  </entry>
</feed>`;

const RDF = `<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://example.org/rdf"><title>RDF fixture</title><link>https://example.org/</link><description>d</description></channel>
  <item rdf:about="https://example.org/r/1">
    <title>First RDF item</title><link>https://example.org/r/1</link>
    <description>Some &lt;i&gt;text&lt;/i&gt;</description>
    <dc:date>2026-01-09T08:00:00Z</dc:date><dc:creator>Ada</dc:creator><dc:subject>science</dc:subject>
  </item>
</rdf:RDF>`;

const JSON_FEED = JSON.stringify({
  version: 'https://jsonfeed.org/version/1.1',
  title: 'JSON fixture',
  home_page_url: 'https://example.org/',
  items: [
    {
      id: 'j1',
      url: '/j/1',
      title: 'JSON item',
      content_html: '<p>Hello <a href="/x">world</a></p><style>p{}</style>',
      summary: 'A summary',
      date_published: '2026-01-09T07:00:00Z',
      tags: ['alpha', 'beta'],
      authors: [{ name: 'Jay' }],
    },
    { id: 'j2', content_text: 'An item without a title, only text that goes on.' },
  ],
});

/** `<rss>` in ISO-8859-1, `é`, `ï` and `ü` as single bytes. */
function latin1Feed(declare: boolean): Buffer {
  const prolog = declare ? '<?xml version="1.0" encoding="ISO-8859-1"?>' : '<?xml version="1.0"?>';
  return Buffer.from(
    rss([{ title: 'Café naïve über', link: 'https://example.org/l/1', html: '<p>crème brûlée</p>' }], {
      prolog,
      title: 'Flâneur',
    }),
    'latin1',
  );
}

const OPML = `<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>Subscriptions</title></head><body>
  <outline text="Tech">
    <outline text="Databases">
      <outline type="rss" text="Kestrel Blog" xmlUrl="https://kestrel.example/feed.xml" htmlUrl="https://kestrel.example/"/>
      <outline type="rss" title="Nimbus News" xmlUrl="https://nimbus.example/rss" category="/cloud/infra,ops"/>
    </outline>
  </outline>
  <outline type="rss" text="Shared" xmlUrl="https://shared.example/feed"/>
  <outline text="Video"><outline type="rss" text="A channel" xmlUrl="https://www.youtube.com/channel/UCabcdefghijklmnopqrstuv"/></outline>
</body></opml>`;

const CSV = `# my sources
label,url,type,tags
"Shared, the other label",https://shared.example/feed,rss,csv-tag
"Quoted "" label",https://quoted.example/atom,atom,"news;tech"
Channel,UCabcdefghijklmnopqrstuw,youtube,
Plain,https://plain.example/feed.json,json,a|b
`;

// ---------------------------------------------------------------------------------------------
// A real HTTP server on 127.0.0.1 that records what reaches it.

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>;

interface Hit {
  path: string;
  headers: http.IncomingHttpHeaders;
}

class FeedServer {
  readonly hits: Hit[] = [];
  active = 0;
  maxActive = 0;
  private readonly routes = new Map<string, Handler>();
  private constructor(private readonly server: http.Server) {}

  static async start(): Promise<FeedServer> {
    const server = http.createServer();
    const fs = new FeedServer(server);
    server.on('request', (req, res) => fs.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return fs;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  route(path: string, handler: Handler): string {
    this.routes.set(path, handler);
    return this.url(path);
  }

  hitsOf(path: string): Hit[] {
    return this.hits.filter((h) => h.path === path);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = req.url ?? '/';
    this.hits.push({ path, headers: req.headers });
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    res.on('close', () => this.active--);
    const h = this.routes.get(path);
    if (!h) {
      res.writeHead(404).end('not found');
      return;
    }
    Promise.resolve(h(req, res)).catch((err) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(err));
    });
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const serve =
  (body: string | Uint8Array, headers: Record<string, string> = {}, delayMs = 0): Handler =>
  async (_req, res) => {
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    res.writeHead(200, { 'content-type': 'application/rss+xml; charset=utf-8', ...headers });
    res.end(body);
  };

function spec(id: string, url: string, over: Partial<SourceSpec> = {}): SourceSpec {
  return { id, kind: 'feed', url, label: id, tags: [], origin: 'config', ...over };
}

async function withFetcher(
  fn: (ctx: { fetcher: FeedFetcher; clock: ManualClock; store: Store }) => Promise<void>,
  init: FeedFetcherInit = {},
): Promise<void> {
  const { dir, cleanup } = tempDir('weft-feeds-');
  const clock = new ManualClock(T0);
  const store = Store.open({ path: join(dir, 'node.db') }, { clock, logger: silentLogger });
  const fetcher = new FeedFetcher(init, { store, clock, logger: silentLogger });
  try {
    await fn({ fetcher, clock, store });
  } finally {
    await fetcher.close();
    await store.close();
    cleanup();
  }
}

/** Moves the clock to the source's next poll. */
function advanceToNext(clock: ManualClock, s: SourceState | undefined): void {
  assert.ok(s);
  const at = Math.max(s.nextPollAt, s.retryAfterUntil ?? 0);
  if (at > clock.now()) clock.set(at);
}

// ---------------------------------------------------------------------------------------------
// The parser.

describe('parseFeed', () => {
  test('RSS 2.0: links made absolute, HTML turned into text, dates in ISO 8601', () => {
    const xml = rss([
      {
        title: 'Fish &amp;amp; chips',
        link: '/posts/1',
        guid: 'g-1',
        date: T0,
        html: '<p>Hot &amp; <b>fresh</b></p><script>alert(1)</script><p>daily</p>',
      },
      { title: 'Second', link: 'javascript:alert(1)' },
    ]);
    const feed = parseFeed(enc(xml), 'application/rss+xml', {
      baseUrl: 'https://example.org/feeds/main.xml',
    });
    assert.equal(feed.format, 'rss');
    assert.equal(feed.title, 'Fixture');
    const [a, b] = feed.items;
    assert.equal(a?.guid, 'g-1');
    assert.equal(a?.url, 'https://example.org/posts/1');
    assert.equal(a?.title, 'Fish & chips');
    assert.equal(a?.summary, 'Hot & fresh\ndaily');
    assert.equal(a?.publishedAt, new Date(T0).toISOString());
    assert.equal(b?.url, undefined, 'a javascript: link is no link');
  });

  test('Atom: the alternate link, typed text, xhtml content, published before updated', () => {
    const feed = parseFeed(enc(ATOM), 'application/atom+xml', { baseUrl: 'https://example.org/atom.xml' });
    assert.equal(feed.format, 'atom');
    assert.equal(feed.title, 'Atom fixture');
    assert.equal(feed.link, 'https://example.org/');
    const [a, b] = feed.items;
    assert.deepEqual(a, {
      guid: 'tag:example.org,2026:1',
      url: 'https://example.org/posts/kestrel-2',
      title: 'Kestrel 2.0 released',
      summary: 'Faster & smaller.',
      content: 'Full text here.',
      publishedAt: '2026-01-09T08:00:00.000Z',
      authors: ['Feed Author'],
      categories: ['Databases'],
    });
    assert.equal(b?.title, 'Plain title & more');
    assert.equal(b?.url, 'https://other.example/p/2');
    assert.equal(b?.publishedAt, '2026-01-08T10:00:00.000Z');
  });

  test('RDF (RSS 1.0) with Dublin Core dates, creators and subjects', () => {
    const feed = parseFeed(enc(RDF));
    assert.equal(feed.format, 'rdf');
    assert.deepEqual(feed.items[0], {
      guid: 'https://example.org/r/1',
      url: 'https://example.org/r/1',
      title: 'First RDF item',
      summary: 'Some text',
      content: undefined,
      publishedAt: '2026-01-09T08:00:00.000Z',
      authors: ['Ada'],
      categories: ['science'],
    });
  });

  test('JSON Feed 1.1, and an item without a title named by its text', () => {
    const feed = parseFeed(enc(JSON_FEED), 'application/feed+json', {
      baseUrl: 'https://example.org/feed.json',
    });
    assert.equal(feed.format, 'json');
    assert.equal(feed.link, 'https://example.org/');
    const [a, b] = feed.items;
    assert.equal(a?.url, 'https://example.org/j/1');
    assert.equal(a?.content, 'Hello world');
    assert.equal(a?.summary, 'A summary');
    assert.deepEqual(a?.categories, ['alpha', 'beta']);
    assert.deepEqual(a?.authors, ['Jay']);
    assert.equal(b?.title, 'An item without a title, only text that goes on.');
  });

  test('ISO-8859-1 declared in the XML prolog comes out right', () => {
    const feed = parseFeed(latin1Feed(true));
    assert.equal(feed.title, 'Flâneur');
    assert.equal(feed.items[0]?.title, 'Café naïve über');
    assert.equal(feed.items[0]?.summary, 'crème brûlée');
  });

  test('ISO-8859-1 declared only in the Content-Type comes out right', () => {
    const bytes = latin1Feed(false);
    assert.equal(parseFeed(bytes, 'text/xml; charset="ISO-8859-1"').items[0]?.title, 'Café naïve über');
    // Without the header the same bytes are not UTF-8: the proof the header was used.
    assert.notEqual(parseFeed(bytes).items[0]?.title, 'Café naïve über');
  });

  test('the Content-Type charset outranks the prolog, a BOM outranks both', () => {
    const win = Buffer.concat([
      Buffer.from(
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title><item><title>',
      ),
      Buffer.from([0x93, 0x71, 0x94]),
      Buffer.from('</title></item></channel></rss>'),
    ]);
    assert.equal(parseFeed(win, 'application/xml; charset=windows-1252').items[0]?.title, '\u201cq\u201d');
    // Latin-1 labels mean windows-1252 (WHATWG): 0x80 is the euro sign, whatever Node's TextDecoder thinks.
    assert.equal(
      parseFeed(
        Buffer.concat([
          Buffer.from('<rss version="2.0"><channel><item><title>5 '),
          Buffer.from([0x80]),
          Buffer.from('</title></item></channel></rss>'),
        ]),
        'text/xml; charset=iso-8859-1',
      ).items[0]?.title,
      '5 \u20ac',
    );
    const bom = Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf]),
      Buffer.from(rss([{ title: 'Crème' }], { prolog: '<?xml version="1.0" encoding="ISO-8859-1"?>' })),
    ]);
    assert.equal(parseFeed(bom, 'text/xml; charset=iso-8859-1').items[0]?.title, 'Crème');
  });

  test('refuses what is not a feed, naming what was wrong', () => {
    const cases: Array<[string, Uint8Array, string, RegExp]> = [
      ['empty', enc('  \n'), 'not_xml_or_json', /the body is empty/],
      ['text', enc('hello world'), 'not_xml_or_json', /neither XML nor JSON/],
      ['truncated', enc('<rss version="2.0"><channel><item><title>A</ti'), 'malformed_xml', /malformed XML/],
      ['html', enc('<!DOCTYPE html><html><body><p>hi</p></body></html>'), 'not_a_feed', /an HTML page/],
      [
        'svg',
        enc('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><g/></svg>'),
        'not_a_feed',
        /root element <svg>/,
      ],
      ['bad json', enc('{"version": '), 'malformed_json', /malformed JSON/],
      ['other json', enc('{"items": []}'), 'not_a_feed', /JSON Feed version/],
      [
        'deep xml',
        enc(`<rss version="2.0"><channel>${'<a>'.repeat(300)}${'</a>'.repeat(300)}</channel></rss>`),
        'too_deep',
        /deeper than 100/,
      ],
      [
        'deep json',
        enc(`{"version":"https://jsonfeed.org/version/1.1","x":${'['.repeat(300)}${']'.repeat(300)}}`),
        'too_deep',
        /deeper than 100/,
      ],
    ];
    for (const [name, bytes, reason, message] of cases) {
      assert.throws(
        () => parseFeed(bytes),
        (err: unknown) =>
          err instanceof FeedParseError &&
          err instanceof WeftError &&
          err.code === 'SIGNAL_FEED_INVALID' &&
          err.reason === reason &&
          message.test(err.message),
        name,
      );
    }
    assert.throws(
      () => parseFeed(new Uint8Array(101), undefined, { maxBytes: 100 }),
      (err: unknown) => err instanceof FeedParseError && err.reason === 'too_large',
    );
  });

  test('an empty feed is a feed, not an error (a quiet source must not be disabled)', () => {
    const empty = [
      ['rss', '<rss version="2.0"><channel></channel></rss>'],
      ['atom', '<feed xmlns="http://www.w3.org/2005/Atom"></feed>'],
      [
        'rdf',
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"><channel/></rdf:RDF>',
      ],
      ['json', '{"version":"https://jsonfeed.org/version/1.1","title":"Quiet","items":[]}'],
    ] as const;
    for (const [format, body] of empty) {
      const feed = parseFeed(enc(body));
      assert.equal(feed.format, format);
      assert.deepEqual(feed.items, []);
    }
    assert.throws(
      () => parseFeed(enc('<rss version="2.0"></rss>')),
      (err: unknown) => err instanceof FeedParseError && err.reason === 'not_a_feed',
    );
  });

  test('bounds: 10,000 items, titles of 500 characters, text of 20,000', () => {
    const many = Array.from({ length: 12_000 }, (_, i) => ({ title: `t${i}`, link: `https://e.org/${i}` }));
    assert.equal(parseFeed(enc(rss(many))).items.length, 10_000);
    const long = parseFeed(enc(rss([{ title: 'x'.repeat(2_000), html: `<p>${'word '.repeat(10_000)}</p>` }])))
      .items[0];
    assert.equal(long?.title.length, 500);
    assert.ok(long?.title.endsWith('…'));
    assert.ok((long?.summary?.length ?? 0) <= 20_000);
  });

  test('HTML to text stays linear on hostile input', () => {
    for (const hostile of [
      '<'.repeat(1_000_000),
      '<a "'.repeat(250_000),
      '<script>'.repeat(120_000),
      '&amp'.repeat(250_000),
      `<p${' '.repeat(1_000_000)}`,
    ]) {
      const t = performance.now();
      htmlToText(hostile);
      assert.ok(performance.now() - t < 1_000, `took ${performance.now() - t} ms`);
    }
    assert.equal(
      htmlToText('a<br>b&nbsp;c <style>x{}</style><!-- hidden -->d &lt;tag&gt;'),
      'a\nb c d <tag>',
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Source lists.

describe('source lists', () => {
  test('OPML: nested outlines, parents and category attributes become tags', () => {
    const list = parseOpml(OPML, { origin: 'file:subs.opml' });
    assert.deepEqual(
      list.map((s) => [s.id, s.kind, s.url, s.label, s.tags, s.origin]),
      [
        [
          'kestrel-blog',
          'feed',
          'https://kestrel.example/feed.xml',
          'Kestrel Blog',
          ['tech', 'databases'],
          'file:subs.opml',
        ],
        [
          'nimbus-news',
          'feed',
          'https://nimbus.example/rss',
          'Nimbus News',
          ['tech', 'databases', 'cloud', 'infra', 'ops'],
          'file:subs.opml',
        ],
        ['shared', 'feed', 'https://shared.example/feed', 'Shared', [], 'file:subs.opml'],
        [
          'a-channel',
          'youtube',
          'https://www.youtube.com/feeds/videos.xml?channel_id=UCabcdefghijklmnopqrstuv',
          'A channel',
          ['video'],
          'file:subs.opml',
        ],
      ],
    );
  });

  test('CSV: optional header, comments, quoted fields, tags', () => {
    const list = parseSourceCsv(CSV, { origin: 'file:subs.csv' });
    assert.deepEqual(
      list.map((s) => [s.kind, s.url, s.label, s.tags]),
      [
        ['feed', 'https://shared.example/feed', 'Shared, the other label', ['csv-tag']],
        ['feed', 'https://quoted.example/atom', 'Quoted " label', ['news', 'tech']],
        [
          'youtube',
          'https://www.youtube.com/feeds/videos.xml?channel_id=UCabcdefghijklmnopqrstuw',
          'Channel',
          [],
        ],
        ['feed', 'https://plain.example/feed.json', 'Plain', ['a', 'b']],
      ],
    );
    const headless = parseSourceCsv(
      '# no header\nBlog,https://blog.example/rss\n\n@someone,https://nitter.example/someone/rss,x,social,people\n',
    );
    assert.deepEqual(
      headless.map((s) => [s.kind, s.url, s.tags]),
      [
        ['feed', 'https://blog.example/rss', []],
        ['x', 'https://nitter.example/someone/rss', ['social', 'people']],
      ],
    );
    assert.throws(
      () => parseSourceCsv('a,https://a.example/,gopher\n', { origin: 'file:x.csv' }),
      (err: unknown) =>
        err instanceof ConfigError && /x\.csv: line 1: unknown type 'gopher'/.test(err.message),
    );
    assert.throws(
      () => parseSourceCsv('label,url\nonly a label,\n'),
      (err: unknown) => err instanceof ConfigError && /line 2 has no URL/.test(err.message),
    );
  });

  test('YouTube channels by id or URL; handles are refused with the way to the id', () => {
    const feed = 'https://www.youtube.com/feeds/videos.xml?channel_id=UCabcdefghijklmnopqrstuv';
    assert.equal(youtubeFeedUrl('UCabcdefghijklmnopqrstuv'), feed);
    assert.equal(youtubeFeedUrl('https://www.youtube.com/channel/UCabcdefghijklmnopqrstuv/videos'), feed);
    assert.equal(youtubeFeedUrl(feed), feed);
    assert.throws(
      () => youtubeFeedUrl('https://www.youtube.com/@someone'),
      (err: unknown) => err instanceof ConfigError && /channel id/.test(err.message),
    );
  });

  test('X accounts need a feed template, and say so', () => {
    assert.throws(
      () => resolveSources([{ kind: 'x', url: '@weftdev' }]),
      (err: unknown) =>
        err instanceof ConfigError && /X publishes no feeds; set the X feed-URL template/.test(err.message),
    );
    const [x] = resolveSources([{ url: 'https://x.com/weftdev' }, { url: '@other_one' }], {
      xFeedTemplate: 'https://nitter.example.net/{handle}/rss',
    });
    assert.equal(x?.kind, 'x');
    assert.equal(x?.url, 'https://nitter.example.net/weftdev/rss');
    assert.equal(x?.label, '@weftdev');
    assert.equal(
      xFeedUrl('weftdev', 'https://bridge.example/?action=display&bridge=Twitter&u={handle}&format=Atom'),
      'https://bridge.example/?action=display&bridge=Twitter&u=weftdev&format=Atom',
    );
    assert.throws(
      () => xFeedUrl('weftdev', 'https://nitter.example.net/rss'),
      /must be an http\(s\) URL containing \{handle\}/,
    );
  });

  test('duplicate URLs across lists collapse into one source; ids are stable slugs, or slug and hash when labels collide', () => {
    const all = resolveSources([
      ...parseOpml(OPML),
      ...parseSourceCsv(CSV),
      { url: 'https://kestrel.example/feed.xml#top', tags: ['inline'] },
    ]);
    const shared = all.filter((s) => s.url === 'https://shared.example/feed');
    assert.equal(shared.length, 1);
    assert.equal(shared[0]?.label, 'Shared', 'the first list names it');
    assert.deepEqual(shared[0]?.tags, ['csv-tag'], 'tags are the union');
    assert.deepEqual(all.find((s) => s.id === 'kestrel-blog')?.tags, ['tech', 'databases', 'inline']);
    assert.equal(new Set(all.map((s) => s.id)).size, all.length);
    const twins = resolveSources([
      { url: 'https://a.example/feed', label: 'News' },
      { url: 'https://b.example/feed', label: 'news!' },
    ]);
    assert.match(twins[0]?.id ?? '', /^news-[0-9a-f]{8}$/);
    assert.match(twins[1]?.id ?? '', /^news-[0-9a-f]{8}$/);
    assert.notEqual(twins[0]?.id, twins[1]?.id);
    assert.deepEqual(resolveSources(twins), twins, 'resolving again changes nothing');
    assert.equal(resolveSources([{ url: 'https://www.example.org/blog/feed/' }])[0]?.id, 'example-org-blog');
    assert.throws(() => resolveSources([{ url: 'ftp://example.org/feed' }]), /is not an http\(s\) URL/);
  });

  test('source-list files by extension, with the file as origin', async () => {
    const { dir, cleanup } = tempDir();
    try {
      writeFileSync(join(dir, 'subs.opml'), OPML);
      writeFileSync(join(dir, 'subs.csv'), CSV);
      const opml = await loadSourceFile(join(dir, 'subs.opml'));
      const csv = await loadSourceFile(join(dir, 'subs.csv'));
      assert.equal(opml.length, 4);
      assert.equal(csv.length, 4);
      assert.equal(csv[0]?.origin, `file:${join(dir, 'subs.csv')}`);
      await assert.rejects(
        loadSourceFile(join(dir, 'missing.csv')),
        (err: unknown) => err instanceof ConfigError && /cannot read/.test(err.message),
      );
    } finally {
      cleanup();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Scheduling arithmetic.

describe('schedule', () => {
  test('Retry-After in seconds or as an HTTP date; max-age; bounded backoff', () => {
    assert.equal(parseRetryAfter('120', T0), T0 + 120_000);
    assert.equal(parseRetryAfter(new Date(T0 + 90_000).toUTCString(), T0), T0 + 90_000);
    assert.equal(parseRetryAfter(new Date(T0 - 90_000).toUTCString(), T0), T0);
    assert.equal(parseRetryAfter('soon', T0), undefined);
    assert.equal(parseMaxAge('public, max-age=3600, s-maxage=60'), 3600);
    assert.equal(parseMaxAge('no-cache'), undefined);
    const bounds = { minMs: 5 * MINUTE, maxMs: 6 * HOUR };
    assert.equal(backoffMs(30 * MINUTE, 1, bounds), HOUR);
    assert.equal(backoffMs(30 * MINUTE, 30, bounds), 6 * HOUR);
  });

  test('the interval follows the feed: half the median gap, bounded, longer when it has gone quiet', () => {
    const bounds = { minMs: 5 * MINUTE, maxMs: 6 * HOUR };
    const every = (gap: number, n: number, newest = T0) =>
      Array.from({ length: n }, (_, i) => ({
        title: `${i}`,
        authors: [],
        categories: [],
        publishedAt: new Date(newest - i * gap).toISOString(),
      }));
    assert.equal(intervalFromItems(every(HOUR, 10), T0, bounds), 30 * MINUTE);
    assert.equal(intervalFromItems(every(MINUTE, 10), T0, bounds), 5 * MINUTE);
    assert.equal(intervalFromItems(every(24 * HOUR, 10), T0, bounds), 6 * HOUR);
    assert.equal(
      intervalFromItems(every(HOUR, 10, T0 - 16 * HOUR), T0, bounds),
      4 * HOUR,
      'quiet for 16 h: a quarter of that',
    );
    assert.equal(intervalFromItems([{ title: 'x', authors: [], categories: [] }], T0, bounds), undefined);
  });
});

// ---------------------------------------------------------------------------------------------
// The fetcher against a real server.

describe('FeedFetcher', () => {
  let server: FeedServer;
  before(async () => {
    server = await FeedServer.start();
  });
  after(async () => {
    await server.close();
  });

  test('polls RSS, Atom, RDF, JSON Feed and a Latin-1 feed, naming Weft in the User-Agent', async () => {
    const urls = {
      rss: server.route('/all/rss', serve(rss([{ title: 'R', link: '/r/1' }]))),
      atom: server.route('/all/atom', serve(ATOM, { 'content-type': 'application/atom+xml' })),
      rdf: server.route('/all/rdf', serve(RDF, { 'content-type': 'application/rdf+xml' })),
      json: server.route('/all/json', serve(JSON_FEED, { 'content-type': 'application/feed+json' })),
      latin: server.route(
        '/all/latin',
        serve(latin1Feed(false), { 'content-type': 'application/rss+xml; charset=iso-8859-1' }),
      ),
    };
    await withFetcher(async ({ fetcher }) => {
      await fetcher.sync(Object.entries(urls).map(([id, url]) => spec(id, url)));
      const due = fetcher.due();
      assert.equal(due.length, 5, 'new sources are due at once');
      const got: Record<string, string[]> = {};
      for (const s of due) {
        const r = await fetcher.poll(s);
        assert.equal(r.status, 'new', `${s.id}: ${JSON.stringify(r)}`);
        if (r.status === 'new') got[s.id] = r.feed.items.map((i) => `${r.feed.format}:${i.title}`);
      }
      assert.deepEqual(got.rss, ['rss:R']);
      assert.deepEqual(got.atom, ['atom:Kestrel 2.0 released', 'atom:Plain title & more']);
      assert.deepEqual(got.rdf, ['rdf:First RDF item']);
      assert.deepEqual(got.json?.[0], 'json:JSON item');
      assert.deepEqual(got.latin, ['rss:Café naïve über']);
      const ua = server.hitsOf('/all/rss')[0]?.headers['user-agent'] ?? '';
      assert.match(ua, /^Weft\/\S+ \(feed fetcher\)$/);
    });
  });

  test('every repeat poll is conditional: If-None-Match and If-Modified-Since, 304 is not_modified', async () => {
    const etag = '"v1"';
    const lastModified = new Date(T0 - HOUR).toUTCString();
    const url = server.route('/cond', (req, res) => {
      if (req.headers['if-none-match'] === etag) {
        res.writeHead(304, { etag });
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/rss+xml', etag, 'last-modified': lastModified });
      res.end(rss([{ title: 'Once', link: 'https://example.org/1' }]));
    });
    await withFetcher(async ({ fetcher, clock }) => {
      await fetcher.sync([spec('cond', url)]);
      assert.equal((await fetcher.poll('cond')).status, 'new');
      for (let i = 0; i < 3; i++) {
        advanceToNext(clock, fetcher.get('cond'));
        assert.deepEqual(
          fetcher.due().map((s) => s.id),
          ['cond'],
        );
        assert.equal((await fetcher.poll('cond')).status, 'not_modified');
      }
      const hits = server.hitsOf('/cond');
      assert.equal(hits.length, 4);
      assert.equal(hits[0]?.headers['if-none-match'], undefined, 'the first poll has nothing to compare');
      for (const h of hits.slice(1)) {
        assert.equal(h.headers['if-none-match'], etag);
        assert.equal(h.headers['if-modified-since'], lastModified);
      }
      assert.equal(fetcher.status()[0]?.lastStatus, 'not_modified');
    });
  });

  test('a 429 with Retry-After: no request reaches the host before the time, for any of its sources', async () => {
    const fx = await FeedServer.start();
    try {
      let limited = true;
      const feedA = fx.route('/a', (_req, res) => {
        if (limited) {
          res.writeHead(429, { 'retry-after': '120' });
          res.end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/rss+xml' });
        res.end(rss([{ title: 'A', link: 'https://example.org/a' }]));
      });
      const feedB = fx.route('/b', serve(rss([{ title: 'B', link: 'https://example.org/b' }])));
      await withFetcher(async ({ fetcher, clock }) => {
        await fetcher.sync([spec('a', feedA), spec('b', feedB)]);
        const r = await fetcher.poll('a');
        assert.deepEqual(r, { status: 'deferred', until: T0 + 120_000, reason: `HTTP 429, Retry-After until ${new Date(T0 + 120_000).toISOString()}` });
        assert.equal(fetcher.get('a')?.retryAfterUntil, T0 + 120_000, 'stored');
        assert.deepEqual(fetcher.due(), [], 'neither source of the host is due');
        clock.advance(119_000);
        assert.deepEqual(fetcher.due(), []);
        assert.deepEqual(await fetcher.poll('a'), { status: 'deferred', until: T0 + 120_000, reason: `HTTP 429, Retry-After until ${new Date(T0 + 120_000).toISOString()}` });
        const held = await fetcher.poll('b');
        assert.ok(held.status === 'deferred' && held.until === T0 + 120_000, JSON.stringify(held));
        assert.match(held.reason, /^host 127\.0\.0\.1:\d+ asked to wait \(another of its sources got HTTP 429 or 503\) until /, 'why, for the source that did not ask');
        const b = fetcher.status().find((s) => s.id === 'b');
        assert.equal(b?.nextPollAt, new Date(T0 + 120_000).toISOString(), 'its next poll is when the host is free, not a time past');
        assert.match(b?.lastStatus ?? '', /^deferred: host .* asked to wait/);
        assert.equal(fx.hits.length, 1, 'nothing was sent inside the window');
        limited = false;
        clock.advance(1_000);
        assert.deepEqual(
          fetcher.due().map((s) => s.id),
          ['b', 'a'],
        );
        assert.equal((await fetcher.poll('a')).status, 'new');
        assert.equal(fx.hits.length, 2);
        assert.equal(fetcher.get('a')?.retryAfterUntil, null);
      });
    } finally {
      await fx.close();
    }
  });

  test('a Retry-After of 0, in the past or negative still holds the host for a minute (no poll a tick)', async () => {
    const fx = await FeedServer.start();
    try {
      for (const value of ['0', '-5', 'Thu, 01 Jan 1970 00:00:00 GMT']) {
        const feed = fx.route(`/z${value.length}`, (_req, res) => {
          res.writeHead(429, { 'retry-after': value });
          res.end();
        });
        await withFetcher(async ({ fetcher, clock }) => {
          await fetcher.sync([spec('z', feed)]);
          const r = await fetcher.poll('z');
          assert.ok(r.status === 'deferred' && r.until === T0 + 60_000, `Retry-After: ${value}`);
          clock.advance(59_000);
          assert.deepEqual(fetcher.due(), [], `not due inside the minute (Retry-After: ${value})`);
        });
      }
      assert.equal(fx.hits.length, 3, 'one request per value');
    } finally {
      await fx.close();
    }
  });

  test('a 503 with Retry-After as an HTTP date is honoured; without it the poll backs off', async () => {
    let mode: 'date' | 'bare' = 'date';
    const url = server.route('/busy', (_req, res) => {
      res.writeHead(503, mode === 'date' ? { 'retry-after': new Date(T0 + 10 * MINUTE).toUTCString() } : {});
      res.end();
    });
    await withFetcher(async ({ fetcher, clock }) => {
      await fetcher.sync([spec('busy', url)]);
      assert.deepEqual(await fetcher.poll('busy'), { status: 'deferred', until: T0 + 10 * MINUTE, reason: `HTTP 503, Retry-After until ${new Date(T0 + 10 * MINUTE).toISOString()}` });
      assert.deepEqual(fetcher.due(clock.now() + 10 * MINUTE - 1), []);
      clock.set(T0 + 10 * MINUTE);
      mode = 'bare';
      const r = await fetcher.poll('busy');
      assert.equal(r.status, 'failed');
      assert.ok(r.status === 'failed' && r.reason === 'http' && r.error === 'HTTP 503' && !r.disabled);
    });
  });

  test('one request per host at a time (perHost), while two hosts run side by side', async () => {
    const other = await FeedServer.start();
    try {
      const slow = serve(rss([{ title: 'slow' }]), {}, 120);
      const sources = [0, 1, 2].map((i) => spec(`h1-${i}`, server.route(`/host/${i}`, slow)));
      const elsewhere = spec('h2-0', other.route('/host/0', slow));
      await withFetcher(async ({ fetcher }) => {
        server.maxActive = 0;
        await fetcher.sync([...sources, elsewhere]);
        const results = await Promise.all([...sources, elsewhere].map((s) => fetcher.poll(s)));
        assert.deepEqual(
          results.map((r) => r.status),
          ['new', 'new', 'new', 'new'],
        );
        assert.equal(server.maxActive, 1, 'the three sources on one host never overlapped');
        assert.equal(server.hits.filter((h) => h.path.startsWith('/host/')).length, 3);
        assert.equal(other.hitsOf('/host/0').length, 1);
      });
      // With perHost 2 the same server sees two at once: the count above is a real measurement.
      await withFetcher(
        async ({ fetcher }) => {
          server.maxActive = 0;
          await fetcher.sync(sources);
          await Promise.all(sources.map((s) => fetcher.poll(s)));
          assert.equal(server.maxActive, 2);
        },
        { perHost: 2 },
      );
    } finally {
      await other.close();
    }
  });

  test('a 50 MB feed is refused past the cap without being downloaded or buffered', async () => {
    const total = 50 * 1024 * 1024;
    let sent = 0;
    let finished: () => void = () => undefined;
    const done = new Promise<void>((resolve) => {
      finished = resolve;
    });
    const item = Buffer.from(
      '<item><title>filler</title><link>https://example.org/f</link></item>'.repeat(1000),
    );
    const url = server.route('/huge', async (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/rss+xml' }); // chunked: no length to refuse up front
      res.write('<?xml version="1.0"?><rss version="2.0"><channel><title>huge</title>');
      let closed = false;
      res.on('close', () => {
        closed = true;
      });
      while (sent < total && !closed) {
        sent += item.byteLength;
        if (!res.write(item)) {
          await new Promise<void>((resolve) => {
            const go = (): void => {
              res.off('drain', go);
              res.off('close', go);
              resolve();
            };
            res.on('drain', go);
            res.on('close', go);
          });
        }
      }
      res.end();
      finished();
    });
    const announced = server.route('/huge-announced', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/rss+xml', 'content-length': String(total) });
      res.write('<rss version="2.0">');
      // Never finishes: the announced length alone must be enough to refuse.
    });
    await withFetcher(async ({ fetcher }) => {
      await fetcher.sync([spec('huge', url), spec('announced', announced)]);
      const mem = () => {
        const m = process.memoryUsage();
        return m.heapUsed + m.arrayBuffers;
      };
      const base = mem();
      let peak = base;
      const sampler = setInterval(() => {
        peak = Math.max(peak, mem());
      }, 5);
      const t = performance.now();
      const r = await fetcher.poll('huge');
      const took = performance.now() - t;
      clearInterval(sampler);
      peak = Math.max(peak, mem());
      await done;
      assert.equal(r.status, 'failed');
      assert.ok(
        r.status === 'failed' && r.reason === 'too_large' && /over the limit of 5242880/.test(r.error),
        JSON.stringify(r),
      );
      assert.ok(sent < 25 * 1024 * 1024, `the server sent ${sent} bytes of ${total}`);
      assert.ok(peak - base < 30 * 1024 * 1024, `memory grew by ${Math.round((peak - base) / 1048576)} MB`);
      assert.ok(took < 5_000, `took ${took} ms`);
      assert.equal(fetcher.get('huge')?.parseErrors, 1, 'an oversized body counts toward disabling');
      const r2 = await fetcher.poll('announced');
      assert.ok(
        r2.status === 'failed' && r2.reason === 'too_large' && /announced/.test(r2.error),
        JSON.stringify(r2),
      );
    });
  });

  test('redirects: followed to the feed (relative links against the final URL), a loop stops after 5, only http(s)', async () => {
    server.route('/moved', (_req, res) => {
      res.writeHead(301, { location: '/feeds/new.xml' });
      res.end();
    });
    server.route('/feeds/new.xml', serve(rss([{ title: 'Moved', link: 'post/1' }])));
    server.route('/loop', (_req, res) => {
      res.writeHead(302, { location: '/loop' });
      res.end();
    });
    server.route('/to-ftp', (_req, res) => {
      res.writeHead(302, { location: 'ftp://example.org/feed' });
      res.end();
    });
    await withFetcher(async ({ fetcher }) => {
      await fetcher.sync([
        spec('moved', server.url('/moved')),
        spec('loop', server.url('/loop')),
        spec('ftp', server.url('/to-ftp')),
      ]);
      const moved = await fetcher.poll('moved');
      assert.ok(moved.status === 'new');
      assert.equal(moved.feed.items[0]?.url, server.url('/feeds/post/1'));
      const before = server.hitsOf('/loop').length;
      const loop = await fetcher.poll('loop');
      assert.ok(
        loop.status === 'failed' && loop.reason === 'redirect' && /more than 5 redirects/.test(loop.error),
        JSON.stringify(loop),
      );
      assert.equal(server.hitsOf('/loop').length - before, 6, 'the first request and 5 redirects');
      const ftp = await fetcher.poll('ftp');
      assert.ok(
        ftp.status === 'failed' && ftp.reason === 'redirect' && /ftp: refused/.test(ftp.error),
        JSON.stringify(ftp),
      );
      assert.equal(fetcher.get('loop')?.disabledReason, null, 'fetch errors do not disable');
    });
  });

  test('a malformed feed is disabled after 5 parse errors in a row, and says so once', async () => {
    let body = '<rss version="2.0"><channel><item><title>broken';
    const url = server.route('/broken', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/rss+xml' });
      res.end(body);
    });
    await withFetcher(async ({ fetcher, clock }) => {
      await fetcher.sync([spec('broken', url)]);
      for (let i = 1; i <= 4; i++) {
        advanceToNext(clock, fetcher.get('broken'));
        const r = await fetcher.poll('broken');
        assert.ok(
          r.status === 'failed' && r.reason === 'parse' && !r.disabled && /malformed XML/.test(r.error),
          JSON.stringify(r),
        );
      }
      // A good body in between resets the count.
      body = rss([{ title: 'fine' }]);
      advanceToNext(clock, fetcher.get('broken'));
      assert.equal((await fetcher.poll('broken')).status, 'new');
      assert.equal(fetcher.get('broken')?.parseErrors, 0);
      body = '<html><body>Moved to our new site</body></html>';
      const results = [];
      for (let i = 1; i <= 5; i++) {
        advanceToNext(clock, fetcher.get('broken'));
        results.push(await fetcher.poll('broken'));
      }
      assert.deepEqual(
        results.map((r) => r.status === 'failed' && r.disabled),
        [false, false, false, false, true],
      );
      const state = fetcher.get('broken');
      assert.match(
        state?.disabledReason ?? '',
        /^5 unreadable bodies in a row; last: not a feed: an HTML page/,
      );
      clock.advance(30 * 24 * HOUR);
      assert.deepEqual(fetcher.due(), [], 'a disabled source is never due');
      assert.equal(fetcher.nextDueAt(), undefined);
      await assert.rejects(
        fetcher.poll('broken'),
        (err: unknown) => err instanceof WeftError && err.code === 'WEFT_CONFLICT',
      );
      const line = fetcher.status()[0];
      assert.equal(line?.nextPollAt, null);
      assert.equal(line?.parseErrors, 5);
      await fetcher.enable('broken');
      assert.deepEqual(
        fetcher.due().map((s) => s.id),
        ['broken'],
      );
    });
  });

  test('network and server errors back off exponentially, bounded, and never disable', async () => {
    const url = server.route('/down', (_req, res) => {
      res.writeHead(500);
      res.end('oops');
    });
    await withFetcher(
      async ({ fetcher, clock }) => {
        await fetcher.sync([spec('down', url)]);
        const delays: number[] = [];
        for (let i = 0; i < 8; i++) {
          advanceToNext(clock, fetcher.get('down'));
          const r = await fetcher.poll('down');
          assert.ok(r.status === 'failed' && r.reason === 'http' && !r.disabled);
          delays.push(((r.nextPollAt ?? 0) - clock.now()) / MINUTE);
        }
        assert.deepEqual(delays, [30, 60, 120, 240, 360, 360, 360, 360]);
        assert.equal(fetcher.get('down')?.fetchErrors, 8);
        assert.equal(fetcher.get('down')?.disabledReason, null);
      },
      { initialIntervalMs: 15 * MINUTE },
    );
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await withFetcher(async ({ fetcher }) => {
      await fetcher.sync([spec('refused', `http://127.0.0.1:${port}/feed`)]);
      const r = await fetcher.poll('refused');
      assert.ok(
        r.status === 'failed' && r.reason === 'network' && /ECONNREFUSED/.test(r.error),
        JSON.stringify(r),
      );
    });
  });

  test('a server that never finishes is cut off at the time cap', async () => {
    const url = server.route('/stall', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/rss+xml' });
      res.write('<rss version="2.0"><channel>');
    });
    await withFetcher(
      async ({ fetcher }) => {
        await fetcher.sync([spec('stall', url)]);
        const t = performance.now();
        const r = await fetcher.poll('stall');
        assert.ok(r.status === 'failed' && r.reason === 'timeout', JSON.stringify(r));
        assert.ok(performance.now() - t < 2_000);
      },
      { timeoutMs: 300 },
    );
  });

  test('the interval adapts to the feed (bounded) and Cache-Control max-age raises it', async () => {
    const now = T0;
    const items = (gap: number) =>
      Array.from({ length: 10 }, (_, i) => ({
        title: `i${i}`,
        link: `https://example.org/${gap}/${i}`,
        date: now - i * gap,
      }));
    const hourly = server.route('/pace/hourly', serve(rss(items(HOUR))));
    const minutely = server.route('/pace/minutely', serve(rss(items(MINUTE))));
    const daily = server.route('/pace/daily', serve(rss(items(24 * HOUR))));
    const cached = server.route(
      '/pace/cached',
      serve(rss(items(MINUTE)), { 'cache-control': 'max-age=7200' }),
    );
    await withFetcher(async ({ fetcher }) => {
      await fetcher.sync([
        spec('hourly', hourly),
        spec('minutely', minutely),
        spec('daily', daily),
        spec('cached', cached),
      ]);
      for (const id of ['hourly', 'minutely', 'daily', 'cached']) await fetcher.poll(id);
      const interval = (id: string) => (fetcher.get(id)?.intervalMs ?? 0) / MINUTE;
      assert.equal(interval('hourly'), 30);
      assert.equal(interval('minutely'), 5, 'the minimum interval');
      assert.equal(interval('daily'), 360, 'the maximum interval');
      assert.equal(interval('cached'), 120, 'at least max-age');
      assert.equal(fetcher.get('hourly')?.nextPollAt, T0 + 30 * MINUTE);
    });
  });

  test('an undated feed is polled sooner after a poll that brought new items, later after one that brought none', async () => {
    let n = 3;
    const url = server.route('/pace/undated', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/rss+xml' });
      res.end(rss(Array.from({ length: n }, (_, i) => ({ title: `u${i}`, link: `https://example.org/u/${i}` }))));
    });
    await withFetcher(
      async ({ fetcher, clock }) => {
        await fetcher.sync([spec('undated', url)]);
        assert.equal(fetcher.get('undated')?.intervalMs, 15 * MINUTE, 'the initial interval');
        assert.equal((await fetcher.poll('undated')).status, 'new');
        await fetcher.recordNewItems('undated', 3, { items: 3, duplicates: 0, over: 0 });
        assert.equal(fetcher.get('undated')?.intervalMs, 10 * MINUTE, '3 new items: half the interval, at least min_interval (it was 23 min)');
        assert.equal(fetcher.get('undated')?.nextPollAt, T0 + 10 * MINUTE);
        clock.advance(10 * MINUTE);
        n = 3;
        await fetcher.poll('undated');
        await fetcher.recordNewItems('undated', 0, { items: 3, duplicates: 3, over: 0 });
        assert.equal(fetcher.get('undated')?.intervalMs, 15 * MINUTE, 'nothing new: half as long again');
        assert.equal(fetcher.get('undated')?.nextPollAt, T0 + 25 * MINUTE);
      },
      { minIntervalMs: 10 * MINUTE },
    );
  });

  test('sync keeps polling state, follows renames, and removes only the sources it owns', async () => {
    const url = (p: string) => server.route(p, serve(rss([{ title: p }]), { etag: `"${p}"` }));
    const a = url('/sync/a');
    const b = url('/sync/b');
    const c = url('/sync/c');
    await withFetcher(async ({ fetcher, clock }) => {
      await fetcher.sync([spec('a', a), spec('b', b)]);
      await fetcher.upsert(spec('mine', c, { origin: 'cli' }));
      await fetcher.poll('a');
      await fetcher.poll('b');
      await fetcher.recordNewItems('a', 3);
      clock.advance(MINUTE);
      const r = await fetcher.sync([spec('a', a, { label: 'A!', tags: ['x'] }), spec('b-renamed', b)]);
      assert.deepEqual(r, { added: [], updated: ['a', 'b-renamed'], removed: [] });
      const sa = fetcher.get('a');
      assert.equal(sa?.etag, '"/sync/a"', 'state kept');
      assert.equal(sa?.label, 'A!');
      assert.deepEqual(sa?.tags, ['x']);
      assert.equal(sa?.itemsSeen, 3);
      assert.equal(fetcher.get('b-renamed')?.etag, '"/sync/b"', 'a new id for the same URL keeps its state');
      assert.equal(fetcher.get('b'), undefined);
      const r2 = await fetcher.sync([spec('a', b)]);
      assert.deepEqual(
        r2,
        { added: [], updated: ['a'], removed: [] },
        "b-renamed's URL moved to a; b-renamed is gone with its old id",
      );
      assert.equal(fetcher.get('a')?.etag, '"/sync/b"');
      assert.equal(fetcher.get('b-renamed'), undefined);
      const r3 = await fetcher.sync([spec('a', a)]);
      assert.deepEqual(r3, { added: [], updated: ['a'], removed: [] });
      assert.equal(fetcher.get('a')?.etag, null, 'a changed URL starts afresh');
      assert.ok(fetcher.get('mine'), 'a source added from the command line survives a config sync');
      const r4 = await fetcher.sync([]);
      assert.deepEqual(r4.removed, ['a']);
      assert.deepEqual(
        fetcher.status().map((s) => s.id),
        ['mine'],
      );
      await assert.rejects(fetcher.sync([spec('x', a), spec('y', a)]), /listed twice/);
    });
  });

  test('status lists what `weft signals sources` shows', async () => {
    const url = server.route(
      '/status',
      serve(
        rss([
          { title: 'S', link: 'https://example.org/s', date: T0 - HOUR },
          { title: 'T', date: T0 - 2 * HOUR },
        ]),
      ),
    );
    await withFetcher(async ({ fetcher }) => {
      await fetcher.sync([spec('st', url, { label: 'Status feed', tags: ['t'] })]);
      await fetcher.poll('st');
      await fetcher.recordNewItems('st', 2);
      assert.deepEqual(fetcher.status(), [
        {
          id: 'st',
          label: 'Status feed',
          url,
          kind: 'feed',
          origin: 'config',
          tags: ['t'],
          intervalS: 1800,
          nextPollAt: new Date(T0 + 30 * MINUTE).toISOString(),
          retryAfterUntil: null,
          lastPolledAt: new Date(T0).toISOString(),
          lastStatus: 'new: 2 items',
          parseErrors: 0,
          fetchErrors: 0,
          disabledReason: null,
          itemsSeen: 2,
          lastNewItems: 2,
          newToday: 2,
          floodingSince: null,
          budgetSpentUntil: null,
        },
      ]);
      assert.equal(fetcher.nextDueAt(), T0 + 30 * MINUTE);
    });
  });

  test('a poll already running is shared; close is idempotent and later polls are refused', async () => {
    const url = server.route('/shared', serve(rss([{ title: 'S' }]), {}, 50));
    await withFetcher(async ({ fetcher }) => {
      await fetcher.sync([spec('shared', url)]);
      const before = server.hitsOf('/shared').length;
      const [r1, r2] = await Promise.all([fetcher.poll('shared'), fetcher.poll('shared')]);
      assert.equal(r1, r2);
      assert.equal(server.hitsOf('/shared').length - before, 1);
      await assert.rejects(fetcher.poll('nope'), /signal source nope not found/);
      const c1 = fetcher.close();
      assert.equal(fetcher.close(), c1);
      await c1;
      await assert.rejects(
        fetcher.poll('shared'),
        (err: unknown) => err instanceof WeftError && err.code === 'WEFT_STOPPED',
      );
    });
  });
});
