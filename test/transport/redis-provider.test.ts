import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { generateIdentity } from '../../src/identity/index.js';
import { inboxStream, type Provider, type ProviderEvent, redisProvider } from '../../src/transport/index.js';
import { systemClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { TestRedis } from '../helpers/redis.js';
import { decodeFrame } from '../../src/transport/index.js';
import { eventsFrame, providerCompliance, take } from './provider-compliance.js';

function labelOfFrame(bytes: Uint8Array, id: ReturnType<typeof generateIdentity>): string {
  const r = decodeFrame(bytes, { lookupKey: () => id.publicKey });
  return r.ok && r.frame.type === 'events' ? String(r.frame.body.envelopes[0]?.id) : '?';
}

let redis: TestRedis;
before(async () => {
  redis = await TestRedis.start();
});
after(async () => {
  await redis.stop();
});

const deps = { logger: silentLogger, clock: systemClock };
const fast = { blockMs: 200, backoff: { minMs: 20, maxMs: 200 }, trimEveryMs: 0 };

function provider(computer: string, extra: Record<string, unknown> = {}): Provider {
  return redisProvider({ url: redis.url, computer, ...fast, ...extra })(deps);
}

providerCompliance('redis', async () => {
  const run = randomUUID().slice(0, 8);
  const a = provider(`a-${run}`);
  let b = provider(`b-${run}`);
  await a.start();
  await b.start();
  return {
    a,
    get b() {
      return b;
    },
    aToB: `b-${run}`,
    bToA: `a-${run}`,
    idA: generateIdentity(),
    idB: generateIdentity(),
    restartB: async () => {
      b = provider(`b-${run}`);
      await b.start();
      return b;
    },
    cleanup: async () => {
      await a.stop();
      await b.stop();
    },
  };
});

async function admin(): Promise<Redis> {
  const c = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: null });
  await c.connect();
  return c;
}

test('redis: entries use the weft:messages:{computer} format (mark, type=mesh_event, from, payload) and are XACKed only on ack()', async () => {
  const run = randomUUID().slice(0, 8);
  const a = provider(`a-${run}`);
  const b = provider(`b-${run}`);
  await a.start();
  await b.start();
  const r = await admin();
  try {
    const id = generateIdentity();
    const bytes = eventsFrame(id, 'x');
    await a.send(`b-${run}`, bytes);
    const entries = (await r.xrangeBuffer(inboxStream(`b-${run}`), '-', '+')) as [Buffer, Buffer[]][];
    assert.equal(entries.length, 1);
    const fields = entries[0]![1];
    const m = new Map<string, Buffer>();
    for (let i = 0; i < fields.length; i += 2) m.set(fields[i]!.toString(), fields[i + 1]!);
    assert.equal(inboxStream(`b-${run}`), `weft:messages:b-${run}`, 'the inbox is under the Weft prefix');
    assert.equal(m.get('weft')?.toString(), '1', 'the mark that says Weft wrote it');
    assert.equal(m.get('type')?.toString(), 'mesh_event');
    assert.equal(m.get('from')?.toString(), `a-${run}`);
    assert.deepEqual(m.get('payload'), Buffer.from(bytes));

    const [f] = await take(b, 1, { ack: false });
    const pendingBefore = (await r.xpending(inboxStream(`b-${run}`), 'weft:mesh')) as [number, ...unknown[]];
    assert.equal(pendingBefore[0], 1, 'read but not acked: still pending');
    await f!.ack();
    const pendingAfter = (await r.xpending(inboxStream(`b-${run}`), 'weft:mesh')) as [number, ...unknown[]];
    assert.equal(pendingAfter[0], 0);
  } finally {
    r.disconnect();
    await a.stop();
    await b.stop();
  }
});

