/**
 * A peer that is down while events wait for it, over NATS JetStream (two real daemons, a real
 * nats-server). The sender re-sent every unacknowledged frame every 5 s however long the peer
 * stayed away, and a broker keeps every copy: a peer down for a day would find about 17,000 copies of the
 * same frames in its inbox (a NATS inbox refuses new frames once full; a Redis inbox grows
 * without bound). Resend rounds that get no acknowledgement now back off (5, 10, 20 s ... up to
 * 5 min), and the peer's hello when it is back brings the resends back to their first interval.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect } from 'nats';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';
import { natsSkipReason, TestNats } from '../helpers/nats.js';
import { tempDir } from '../helpers/tmp.js';

let nats: TestNats;
let nodes: Record<string, ClusterNode>;
let stopAll: (() => Promise<void>) | undefined;
const t = tempDir('weft-offline-resends-');

before(async () => {
  if (natsSkipReason) return;
  nats = await TestNats.start();
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

/** The event frames from `from` stored in b's inbox now. */
async function eventFramesInInboxOfB(from: string): Promise<number> {
  const nc = await connect({ servers: nats.url });
  try {
    const jsm = await nc.jetstreamManager();
    const si = await jsm.streams.info('weft_inbox_b');
    let n = 0;
    for (let seq = si.state.first_seq; seq <= si.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage('weft_inbox_b', { seq }).catch(() => undefined);
      if (m?.header.get('Weft-From') === from && m.header.get('Weft-Type') === 'mesh_event') n++;
    }
    return n;
  } finally {
    await nc.close();
  }
}

describe('a peer that is down', { skip: natsSkipReason }, () => {
  test('frames waiting for it are re-sent ever more rarely, not every 5 s, and reach it once it is back', async () => {
    const a = nodes.a as ClusterNode;
    const b = nodes.b as ClusterNode;
    const peersOf = async (n: ClusterNode) =>
      (await n.api.request<Array<{ computer: string }>>('GET', '/api/peers')).map((p) => p.computer);
    await eventually(
      async () => (await peersOf(a)).includes('b') && (await peersOf(b)).includes('a'),
      30_000,
      'a and b to find each other',
    );
    const pings = async (n: ClusterNode) =>
      (await n.api.events.list({ type: 'mesh.test.ping', limit: 100 })).items.map(
        (x) => (x.envelope.payload as { n: number }).n,
      );
    // The link works (keys exchanged) before b goes away.
    await a.api.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 1, note: 'a' } });
    await eventually(async () => (await pings(b)).includes(1), 30_000, 'the first ping on b');
    await eventually(async () => (await eventFramesInInboxOfB('a')) === 0, 10_000, "b's inbox to be drained");

    assert.equal(await b.stop(), 0);
    await a.api.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 2, note: 'a' } });
    await new Promise((r) => setTimeout(r, 60_000));
    const copies = await eventFramesInInboxOfB('a');
    // Sent, then re-sent after 5, 15 and 35 s: 4, plus a frame for each event a emitted meanwhile
    // (recovery beacons); re-sent every 5 s it was 12 or more.
    assert.ok(copies >= 1 && copies <= 7, `b's inbox holds ${copies} event frames from a after 60 s down`);

    await b.start();
    await eventually(
      async () => (await pings(b)).includes(2),
      20_000,
      'the ping sent while b was down, once b is back',
    );
    await new Promise((r) => setTimeout(r, 1000));
    assert.deepEqual(
      (await pings(b)).filter((n) => n === 2),
      [2],
      'applied once',
    );
    await eventually(
      async () => {
        const st = await a.api.request<{ peers: Array<{ computer: string; outbox: number }> }>(
          'GET',
          '/api/mesh/status',
        );
        return st.peers.find((p) => p.computer === 'b')?.outbox === 0;
      },
      20_000,
      "a's outbox for b to empty",
    );
  });
});
