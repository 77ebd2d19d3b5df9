/**
 * Two nodes on a real Redis, one of which leaves aead out of its `mesh.caps_preferred`: it can
 * seal, so the other one seals what it sends, but its own frames cross Redis readable. The
 * sealing side says so (a warning, `transport.flatneg`, and `encryption: aead-outbound-only`
 * in its mesh status) instead of showing the link as sealed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { peekFrame } from '../../src/transport/index.js';
import { meshPair } from '../helpers/mesh-pair.js';
import { waitFor } from '../helpers/node.js';

test('redis: a peer that does not prefer aead sends unsealed frames; the node that seals to it reports the link as aead-outbound-only and raises transport.flatneg', async () => {
  const p = await meshPair('redis', { oneMesh: { caps: { preferred: ['crc32c'] } } });
  try {
    const pings = (n: typeof p.two, prefix: string) =>
      n.node.ns.notifications
        .list({ eventType: 'mesh.test.ping', limit: 100 })
        .items.filter((x) => String(x.payload.note).startsWith(prefix)).length;
    await p.one.node.emit({
      event: 'mesh.test.ping',
      visibility: 'cluster',
      payload: { n: 1, note: 'from-one' },
    });
    await p.two.node.emit({
      event: 'mesh.test.ping',
      visibility: 'cluster',
      payload: { n: 1, note: 'from-two' },
    });
    await waitFor(
      () => pings(p.two, 'from-one') === 1 && pings(p.one, 'from-two') === 1,
      20_000,
      'both events delivered',
    );
    const sealed = (frames: Uint8Array[]) =>
      frames
        .map((b) => peekFrame(b))
        .filter((r) => r.ok && r.header.type === 'events')
        .map((r) => (r.ok ? r.header.aead !== null : false));
    // The premise: one's event frames are plain, two's are sealed.
    assert.ok(sealed(p.sent.one).length > 0 && sealed(p.sent.one).every((x) => !x), 'one sends unsealed');
    assert.ok(
      sealed(p.sent.two).length > 0 && sealed(p.sent.two).every((x) => x),
      `two seals (${JSON.stringify(sealed(p.sent.two))})`,
    );
    const status = () => p.two.mesh?.status() as { peers: Array<{ computer: string; encryption: unknown }> };
    await waitFor(
      () => status().peers.find((x) => x.computer === 'one')?.encryption === 'aead-outbound-only',
      10_000,
      `two's status to say one's frames arrive unsealed (it says ${JSON.stringify(status().peers)})`,
    );
    await waitFor(
      () => p.two.node.ns.log.list({ type: 'transport.flatneg' }).length === 1,
      10_000,
      'transport.flatneg on two',
    );
    assert.deepEqual(p.two.node.ns.log.list({ type: 'transport.flatneg' })[0]?.envelope.payload, {
      peer: 'one',
      missing: ['aead'],
    });
    // Said once: more unsealed frames raise nothing more.
    await p.one.node.emit({
      event: 'mesh.test.ping',
      visibility: 'cluster',
      payload: { n: 2, note: 'from-one-again' },
    });
    await waitFor(() => pings(p.two, 'from-one') === 2, 20_000, 'second event');
    assert.equal(p.two.node.ns.log.list({ type: 'transport.flatneg' }).length, 1);
  } finally {
    await p.cleanup();
  }
});
