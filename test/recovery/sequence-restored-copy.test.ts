/**
 * A node started on an older copy of its own data dir (a file-level backup restored: Time
 * Machine, a VM snapshot, `cp -a` of ~/.weft) holds a frame sequence reservation from the day
 * of the copy, while its peers remember the far higher sequences it used since. Every frame it
 * sent was then refused as a replay (REPLAY_SEQUENCE_STALE: more than 4,096 below the highest
 * accepted), its events never arrived, and not even its recovery beacons reached a peer. A
 * start now moves the sequence up to the clock floor (frame-sequence.ts), past anything the
 * node's earlier life can have used.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { eventually, startCluster } from '../helpers/cluster.js';
import { tempDir } from '../helpers/tmp.js';

const t = tempDir('weft-seq-restored-');
after(() => t.cleanup());

test('a node restarted on an older copy of its database still gets its frames accepted by its peers', async () => {
  const { nodes, stopAll } = await startCluster(
    t.dir,
    [
      { computer: 'alpha', cluster: 'home' },
      { computer: 'beta', cluster: 'home' },
    ],
    { provider: 'tls' },
  );
  const { alpha, beta } = nodes as Record<'alpha' | 'beta', (typeof nodes)[string]>;
  try {
    const arrived = async (n: number) =>
      (await beta.api.notifications.list({ type: 'mesh.test.ping', limit: 100 })).items.some(
        (x) => (x.payload as { n?: number }).n === n,
      );
    await alpha.api.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 1 } });
    await eventually(() => arrived(1), 30_000, 'the first event at beta');
    await alpha.stop();
    // What the copy holds: the reservation as it was 100,000 frames ago (beta has seen those since).
    const db = new Database(join(alpha.dataDir, 'weft.db'));
    const now = Number(db.prepare("SELECT value FROM mesh_state WHERE key = 'sequence'").pluck().get());
    db.prepare("UPDATE mesh_state SET value = ? WHERE key = 'sequence'").run(String(now - 100_000));
    db.close();
    await alpha.start();
    await alpha.api.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 2 } });
    await eventually(() => arrived(2), 30_000, 'the event emitted after the restore at beta');
    const stale = new Database(join(beta.dataDir, 'weft.db'), { readonly: true });
    try {
      assert.equal(
        stale
          .prepare("SELECT COUNT(*) FROM rejected_entries WHERE code LIKE 'REPLAY_SEQUENCE%'")
          .pluck()
          .get(),
        0,
        'no frame refused as a replay',
      );
    } finally {
      stale.close();
    }
  } finally {
    await stopAll();
  }
});
