/**
 * The seed's plain JSON mesh with TeleClaude nodes (opt-in per peer): a real daemon on a real
 * Redis, TeleClaude's entries written as its RedisTransport and planned mesh publisher write them.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';
import { TestRedis } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

let redis: TestRedis;
let node: ClusterNode;
let stopAll: () => Promise<void>;
let r: Redis;
const t = tempDir('weft-tcwire-');

before(async () => {
  redis = await TestRedis.start();
  const c = await startCluster(t.dir, [{ computer: 'weft1', cluster: 'home' }], {
    provider: 'redis',
    redisUrl: redis.url,
    extraEnv: { WEFT_MESH_TELECLAUDE_PEERS: 'mozart/home,bach/work' },
  });
  node = c.nodes.weft1 as ClusterNode;
  stopAll = c.stopAll;
  r = new Redis(redis.url);
});
after(async () => {
  r?.disconnect();
  await stopAll?.();
  await redis.stop();
  t.cleanup();
});

/** TeleClaude's `EventEnvelope.model_dump_json()`: snake_case, nested JSON, nulls, pydantic's `Z`. */
function modelDumpJson(payload: Record<string, unknown>, event = 'mesh.test.ping'): string {
  return JSON.stringify({
    event,
    version: 1,
    source: 'daemon',
    timestamp: '2026-11-30T09:15:02.123456Z',
    idempotency_key: null,
    level: 1,
    domain: 'mesh',
    entity: null,
    description: '',
    visibility: 'cluster',
    payload,
    actions: null,
    terminal_when: null,
    resolution_shape: null,
  });
}

async function ping(note: string): Promise<Array<{ payload: Record<string, unknown> }>> {
  const page = await node.api.notifications.list({ type: 'mesh.test.ping', limit: 100 });
  return page.items.filter((n) => n.payload.note === note);
}

test('events from a TeleClaude peer of this cluster are applied once; other senders are refused; its commands are left alone', async () => {
  const inbox = 'messages:weft1';
  const ids = [
    await r.xadd(inbox, '*', 'type', 'system', 'command', 'health_check', 'timestamp', '1736944200.123456', 'from_computer', 'mozart', 'origin', 'redis'),
    await r.xadd(inbox, '*', 'type', 'mesh_event', 'payload', modelDumpJson({ n: 1, note: 'from-mozart' }), 'source_computer', 'mozart'),
    await r.xadd(inbox, '*', 'type', 'mesh_event', 'payload', modelDumpJson({ n: 2, note: 'from-bach' }), 'source_computer', 'bach'),
    await r.xadd(inbox, '*', 'type', 'mesh_event', 'payload', modelDumpJson({ n: 3, note: 'from-stranger' }), 'source_computer', 'stranger'),
    await r.xadd(inbox, '*', 'command', 'list_sessions', 'timestamp', '1736944200.5', 'initiator', 'mozart', 'origin', 'redis'),
  ];
  await eventually(async () => (await ping('from-mozart')).length === 1, 20_000, "mozart's event as a notification");
  await eventually(async () => {
    const rej = await node.api.notifications.list({ type: 'mesh.event.rejected', limit: 50 });
    const codes = rej.items.map((n) => String(n.payload.code));
    return codes.includes('LEGACY_PEER_OUTSIDE_CLUSTER') && codes.includes('LEGACY_PEER_UNKNOWN');
  }, 20_000, 'the refusals of bach (other cluster) and stranger (not configured)');
  assert.equal((await ping('from-bach')).length, 0);
  assert.equal((await ping('from-stranger')).length, 0);
  const ev = await node.api.request<{ items: Array<{ envelope: { payload: { note?: string }; sourceComputer?: string; origin?: string } }> }>('GET', '/api/events?type=mesh.test.ping&limit=50');
  const fromMozart = ev.items.find((e) => e.envelope.payload.note === 'from-mozart');
  assert.equal(fromMozart?.envelope.sourceComputer, 'mozart');
  assert.equal(fromMozart?.envelope.origin, 'teleclaude:mozart');
  const q = await node.api.request<{ totals: { flag: number; quarantine: number } }>('GET', '/api/quarantine');
  assert.ok(q.totals.flag >= 1, 'unsigned, admitted by the cluster rule, and flagged so (trust:legacy_wire)');
  assert.equal(q.totals.quarantine, 0);
  const rejections = await node.api.request<{ items: Array<{ code: string; field: string | null }> }>('GET', '/api/rejections');
  assert.ok(rejections.items.some((x) => x.code === 'LEGACY_PEER_UNKNOWN' && x.field === 'source_computer'));

  // TeleClaude's stream is untouched: every entry there, no consumer group made on it.
  assert.deepEqual((await r.xrange(inbox, '-', '+')).map(([id]) => id), ids);
  assert.deepEqual(await r.call('XINFO', 'GROUPS', inbox), []);

  // A restart reads on from its cursor: nothing is applied twice.
  assert.equal(await node.stop(), 0);
  await node.start();
  await r.xadd(inbox, '*', 'type', 'mesh_event', 'payload', modelDumpJson({ n: 4, note: 'after-restart' }), 'source_computer', 'mozart');
  await eventually(async () => (await ping('after-restart')).length === 1, 20_000, 'the event sent after the restart');
  assert.equal((await ping('from-mozart')).length, 1, 'applied once');
});

