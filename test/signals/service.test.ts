import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { WeftNode } from '../../src/node/index.js';
import { createSignalService, type FeedItem, type SignalService, SignalIngest } from '../../src/signals/index.js';
import { ManualClock, silentLogger } from '../../src/util/index.js';
import { startTestNode } from '../helpers/node.js';

const KESTREL = [
  ['Kestrel 4.0 database ships a new query planner', 'The Kestrel database released version 4.0 with a rewritten query planner and faster joins for analytics workloads.'],
  ['Kestrel database 4.0 released with faster joins', 'Version 4.0 of the Kestrel database is out: the new query planner makes analytics joins much faster.'],
  ['New query planner lands in Kestrel 4.0 database', 'Kestrel 4.0, the database release out today, brings a query planner rewrite and faster analytics joins.'],
];

function rss(items: Array<{ title: string; body: string; link: string }>): string {
  return `<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Tech A</title><link>http://a.example/</link>${items
    .map((i) => `<item><title>${i.title}</title><link>${i.link}</link><guid>${i.link}</guid><description>${i.body}</description><pubDate>Fri, 04 Dec 2026 10:00:00 GMT</pubDate></item>`)
    .join('')}</channel></rss>`;
}

function atom(items: Array<{ title: string; body: string; link: string }>): string {
  return `<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Tech B</title><id>urn:b</id><updated>2026-12-04T10:00:00Z</updated>${items
    .map((i) => `<entry><title>${i.title}</title><link href="${i.link}"/><id>${i.link}</id><updated>2026-12-04T11:00:00Z</updated><summary>${i.body}</summary></entry>`)
    .join('')}</feed>`;
}

