/**
 * Two real daemons over NATS JetStream (mesh.provider = "nats", the defaults otherwise) on a
 * nats-server this file starts. Events are emitted both ways before, during and after a kill -9
 * of the server; the chaos checker then says whether anything was lost, duplicated or leaked.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { meshFromConfig } from '../../src/daemon/index.js';
import { NATS_MAX_FRAME_BYTES } from '../../src/transport/index.js';
import { silentLogger, systemClock } from '../../src/util/index.js';
import { check, readApplied, table, type EmittedEvent, type NodeView, type Visibility } from '../chaos/checker.js';
import type { SubMesh } from '../chaos/fleet.js';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';
import { natsSkipReason, TestNats } from '../helpers/nats.js';
import { tempDir } from '../helpers/tmp.js';

let nats: TestNats;
let nodes: Record<string, ClusterNode>;
let stopAll: (() => Promise<void>) | undefined;
const t = tempDir('weft-nats-mesh-');

before(async () => {
  if (natsSkipReason) return;
  nats = await TestNats.start();
  const c = await startCluster(t.dir, [{ computer: 'a', cluster: 'home' }, { computer: 'b', cluster: 'home' }], { provider: 'nats', natsUrl: nats.url });
  nodes = c.nodes;
  stopAll = c.stopAll;
});
after(async () => {
  await stopAll?.();
  await nats?.stop();
  t.cleanup();
});

describe('mesh over NATS', { skip: natsSkipReason }, () => {
  test('cluster events reach the peer exactly once across a nats-server kill -9; local events never leave', async () => {
    const a = nodes.a as ClusterNode;
    const b = nodes.b as ClusterNode;
    const peersOf = async (n: ClusterNode) => (await n.api.request<Array<{ computer: string }>>('GET', '/api/peers')).map((p) => p.computer);
    await eventually(async () => (await peersOf(a)).includes('b') && (await peersOf(b)).includes('a'), 30_000, 'a and b to find each other in the NATS KV registry');

    const emitted: EmittedEvent[] = [];
    let n = 0;
    const emit = async (from: ClusterNode, count: number) => {
      for (let i = 0; i < count; i++) {
        const visibility: Visibility = i % 5 === 4 ? 'local' : 'cluster';
        const k = ++n;
        await from.api.emit({ event: 'mesh.test.ping', visibility, payload: { n: k, note: from.computer } });
        emitted.push({ origin: from.computer, n: k, visibility, status: 'ok' });
      }
    };
    await Promise.all([emit(a, 40), emit(b, 20)]);
    const fromA = async () => [...(await readApplied(b.api)).log.keys()].filter((k) => k.startsWith('a#')).length;
    await eventually(async () => (await fromA()) >= 8, 30_000, 'some of the first events from a on b');
    await nats.kill();
    // Accepted while the server is down: they wait in the outboxes, and sends fail meanwhile.
    await Promise.all([emit(a, 40), emit(b, 20)]);
    await new Promise((r) => setTimeout(r, 1000));
    await nats.start(); // same port, same store
    await Promise.all([emit(a, 40), emit(b, 20)]);

    const views: NodeView[] = ['a', 'b'].map((computer) => ({ computer, cluster: 'home', mesh: 'nats' as unknown as SubMesh, skewed: false }));
    const applied = async () => new Map([['a', await readApplied(a.api)], ['b', await readApplied(b.api)]]);
    await eventually(async () => check(views, emitted, await applied()).verdicts.every((v) => v.missing.length === 0), 90_000, 'every cluster event on its peer');
    await new Promise((r) => setTimeout(r, 1500)); // a duplicate or a late leak would show up now
    const r = check(views, emitted, await applied());
    console.log(table(r));
    assert.ok(r.ok, `${r.firstFailure}\n${table(r)}\n--- a ---\n${a.output().slice(-3000)}\n--- b ---\n${b.output().slice(-3000)}`);
    // Its own 120 (or 60) and the peer's cluster events (4 in 5 of them), not the peer's local ones.
    const want: Record<string, number> = { a: 120 + 48, b: 60 + 96 };
    for (const v of r.verdicts) assert.equal(v.expected, want[v.node.computer], `what ${v.node.computer} is entitled to`);
    // The broker sees sealed frames only: aead is on by default above a brokered provider.
    const st = await a.api.request<{ provider: string; peers: Array<{ computer: string; encryption: string | null }> }>('GET', '/api/mesh/status');
    assert.equal(st.provider, 'nats');
    assert.equal(st.peers.find((p) => p.computer === 'b')?.encryption, 'aead');
  });
});

test('mesh.provider = "nats" needs nats.url and a prefix NATS can name streams with; with them the mesh is wired to NATS', () => {
  const cfg = (env: Record<string, string>) => loadConfig({ env: { HOME: '/nonexistent', WEFT_COMPUTER_NAME: 'laptop', WEFT_MESH_PROVIDER: 'nats', ...env } });
  assert.throws(() => meshFromConfig(cfg({})), /mesh\.provider: "nats" needs nats\.url/);
  assert.throws(() => meshFromConfig(cfg({ WEFT_NATS_URL: 'nats://127.0.0.1:4222', WEFT_NATS_PREFIX: 'we.ft' })), /config key nats\.prefix: "we\.ft" is not allowed/);
  const { mesh } = meshFromConfig(cfg({ WEFT_NATS_URL: 'nats://127.0.0.1:4222' }));
  assert.ok(mesh?.discovery, 'discovery through the NATS KV registry');
  assert.equal(mesh.registryUrl, undefined, 'no Redis registry');
  assert.equal(mesh.options?.maxFrameBytes, NATS_MAX_FRAME_BYTES, 'frames are cut below the server max_payload');
  const p = mesh.provider({ logger: silentLogger, clock: systemClock });
  assert.equal(p.name, 'nats');
  assert.equal(p.confidential, false, 'brokered: frames are sealed above it');
});
