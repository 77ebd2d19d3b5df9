import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { assembleNode } from '../../src/daemon/assemble.js';
import { generateIdentity } from '../../src/identity/index.js';
import { parseAddress, type PeerInfo, RedisPeerRegistry, validateStaticPeers } from '../../src/mesh/index.js';
import { systemClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { MemoryNetwork, memoryProvider } from '../../src/transport/index.js';
import { TestRedis } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

let redis: TestRedis;
before(async () => {
  redis = await TestRedis.start();
});
after(async () => {
  await redis.stop();
});

const deps = { logger: silentLogger, clock: systemClock };

function info(computer: string, cluster?: string): PeerInfo {
  return {
    computer,
    cluster,
    nodeId: generateIdentity().nodeId,
    addresses: ['127.0.0.1:7401'],
    caps: ['crc32c'],
  };
}

test('each node discovers the others, never itself', async () => {
  const prefix = `t-${randomUUID()}:`;
  const regs = ['mars', 'venus', 'saturn'].map(
    (c) => new RedisPeerRegistry({ url: redis.url, self: info(c, 'home'), prefix }, deps),
  );
  await Promise.all(regs.map((r) => r.start()));
  try {
    const seenByMars = await regs[0]!.discoverPeers();
    assert.deepEqual(
      seenByMars.map((p) => p.computer),
      ['saturn', 'venus'],
    );
    assert.equal(seenByMars[0]!.cluster, 'home');
    assert.equal(typeof seenByMars[0]!.lastSeen, 'number');
  } finally {
    await Promise.all(regs.map((r) => r.stop()));
  }
});

test('a node that stops heartbeating disappears when its entry expires; a stopped node leaves at once', async () => {
  const prefix = `t-${randomUUID()}:`;
  const me = new RedisPeerRegistry({ url: redis.url, self: info('mars'), prefix }, deps);
  const leaver = new RedisPeerRegistry({ url: redis.url, self: info('venus'), prefix }, deps);
  await me.start();
  await leaver.start();
  const c = new Redis(redis.url);
  try {
    // A crashed node: its entry was written once with a short expiry and never refreshed.
    // (An expiry long enough that a busy CI core cannot let it pass before the first look.)
    await c.set(`${prefix}ghost`, JSON.stringify({ ...info('ghost'), lastSeen: 1 }), 'PX', 3000);
    assert.deepEqual(
      (await me.discoverPeers()).map((p) => p.computer),
      ['ghost', 'venus'],
    );
    await leaver.stop();
    assert.deepEqual(
      (await me.discoverPeers()).map((p) => p.computer),
      ['ghost'],
      'a stopped node leaves at once; the silent one stays until its entry expires',
    );
    const deadline = Date.now() + 10_000;
    while ((await me.discoverPeers()).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await me.discoverPeers(), []);
    // Garbage under the prefix is ignored, not fatal.
    await c.set(`${prefix}junk`, 'not json');
    await c.set(`${prefix}bad`, JSON.stringify({ computer: 'x', nodeId: 'nope' }));
    assert.deepEqual(await me.discoverPeers(), []);
  } finally {
    c.disconnect();
    await me.stop();
  }
});

test('static peers are checked: node ids, addresses, duplicates', () => {
  const id = generateIdentity().nodeId;
  assert.deepEqual(validateStaticPeers([{ computer: 'a', nodeId: id, address: '10.0.0.2:7401' }]), []);
  const problems = validateStaticPeers([
    { computer: 'a', nodeId: 'nope' },
    { computer: 'b', nodeId: id, address: 'host' },
    { computer: 'b', nodeId: id },
  ]);
  assert.equal(problems.length, 3);
  assert.deepEqual(parseAddress('[::1]:7401'), { host: '::1', port: 7401 });
  assert.deepEqual(parseAddress('mars.local:1'), { host: 'mars.local', port: 1 });
  assert.equal(parseAddress('mars:0'), undefined);
});

test('a registry that never answers costs a discovery round 5 s at most: the node starts, and rounds share the one in progress instead of piling up', { timeout: 60_000 }, async () => {
  const t = tempDir('weft-stalled-registry-');
  mkdirSync(join(t.dir, 'one'), { recursive: true });
  // A registry (Redis away, its reply waiting for a reconnect) whose discovery does not answer until told to.
  let calls = 0;
  let answer: (() => void) | undefined;
  const stalled = {
    start: async () => undefined,
    stop: async () => undefined,
    discoverPeers: () => {
      calls++;
      return new Promise<never[]>((resolve) => {
        answer = () => resolve([]);
      });
    },
  };
  const one = await assembleNode(
    {
      dataDir: join(t.dir, 'one'),
      computer: 'one',
      cluster: 'pair',
      mesh: { provider: memoryProvider({ network: new MemoryNetwork(), computer: 'one' }), discovery: () => stalled, options: { discoverEveryMs: 200 } },
    },
    { logger: silentLogger },
  );
  try {
    const t0 = Date.now();
    await one.start();
    const took = Date.now() - t0;
    assert.ok(took >= 4500 && took < 15_000, `start waited for the first round's limit only (${took} ms)`);
    // Rounds every 200 ms, each waiting up to 5 s: they share the one in progress instead of piling up.
    const before = calls;
    await new Promise((r) => setTimeout(r, 2000));
    assert.ok(calls - before <= 1, `${calls - before} new rounds in 2 s while one was waiting`);
    answer?.();
  } finally {
    await one.stop();
    t.cleanup();
  }
});

test('a node whose heartbeats the registry refuses (Redis out of memory) says so in its problems until one is taken', async () => {
  const prefix = `t-${randomUUID()}:`;
  const reg = new RedisPeerRegistry({ url: redis.url, self: info('mars'), prefix, ttlMs: 3000, heartbeatMs: 100 }, deps);
  const admin = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: null });
  await admin.connect();
  await reg.start();
  try {
    assert.deepEqual(reg.problems(), [], 'nothing wrong while heartbeats are taken');
    // Writes refused (maxmemory with noeviction), reads still answered: discovery works, the
    // node's own entry lapses, and nothing else told the node's user.
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    await admin.config('SET', 'maxmemory', '1');
    let line = '';
    for (let i = 0; i < 400 && !line; i++) {
      line = reg.problems().find((p) => Number(/(\d+) tries/.exec(p)?.[1] ?? 0) >= 2) ?? '';
      if (!line) await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(line, /^mesh: the peer registry has not taken this node's heartbeat for \d+ s \(\d+ tries: OOM .*nodes that start meanwhile do not find this one$/);
    await admin.config('SET', 'maxmemory', '0');
    for (let i = 0; i < 400 && reg.problems().length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(reg.problems(), [], 'gone once a heartbeat is taken again');
  } finally {
    await admin.config('SET', 'maxmemory', '0').catch(() => undefined);
    admin.disconnect();
    await reg.stop();
  }
});