describe('the signal pipeline in a node: feeds → items → clusters → syntheses', () => {
  let server: Server;
  let base = '';
  let node: WeftNode;
  let dir = '';
  let close: () => Promise<void>;
  let service: SignalService;
  const hits = new Map<string, number>();
  const conditional: string[] = [];

  before(async () => {
    server = createServer((req, res) => {
      const path = req.url ?? '/';
      hits.set(path, (hits.get(path) ?? 0) + 1);
      if (path === '/a.xml') {
        if (req.headers['if-none-match'] === '"a-v1"') {
          conditional.push(path);
          res.statusCode = 304;
          res.end();
          return;
        }
        res.setHeader('etag', '"a-v1"');
        res.setHeader('content-type', 'application/rss+xml');
        res.end(
          rss([
            { title: KESTREL[0]?.[0] as string, body: KESTREL[0]?.[1] as string, link: 'http://news.example/kestrel-4' },
            { title: KESTREL[1]?.[0] as string, body: KESTREL[1]?.[1] as string, link: 'http://a.example/kestrel-faster-joins' },
            { title: 'Gardening tips for a rainy December', body: 'Cover your roses and move pots indoors before the frost settles in.', link: 'http://a.example/garden' },
          ]),
        );
      } else if (path === '/b.atom') {
        res.setHeader('content-type', 'application/atom+xml');
        res.end(
          atom([
            // The same article as in feed A (same link): one item, whichever feed brings it.
            { title: KESTREL[0]?.[0] as string, body: KESTREL[0]?.[1] as string, link: 'http://news.example/kestrel-4?utm_source=b' },
            { title: KESTREL[2]?.[0] as string, body: KESTREL[2]?.[1] as string, link: 'http://b.example/planner' },
          ]),
        );
      } else if (path === '/broken.xml') {
        res.setHeader('content-type', 'application/rss+xml');
        res.end('<rss><channel><item><title>never closed');
      } else {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const t = await startTestNode();
    node = t.node;
    dir = t.dir;
    close = t.close;
    writeFileSync(join(dir, 'feeds.csv'), `label,url,type\nbroken,${base}/broken.xml,rss\n`);
    service = createSignalService(
      {
        sources: [
          { type: 'rss', url: `${base}/a.xml`, label: 'tech-a', tags: ['tech'] },
          { type: 'atom', url: `${base}/b.atom`, label: 'tech-b' },
          { type: 'csv', path: 'feeds.csv' },
        ],
        baseDir: dir,
        fetcher: { maxParseErrors: 2, minIntervalMs: 60_000 },
        clusterIntervalMs: 3600_000,
      },
      { store: node.ns.store, clock: node.clock, logger: silentLogger, emitMany: (inputs) => node.emitMany(inputs) },
    );
    await service.start();
  });

  after(async () => {
    await service.stop();
    await close();
    await new Promise((r) => server.close(r));
  });

  const received = () => node.ns.log.list({ type: 'signal.ingest.received', limit: 100 }).map((e) => e.envelope);

  it('admits each item once across feeds, with a one-line summary, tags and the source', async () => {
    const polls = await service.pollNow();
    assert.deepEqual(polls.map((p) => p.source).sort(), ['broken', 'tech-a', 'tech-b']);
    await node.idle();
    const items = received();
    assert.equal(items.length, 4, 'three from A, two from B, one of them the same article: four');
    assert.equal(polls.find((p) => p.source === 'tech-b')?.duplicates, 1);
    const first = items.find((e) => e.payload.raw_title === KESTREL[0]?.[0]);
    assert.equal(first?.payload.source_id, 'tech-a');
    const tags = (first?.payload.tags ?? []) as string[];
    assert.ok(tags.includes('tech'), 'the source tag');
    assert.ok(tags.some((t) => t.includes('kestrel')), 'a keyword tag');
    assert.match(String(first?.payload.summary), /rewritten query planner/);
    assert.equal(first?.description, first?.payload.summary);
  });

  it('asks again conditionally and gives up on a feed that keeps failing to parse, with a notification', async () => {
    const again = await service.pollNow();
    await node.idle();
    assert.deepEqual(conditional, ['/a.xml'], 'the repeat poll carried the ETag');
    assert.equal(again.find((p) => p.source === 'tech-a')?.status, 'not_modified');
    assert.equal(received().length, 4, 'nothing new the second time');
    const disabled = node.ns.notifications.list({ eventType: 'signal.source.disabled' }).items;
    assert.equal(disabled.length, 1);
    assert.equal(disabled[0]?.payload.source_id, 'broken');
    const status = service.status().sources.find((s) => s.id === 'broken');
    assert.ok(status?.disabledReason);
    const before = hits.get('/broken.xml');
    await service.pollNow();
    assert.equal(hits.get('/broken.xml'), before, 'a source given up on is not polled');
  });

  it('clusters the related items of both feeds and writes one synthesis naming both sources', async () => {
    const r = await service.clusterNow();
    assert.equal(r.formed, 1, JSON.stringify(r));
    await node.idle();
    const formed = node.ns.log.list({ type: 'signal.cluster.formed' }).map((e) => e.envelope);
    assert.equal(formed.length, 1);
    assert.equal(formed[0]?.payload.item_count, 3, 'the three Kestrel items, not the garden');
    assert.deepEqual([...((formed[0]?.payload.source_ids ?? []) as string[])].sort(), ['tech-a', 'tech-b']);
    const ready = node.ns.notifications.list({ eventType: 'signal.synthesis.ready' }).items;
    assert.equal(ready.length, 1, 'a synthesis is a notification');
    const synthesis = ready[0]?.payload.synthesis as { summary: string; key_points: string[]; sources: Array<{ source_id: string }>; confidence: number };
    assert.match(synthesis.summary, /Kestrel/);
    assert.deepEqual([...new Set(synthesis.sources.map((s) => s.source_id))].sort(), ['tech-a', 'tech-b']);
    assert.ok(synthesis.confidence > 0 && synthesis.confidence <= 1);
    // A second pass finds nothing new to form or write.
    const again = await service.clusterNow();
    assert.equal(again.formed + again.synthesized, 0);
  });
});

describe('ingest: what a feed may hold', () => {
  it('admits every good item of a feed whatever one bad item holds, link-less items each once, and repeated titles under new ids', async () => {
    const t = await startTestNode();
    try {
      const ingest = new SignalIngest({ store: t.node.ns.store, logger: silentLogger, emitMany: (inputs) => t.node.emitMany(inputs) });
      const source = { id: 'status', kind: 'feed' as const, url: 'http://status.example/feed', label: 'status', tags: [], origin: 'config' };
      const item = (over: Partial<FeedItem>): FeedItem => ({ title: 'Scheduled maintenance', summary: 'The service is down for maintenance tonight.', authors: [], categories: [], ...over });
      const r = await ingest.admit(
        source,
        {
          format: 'rss',
          items: [
            item({ guid: 'm-1', url: 'http://status.example/m/1' }),
            item({ guid: 'm-2', url: 'http://status.example/m/2' }),
            item({ title: 'No link one', summary: 'First of the link-less notes, on its own.' }),
            item({ title: 'No link two', summary: 'Second of the link-less notes, on its own.' }),
            item({ title: 'Long link', url: `http://status.example/${'x'.repeat(2100)}`, summary: 'Its link is longer than an event may carry.' }),
          ],
        },
        Date.now(),
      );
      assert.equal(r.admitted, 5, 'two maintenance notices with their own ids, two link-less notes, the long link (clipped)');
      await t.node.idle();
      const passed = t.node.ns.store.reader.prepare("SELECT COUNT(*) FROM dedup_keys WHERE key LIKE 'signal.ingest.received:%'").pluck().get() as number;
      assert.equal(passed, 5, 'each has its own idempotency key: none is dropped as a repeat');
      const again = await ingest.admit(source, { format: 'rss', items: [item({ title: 'No link one', summary: 'First of the link-less notes, on its own.' })] }, Date.now());
      assert.equal(again.duplicates, 1, 'a link-less item is known by its content');
    } finally {
      await t.close();
    }
  });
});


describe('items that share one link', () => {
  it('should admit every update of an incident: each GUID is an item of its own, whatever link they share', async () => {
    const updates = (n: number) =>
      `<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Status</title><link>https://status.example.com/</link>${Array.from(
        { length: n },
        (_, i) => `<item><title>Incident update ${i}</title><link>https://status.example.com/</link><guid isPermaLink="false">incident-update-${i}</guid><description>Update number ${i} on the database incident: step ${i} of the recovery is done.</description></item>`,
      ).join('')}</channel></rss>`;
    let body = updates(5);
    const server = createServer((req, res) => {
      res.setHeader('content-type', 'application/rss+xml');
      res.end(req.url === '/status.xml' ? body : '');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/status.xml`;
    const t = await startTestNode();
    const service = createSignalService(
      { sources: [{ type: 'rss', url, label: 'status' }], baseDir: t.dir, fetcher: { minIntervalMs: 60_000 }, clusterIntervalMs: 3600_000 },
      { store: t.node.ns.store, clock: t.node.clock, logger: silentLogger, emitMany: (inputs) => t.node.emitMany(inputs) },
    );
    try {
      await service.start();
      const [first] = await service.pollNow();
      assert.equal(first?.admitted, 5);
      await t.node.idle();
      const titles = () =>
        t.node.ns.log
          .list({ type: 'signal.ingest.received', limit: 100 })
          .map((e) => String(e.envelope.payload.raw_title))
          .sort();
      assert.deepEqual(titles(), [0, 1, 2, 3, 4].map((i) => `Incident update ${i}`), 'five events: none dropped as a repeat of the link');
      assert.equal(t.node.ns.store.reader.prepare('SELECT COUNT(*) FROM signal_items').pluck().get(), 5, 'five items recorded');
      // The next poll brings a sixth update and the five again: one new, five known.
      body = updates(6);
      const [second] = await service.pollNow();
      assert.equal(second?.admitted, 1);
      assert.equal(second?.duplicates, 5);
      // An item without a GUID is still known by its link.
      const ingest = new SignalIngest({ store: t.node.ns.store, logger: silentLogger, emitMany: (inputs) => t.node.emitMany(inputs) });
      const other = { id: 'mirror', kind: 'feed' as const, url: 'http://mirror.example/feed', label: 'mirror', tags: [], origin: 'config' };
      const r = await ingest.admit(other, { format: 'rss', items: [{ title: 'Mirrored', url: 'https://status.example.com/', authors: [], categories: [] }] }, Date.now());
      assert.equal(r.duplicates, 1);
      await t.node.idle();
      assert.equal(titles().length, 6);
    } finally {
      await service.stop();
      await t.close();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('a source that brings far more new items than a feed does', () => {
  it('admits at most its budget per poll and per day, flags one whose every item is new poll after poll, backs off, and says so once per episode', async () => {
    // A feed that rotates every GUID and link: 50 items, all new, on every request; or, when
    // told, the first 50 it ever served (a feed behaving again).
    let counter = 0;
    let stable = false;
    const first: string[] = [];
    const server = createServer((_req, res) => {
      const links = stable ? first : Array.from({ length: 50 }, () => `http://rot.example/${++counter}`);
      if (first.length === 0) first.push(...links);
      res.setHeader('content-type', 'application/rss+xml');
      res.end(rss(links.map((link, i) => ({ title: `Rotating item ${link.slice(-6)} number ${i}`, body: `Body of ${link} with some words in it.`, link }))));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/feed.xml`;
    const t = await startTestNode();
    const clock = new ManualClock(Date.now());
    const service = createSignalService(
      { sources: [{ type: 'rss', url, label: 'rot' }], fetcher: { maxNewPerPoll: 20, maxNewPerDay: 70, floodPolls: 2, minIntervalMs: 600_000 }, clusterIntervalMs: 86_400_000 },
      { store: t.node.ns.store, clock, logger: silentLogger, emitMany: (inputs) => t.node.emitMany(inputs) },
    );
    try {
      await service.start();
      await new Promise((r) => setTimeout(r, 50)); // the start's own first poll is under way
      const poll = async () => {
        clock.advance(60_000);
        const [r] = await service.pollNow('rot');
        await t.node.idle();
        return r;
      };
      const flooding = () => t.node.ns.notifications.list({ eventType: 'signal.source.flooding' }).items;
      const status = () => service.status().sources[0];
      const ingested = () => t.node.ns.log.list({ type: 'signal.ingest.received', limit: 1000 }).length;

      await service.pollNow(); // waits for the start's poll, then the second
      await t.node.idle();
      assert.equal(ingested(), 40, 'two polls of 50 new items: 20 admitted each');
      assert.equal(flooding().length, 0, 'the first poll is all new for every feed; one more all-new poll is not yet a pattern');
      const third = await poll();
      assert.deepEqual({ admitted: third?.admitted, skipped: third?.skipped }, { admitted: 20, skipped: 30 });
      assert.deepEqual(flooding().map((n) => n.payload.reason), ['all_new'], 'flagged on the second all-new poll after the first');
      const flagged = status();
      assert.ok(flagged?.floodingSince);
      assert.ok(Date.parse(flagged?.nextPollAt ?? '') - clock.now() >= 2 * 600_000, `backed off: ${flagged?.nextPollAt}`);

      const fourth = await poll();
      assert.deepEqual({ admitted: fourth?.admitted, skipped: fourth?.skipped }, { admitted: 10, skipped: 40 }, "what is left of the day's 70");
      assert.deepEqual(flooding().map((n) => n.payload.reason).sort(), ['all_new', 'daily_budget']);
      const spent = status();
      assert.equal(spent?.newToday, 70);
      assert.ok(spent?.budgetSpentUntil);
      assert.ok(Date.parse(spent?.nextPollAt ?? '') >= Date.parse(spent?.budgetSpentUntil ?? ''), 'next poll when the day is over');
      const fifth = await poll();
      assert.deepEqual({ admitted: fifth?.admitted, skipped: fifth?.skipped }, { admitted: 0, skipped: 50 });
      assert.equal(flooding().length, 2, 'the same episodes: no new notification');
      assert.equal(ingested(), 70, 'never more than the day allows');

      // A day later the feed behaves: known items again clear the flag.
      clock.advance(86_400_000);
      stable = true;
      const calm = await poll();
      assert.ok((calm?.duplicates ?? 0) > 0 && calm?.admitted === 20, JSON.stringify(calm));
      assert.equal(status()?.floodingSince, null, 'a poll listing known items ends the flag');
      assert.equal(status()?.budgetSpentUntil, null, 'a new day, a new budget');
      // ... and when it rotates again, that is a new episode and a new notification.
      stable = false;
      await poll();
      await poll();
      const episodes = flooding().filter((n) => n.payload.reason === 'all_new');
      assert.equal(episodes.length, 2, 'a second flagging is a second notification');
      assert.notEqual(episodes[0]?.payload.since, episodes[1]?.payload.since);
    } finally {
      await service.stop();
      await t.close();
      await new Promise((r) => server.close(r));
    }
  });

  it('a busy feed that keeps its older items is never flagged', async () => {
    let next = 0;
    const server = createServer((_req, res) => {
      next += 12; // twelve new posts per poll, forty listed
      const links = Array.from({ length: 40 }, (_, i) => `http://busy.example/${next - i}`);
      res.setHeader('content-type', 'application/rss+xml');
      res.end(rss(links.map((link) => ({ title: `Busy post ${link.slice(-4)}`, body: `Text of ${link}.`, link }))));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/feed.xml`;
    const t = await startTestNode();
    const clock = new ManualClock(Date.now());
    const service = createSignalService(
      { sources: [{ type: 'rss', url, label: 'busy' }], fetcher: { floodPolls: 2 }, clusterIntervalMs: 86_400_000 },
      { store: t.node.ns.store, clock, logger: silentLogger, emitMany: (inputs) => t.node.emitMany(inputs) },
    );
    try {
      await service.start();
      await new Promise((r) => setTimeout(r, 50));
      for (let i = 0; i < 6; i++) {
        clock.advance(60_000);
        await service.pollNow();
      }
      await t.node.idle();
      assert.equal(t.node.ns.notifications.list({ eventType: 'signal.source.flooding' }).items.length, 0);
      assert.equal(service.status().sources[0]?.floodingSince, null);
    } finally {
      await service.stop();
      await t.close();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('a source given up on, enabled, and given up on again', () => {
  it('raises a notification each time; the same one delivered twice stays one', async () => {
    const server = createServer((_req, res) => {
      res.setHeader('content-type', 'application/rss+xml');
      res.end('<rss><channel><item><title>never closed');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/broken.xml`;
    const t = await startTestNode();
    const clock = new ManualClock(Date.now());
    const service = createSignalService(
      { sources: [{ type: 'rss', url, label: 'broken' }], fetcher: { maxParseErrors: 2 }, clusterIntervalMs: 86_400_000 },
      { store: t.node.ns.store, clock, logger: silentLogger, emitMany: (inputs) => t.node.emitMany(inputs) },
    );
    const disabled = () => t.node.ns.notifications.list({ eventType: 'signal.source.disabled' }).items;
    try {
      await service.start();
      await new Promise((r) => setTimeout(r, 50));
      const failUntilDisabled = async () => {
        for (let i = 0; i < 3 && !service.status().sources[0]?.disabledReason; i++) {
          clock.advance(60_000);
          await service.pollNow('broken');
        }
        await t.node.idle();
      };
      await failUntilDisabled();
      assert.equal(disabled().length, 1);
      await service.enable('broken');
      await failUntilDisabled();
      assert.equal(disabled().length, 2, 'given up on again: a new notification (it was dropped as a repeat)');
      await t.node.emitMany([{ event: 'signal.source.disabled', source: 'signal-ingest', payload: disabled()[0]?.payload ?? {} }]);
      await t.node.idle();
      assert.equal(disabled().length, 2, 'a repeat of one giving-up is not');
    } finally {
      await service.stop();
      await t.close();
      await new Promise((r) => server.close(r));
    }
  });
});
