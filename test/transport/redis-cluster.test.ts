/**
 * The Redis provider, the Redis bus, the peer registry and the name claims on a real Redis
 * Cluster (3 masters, 3 replicas on loopback), and two daemons that lose the master holding
 * one's inbox in the middle of a run: nothing lost, duplicated or leaked.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { RedisBus } from '../../src/bus/index.js';
import { loadConfig, redisKeys } from '../../src/config/index.js';
import { meshFromConfig, redisFromConfig } from '../../src/daemon/index.js';
import { generateIdentity } from '../../src/identity/index.js';
import { type PeerInfo, RedisPeerRegistry } from '../../src/mesh/index.js';
import { createRedisClient, parseRedisSeeds, type RedisClient, RedisClaims } from '../../src/redis/index.js';
import { inboxStream, type Provider, redisProvider } from '../../src/transport/index.js';
import { systemClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { busCompliance } from '../bus/bus-compliance.js';
import {
  type Applied,
  check,
  converged,
  type EmittedEvent,
  type NodeView,
  readApplied,
  table,
  type Visibility,
} from '../chaos/checker.js';
import { weft } from '../helpers/cli.js';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';
import { TestRedis } from '../helpers/redis.js';
import { clusterSkipReason, TestRedisCluster } from '../helpers/redis-cluster.js';
import { tempDir } from '../helpers/tmp.js';
import { eventsFrame, providerCompliance, take } from './provider-compliance.js';

const skip = clusterSkipReason();
const deps = { logger: silentLogger, clock: systemClock };
const fast = { blockMs: 200, backoff: { minMs: 20, maxMs: 200 }, trimEveryMs: 0 };

let cluster: TestRedisCluster;
before(async () => {
  if (!skip) cluster = await TestRedisCluster.start();
});
after(async () => {
  await cluster?.stop();
});

async function admin(): Promise<RedisClient> {
  const c = await createRedisClient(cluster.url, {
    cluster: true,
    lazyConnect: true,
    maxRetriesPerRequest: null,
  });
  await c.connect();
  return c;
}

function provider(computer: string, extra: Record<string, unknown> = {}): Provider {
  return redisProvider({ url: cluster.url, cluster: true, computer, ...fast, ...extra })(deps);
}

test('key names: the single-server names are the ones Weft always used; a cluster tags each computer', () => {
  const single = redisKeys('weft:', 'laptop');
  assert.equal(single.busStream, 'weft:events:laptop');
  assert.equal(single.inbox('desktop'), 'weft:messages:desktop');
  assert.equal(single.claimComputer('laptop'), 'weft:claim:computer:laptop');
  assert.equal(single.peersPrefix, 'weft:peers:');
  assert.equal(inboxStream('desktop'), 'weft:messages:desktop');
  const tagged = redisKeys('weft:', 'laptop', { cluster: true });
  assert.equal(tagged.busStream, 'weft:{laptop}:events');
  assert.equal(tagged.inbox('desktop'), 'weft:{desktop}:messages');
  assert.equal(tagged.claimComputer('laptop'), 'weft:{laptop}:claim');
  assert.equal(tagged.claimStream(tagged.busStream), 'weft:claim:stream:weft:{laptop}:events');
  assert.deepEqual(tagged.peersTable, {
    entries: 'weft:{registry}:peers',
    expiries: 'weft:{registry}:peers:expiry',
  });
  assert.equal(inboxStream('desktop', 'weft:', true), 'weft:{desktop}:messages');
  // Group names are not keys: the same in both layouts.
  assert.equal(tagged.inboxGroup, single.inboxGroup);
  assert.equal(tagged.busGroup, single.busGroup);
});

test('a seed list is parsed with its credentials; a malformed one is refused with the seed named', () => {
  assert.deepEqual(parseRedisSeeds('redis://:s3cret@10.0.0.1:7000, 10.0.0.2:7001,redis://[::1]:7002'), {
    nodes: [
      { host: '10.0.0.1', port: 7000 },
      { host: '10.0.0.2', port: 7001 },
      { host: '::1', port: 7002 },
    ],
    password: 's3cret',
    tls: false,
  });
  assert.equal(parseRedisSeeds('rediss://a:7000').tls, true);
  assert.throws(() => parseRedisSeeds('a:7000'), /seed "a:7000" is not redis:\/\/host:port/);
  assert.throws(() => parseRedisSeeds('redis://a:7000/3'), /database 3; a Redis Cluster has only database 0/);
  assert.throws(() => parseRedisSeeds('redis://a:7000,rediss://b:7001'), /mix redis:\/\/ and rediss:\/\//);
  assert.throws(
    () => parseRedisSeeds('redis://:pw@a:7000,nonsense/x'),
    (err: Error) => !err.message.includes('pw') && /nonsense/.test(err.message),
  );
});

describe('cluster settings are checked before anything connects', () => {
  const cfg = (env: Record<string, string>) =>
    loadConfig({ env: { HOME: '/nonexistent', WEFT_COMPUTER_NAME: 'laptop', ...env } });
  test('a seed list without redis.cluster, a cluster without redis.url, braces in the prefix and TeleClaude peers are refused', () => {
    assert.throws(
      () => redisFromConfig(cfg({ WEFT_REDIS_URL: 'redis://a:7000,redis://b:7001' })),
      /set redis\.cluster = true/,
    );
    assert.throws(
      () => redisFromConfig(cfg({ WEFT_REDIS_CLUSTER: 'true' })),
      /redis\.cluster: needs redis\.url/,
    );
    assert.throws(
      () =>
        redisFromConfig(
          cfg({ WEFT_REDIS_CLUSTER: 'true', WEFT_REDIS_URL: 'redis://a:7000', WEFT_REDIS_PREFIX: 'w{x}:' }),
        ),
      /redis\.prefix: .*one cluster slot/,
    );
    assert.throws(
      () =>
        meshFromConfig(
          cfg({
            WEFT_REDIS_CLUSTER: 'true',
            WEFT_REDIS_URL: 'redis://a:7000',
            WEFT_MESH_PROVIDER: 'redis',
            WEFT_MESH_TELECLAUDE_PEERS: 'old-box',
          }),
        ),
      /TeleClaude peers cannot be reached over a Redis Cluster/,
    );
  });
  test('on a cluster the default bus stream is the hash-tagged one; an explicit stream is kept', () => {
    const tagged = redisFromConfig(
      cfg({ WEFT_REDIS_CLUSTER: 'true', WEFT_REDIS_URL: 'redis://a:7000,b:7001' }),
    );
    assert.equal(tagged.redis?.stream, 'weft:{laptop}:events');
    assert.equal(tagged.redis?.cluster, true);
    assert.equal(tagged.redisCluster, true);
    const own = redisFromConfig(
      cfg({ WEFT_REDIS_CLUSTER: 'true', WEFT_REDIS_URL: 'redis://a:7000', WEFT_REDIS_STREAM: 'mine' }),
    );
    assert.equal(own.redis?.stream, 'mine');
    const single = redisFromConfig(cfg({ WEFT_REDIS_URL: 'redis://a:7000' }));
    assert.equal(single.redis?.stream, 'weft:events:laptop');
    assert.equal(single.redisCluster, undefined);
    // A stream named explicitly is kept even when it is the single-server default's name.
    const kept = redisFromConfig(
      cfg({ WEFT_REDIS_CLUSTER: 'true', WEFT_REDIS_URL: 'redis://a:7000', WEFT_REDIS_STREAM: 'weft:events:laptop' }),
    );
    assert.equal(kept.redis?.stream, 'weft:events:laptop');
  });
  test('config show names the bus stream the daemon reads on a cluster, where a producer must XADD', () => {
    // It said weft:events:laptop while the daemon read weft:{laptop}:events: a producer
    // following it wrote to a stream no node ever read.
    const env = { HOME: '/nonexistent', WEFT_COMPUTER_NAME: 'laptop', WEFT_REDIS_CLUSTER: 'true', WEFT_REDIS_URL: 'redis://a:7000,b:7001' };
    const show = weft(['config', 'show'], env);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /^redis\.stream = "weft:\{laptop\}:events"$/m);
    assert.equal(redisFromConfig(cfg(env)).redis?.stream, 'weft:{laptop}:events');
    const json = JSON.parse(weft(['--json', 'config', 'show'], env).stdout) as Record<string, unknown>;
    assert.equal(json['redis.stream'], 'weft:{laptop}:events');
  });
});

if (skip) {
  test('redis cluster', { skip });
} else {
  providerCompliance('redis-cluster', async () => {
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

  busCompliance('redis-cluster', (ns, scope) => {
    const keys = redisKeys('weft:', `${scope}-${randomUUID().slice(0, 6)}`, { cluster: true });
    return new RedisBus(
      { url: cluster.url, cluster: true, stream: keys.busStream, group: keys.busGroup, consumer: scope },
      { store: ns.store, journal: ns.emitJournal, clock: systemClock, logger: silentLogger },
    );
  });

  test("redis-cluster: a computer's inbox, bus stream and claim share one slot; computers spread over every master", async () => {
    const computers = Array.from({ length: 30 }, (_, i) => `host-${i}`);
    const slots = new Set<number>();
    const masters = new Set<number>();
    for (const c of computers) {
      const k = redisKeys('weft:', c, { cluster: true });
      const slot = await cluster.keyslot(k.inbox(c));
      assert.equal(await cluster.keyslot(k.busStream), slot, `${c}: bus stream and inbox in one slot`);
      assert.equal(await cluster.keyslot(k.claimComputer(c)), slot, `${c}: its name claim too`);
      assert.equal(await cluster.keyslot(k.claimStream(k.busStream)), slot, `${c}: and its stream claim`);
      slots.add(slot);
      masters.add(await cluster.masterOf(k.inbox(c)));
    }
    assert.equal(slots.size, computers.length, 'different computers, different slots');
    assert.equal(masters.size, 3, 'every master holds some computers');
    const t = redisKeys('weft:', 'x', { cluster: true }).peersTable;
    assert.equal(
      await cluster.keyslot(t.entries),
      await cluster.keyslot(t.expiries),
      'the registry is one slot',
    );

    // A started provider's inbox and its consumer group are on the master of that slot.
    const run = randomUUID().slice(0, 8);
    const p = provider(`slot-${run}`);
    await p.start();
    try {
      const inbox = inboxStream(`slot-${run}`, 'weft:', true);
      const out = await cluster.cli(await cluster.masterOf(inbox), 'XINFO', 'GROUPS', inbox);
      assert.match(out, /weft:mesh/, 'the group lives with its stream');
    } finally {
      await p.stop();
    }
  });

  test('redis-cluster: a frame reaches a computer whose inbox is on another master, and is acked there', async () => {
    // Two computers on different masters: every send crosses slots.
    const run = randomUUID().slice(0, 8);
    const names: string[] = [];
    const seen = new Set<number>();
    for (let i = 0; names.length < 2; i++) {
      const n = `x${i}-${run}`;
      const m = await cluster.masterOf(inboxStream(n, 'weft:', true));
      if (!seen.has(m)) {
        seen.add(m);
        names.push(n);
      }
    }
    const [na, nb] = names as [string, string];
    const a = provider(na);
    const b = provider(nb);
    await a.start();
    await b.start();
    const r = await admin();
    try {
      const id = generateIdentity();
      await a.send(nb, eventsFrame(id, 'cross'));
      const [f] = await take(b, 1);
      assert.ok(f);
      assert.equal(f.from, na);
      const pending = (await r.xpending(inboxStream(nb, 'weft:', true), 'weft:mesh')) as [
        number,
        ...unknown[],
      ];
      assert.equal(pending[0], 0, "acked on the inbox's own master");
    } finally {
      r.disconnect();
      await a.stop();
      await b.stop();
    }
  });

  test('redis-cluster: nodes whose keys live on different masters discover each other; stop removes only its own entry', async () => {
    const run = randomUUID().slice(0, 8);
    const prefix = `reg-${run}:`;
    const table = redisKeys(prefix, 'x', { cluster: true }).peersTable;
    const info = (computer: string): PeerInfo => ({
      computer,
      nodeId: generateIdentity().nodeId,
      addresses: [],
      caps: ['reliable'],
    });
    const regs = ['north', 'south', 'east'].map(
      (c) =>
        new RedisPeerRegistry(
          { url: cluster.url, cluster: true, table, self: info(c), ttlMs: 1500, heartbeatMs: 300 },
          deps,
        ),
    );
    await Promise.all(regs.map((r) => r.start()));
    try {
      const seenBy = await Promise.all(
        regs.map(async (r) => (await r.discoverPeers()).map((p) => p.computer)),
      );
      assert.deepEqual(seenBy, [
        ['east', 'south'],
        ['east', 'north'],
        ['north', 'south'],
      ]);
      // Nothing under the single-server layout, and nothing but the two registry keys.
      const r = await admin();
      try {
        assert.equal(await r.exists(table.entries, table.expiries), 2);
      } finally {
        r.disconnect();
      }
      // A node that stops announcing is gone once its entry expires (server clock).
      await regs[2]?.stop();
      assert.deepEqual(
        (await regs[0]?.discoverPeers())?.map((p) => p.computer),
        ['south'],
      );
    } finally {
      await Promise.all(regs.map((r) => r.stop()));
    }
    const r = await admin();
    try {
      assert.equal(await r.exists(table.entries), 0, 'the last leave leaves nothing behind');
    } finally {
      r.disconnect();
    }
  });

  test("redis-cluster: an entry whose node died expires by the server clock; a stop never removes another node's entry", async () => {
    const run = randomUUID().slice(0, 8);
    const table = redisKeys(`exp-${run}:`, 'x', { cluster: true }).peersTable;
    const self = (computer: string): PeerInfo => ({
      computer,
      nodeId: generateIdentity().nodeId,
      addresses: [],
      caps: [],
    });
    const live = new RedisPeerRegistry(
      { url: cluster.url, cluster: true, table, self: self('live'), ttlMs: 60_000 },
      deps,
    );
    const dead = new RedisPeerRegistry(
      { url: cluster.url, cluster: true, table, self: self('dead'), ttlMs: 2000, heartbeatMs: 60_000 },
      deps,
    );
    await live.start();
    await dead.start();
    try {
      assert.deepEqual(
        (await live.discoverPeers()).map((p) => p.computer),
        ['dead'],
      );
      const deadline = Date.now() + 10_000;
      while ((await live.discoverPeers()).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(await live.discoverPeers(), [], 'expired without a heartbeat');
      // A stop removes the entry only while it is the stopping node's own.
      const impostor = new RedisPeerRegistry(
        { url: cluster.url, cluster: true, table, self: self('live'), ttlMs: 60_000 },
        deps,
      );
      await impostor.start();
      await live.heartbeat();
      await impostor.stop();
      const watcher = new RedisPeerRegistry(
        { url: cluster.url, cluster: true, table, self: self('watcher'), ttlMs: 60_000 },
        deps,
      );
      await watcher.start();
      assert.deepEqual(
        (await watcher.discoverPeers()).map((p) => p.computer),
        ['live'],
        "another node's stop left live's entry alone",
      );
      await watcher.stop();
    } finally {
      await dead.stop();
      await live.stop();
    }
  });

  test('redis-cluster: a computer name claimed by a live node is refused to a second one', async () => {
    const run = randomUUID().slice(0, 8);
    const k = redisKeys('weft:', `twin-${run}`, { cluster: true });
    const claims = [
      { key: k.claimComputer(`twin-${run}`), what: `computer name 'twin-${run}'`, hint: 'rename it' },
    ];
    const first = new RedisClaims(
      { url: cluster.url, cluster: true, nodeId: 'node-1', claims },
      silentLogger,
    );
    const second = new RedisClaims(
      { url: cluster.url, cluster: true, nodeId: 'node-2', claims },
      silentLogger,
    );
    await first.start();
    try {
      await assert.rejects(
        second.start(),
        /computer name 'twin-.*' is in use on this Redis by another live node \(node-1\)/,
      );
    } finally {
      await first.stop();
    }
    await second.start();
    await second.stop();
  });

  test('redis-cluster: a node starting while the master of its slot is out of memory is told which key and what to do', async () => {
    const name = `oom-${randomUUID().slice(0, 8)}`;
    const key = redisKeys('weft:', name, { cluster: true }).claimComputer(name);
    const master = await cluster.masterOf(key);
    const claims = new RedisClaims(
      { url: cluster.url, cluster: true, nodeId: 'node-1', claims: [{ key, what: `computer name '${name}'`, hint: 'rename it' }] },
      silentLogger,
    );
    await cluster.cli(master, 'CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    await cluster.cli(master, 'CONFIG', 'SET', 'maxmemory', '1');
    try {
      // It said only "OOM command not allowed when used memory > 'maxmemory'. script: …, on @user_script:13."
      await assert.rejects(claims.start(), (err: Error) => {
        assert.match(err.message, new RegExp(`claim on computer name '${name}' \\(weft:\\{${name}\\}:claim\\) on Redis failed: OOM `));
        assert.match(err.message, /at its maxmemory and refuses writes .*free memory there or raise its maxmemory/);
        return true;
      });
    } finally {
      await cluster.cli(master, 'CONFIG', 'SET', 'maxmemory', '0');
    }
    await claims.start();
    await claims.stop();
  });

  test('redis-cluster: a single-server client pointed at a cluster node gets a clear error', async () => {
    const run = randomUUID().slice(0, 8);
    // Find a computer whose inbox is not on the first seed, so the plain client gets MOVED.
    let name = '';
    for (let i = 0; ; i++) {
      name = `moved${i}-${run}`;
      if ((await cluster.masterOf(inboxStream(name))) !== cluster.ports[0]) break;
    }
    const p = redisProvider({ url: `redis://127.0.0.1:${cluster.ports[0]}`, computer: name, ...fast })(deps);
    await assert.rejects(p.start(), /set redis\.cluster = true/);
    await p.stop();
  });

  test('redis-cluster: a single-server client is refused even when every key it touches lives on the node given', async () => {
    const run = randomUUID().slice(0, 8);
    const seed = cluster.ports[0] as number;
    // A computer whose inbox and registry entry both hash to the seed's slots: no MOVED ever
    // came, so the node started, announced itself where cluster nodes never look and showed
    // no problem.
    let name = '';
    for (let i = 0; ; i++) {
      name = `here${i}-${run}`;
      const keys = redisKeys('weft:', name);
      if ((await cluster.masterOf(keys.inbox(name))) === seed && (await cluster.masterOf(`${keys.peersPrefix}${name}`)) === seed) break;
    }
    const url = `redis://127.0.0.1:${seed}`;
    const p = redisProvider({ url, computer: name, ...fast })(deps);
    await assert.rejects(p.start(), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'WEFT_CONFIG');
      assert.match(err.message, /is a node of a Redis Cluster.*set redis\.cluster = true/);
      return true;
    });
    await p.stop();
    const id = generateIdentity();
    const reg = new RedisPeerRegistry({ url, self: { computer: name, nodeId: id.nodeId, addresses: [], caps: [] } }, deps);
    await assert.rejects(reg.start(), /set redis\.cluster = true/);
    await reg.stop();
  });

  test('redis-cluster: cluster mode pointed at a single Redis server says to turn it off', async () => {
    const single = await TestRedis.start();
    try {
      const p = redisProvider({ url: single.url, cluster: true, computer: 'lonely', ...fast })(deps);
      await assert.rejects(p.start(), /set redis\.cluster = false/);
      await p.stop();
    } finally {
      await single.stop();
    }
  });

  describe('a Redis Cluster that asks for a password', () => {
    let secured: TestRedisCluster | undefined;
    before(async () => {
      secured = await TestRedisCluster.start({ replicas: 0, password: 'p4ss' });
    });
    after(async () => {
      await secured?.stop();
    });
    const seeds = (cred: string) => (secured as TestRedisCluster).ports.map((p, i) => `redis://${i === 0 ? cred : ''}127.0.0.1:${p}`).join(',');

    test('redis-cluster: a missing or wrong password is named as such, not as an unreachable cluster; the right one works', async () => {
      const startWith = (url: string) => redisProvider({ url, cluster: true, computer: `pw-${randomUUID().slice(0, 6)}`, ...fast })(deps);
      for (const [cred, said] of [
        ['', /Redis asks for a password and redis\.url gives none \(NOAUTH/],
        [':wrong@', /Redis refused the user or password \(WRONGPASS/],
      ] as const) {
        const p = startWith(seeds(cred));
        await assert.rejects(p.start(), (err: Error & { code?: string }) => {
          assert.equal(err.code, 'WEFT_CONFIG');
          assert.match(err.message, said);
          assert.doesNotMatch(err.message, /startup nodes|wrong/);
          return true;
        });
        await p.stop();
      }
      const ok = startWith(seeds(':p4ss@'));
      await ok.start();
      await ok.stop();
    });
  });

  describe('two daemons on the cluster lose the master of one inbox mid-run', () => {
    const t = tempDir('weft-rcluster-');
    let nodes: Record<string, ClusterNode>;
    let stopAll: (() => Promise<void>) | undefined;
    before(async () => {
      const c = await startCluster(
        t.dir,
        [
          { computer: 'a', cluster: 'home' },
          { computer: 'b', cluster: 'home' },
        ],
        {
          provider: 'redis',
          redisUrl: cluster.url,
          extraEnv: { WEFT_REDIS_CLUSTER: 'true' },
        },
      );
      nodes = c.nodes;
      stopAll = c.stopAll;
    });
    after(async () => {
      await stopAll?.();
      t.cleanup();
    });

    test('every acknowledged event arrives once, none twice, and no local event leaks', {
      timeout: 150_000,
    }, async () => {
      const a = nodes.a as ClusterNode;
      const b = nodes.b as ClusterNode;
      await eventually(
        async () => (await a.api.request<unknown[]>('GET', '/api/peers')).length === 1,
        20_000,
        'a discovers b',
      );
      await eventually(
        async () => (await b.api.request<unknown[]>('GET', '/api/peers')).length === 1,
        20_000,
        'b discovers a',
      );
      const emitted: EmittedEvent[] = [];
      const next = { a: 0, b: 0 } as Record<string, number>;
      /** Batches of `size` every `pauseMs`, until `more()` says stop; every 5th event is local. */
      const emit = async (node: ClusterNode, size: number, pauseMs: number, more: () => boolean) => {
        while (more()) {
          const from = next[node.computer] as number;
          next[node.computer] = from + size;
          const batch = Array.from({ length: size }, (_, i) => ({
            n: from + i,
            visibility: ((from + i) % 5 === 0 ? 'local' : 'cluster') as Visibility,
          }));
          let status: EmittedEvent['status'] = 'ok';
          try {
            await node.api.emitMany(
              batch.map((e) => ({
                event: 'mesh.test.ping',
                visibility: e.visibility,
                payload: { n: e.n, note: node.computer },
              })),
            );
          } catch {
            status = 'uncertain';
          }
          for (const e of batch)
            emitted.push({ origin: node.computer, n: e.n, visibility: e.visibility, status });
          await new Promise((r) => setTimeout(r, pauseMs));
        }
      };
      const upTo = (node: ClusterNode, n: number) => () => (next[node.computer] as number) < n;
      // A first part with the cluster whole.
      await Promise.all([emit(a, 100, 20, upTo(a, 1000)), emit(b, 50, 20, upTo(b, 250))]);
      // Then the master serving b's inbox (and b's bus stream: one slot) is killed while both
      // keep emitting, until its replica has taken over and a little after.
      const victim = await cluster.masterOf(inboxStream('b', 'weft:', true));
      let failing = true;
      const t0 = Date.now();
      const during = (node: ClusterNode, cap: number) => () =>
        (failing || Date.now() - t0 < 1000) && (next[node.computer] as number) < cap;
      const emitters = Promise.all([emit(a, 25, 50, during(a, 5000)), emit(b, 10, 50, during(b, 2000))]);
      // b freezes (SIGSTOP) so frames to it pile up unread in its inbox; the master's last
      // second of writes never reaches the replica that takes over, so some of those frames
      // are gone although Redis acknowledged them: a's outbox must send them again.
      b.pause();
      const thaw = setTimeout(() => b.resume(), 1500);
      const promoted = await cluster.killMasterAndWaitFailover(victim, { loseWritesMs: 1000 }).finally(() => {
        clearTimeout(thaw);
        b.resume();
        failing = false;
      });
      const failoverMs = Date.now() - t0;
      await emitters;
      const whileFailing = emitted.filter((e) => e.n >= (e.origin === 'a' ? 1000 : 250)).length;
      console.log(
        `master 127.0.0.1:${victim} killed; replica 127.0.0.1:${promoted} took over after ${failoverMs} ms; ${whileFailing} events emitted meanwhile`,
      );
      // And a last part on the healed cluster.
      await Promise.all([
        emit(a, 100, 20, upTo(a, (next.a as number) + 500)),
        emit(b, 50, 20, upTo(b, (next.b as number) + 100)),
      ]);
      const views: NodeView[] = [a, b].map((n) => ({
        computer: n.computer,
        cluster: 'home',
        mesh: 'redis',
        skewed: false,
      }));
      const appliedNow = async () =>
        new Map<string, Applied>(
          await Promise.all(
            [a, b].map(async (n) => [n.computer, await readApplied(n.api)] as [string, Applied]),
          ),
        );
      await eventually(
        async () => converged(views, emitted, await appliedNow()),
        90_000,
        'both nodes have every event they are entitled to',
      );
      await new Promise((r) => setTimeout(r, 2000)); // a late duplicate would show up now
      const result = check(views, emitted, await appliedNow());
      console.log(table(result));
      type MeshStatus = { peers: Array<{ computer: string; sent: { frames: number; resends: number } }> };
      const sentAB = (await a.api.request<MeshStatus>('GET', '/api/mesh/status')).peers.find(
        (p) => p.computer === 'b',
      )?.sent;
      console.log(`a -> b: ${sentAB?.frames} frames sent, ${sentAB?.resends} re-sent`);
      assert.ok(
        (sentAB?.resends ?? 0) > 0,
        'the fault was felt: frames whose entries the fail-over lost were sent again',
      );
      assert.ok(
        result.ok,
        `${result.firstFailure}\n${table(result)}\n--- a ---\n${a.output().slice(-3000)}\n--- b ---\n${b.output().slice(-3000)}`,
      );
      assert.ok(result.verdicts.every((v) => v.expected > 0));
      // The killed server comes back as a replica of the one that took over.
      await cluster.restart(victim);
    });
  });
}
