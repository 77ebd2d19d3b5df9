/**
 * The mesh's own timers run on the clock it is given: with a test clock that keeps timers, a
 * resend after the 5 s default (no ack from a peer that is away) happens when the clock is
 * moved, not after five real seconds, and nothing is resent before.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { type AssembledNode, assembleNode } from '../../src/daemon/index.js';
import { loadOrCreateIdentity } from '../../src/identity/index.js';
import { MemoryNetwork, memoryProvider } from '../../src/transport/index.js';
import { RefusalNotices } from '../../src/pipeline/index.js';
import { ManualClock, silentLogger } from '../../src/util/index.js';
import { waitFor } from '../helpers/node.js';
import { tempDir } from '../helpers/tmp.js';

const sent = (n: AssembledNode) => (n.mesh?.status() as { peers: Array<{ sent: { frames: number; resends: number } }> } | undefined)?.peers[0]?.sent;

test('a frame nobody acknowledges is resent when the fake clock passes the resend delay, not before', { timeout: 30_000 }, async () => {
  const t = tempDir('weft-fake-clock-');
  const clock = new ManualClock(Date.now(), { timers: true });
  const net = new MemoryNetwork();
  mkdirSync(join(t.dir, 'one'), { recursive: true });
  const peerId = loadOrCreateIdentity(join(t.dir, 'away.key')).identity.nodeId;
  const one = await assembleNode(
    {
      dataDir: join(t.dir, 'one'),
      computer: 'one',
      cluster: 'pair',
      // `away` is pinned but never runs: frames to it are never acknowledged.
      mesh: { provider: memoryProvider({ network: net, computer: 'one' }), peers: [{ computer: 'away', cluster: 'pair', nodeId: peerId, trustLevel: 'peer', origin: 'static' }] },
    },
    { clock },
  );
  await one.start();
  const started = Date.now();
  try {
    await one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 1, note: 'x' } });
    await waitFor(() => (sent(one)?.frames ?? 0) === 1, 10_000, 'the first send');
    // The sender now waits on the test clock's timers, not on real ones.
    assert.ok(clock.pendingTimers > 0, 'the mesh waits on the clock it was given');
    // Just short of the delay: nothing is resent.
    for (let i = 0; i < 19; i++) {
      clock.advance(250);
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(sent(one)?.resends, 0, 'not resent before 5 s of clock time');
    for (let i = 0; i < 4 && (sent(one)?.resends ?? 0) === 0; i++) {
      clock.advance(250);
      await waitFor(() => true, 10);
      await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => (sent(one)?.resends ?? 0) >= 1, 5_000, 'a resend once the clock passed 5 s');
    assert.ok((sent(one)?.frames ?? 0) >= 2, 'the frame went again');
    assert.ok(Date.now() - started < 5_000, 'in less than the delay of real time');
    assert.equal(one.mesh?.outbox.depth('away'), 1, 'the outbox still keeps the event');
  } finally {
    await one.stop();
    t.cleanup();
  }
});

test('refusal notices aggregate on the clock they are given: the count of a window comes when the clock passes it', async () => {
  const clock = new ManualClock(Date.now(), { timers: true });
  const raised: Array<{ key: string; count: number }> = [];
  const notices = new RefusalNotices({ windowMs: 60_000 }, { clock, logger: silentLogger, raise: async (key, _d, count) => void raised.push({ key, count }) });
  try {
    for (let i = 0; i < 5; i++) notices.note('peer|FRAME_BAD_SIGNATURE', { code: 'FRAME_BAD_SIGNATURE' });
    assert.deepEqual(raised, [{ key: 'peer|FRAME_BAD_SIGNATURE', count: 1 }], 'the first at once, the rest held');
    clock.advance(29_000);
    assert.equal(raised.length, 1);
    clock.advance(31_000);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(raised[1], { key: 'peer|FRAME_BAD_SIGNATURE', count: 4 }, 'the other four, once the window passed on the clock');
  } finally {
    notices.close();
  }
});

test('a sender is woken by its rows and acks, never by its timers: with the clock frozen, events emitted while frames and acks are in flight all arrive', { timeout: 60_000 }, async () => {
  const t = tempDir('weft-fake-clock-wake-');
  // Frozen: no resend, no idle poll and no safety-net timer of the senders can fire.
  const clock = new ManualClock(Date.now(), { timers: true });
  const net = new MemoryNetwork();
  const names = ['one', 'two'] as const;
  const ids = Object.fromEntries(
    names.map((c) => {
      mkdirSync(join(t.dir, c), { recursive: true });
      return [c, loadOrCreateIdentity(join(t.dir, c, 'identity.key')).identity.nodeId];
    }),
  ) as Record<'one' | 'two', string>;
  const nodes: AssembledNode[] = [];
  try {
    for (const c of names) {
      const other = c === 'one' ? 'two' : 'one';
      const n = await assembleNode(
        {
          dataDir: join(t.dir, c),
          computer: c,
          cluster: 'pair',
          mesh: { provider: memoryProvider({ network: net, computer: c }), peers: [{ computer: other, cluster: 'pair', nodeId: ids[other], trustLevel: 'peer', origin: 'static' }] },
        },
        { clock, logger: silentLogger },
      );
      await n.start();
      nodes.push(n);
    }
    const [one, two] = nodes as [AssembledNode, AssembledNode];
    const arrived = () => two.node.ns.store.reader.prepare(`SELECT COUNT(*) FROM events WHERE event = 'mesh.test.ping'`).pluck().get() as number;
    // Emits land while the previous frame is out, while its ack comes back, and in between.
    let total = 0;
    for (let round = 0; round < 60; round++) {
      const k = 1 + (round % 3);
      const emits = Array.from({ length: k }, (_, i) => one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: total + i, note: `r${round}` } }));
      total += k;
      if (round % 2 === 0) await Promise.all(emits);
      for (let i = 0; i < round % 4; i++) await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => arrived() === total, 20_000, `all ${total} events on two with the clock frozen`);
    assert.equal(sent(one)?.resends, 0, 'nothing was resent: no timer ran');
    await waitFor(() => one.mesh?.outbox.depth('two') === 0, 20_000, 'every row acknowledged');
  } finally {
    for (const n of nodes.reverse()) await n.stop();
    t.cleanup();
  }
});
