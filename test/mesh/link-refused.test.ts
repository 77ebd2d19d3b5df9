/**
 * A peer pinned under a key it does not hold (its key was replaced, or the pin was copied
 * wrong): the link is refused at every dial, and `weft status` says so until the pin is right.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateIdentity } from '../../src/identity/index.js';
import { weft } from '../helpers/cli.js';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';
import { tempDir } from '../helpers/tmp.js';

const t = tempDir('weft-refused-');

async function problems(n: ClusterNode): Promise<string[]> {
  return (await n.api.request<{ problems: string[] }>('GET', '/api/health')).problems;
}

test('a peer whose key does not match its pin is a problem in weft status (exit 3) until the pin is mended', async () => {
  const { nodes, stopAll } = await startCluster(
    t.dir,
    [
      { computer: 'a', cluster: 'home' },
      { computer: 'b', cluster: 'home' },
    ],
    { provider: 'tls', start: false },
  );
  const a = nodes.a as ClusterNode;
  const b = nodes.b as ClusterNode;
  const rightPeers = String(a.env.WEFT_MESH_PEERS);
  a.env.WEFT_MESH_PEERS = rightPeers.replace(b.nodeId, generateIdentity().nodeId);
  try {
    await b.start();
    await a.start();
    await eventually(
      async () =>
        (await problems(a)).some((p) => /^mesh: link to b refused \d+ s ago: .*presented key/.test(p)),
      30_000,
      'a lists the refused link to b',
    );
    const r = weft(['status'], a.env);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.stdout, /^ {2}- mesh: link to b refused/m);

    assert.equal(await a.stop(), 0);
    a.env.WEFT_MESH_PEERS = rightPeers;
    await a.start();
    await a.api.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 1, note: 'mended' } });
    await eventually(
      async () => (await b.api.notifications.list({ type: 'mesh.test.ping', limit: 10 })).items.length === 1,
      30_000,
      'the event reaches b once the pin is right',
    );
    assert.deepEqual(await problems(a), []);
  } finally {
    await stopAll();
    t.cleanup();
  }
});

test('weft identity rotate on one node, then restarts of both: the TLS link comes back under the new key (the peer keeps the endorsed rotation)', async () => {
  const { nodes, stopAll } = await startCluster(
    `${t.dir}/rotate`,
    [
      { computer: 'a', cluster: 'home' },
      { computer: 'b', cluster: 'home' },
    ],
    { provider: 'tls' },
  );
  const a = nodes.a as ClusterNode;
  const b = nodes.b as ClusterNode;
  const pings = async (note: string) => (await b.api.notifications.list({ type: 'mesh.test.ping', limit: 100 })).items.filter((n) => n.payload.note === note).length;
  const sendAndSee = async (note: string) => {
    await a.api.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 1, note } });
    await eventually(async () => (await pings(note)) === 1, 60_000, `'${note}' on b`);
  };
  try {
    await sendAndSee('before');
    const r = weft(['identity', 'rotate'], b.env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // A backup of the old key would restore a node every peer refuses: the output says to export again.
    assert.match(r.stdout, /A key backup made before now holds the old key, which peers refuse from now on: export the new one \(weft identity export --encrypted/);
    const rotated = JSON.parse(weft(['--json', 'identity', 'show'], b.env).stdout) as { nodeId: string };
    await eventually(
      async () => (await a.api.request<Array<{ computer: string; nodeId: string }>>('GET', '/api/peers')).some((p) => p.computer === 'b' && p.nodeId === rotated.nodeId),
      30_000,
      'a took the rotation',
    );
    // b restarts as the rotation says (its certificate is the new key's now): a must dial it under that key.
    assert.equal(await b.stop(), 0);
    await b.start();
    await sendAndSee('after b restarted');
    // a restarts: its config still pins b's old key; the rotation it accepted stands.
    assert.equal(await a.stop(), 0);
    await a.start();
    await sendAndSee('after a restarted');
    assert.deepEqual(await problems(a), []);
  } finally {
    await stopAll();
  }
});
