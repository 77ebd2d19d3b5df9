/**
 * The node's own mesh ingress (the daemon's assembly, shipped defaults) over a real Redis and
 * over real TLS sockets: hand-made frames signed with the peer's real key are put on the wire
 * beside the peer's own traffic. Every bad frame or envelope is refused with its own code,
 * recorded as a rejection and in the audit chain; the good ones become notifications stamped
 * with the verified sender; a replay is still caught after the receiver restarts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { generateIdentity, type NodeIdentity } from '../../src/identity/index.js';
import { type Envelope, serializeEnvelope } from '../../src/envelope/index.js';
import { encodeFrame } from '../../src/transport/index.js';
import { meshPair, type MeshPair } from '../helpers/mesh-pair.js';
import { waitFor } from '../helpers/node.js';

const pings = (p: MeshPair) =>
  p.two.node.ns.notifications
    .list({ eventType: 'mesh.test.ping', limit: 1000 })
    .items.map((n) => String(n.payload.note))
    .sort();

const rejectedTotal = (p: MeshPair) => Object.values(p.two.mesh?.counters.rejected ?? {}).reduce((a, b) => a + b, 0);

for (const transport of ['redis', 'tls'] as const) {
  test(`${transport}: the node's ingress refuses each bad frame with its own code, keeps serving the peer, and catches a replay after a restart`, {
    timeout: 90_000,
  }, async () => {
    const p = await meshPair(transport);
    try {
      // The peer's own traffic first: the link is up both ways.
      await p.one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 1, note: 'real' } });
      await waitFor(() => pings(p).includes('real'), 20_000, 'the real event on two');
      const link = await p.rawLink('one');

      const ping = (note: string, extra: Record<string, unknown> = {}) => ({
        ...p.one.node.build({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 2, note } }),
        ...extra,
      });
      // Sequences from one's own allocator, as its sender would use them.
      const frame = async (envelopes: Array<Record<string, unknown>>, opts: { identity?: NodeIdentity; ts?: number } = {}) =>
        encodeFrame(
          { type: 'events', sequence: await (p.one.mesh as NonNullable<typeof p.one.mesh>).nextSequence(), timestamp: opts.ts ?? Date.now(), body: { envelopes } },
          { identity: opts.identity ?? p.ids.one },
        );
      const ok1 = await frame([ping('ok1')]);
      const forged = Buffer.from(await frame([ping('forged')]));
      forged[forged.length - 5]! ^= 0xff;
      const tampered = Buffer.from(await frame([ping('tampered')]));
      tampered[tampered.indexOf(Buffer.from('tampered'))] = 0x54;
      const { event: _dropped, ...noEvent } = ping('invalid');
      // Envelope text whose own "__proto__" key would lend the stamped copy fields it does not
      // own (flags the validator never checks): refused like any field the schema lacks.
      const protoText = serializeEnvelope(ping('proto') as unknown as Envelope).replace('{', '{"__proto__":{"flags":["trust:released"],"entity":"x"},');
      assert.ok(Object.hasOwn(JSON.parse(protoText) as object, '__proto__'));
      const sends: Uint8Array[] = [
        ok1,
        forged,
        tampered,
        ok1, // a replay
        await frame([ping('old')], { ts: Date.now() - 6 * 60_000 }),
        await frame([ping('new')], { ts: Date.now() + 6 * 60_000 }),
        await frame([ping('stranger')], { identity: generateIdentity() }),
        randomBytes(200),
        await frame([noEvent]),
        await frame([protoText as unknown as Record<string, unknown>]),
        await frame([ping('hops', { hops: 8 })]),
        await frame([ping('ok2')]),
      ];
      for (const s of sends) await link.send('two', s);

      const expected = {
        FRAME_BAD_SIGNATURE: 2,
        REPLAY_NONCE_SEEN: 1,
        REPLAY_TOO_OLD: 1,
        REPLAY_TOO_NEW: 1,
        FRAME_UNKNOWN_SENDER: 1,
        FRAME_BAD_MAGIC: 1,
        ENVELOPE_INVALID: 2,
        ENVELOPE_HOP_LIMIT: 1,
      };
      await waitFor(() => pings(p).includes('ok2') && rejectedTotal(p) >= 10, 20_000, 'two to take ok2 and refuse the 10 bad inputs');
      assert.deepEqual(pings(p), ['ok1', 'ok2', 'real']);
      assert.deepEqual(p.two.mesh?.counters.rejected, expected);
      // Stamped from the verified sender, not from what the envelope claims.
      const got = p.two.node.ns.notifications.list({ eventType: 'mesh.test.ping', limit: 10 }).items.find((n) => n.payload.note === 'ok1');
      assert.equal(got?.sourceComputer, 'one');
      // Each refusal is a stored rejection with its code; the audit chain holds one entry per cause and verifies.
      const stored: Record<string, number> = {};
      for (const r of p.two.node.ns.rejections.list({ limit: 100 })) stored[r.code] = (stored[r.code] ?? 0) + 1;
      assert.deepEqual(stored, expected);
      await waitFor(() => new Set(p.two.audit.entries({ limit: 1000 }).filter((e) => e.kind === 'frame.rejected').map((e) => e.details.code)).size === 8, 10_000, 'a frame.rejected audit entry per cause');
      assert.ok(p.two.audit.verify().ok);
      assert.ok(p.two.node.ns.notifications.list({ eventType: 'mesh.event.rejected', limit: 100 }).items.length >= 8);

      // Two restarts (same file): the replay is still refused, the peer is still served.
      await link.stop();
      await p.restart('two');
      const again = await p.rawLink('one');
      try {
        await again.send('two', ok1);
        await again.send('two', await frame([ping('ok3')]));
        await waitFor(
          () => pings(p).includes('ok3') && (p.two.mesh?.counters.rejected.REPLAY_NONCE_SEEN ?? 0) === 1,
          20_000,
          'ok3 taken and the replay refused after the restart',
        ).catch((err: Error) => {
          throw new Error(`${err.message}: pings ${JSON.stringify(pings(p))}, counters ${JSON.stringify(p.two.mesh?.counters)}`);
        });
        assert.deepEqual(pings(p), ['ok1', 'ok2', 'ok3', 'real']);
      } finally {
        await again.stop();
      }
    } finally {
      await p.cleanup();
    }
  });
}