test('redis: entries left pending by a crashed reader are reclaimed by another consumer', async () => {
  const run = randomUUID().slice(0, 8);
  const inbox = `b-${run}`;
  const a = provider(`a-${run}`);
  const crashed = provider(inbox, { consumer: 'b-old' });
  await a.start();
  await crashed.start();
  const id = generateIdentity();
  await a.send(inbox, eventsFrame(id, 'stuck'));
  await take(crashed, 1, { ack: false });
  await crashed.stop(); // never acked: the entry stays pending under b-old
  const rescuer = provider(inbox, { consumer: 'b-new', claimIdleMs: 50 });
  await new Promise((r) => setTimeout(r, 100));
  await rescuer.start();
  try {
    const [f] = await take(rescuer, 1);
    assert.ok(f);
    assert.equal(f.deliveryCount, 2);
    const r = await admin();
    const pending = (await r.xpending(inboxStream(inbox), 'weft:mesh')) as [number, ...unknown[]];
    assert.equal(pending[0], 0);
    r.disconnect();
  } finally {
    await a.stop();
    await rescuer.stop();
  }
});

test('redis: trim deletes only acknowledged Weft entries, never unacknowledged ones', async () => {
  const run = randomUUID().slice(0, 8);
  const inbox = `b-${run}`;
  const a = provider(`a-${run}`);
  const b = redisProvider({ url: redis.url, computer: inbox, ...fast })(deps) as Provider & {
    trim(): Promise<number>;
  };
  await a.start();
  await b.start();
  const r = await admin();
  try {
    const id = generateIdentity();
    for (let i = 0; i < 10; i++) await a.send(inbox, eventsFrame(id, `f${i}`));
    const got = await take(b, 10, { ack: false });
    for (const f of got.slice(0, 4)) await f.ack();
    await got[6]!.ack(); // acked, behind the unacked entries 4 and 5
    assert.equal(await b.trim(), 5);
    const left = (await r.xrange(inboxStream(inbox), '-', '+')).map(([id]) => id);
    assert.deepEqual(left, [4, 5, 7, 8, 9].map((i) => got[i]!.deliveryId), 'every unacknowledged entry is kept');
    for (const f of got.slice(4)) await f.ack();
    await b.trim(); // the scan continues where it stopped, then starts over
    await b.trim();
    assert.equal((await r.xlen(inboxStream(inbox))), 0, 'everything goes once acknowledged');
  } finally {
    r.disconnect();
    await a.stop();
    await b.stop();
  }
});

test('redis: entries another program wrote to the inbox are never delivered, acknowledged or deleted', async () => {
  const run = randomUUID().slice(0, 8);
  const inbox = `b-${run}`;
  const a = provider(`a-${run}`);
  const b = redisProvider({ url: redis.url, computer: inbox, ...fast, claimIdleMs: 50 })(deps) as Provider & { trim(): Promise<number> };
  await a.start();
  await b.start();
  const r = await admin();
  try {
    // TeleClaude's send_system_command and send_request shapes, and a frame-like entry without the mark.
    const foreign = [
      await r.xadd(inboxStream(inbox), '*', 'type', 'system', 'command', 'health_check', 'timestamp', '1736944200.1', 'from_computer', 'mozart', 'origin', 'redis'),
      await r.xadd(inboxStream(inbox), '*', 'command', 'list_sessions', 'timestamp', '1736944200.2', 'initiator', 'mozart', 'origin', 'redis'),
      await r.xadd(inboxStream(inbox), '*', 'type', 'mesh_event', 'from', 'mozart', 'payload', '{"event":"x"}'),
    ];
    const id = generateIdentity();
    await a.send(inbox, eventsFrame(id, 'ours'));
    const [f] = await take(b, 1, { what: 'the one Weft frame' });
    assert.equal(labelOfFrame(f!.bytes, id), 'ours');
    await new Promise((res) => setTimeout(res, 300)); // claims run: foreign entries are not re-delivered
    assert.equal(await b.trim(), 1, 'only our acknowledged frame is deleted');
    assert.equal(await b.trim(), 0);
    const left = (await r.xrange(inboxStream(inbox), '-', '+')).map(([i]) => i);
    assert.deepEqual(left, foreign, 'the foreign entries are all still there');
    const pending = (await r.xpending(inboxStream(inbox), 'weft:mesh')) as [number, ...unknown[]];
    assert.equal(pending[0], 3, 'and none was acknowledged');
    assert.equal(b.foreignEntries, 3);
  } finally {
    r.disconnect();
    await a.stop();
    await b.stop();
  }
});

