import assert from 'node:assert/strict';
import { test } from 'node:test';
import tls from 'node:tls';
import { createNodeCertificate, generateIdentity, type NodeIdentity } from '../../src/identity/index.js';
import {
  type ProviderEvent,
  type TlsPeer,
  type TlsProvider,
  tlsProvider,
} from '../../src/transport/index.js';
import { systemClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { freePort } from '../helpers/redis.js';
import { eventsFrame, providerCompliance, take } from './provider-compliance.js';

const fast = { heartbeatMs: 200, reconnect: { minMs: 20, maxMs: 200 } };

function node(
  identity: NodeIdentity,
  computer: string,
  port: number,
  peers: TlsPeer[],
  extra: Record<string, unknown> = {},
): TlsProvider {
  return tlsProvider({ computer, port, peers, ...fast, ...extra })({
    logger: silentLogger,
    clock: systemClock,
    identity,
  });
}

async function pair(extraB: Record<string, unknown> = {}) {
  const idA = generateIdentity();
  const idB = generateIdentity();
  const [pa, pb] = [await freePort(), await freePort()];
  const a = node(idA, 'a', pa, [{ computer: 'b', nodeId: idB.nodeId, host: '127.0.0.1', port: pb }]);
  const b = node(idB, 'b', pb, [{ computer: 'a', nodeId: idA.nodeId, host: '127.0.0.1', port: pa }], extraB);
  await a.start();
  await b.start();
  return { a, b, idA, idB, pa, pb };
}

providerCompliance('tls', async () => {
  const { a, b, idA, idB } = await pair();
  return {
    a,
    b,
    aToB: 'b',
    bToA: 'a',
    idA,
    idB,
    restartB: async () => {
      throw new Error('tls is not durable');
    },
    cleanup: async () => {
      await a.stop();
      await b.stop();
    },
  };
});

function waitFor(events: ProviderEvent[], pred: (e: ProviderEvent) => boolean): Promise<ProviderEvent> {
  return new Promise((resolve) => {
    const poll = () => {
      const e = events.find(pred);
      if (e) resolve(e);
      else setTimeout(poll, 10);
    };
    poll();
  });
}

test('tls: a peer presenting a certificate for another key is refused, and the refusal is reported', {
  timeout: 20_000,
}, async () => {
  const idA = generateIdentity();
  const idB = generateIdentity();
  const impostor = generateIdentity();
  const [pa, pb] = [await freePort(), await freePort()];
  // A pins B's key, but what listens on B's port is the impostor (who pins A, so it would talk).
  const a = node(idA, 'a', pa, [{ computer: 'b', nodeId: idB.nodeId, host: '127.0.0.1', port: pb }]);
  const fake = node(impostor, 'b', pb, [{ computer: 'a', nodeId: idA.nodeId, host: '127.0.0.1', port: pa }]);
  const aEvents: ProviderEvent[] = [];
  const fakeEvents: ProviderEvent[] = [];
  a.on((e) => aEvents.push(e));
  fake.on((e) => fakeEvents.push(e));
  await a.start();
  await fake.start();
  try {
    // Outbound: A dials "b" and finds the wrong key.
    const out = await waitFor(aEvents, (e) => e.type === 'peer.refused' && e.code === 'PEER_KEY_MISMATCH');
    assert.equal(out.type === 'peer.refused' && out.peer, 'b');
    assert.equal(out.type === 'peer.refused' && out.presentedFingerprint, impostor.fingerprint);
    // Inbound: the impostor dials A, and A does not know its key.
    const inb = await waitFor(aEvents, (e) => e.type === 'peer.refused' && e.code === 'PEER_UNKNOWN_KEY');
    assert.equal(inb.type === 'peer.refused' && inb.presentedFingerprint, impostor.fingerprint);
    await assert.rejects(a.send('b', eventsFrame(idA, 'x')), { code: 'TRANSPORT_PEER_UNAVAILABLE' });
    assert.equal(
      aEvents.some((e) => e.type === 'peer.connected'),
      false,
    );
  } finally {
    await a.stop();
    await fake.stop();
  }
});

test('tls: a client offering only TLS 1.2 is refused and reported', { timeout: 20_000 }, async () => {
  const idA = generateIdentity();
  const pa = await freePort();
  const a = node(idA, 'a', pa, []);
  const events: ProviderEvent[] = [];
  a.on((e) => events.push(e));
  await a.start();
  try {
    const id = generateIdentity();
    const cert = createNodeCertificate(id, { now: Date.now() });
    const err = await new Promise<Error | undefined>((resolve) => {
      const s = tls.connect({
        host: '127.0.0.1',
        port: pa,
        key: cert.keyPem,
        cert: cert.certPem,
        maxVersion: 'TLSv1.2',
        rejectUnauthorized: false,
      });
      s.once('secureConnect', () => {
        s.destroy();
        resolve(undefined);
      });
      s.once('error', (e) => resolve(e));
    });
    assert.ok(err, 'the TLS 1.2 handshake must fail');
    const e = await waitFor(events, (x) => x.type === 'peer.refused');
    assert.equal(e.type === 'peer.refused' && e.code, 'PEER_PROTOCOL_TOO_OLD');
  } finally {
    await a.stop();
  }
});

test('tls: a slow receiver makes the sender wait instead of queueing without bound', {
  timeout: 20_000,
}, async () => {
  const { a, b, idA } = await pair({ credits: 4 });
  const events: ProviderEvent[] = [];
  a.on((e) => events.push(e));
  try {
    await a.waitForPeer('b', { timeoutMs: 10_000 });
    for (let i = 0; i < 4; i++) await a.send('b', eventsFrame(idA, `f${i}`));
    let fifthSent = false;
    const fifth = a.send('b', eventsFrame(idA, 'f4')).then(() => {
      fifthSent = true;
    });
    const held = await take(b, 4, { ack: false });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(fifthSent, false, 'no credit left: the sender waits');
    const t = a.telemetry().find((x) => x.peer === 'b');
    assert.equal(t?.bpFlag, true);
    assert.ok((t?.bpCount ?? 0) >= 1);
    await held[0]!.ack();
    await fifth;
    assert.equal(fifthSent, true);
    const [f] = await take(b, 1);
    assert.ok(f);
    assert.equal(a.telemetry().find((x) => x.peer === 'b')?.bpFlag, false);
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('tls: the link comes back after the peer restarts, and heartbeats measure rtt', {
  timeout: 20_000,
}, async () => {
  const { a, b, idA, idB, pb } = await pair();
  const events: ProviderEvent[] = [];
  a.on((e) => events.push(e));
  let b2: TlsProvider | undefined;
  try {
    await a.waitForPeer('b', { timeoutMs: 10_000 });
    await b.stop();
    await waitFor(
      events,
      (e) => e.type === 'peer.disconnected' && e.peer === 'b' && e.direction === 'outbound',
    );
    const pa = (a.address() as { port: number }).port;
    b2 = node(idB, 'b', pb, [{ computer: 'a', nodeId: idA.nodeId, host: '127.0.0.1', port: pa }]);
    await b2.start();
    await waitFor(
      events,
      (e) =>
        e.type === 'peer.connected' && e.peer === 'b' && e.direction === 'outbound' && events.indexOf(e) > 0,
    );
    await a.waitForPeer('b', { timeoutMs: 10_000 });
    await a.send('b', eventsFrame(idA, 'again'));
    const [f] = await take(b2, 1);
    assert.ok(f);
    for (let i = 0; i < 100 && a.telemetry().find((x) => x.peer === 'b')?.rttMs === undefined; i++)
      await new Promise((r) => setTimeout(r, 20));
    const rtt = a.telemetry().find((x) => x.peer === 'b')?.rttMs;
    assert.equal(typeof rtt, 'number');
    assert.ok((a.telemetry().find((x) => x.peer === 'b')?.readyCount ?? 0) >= 2);
  } finally {
    await a.stop();
    await b.stop();
    await b2?.stop();
  }
});

test('tls: a peer that comes back and dials in is dialled at once, not after the backoff', {
  timeout: 30_000,
}, async () => {
  // A's backoff after a failed dial is 60 s: without the wake the link would stay down past the test.
  const idA = generateIdentity();
  const idB = generateIdentity();
  const [pa, pb] = [await freePort(), await freePort()];
  const a = node(idA, 'a', pa, [{ computer: 'b', nodeId: idB.nodeId, host: '127.0.0.1', port: pb }], {
    reconnect: { minMs: 60_000, maxMs: 60_000 },
  });
  const events: ProviderEvent[] = [];
  a.on((e) => events.push(e));
  await a.start(); // b is not listening: the first dial fails and A waits out its backoff
  await new Promise((r) => setTimeout(r, 300));
  const b = node(idB, 'b', pb, [{ computer: 'a', nodeId: idA.nodeId, host: '127.0.0.1', port: pa }]);
  try {
    await b.start();
    await waitFor(events, (e) => e.type === 'peer.connected' && e.peer === 'b' && e.direction === 'inbound');
    await a.waitForPeer('b', { timeoutMs: 10_000 });
    await a.send('b', eventsFrame(idA, 'back'));
    const [f] = await take(b, 1);
    assert.ok(f);
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('tls: a peer that does not pin our key closes each link at once, and the dials back off (no redial storm)', {
  timeout: 20_000,
}, async () => {
  const idA = generateIdentity();
  const idB = generateIdentity();
  const [pa, pb] = [await freePort(), await freePort()];
  // A pins B; B pins nobody, so it refuses A's connection right after the TLS handshake.
  const a = node(idA, 'a', pa, [{ computer: 'b', nodeId: idB.nodeId, host: '127.0.0.1', port: pb }], { reconnect: { minMs: 50, maxMs: 10_000 } });
  const b = node(idB, 'b', pb, []);
  const refused: ProviderEvent[] = [];
  b.on((e) => {
    if (e.type === 'peer.refused') refused.push(e);
  });
  await b.start();
  await a.start();
  try {
    await new Promise((r) => setTimeout(r, 1600));
    // Backing off from 50 ms: 50, 100, 200, 400, 800 → about 5 dials in 1.6 s; a reset after each handshake made ~30.
    assert.ok(refused.length >= 1, 'the dial reached B');
    assert.ok(refused.length <= 8, `${refused.length} dials refused in 1.6 s`);
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('tls: a send while the peer cannot be dialled says why (connection refused), not only that there is no link', async () => {
  const idA = generateIdentity();
  const idB = generateIdentity();
  const [pa, pb] = [await freePort(), await freePort()];
  const a = node(idA, 'a', pa, [{ computer: 'b', nodeId: idB.nodeId, host: '127.0.0.1', port: pb }]); // nothing listens on pb
  await a.start();
  try {
    let message = '';
    for (let i = 0; i < 100 && !message.includes('dialling it fails'); i++) {
      await a.send('b', eventsFrame(idA, 'x')).catch((err: Error) => {
        message = err.message;
      });
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(message, /^no link to b right now \(dialling it fails: connect ECONNREFUSED 127\.0\.0\.1:\d+\)$/);
  } finally {
    await a.stop();
  }
});

test('tls: sending to a peer that is not pinned is refused', async () => {
  const { a, b } = await pair();
  try {
    await assert.rejects(a.send('nobody', new Uint8Array(10)), { code: 'TRANSPORT_UNKNOWN_PEER' });
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('tls: a node with a dozen peers that are down backs off quietly (no "possible memory leak" warning)', async () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  const peers: TlsPeer[] = [];
  // Free ports nothing listens on: every dial fails and its loop waits on the stop signal.
  for (let i = 0; i < 12; i++) peers.push({ computer: `down${i}`, nodeId: generateIdentity().nodeId, host: '127.0.0.1', port: await freePort() });
  const a = node(generateIdentity(), 'a', await freePort(), peers);
  try {
    await a.start();
    await new Promise((r) => setTimeout(r, 600));
    assert.deepEqual(
      warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message),
      [],
    );
  } finally {
    process.off('warning', onWarning);
    await a.stop();
  }
});
