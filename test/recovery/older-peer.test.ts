/**
 * A rolling upgrade: the first node of a fleet runs the current Weft, its peer still a Weft from
 * before recovery (2026-12-04 and earlier), which sends no signed hello and turns every mesh
 * message of a kind it does not know into a `mesh.message.received` notification for its user.
 * The old peer is played by a raw TLS link with its key (old commits are not built in tests):
 * it connects, says nothing, and records what the upgraded daemon sends it.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadOrCreateIdentity } from '../../src/identity/index.js';
import { decodeFrame, tlsProvider } from '../../src/transport/index.js';
import { silentLogger, systemClock } from '../../src/util/index.js';
import { eventually, startCluster } from '../helpers/cluster.js';
import { tempDir } from '../helpers/tmp.js';

test('a node upgraded beside a peer from before recovery does not ask it recovery questions, and says why it waits', async () => {
  const t = tempDir('weft-older-peer-');
  // The daemon finds a key of its own at its first start, as an upgraded node does: it checks
  // with its peers before any beacon (recovery mode 'checking'). Checks come every second here.
  const c = await startCluster(t.dir, [{ computer: 'fresh', cluster: 'home' }, { computer: 'old', cluster: 'home' }], {
    provider: 'tls',
    start: false,
    extraEnv: { WEFT_RECOVERY_BEACON_INTERVAL: '1' },
  });
  const fresh = c.nodes.fresh as NonNullable<(typeof c.nodes)['fresh']>;
  const oldPort = Number(c.nodes.old?.env.WEFT_MESH_TLS_PORT);
  const freshPort = Number(fresh.env.WEFT_MESH_TLS_PORT);
  const oldId = loadOrCreateIdentity(join(t.dir, 'old', 'identity.key')).identity;
  const freshKey = loadOrCreateIdentity(join(fresh.dataDir, 'identity.key')).identity.publicKey;
  const link = tlsProvider({ computer: 'old', host: '127.0.0.1', port: oldPort, peers: [{ computer: 'fresh', nodeId: fresh.nodeId, host: '127.0.0.1', port: freshPort }] })({
    logger: silentLogger,
    clock: systemClock,
    identity: oldId,
  });
  type Status = { mode: string; notAsked?: string[] };
  const kinds: string[] = [];
  let hellos = 0;
  try {
    await link.start();
    void (async () => {
      for await (const f of link.frames()) {
        const d = decodeFrame(f.bytes, { lookupKey: () => freshKey });
        if (d.ok && d.frame.type === 'message') kinds.push((d.frame.body as { kind: string }).kind);
        if (d.ok && d.frame.type === 'hello') hellos++;
        await f.ack();
      }
    })();
    await fresh.start();
    await eventually(async () => hellos > 0, 30_000, 'the upgraded node to link to the old one');
    // Several checks (one a second) with the link up.
    await new Promise((r) => setTimeout(r, 3000));
    // Before: a recovery.query per check, each an empty notification on the old node's screen.
    assert.deepEqual(
      kinds.filter((k) => k.startsWith('recovery.')),
      [],
    );
    await eventually(async () => ((await fresh.api.request<Status>('GET', '/api/recovery/status')).notAsked ?? []).includes('old'), 60_000, 'the status to name the peer it cannot ask');
    const status = await fresh.api.request<Status>('GET', '/api/recovery/status');
    assert.equal(status.mode, 'checking', 'it still waits for a peer that can answer');
  } finally {
    await link.stop();
    await c.stopAll();
    t.cleanup();
  }
});
