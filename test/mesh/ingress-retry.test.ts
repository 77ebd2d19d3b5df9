/**
 * A batch of frames the receiver cannot commit (its database stays locked by another process
 * past the busy timeout) is handled again once the cause is gone: the same frames, without
 * waiting for the sender to re-send them, over each transport, and the link keeps working.
 * Before, the failed batch was dropped while the transport still held its frames (a slot of the
 * window, a credit of the sender each): lost until a restart, and enough of them stopped the link.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { meshPair, type MeshPair } from '../helpers/mesh-pair.js';
import { waitFor } from '../helpers/node.js';

const notes = (p: MeshPair) => new Set(p.two.node.ns.notifications.list({ eventType: 'mesh.test.ping', limit: 1000 }).items.map((n) => String(n.payload.note)));
const sent = (p: MeshPair) => (p.one.mesh?.status() as { peers: Array<{ sent: { frames: number; resends: number } }> } | undefined)?.peers[0]?.sent;

for (const transport of ['memory', 'tls', 'redis'] as const) {
  test(`${transport}: frames whose commit failed (the database locked past the busy timeout) are applied once it is free, without a re-send, and the link goes on`, { timeout: 150_000 }, async () => {
    // The sender re-sends unacknowledged frames only after 30 s here: what arrives well before
    // that came from the receiver handling the same frames again.
    const p = await meshPair(transport, { oneMesh: { resendAfterMs: 30_000 } });
    try {
      await p.one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 0, note: 'warm-up' } });
      // (A first frame can be lost while a TLS link is still being set up: then it is the re-send.)
      await waitFor(() => notes(p).has('warm-up'), 60_000, 'the link up both ways');
      const resendsBefore = sent(p)?.resends ?? 0;
      const framesBefore = sent(p)?.frames ?? 0;
      // Another process takes the write lock of the receiver's database and keeps it.
      const other = new Database(p.two.node.ns.store.path);
      other.exec('BEGIN IMMEDIATE');
      try {
        for (let i = 1; i <= 20; i++) await p.one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: i, note: `held-${i}` } });
        // The receiver's batch waits out the 5 s busy timeout and fails.
        await waitFor(() => (sent(p)?.frames ?? 0) > framesBefore, 10_000, 'the frames sent');
        await new Promise((r) => setTimeout(r, 6500));
        assert.equal([...notes(p)].filter((n) => n.startsWith('held-')).length, 0, 'nothing applied while the database is locked');
      } finally {
        other.exec('ROLLBACK');
        other.close();
      }
      await waitFor(() => [...notes(p)].filter((n) => n.startsWith('held-')).length === 20, 15_000, 'the 20 held events applied once the lock is gone');
      assert.equal(sent(p)?.resends, resendsBefore, 'not by a re-send of the sender');
      await p.one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 21, note: 'after' } });
      await waitFor(() => notes(p).has('after'), 20_000, 'the link goes on');
      await waitFor(() => p.one.mesh?.outbox.depth('two') === 0, 20_000, 'every row acknowledged');
    } finally {
      await p.cleanup();
    }
  });
}