test('redis: after Redis restarts empty, the inbox and group come back once and frames flow again', async () => {
  const run = randomUUID().slice(0, 8);
  const a = provider(`a-${run}`);
  const b = provider(`b-${run}`);
  const events: ProviderEvent[] = [];
  b.on((e) => events.push(e));
  await a.start();
  await b.start();
  try {
    const id = generateIdentity();
    await a.send(`b-${run}`, eventsFrame(id, 'before'));
    await take(b, 1, { what: 'the frame sent before the restart' });
    await redis.restart();
    // The sender re-sends from its outbox until the new inbox takes it.
    for (let i = 0; ; i++) {
      try {
        await a.send(`b-${run}`, eventsFrame(id, 'after'));
        break;
      } catch (err) {
        if (i > 400) throw err; // up to ~20 s: a loaded machine restarts Redis slowly
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const [f] = await take(b, 1, { what: 'the frame sent after Redis restarted empty' });
    assert.ok(f);
    // Wait for the reader to have noticed (it may have read 'after' before or after recreating).
    for (let i = 0; i < 100 && !events.some((e) => e.type === 'inbox.recreated'); i++)
      await new Promise((r) => setTimeout(r, 50));
    const recreated = events.filter((e) => e.type === 'inbox.recreated').length;
    assert.ok(recreated >= 1 && recreated <= 2, `recreated ${recreated} times (no error loop)`);
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('redis: a node that cannot read its inbox says so in its problems, warns once, and reads again once the key is fixed', async () => {
  const run = randomUUID().slice(0, 8);
  const warnings: string[] = [];
  const logger = {
    ...silentLogger,
    warn: (a: unknown, b?: string) => void warnings.push(typeof a === 'string' ? a : (b ?? '')),
    child: () => logger,
  };
  const a = provider(`a-${run}`);
  const b = redisProvider({ url: redis.url, computer: `b-${run}`, ...fast })({ logger, clock: systemClock });
  await a.start();
  await b.start();
  const r = await admin();
  try {
    assert.deepEqual(b.problems?.() ?? [], [], 'nothing wrong at the start');
    // Another program puts a string where the inbox was: every read is refused (WRONGTYPE).
    await r.del(inboxStream(`b-${run}`));
    await r.set(inboxStream(`b-${run}`), 'not a stream');
    let line = '';
    for (let i = 0; i < 600 && !line; i++) {
      // Five failed reads at least, so a warning per failure would show.
      line = (b.problems?.() ?? []).find((p) => Number(/(\d+) tries/.exec(p)?.[1] ?? 0) >= 5) ?? '';
      if (!line) await new Promise((res) => setTimeout(res, 50));
    }
    assert.match(line, new RegExp(`cannot read its inbox weft:messages:b-${run} on Redis .*WRONGTYPE.*remove or rename that key`));
    assert.match(line, /nothing from peers arrives meanwhile/);
    assert.equal(warnings.filter((w) => /inbox/.test(w)).length, 1, `one warning while reads keep failing: ${warnings.join(' | ')}`);
    // The key is removed: the inbox and its group come back, the problem goes, frames flow.
    await r.del(inboxStream(`b-${run}`));
    const id = generateIdentity();
    for (let i = 0; ; i++) {
      try {
        await a.send(`b-${run}`, eventsFrame(id, 'after'));
        break;
      } catch (err) {
        if (i > 400) throw err;
        await new Promise((res) => setTimeout(res, 50));
      }
    }
    const [f] = await take(b, 1, { what: 'the frame sent once the inbox was back' });
    assert.equal(labelOfFrame(f!.bytes, id), 'after');
    assert.deepEqual(b.problems?.() ?? [], [], 'the problem is gone once a read works');
  } finally {
    r.disconnect();
    await a.stop();
    await b.stop();
  }
});
