/** Mounts as records: links recorded at start, create/close/reopen, negotiation outcomes, health events. */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { meshPair, type MeshPair } from '../helpers/mesh-pair.js';
import { waitFor } from '../helpers/node.js';

const events = (p: MeshPair, type: string) => p.two.node.ns.log.list({ type, limit: 100 }).map((e) => e.envelope.payload as Record<string, unknown>);

for (const transport of ['memory', 'tls'] as const) {
  describe(`mounts over ${transport}`, () => {
    let p: MeshPair;
    after(async () => p?.cleanup());

    test('each peer link is recorded as peer/link/main with its negotiated serializer policy', async () => {
      p = await meshPair(transport);
      const fed = p.two.federation;
      assert.ok(fed, 'a node with a mesh has federation');
      const link = fed.showMount('one/link/main');
      assert.equal(link.mode, 'link');
      assert.equal(link.state, 'open');
      assert.equal(link.provider, transport);
      assert.equal(link.serializer.crc32c_ok, true);
      assert.equal(link.serializer.warn_down, true);
    });

    test('an invoke mount needs reliable and ordered caps and records what it negotiated', async () => {
      const fed = p.two.federation!;
      const m = await fed.openMount({ peer: 'one', mode: 'invoke', required: ['crc32c'], preferred: ['deflate'] });
      assert.equal(m.key, 'one/invoke/main');
      assert.equal(m.state, 'open');
      assert.deepEqual([m.serializer.crc32c_ok, m.serializer.deflate_ok], [true, true]);
      assert.ok(m.provCaps.includes('reliable') && m.provCaps.includes('ordered'));
      await waitFor(() => events(p, 'federation.mount.opened').some((e) => e.mount === 'one/invoke/main'), 5000, 'federation.mount.opened');
    });

    test('closing keeps the record; creating again reopens it', async () => {
      const fed = p.two.federation!;
      const closed = await fed.closeMount('one/invoke/main', 'test');
      assert.equal(closed.state, 'closed');
      assert.ok(closed.closedAt);
      assert.equal(fed.listMounts().some((m) => m.key === 'one/invoke/main'), false, 'closed mounts are not listed by default');
      assert.equal(fed.listMounts({ includeClosed: true }).some((m) => m.key === 'one/invoke/main'), true);
      const again = await fed.openMount({ peer: 'one', mode: 'invoke' });
      assert.equal(again.id, closed.id, 'the same record');
      assert.equal(again.state, 'open');
      assert.equal(again.closedAt, null);
    });

    test('upd_latest asks for an unreliable provider: noprov, recorded, transport.noprov raised', async () => {
      const fed = p.two.federation!;
      const m = await fed.openMount({ peer: 'one', mode: 'link', name: 'latest', updLatest: true });
      assert.equal(m.state, 'noprov');
      assert.match(m.error ?? '', /unreliable/);
      await waitFor(() => events(p, 'transport.noprov').some((e) => e.peer === 'one'), 5000, 'transport.noprov');
    });

    test('unknown peers and bad specs are clear errors', async () => {
      const fed = p.two.federation!;
      await assert.rejects(fed.openMount({ peer: 'nobody', mode: 'mirror' }), /no Weft peer named 'nobody'/);
      await assert.rejects(fed.openMount({ peer: 'one', mode: 'mirror', name: 'bad name' }), /letters, digits/);
      await assert.rejects(fed.openMount({ peer: 'one', mode: 'mirror', required: ['zstd' as never] }), /not one of crc32c, deflate, aead/);
      assert.throws(() => fed.showMount('one/teleport/main'), /mode one of link, mirror, invoke/);
    });

    test('records survive a restart', async () => {
      await p.restart('two');
      const fed = p.two.federation!;
      const m = fed.showMount('one/invoke/main');
      assert.equal(m.state, 'open');
      assert.equal(fed.showMount('one/link/main').state, 'open');
    });
  });
}

describe('caps negotiation of mounts on a link that lacks deflate and aead', () => {
  let p: MeshPair;
  after(async () => p?.cleanup());

  test('a dropped preferred cap raises transport.flatneg; with warn_down = false it does not', async () => {
    p = await meshPair('memory', { providerCaps: ['crc32c', 'reliable', 'ordered', 'durable'] });
    const fed = p.two.federation!;
    const loud = await fed.openMount({ peer: 'one', mode: 'mirror', name: 'loud', preferred: ['crc32c', 'deflate'], cmpMaxVer: 2 });
    assert.equal(loud.state, 'open');
    assert.deepEqual([loud.serializer.crc32c_ok, loud.serializer.deflate_ok], [true, false]);
    assert.equal(loud.serializer.cmp_max_ver, 2);
    await waitFor(() => events(p, 'transport.flatneg').some((e) => (e.missing as string[]).includes('deflate')), 5000, 'transport.flatneg');
    const before = events(p, 'transport.flatneg').length;
    const quiet = await fed.openMount({ peer: 'one', mode: 'mirror', name: 'quiet', preferred: ['deflate'], warnDown: false });
    assert.equal(quiet.serializer.warn_down, false);
    // A marker emitted after the quiet mount: once it is logged, any flatneg raised before it would be too.
    await p.two.node.emit({ event: 'mesh.test.ping', payload: { n: 1 } });
    await waitFor(() => p.two.node.ns.log.list({ type: 'mesh.test.ping', limit: 5 }).length > 0, 5000, 'marker');
    assert.equal(events(p, 'transport.flatneg').length, before, 'no flatneg for warn_down = false');
  });

  test('a required cap the link lacks: noprov, recorded with the reason', async () => {
    const fed = p.two.federation!;
    const m = await fed.openMount({ peer: 'one', mode: 'invoke', name: 'sealed', required: ['aead'] });
    assert.equal(m.state, 'noprov');
    assert.match(m.error ?? '', /aead/);
  });

  test('an open racing a close of the same mount leaves the record and the puller agreeing', async () => {
    const fed = p.two.federation!;
    const opening = fed.openMount({ peer: 'one', mode: 'mirror', name: 'race' });
    const closing = opening.then(() => fed.closeMount('one/mirror/race'));
    const reopening = fed.openMount({ peer: 'one', mode: 'mirror', name: 'race' });
    await Promise.all([opening, closing, reopening]);
    const rec = fed.showMount('one/mirror/race');
    assert.equal(rec.state, 'closed', 'changes apply in the order they were asked');
    assert.equal(fed.mirror.status(rec.id), undefined, 'no puller under a closed record');
  });
});
