/**
 * A feed (or any producer) may put terminal escape codes in its text. They must never reach a
 * terminal as codes: feed text loses them when it is parsed, and the CLI shows what any event
 * carries (␛, <U+009B>) instead of letting the terminal act on it. --json stays exact.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { table } from '../../src/cli/format.js';
import { parseFeed } from '../../src/signals/feeds/index.js';
import { SignalIngest } from '../../src/signals/index.js';
import { silentLogger, stripControlChars, visibleControlChars } from '../../src/util/index.js';
import { startDaemonProcess, weftAsync } from '../helpers/cli.js';
import { startTestNode } from '../helpers/node.js';
import { tempDir } from '../helpers/tmp.js';

const ESC = '\u001b';
const PWNED = `${ESC}[2J${ESC}[31mPWNED${ESC}]0;hacked\u0007`;
/** Every kind this must take out: C0, DEL, C1 (CSI as one code), bidi overrides and isolates. */
const NASTY = `a\u0000b\u0008c\u007fd\u009b31me\u202ef\u2066g\u2069h`;
// biome-ignore lint/suspicious/noControlCharactersInRegex: the test looks for them.
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

const enc = (s: string) => new TextEncoder().encode(s);
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

describe('feed text without terminal escapes', () => {
  it('stripControlChars drops whole escape sequences and every control character but whitespace', () => {
    assert.equal(stripControlChars(`${PWNED} title`), 'PWNED title');
    assert.equal(stripControlChars(NASTY), 'abcd31mefgh');
    assert.equal(stripControlChars('tab\there\nline'), 'tab\there\nline');
    assert.equal(
      stripControlChars(`${ESC}]${'x'.repeat(100_000)}`),
      `]${'x'.repeat(100_000)}`,
      'an unterminated OSC loses its ESC only',
    );
  });

  it('RSS, Atom and JSON Feed titles, summaries, authors, categories and GUIDs come out clean', () => {
    const rss = `<?xml version="1.0"?><rss version="2.0"><channel><title>${PWNED}</title><item><title>${PWNED} rss</title><link>http://a.example/1</link><guid>g-${PWNED}</guid><description>${esc(`<p>${PWNED} body ${NASTY}</p>`)}</description><author>x@y (${PWNED})</author><category>${PWNED}</category></item></channel></rss>`;
    const atom = `<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:x</id><entry><title type="html">${esc(`<b>${PWNED}</b> atom`)}</title><id>urn:1</id><link href="http://a.example/2"/><summary>${PWNED} text</summary><author><name>${PWNED}</name></author></entry></feed>`;
    const json = JSON.stringify({
      version: 'https://jsonfeed.org/version/1.1',
      title: PWNED,
      items: [
        {
          id: `id-${PWNED}`,
          url: 'http://a.example/3',
          title: `${PWNED} json ${NASTY}`,
          summary: PWNED,
          content_text: `${PWNED}\nsecond`,
          tags: [PWNED],
          authors: [{ name: PWNED }],
        },
      ],
    });
    for (const [body, type] of [
      [rss, 'application/rss+xml'],
      [atom, 'application/atom+xml'],
      [json, 'application/feed+json'],
    ] as const) {
      const feed = parseFeed(enc(body), type);
      const texts = [
        feed.title ?? '',
        ...feed.items.flatMap((i) => [
          i.title,
          i.summary ?? '',
          i.content ?? '',
          i.guid ?? '',
          ...i.authors,
          ...i.categories,
        ]),
      ];
      for (const t of texts) assert.ok(!CONTROL.test(t), `${type}: ${JSON.stringify(t)}`);
      assert.match(feed.items[0]?.title ?? '', /PWNED/, 'the text itself stays');
    }
  });

  it('ingest cleans items handed to it by other code too', async () => {
    const t = await startTestNode();
    try {
      const ingest = new SignalIngest({
        store: t.node.ns.store,
        logger: silentLogger,
        emitMany: (inputs) => t.node.emitMany(inputs),
      });
      const source = {
        id: 's',
        kind: 'feed' as const,
        url: 'http://s.example/feed',
        label: 's',
        tags: [],
        origin: 'config',
      };
      const r = await ingest.admit(
        source,
        {
          format: 'json',
          items: [
            {
              title: `${PWNED} direct`,
              summary: `${NASTY} is what the direct item says today.`,
              url: 'http://s.example/1',
              authors: [],
              categories: [PWNED],
            },
          ],
        },
        Date.now(),
      );
      const e = r.events[0];
      assert.ok(e);
      for (const v of [
        e.description ?? '',
        String(e.payload.raw_title),
        String(e.payload.summary),
        ...(e.payload.tags as string[]),
      ])
        assert.ok(!CONTROL.test(v), JSON.stringify(v));
    } finally {
      await t.close();
    }
  });
});