test('cluster events go to the TeleClaude peers of the cluster, public ones to every TeleClaude peer, as mesh_event JSON', async () => {
  await node.api.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 10, note: 'to-cluster' } });
  await node.api.emit({ event: 'mesh.test.ping', visibility: 'public', payload: { n: 11, note: 'to-all' } });
  await node.api.emit({ event: 'mesh.test.ping', visibility: 'local', payload: { n: 12, note: 'stays' } });
  // Every entry is checked; the notes are those of this test's pings. Recovery beacons and
  // journals (on by default) are for Weft peers only: none may reach a TeleClaude inbox.
  const types: string[] = [];
  const notes = async (computer: string) =>
    (await r.xrange(`messages:${computer}`, '-', '+')).flatMap(([, f]) => {
      const m = new Map<string, string>();
      for (let i = 0; i + 1 < f.length; i += 2) m.set(f[i] as string, f[i + 1] as string);
      assert.equal(m.get('type'), 'mesh_event');
      assert.equal(m.get('source_computer'), 'weft1');
      const env = JSON.parse(m.get('payload') as string) as Record<string, unknown>;
      // TeleClaude's field names, so its model_validate_json reads it
      for (const k of ['event', 'version', 'source', 'timestamp', 'idempotency_key', 'level', 'domain', 'entity', 'description', 'visibility', 'payload', 'actions', 'terminal_when', 'resolution_shape']) {
        assert.ok(k in env, `${k} in the TeleClaude envelope`);
      }
      types.push(String(env.event));
      return env.event === 'mesh.test.ping' ? [String((env.payload as { note: string }).note)] : [];
    });
  await eventually(async () => (await notes('mozart')).includes('to-all') && (await notes('bach')).includes('to-all'), 20_000, 'delivery to both');
  // The recovery journal has sent the pings' notification states (to the Weft peers it has: none here).
  await eventually(async () => (await node.api.request<{ journal: { pending: number; journaled: number } }>('GET', '/api/recovery/status')).journal.journaled >= 2, 20_000, 'the recovery journal to pass');
  await new Promise((res) => setTimeout(res, 200));
  assert.deepEqual((await notes('mozart')).sort(), ['to-all', 'to-cluster']);
  assert.deepEqual(await notes('bach'), ['to-all'], 'bach is in another cluster');
  assert.deepEqual(types.filter((t) => t.startsWith('mesh.recovery.')), [], 'no recovery traffic to a TeleClaude node');
  const tcPeers = async () =>
    (await node.api.request<{ peers: Array<{ computer: string; wire: string; outbox: number }> }>('GET', '/api/mesh/status')).peers
      .filter((p) => p.wire === 'teleclaude')
      .map((p) => [p.computer, p.outbox])
      .sort();
  // The outbox rows go once the XADD is done (the deletions are batched a few ms later).
  await eventually(async () => JSON.stringify(await tcPeers()) === JSON.stringify([['bach', 0], ['mozart', 0]]), 10_000, 'both TeleClaude outboxes empty');

  // A type TeleClaude names otherwise goes under its name and verdicts, so its catalog knows it.
  await node.api.emit({ event: 'domain.software-development.planning.todo.dor_assessed', visibility: 'cluster', payload: { slug: 'to-tc', score: 9, verdict: 'ready' } });
  let dor: Record<string, unknown> | undefined;
  await eventually(
    async () => {
      for (const [, f] of await r.xrange('messages:mozart', '-', '+')) {
        const env = JSON.parse(f[f.indexOf('payload') + 1] as string) as { event: string; payload: { slug?: string } };
        if (env.payload.slug === 'to-tc') dor = env as unknown as Record<string, unknown>;
      }
      return dor !== undefined;
    },
    20_000,
    'the assessment on mozart',
  );
  assert.equal(dor?.event, 'domain.software-development.planning.dor_assessed');
  assert.deepEqual(dor?.payload, { slug: 'to-tc', score: 9, verdict: 'pass' });
});
