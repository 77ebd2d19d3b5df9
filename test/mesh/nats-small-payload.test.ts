/**
 * Two real daemons over a nats-server whose `max_payload` is 32 KiB, below the 1 MiB frames the
 * NATS provider cuts by default. The server refuses a bigger message on every try, so a frame
 * cut at 1 MiB − 8 KiB stalled the link for good: nothing more reached the peer, not even small
 * events. Frames are now cut to fit the server's max_payload, and an event too big for any such
 * frame is dead-lettered and raised, as on the other providers.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';
import { natsSkipReason, TestNats } from '../helpers/nats.js';
import { tempDir } from '../helpers/tmp.js';

let nats: TestNats;
let nodes: Record<string, ClusterNode>;
let stopAll: (() => Promise<void>) | undefined;
const t = tempDir('weft-nats-small-');

before(async () => {
  if (natsSkipReason) return;
  const conf = join(t.dir, 'nats.conf');
  writeFileSync(conf, 'max_payload: 32768\n');
  nats = await TestNats.start({ args: ['-c', conf] });
  const c = await startCluster(
    t.dir,
    [
      { computer: 'a', cluster: 'home' },
      { computer: 'b', cluster: 'home' },
    ],
    { provider: 'nats', natsUrl: nats.url },
  );
  nodes = c.nodes;
  stopAll = c.stopAll;
});
after(async () => {
  await stopAll?.();
  await nats?.stop();
  t.cleanup();
});

describe('mesh over a NATS server with a small max_payload', { skip: natsSkipReason }, () => {
  test('frames are cut to fit the server max_payload: every event arrives, one too big for any frame is dead-lettered and raised', async () => {
    const a = nodes.a as ClusterNode;
    const b = nodes.b as ClusterNode;
    const peersOf = async (n: ClusterNode) =>
      (await n.api.request<Array<{ computer: string }>>('GET', '/api/peers')).map((p) => p.computer);
    await eventually(
      async () => (await peersOf(a)).includes('b') && (await peersOf(b)).includes('a'),
      30_000,
      'a and b to find each other',
    );

    const note = 'x'.repeat(1000);
    // 100 events of ~1 KiB: together far over 32 KiB, each far under it.
    await a.api.emitMany(
      Array.from({ length: 100 }, (_, i) => ({
        event: 'mesh.test.ping',
        visibility: 'cluster',
        payload: { n: i + 1, note },
      })),
    );
    // One of ~40 KiB: accepted (the payload limit is 64 KiB), but no 32 KiB message can carry it.
    const big = await a.api.emit({
      event: 'system.worker.crashed',
      visibility: 'cluster',
      payload: { worker: 'big', error: 'e'.repeat(40_000), restarts: 1 },
    });
    await a.api.emitMany(
      Array.from({ length: 10 }, (_, i) => ({
        event: 'mesh.test.ping',
        visibility: 'cluster',
        payload: { n: 101 + i, note },
      })),
    );

    const onB = async () => {
      const page = await b.api.events.list({ type: 'mesh.test.ping', limit: 1000 });
      return new Set(page.items.map((x) => (x.envelope.payload as { n: number }).n)).size;
    };
    await eventually(async () => (await onB()) === 110, 60_000, 'all 110 small events on b');
    await eventually(
      async () =>
        (await a.api.notifications.list({ type: 'mesh.event.undeliverable', limit: 10 })).items.length === 1,
      30_000,
      'the undeliverable notification on a',
    );
    const [n] = (await a.api.notifications.list({ type: 'mesh.event.undeliverable', limit: 10 })).items;
    assert.equal(n?.payload.eventId, big.id);
    assert.equal(n?.payload.peer, 'b');
    assert.ok(
      Number(n?.payload.limit) <= 32768,
      `the limit named is the server's (${String(n?.payload.limit)})`,
    );
    // Everything else leaves the outbox (acked), and the link is not stalled.
    const link = async () =>
      (
        await a.api.request<{ peers: Array<{ computer: string; outbox: number; state: string }> }>(
          'GET',
          '/api/mesh/status',
        )
      ).peers.find((p) => p.computer === 'b');
    await eventually(async () => (await link())?.outbox === 0, 30_000, "a's outbox for b to empty");
    assert.notEqual((await link())?.state, 'stalled');
  });
});