describe('the CLI shows control characters instead of acting on them', () => {
  it('visibleControlChars and table cells', () => {
    assert.equal(visibleControlChars(`${PWNED}`), '␛[2J␛[31mPWNED␛]0;hacked␇');
    assert.equal(visibleControlChars('a\u009bb\u202ec\rd\ne\tf'), 'a<U+009B>b<U+202E>c␍d\ne\tf');
    assert.equal(visibleControlChars('a\nb', false), 'a␊b', 'a table cell is one line');
    const out = table([{ id: 1, description: PWNED }]);
    assert.ok(!CONTROL.test(out) && !out.includes(ESC), out);
    assert.match(out, /␛\[2J/);
  });

  const t = tempDir('weft-escapes-');
  let server: Server;
  let stop: () => Promise<void> = async () => undefined;
  let env: NodeJS.ProcessEnv = {};
  before(async () => {
    // Two feeds telling one story, each title carrying the escapes: a cluster and a synthesis.
    const story = [
      [
        'Kestrel 4.0 database ships a new query planner',
        'The Kestrel database released version 4.0 with a rewritten query planner and faster joins for analytics workloads.',
      ],
      [
        'Kestrel database 4.0 released with faster joins',
        'Version 4.0 of the Kestrel database is out: the new query planner makes analytics joins much faster.',
      ],
      [
        'New query planner lands in Kestrel 4.0 database',
        'Kestrel 4.0, the database release out today, brings a query planner rewrite and faster analytics joins.',
      ],
    ] as const;
    server = createServer((req, res) => {
      if (req.url === '/a.json') {
        res.setHeader('content-type', 'application/feed+json');
        res.end(
          JSON.stringify({
            version: 'https://jsonfeed.org/version/1.1',
            title: 'A',
            items: story.slice(0, 2).map(([title, body], i) => ({
              id: `http://a.example/${i}`,
              url: `http://a.example/${i}`,
              title: `${PWNED} ${title}`,
              content_text: `${PWNED} ${body}`,
            })),
          }),
        );
      } else if (req.url === '/b.xml') {
        res.setHeader('content-type', 'application/rss+xml');
        const [title, body] = story[2];
        res.end(
          `<?xml version="1.0"?><rss version="2.0"><channel><title>B</title><item><title>${PWNED} ${title}</title><link>http://b.example/1</link><description>${PWNED} ${body}</description></item></channel></rss>`,
        );
      } else {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const config = join(t.dir, 'config.toml');
    writeFileSync(
      config,
      `[signals]\ncluster_interval = 86400\n[[signals.sources]]\ntype = "json"\nurl = "${base}/a.json"\nlabel = "a"\n[[signals.sources]]\ntype = "rss"\nurl = "${base}/b.xml"\nlabel = "b"\n`,
    );
    env = {
      HOME: t.dir,
      WEFT_CONFIG: config,
      WEFT_DATA_DIR: join(t.dir, 'data'),
      WEFT_API_PORT: '0',
      WEFT_TOKEN: '',
      WEFT_URL: '',
    };
    const d = await startDaemonProcess(env);
    stop = async () => {
      d.proc.kill('SIGTERM');
      await d.exited;
    };
  });
  after(async () => {
    await stop();
    await new Promise((r) => server.close(r));
    t.cleanup();
  });

  it('a synthesis from feeds with escape codes lists without them; an event carrying them lists them visibly, --json exactly', async () => {
    const poll = await weftAsync(['signals', 'poll'], env);
    assert.equal(poll.code, 0, poll.stderr);
    const cluster = await weftAsync(['--json', 'signals', 'cluster'], env);
    assert.equal(cluster.code, 0, cluster.stderr);
    assert.equal((JSON.parse(cluster.stdout) as { synthesized: number }).synthesized, 1, cluster.stdout);
    const list = await weftAsync(['notifications', 'list', '--type', 'signal.synthesis.ready'], env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /PWNED/);
    assert.ok(
      !list.stdout.includes(ESC) && !list.stdout.includes('␛'),
      `feed text came in clean: ${list.stdout}`,
    );
    const json = await weftAsync(
      ['--json', 'notifications', 'list', '--type', 'signal.synthesis.ready'],
      env,
    );
    assert.ok(!CONTROL.test(json.stdout.replace(/\\u00/g, '')), 'nor in the payload');

    // Any producer may send them: shown, never acted on.
    const nasty = NASTY.replace('\u0000', ''); // an argument cannot carry NUL
    const emitted = await weftAsync(
      [
        'emit',
        'system.worker.crashed',
        '--description',
        `${PWNED} ${nasty}`,
        '--payload',
        JSON.stringify({ worker: `w${PWNED}`, error: 'e', restarts: 1 }),
      ],
      env,
    );
    assert.equal(emitted.code, 0, emitted.stderr);
    let shown = '';
    for (let i = 0; i < 100 && !shown.includes('PWNED'); i++) {
      shown = (await weftAsync(['notifications', 'list', '--type', 'system.worker.crashed'], env)).stdout;
      if (!shown.includes('PWNED')) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(!CONTROL.test(shown), JSON.stringify(shown));
    assert.match(shown, /␛\[2J␛\[31mPWNED␛\]0;hacked␇/);
    const one = await weftAsync(
      ['notifications', 'show', String(/^(\d+)\s/m.exec(shown.split('\n')[1] ?? '')?.[1])],
      env,
    );
    assert.equal(one.code, 0, one.stderr);
    assert.ok(!CONTROL.test(one.stdout), `notifications show: ${JSON.stringify(one.stdout)}`);
    assert.match(one.stdout, /<U\+202E>/, 'a bidi override is shown, not applied');
    const exact = await weftAsync(
      ['--json', 'notifications', 'list', '--type', 'system.worker.crashed'],
      env,
    );
    const items = (JSON.parse(exact.stdout) as { items: Array<{ description: string }> }).items;
    assert.equal(items[0]?.description, `${PWNED} ${nasty}`, '--json keeps the text exactly');
  });
});
