/**
 * Three daemons on one real Redis with the configuration a newcomer writes: only
 * WEFT_REDIS_URL, WEFT_MESH_PROVIDER=redis, a computer name and a cluster each. No stream,
 * no group, no prefix. Nothing leaks, and a node that would collide is refused.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import type { WeftClient } from '../../src/client/index.js';
import { generateIdentity, loadOrCreateIdentity } from '../../src/identity/index.js';
import { encodeFrame } from '../../src/transport/index.js';
import { weft } from '../helpers/cli.js';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';
import { TestRedis } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

interface LoggedEvent {
  envelope: { event: string; payload: Record<string, unknown>; sourceComputer?: string };
}

async function allEvents(api: WeftClient): Promise<LoggedEvent[]> {
  const out: LoggedEvent[] = [];
  let cursor: number | undefined;
  for (;;) {
    const page = await api.request<{ items: LoggedEvent[]; nextCursor: number | null }>('GET', `/api/events?limit=500${cursor ? `&cursor=${cursor}` : ''}`);
    out.push(...page.items);
    if (!page.nextCursor) return out;
    cursor = page.nextCursor;
  }
}

async function notes(api: WeftClient, note: string): Promise<string[]> {
  const page = await api.notifications.list({ type: 'mesh.test.ping', limit: 1000 });
  return page.items.filter((n) => String(n.payload.note).startsWith(note)).map((n) => String(n.payload.note)).sort();
}

describe('three nodes on one Redis with the defaults', () => {
  let redis: TestRedis;
  let nodes: Record<string, ClusterNode>;
  let stopAll: () => Promise<void>;
  const t = tempDir('weft-shared-');
  before(async () => {
    redis = await TestRedis.start();
    const c = await startCluster(
      t.dir,
      [
        { computer: 'a', cluster: 'home' },
        { computer: 'b', cluster: 'home' },
        { computer: 'c', cluster: 'work' },
      ],
      { provider: 'redis', redisUrl: redis.url },
    );
    nodes = c.nodes;
    stopAll = c.stopAll;
    for (const n of Object.values(nodes)) {
      assert.equal(n.env.WEFT_REDIS_STREAM, undefined, 'the test sets no stream');
      assert.equal(n.env.WEFT_REDIS_GROUP, undefined, 'and no group');
    }
  });
  after(async () => {
    await stopAll?.();
    await redis.stop();
    t.cleanup();
  });

  test('local stays on its node, cluster reaches only the cluster, public reaches everyone', async () => {
    const { a, b, c } = nodes as Record<'a' | 'b' | 'c', ClusterNode>;
    await eventually(async () => (await a.api.request<unknown[]>('GET', '/api/peers')).length === 2, 20_000, 'a discovers b and c');
    await eventually(async () => (await c.api.request<unknown[]>('GET', '/api/peers')).length === 2, 20_000, 'c discovers a and b');
    await a.api.emit({ event: 'mesh.test.ping', visibility: 'local', payload: { n: 1, note: 'leak-local-secret' } });
    await a.api.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 2, note: 'leak-cluster' } });
    await a.api.emit({ event: 'mesh.test.ping', visibility: 'public', payload: { n: 3, note: 'leak-public' } });
    await eventually(async () => (await notes(b.api, 'leak-')).length === 2 && (await notes(c.api, 'leak-')).length === 1, 30_000, 'delivery to b and c');
    // A marker emitted after the others: once it is on b and c, anything that would leak has had its chance.
    await a.api.emit({ event: 'mesh.test.ping', visibility: 'public', payload: { n: 4, note: 'leak-zz-marker' } });
    await eventually(async () => (await notes(b.api, 'leak-zz')).length === 1 && (await notes(c.api, 'leak-zz')).length === 1, 30_000, 'the marker');

    assert.deepEqual(await notes(a.api, 'leak-'), ['leak-cluster', 'leak-local-secret', 'leak-public', 'leak-zz-marker']);
    assert.deepEqual(await notes(b.api, 'leak-'), ['leak-cluster', 'leak-public', 'leak-zz-marker']);
    assert.deepEqual(await notes(c.api, 'leak-'), ['leak-public', 'leak-zz-marker'], 'the cluster event stayed in cluster home');

    for (const peer of [b, c]) {
      const log = JSON.stringify(await allEvents(peer.api));
      assert.doesNotMatch(log, /leak-local-secret/, `a's local event is not in ${peer.computer}'s log`);
      const q = await peer.api.request<{ items: Array<{ reason: string }> }>('GET', '/api/quarantine?status=all&limit=1000');
      assert.equal(q.items.length, 0, `${peer.computer} quarantined nothing (no spoofed_origin): ${JSON.stringify(q.items)}`);
      const rej = await peer.api.request<{ total: number; items: unknown[] }>('GET', '/api/rejections');
      assert.equal(rej.total, 0, `${peer.computer} refused nothing: ${JSON.stringify(rej.items)}`);
    }
    assert.doesNotMatch(JSON.stringify(await allEvents(c.api)), /leak-cluster/, 'no trace of the cluster event on c');
    // Each node's own start event stays its own: daemon.restarted is local.
    for (const n of [a, b, c]) {
      const restarts = (await allEvents(n.api)).filter((e) => e.envelope.event === 'system.daemon.restarted');
      assert.ok(restarts.length >= 1);
      for (const e of restarts) assert.equal(e.envelope.payload.computer, n.computer, `${n.computer} logged only its own restart`);
    }
  });

  test('weft mesh decode prints a frame with its verdict, from an inbox entry or stdin', async () => {
    const b = nodes.b as ClusterNode;
    const a = nodes.a as ClusterNode;
    const { identity: aKey } = loadOrCreateIdentity(join(a.dataDir, 'identity.key'));
    const frame = encodeFrame(
      { type: 'events', sequence: Number.MAX_SAFE_INTEGER - 1, timestamp: Date.now(), body: { envelopes: [{ id: 'decode-me', event: 'mesh.test.ping' }] } },
      { identity: aKey },
    );
    let r = weft(['--json', 'mesh', 'decode', '-'], b.env, Buffer.from(frame).toString('base64'));
    assert.equal(r.code, 0, r.stderr + r.stdout);
    let d = JSON.parse(r.stdout) as { header: { senderComputer: string; sequence: number }; verdict: { ok: boolean; signature?: string }; body: { envelopes: Array<{ id: string }> } };
    assert.equal(d.header.senderComputer, 'a');
    assert.equal(d.verdict.signature, 'verified');
    assert.equal(d.body.envelopes[0]?.id, 'decode-me');
    // A frame from a key b does not know, written to b's inbox as a peer would: refused, and said why.
    const stranger = generateIdentity();
    const bad = encodeFrame({ type: 'events', sequence: 1, timestamp: Date.now(), body: { envelopes: [] } }, { identity: stranger });
    const admin = new Redis(redis.url);
    const id = await admin.xadd('weft:messages:b', '*', 'weft', '1', 'type', 'mesh_event', 'from', 'stranger', 'payload', Buffer.from(bad));
    const foreign = await admin.xadd('weft:messages:b', '*', 'type', 'system', 'command', 'health_check', 'from_computer', 'mozart');
    admin.disconnect();
    r = weft(['--json', 'mesh', 'decode', String(id)], b.env);
    assert.equal(r.code, 1);
    d = JSON.parse(r.stdout);
    assert.deepEqual((d as unknown as { verdict: { code: string } }).verdict.code, 'FRAME_UNKNOWN_SENDER');
    r = weft(['--json', 'mesh', 'decode', String(foreign)], b.env);
    assert.equal(r.code, 1);
    assert.equal((JSON.parse(r.stdout) as { verdict: { code: string } }).verdict.code, 'FOREIGN_ENTRY');
  });

  test('a fourth node with a computer name or bus stream already in use is refused with one line', async () => {
    const dir = join(t.dir, 'intruder');
    mkdirSync(dir, { recursive: true });
    const base = { HOME: dir, WEFT_DATA_DIR: dir, WEFT_API_PORT: '0', WEFT_REDIS_URL: redis.url, WEFT_MESH_PROVIDER: 'redis', WEFT_LOG_LEVEL: 'warn' };
    let r = weft(['daemon'], { ...base, WEFT_COMPUTER_NAME: 'a', WEFT_COMPUTER_CLUSTER: 'home' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^weft: computer name 'a' is in use on this Redis by another live node \(weft:ed25519:[^)]+\); give this node its own computer\.name/);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    r = weft(['daemon'], { ...base, WEFT_COMPUTER_NAME: 'd', WEFT_REDIS_STREAM: 'weft:events:b' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^weft: bus stream 'weft:events:b' is in use on this Redis by another live node/);
    // The refused starts wrote nothing the others see: a still serves, b still receives.
    await (nodes.a as ClusterNode).api.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 5, note: 'after-intruder' } });
    await eventually(async () => (await notes((nodes.b as ClusterNode).api, 'after-intruder')).length === 1, 20_000, 'b still served');
  });
});
