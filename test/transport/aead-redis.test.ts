/**
 * Sealed frames over Redis: with the shipped defaults a shared Redis carries no payload a
 * reader could use; what reaches a node sealed with the wrong key or altered is refused and
 * recorded; the link keys survive a restart; a replaced link key heals through the hellos
 * with every event delivered once.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config/index.js';
import { type AssembledNode, assembleNode, meshFromConfig } from '../../src/daemon/index.js';
import { generateIdentity } from '../../src/identity/index.js';
import { DEFAULT_LINK_CAPS } from '../../src/mesh/index.js';
import { crc32c, decodeFrame, deriveLinkKey, encodeFrame, loadOrCreateLinkKeyPair, peekFrame } from '../../src/transport/index.js';
import { meshPair } from '../helpers/mesh-pair.js';
import { waitFor } from '../helpers/node.js';
import { TestRedis } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

/** A node assembled exactly as `weft daemon` assembles it from its config (env only: the defaults). */
async function daemonLikeNode(dataDir: string, computer: string, redisUrl: string): Promise<AssembledNode> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const cfg = loadConfig({
    env: { HOME: dataDir, WEFT_DATA_DIR: dataDir, WEFT_COMPUTER_NAME: computer, WEFT_COMPUTER_CLUSTER: 'home', WEFT_MESH_PROVIDER: 'redis', WEFT_REDIS_URL: redisUrl },
  });
  assert.deepEqual(cfg.mesh.caps_preferred, ['crc32c', 'aead'], 'the shipped default prefers aead');
  assert.deepEqual(cfg.mesh.caps_required, []);
  const url = cfg.redis.url as string;
  const n = await assembleNode({
    dataDir: cfg.data_dir,
    computer: cfg.computer.name,
    cluster: 'home',
    redis: { url, prefix: cfg.redis.prefix, stream: cfg.redis.stream, group: cfg.redis.group },
    redisPrefix: cfg.redis.prefix,
    ...meshFromConfig(cfg),
  });
  await n.start();
  return n;
}

const pingsIn = (n: AssembledNode, mark: string) => n.node.ns.log.list({ type: 'mesh.test.ping', limit: 10_000 }).filter((e) => String((e.envelope.payload as { note?: unknown }).note ?? '').startsWith(mark));

type PeerStatus = { computer: string; negotiatedCaps: unknown; encryption: unknown; state: string; linkKey: unknown };
const peerStatus = (n: AssembledNode, peer: string) => (n.mesh!.status() as { peers: PeerStatus[] }).peers.find((p) => p.computer === peer) as PeerStatus;
/** Envelopes one's sender has handed to the transport so far (sent, not necessarily acknowledged). */
const sentEnvelopes = (n: AssembledNode) => (n.mesh!.status() as { peers: Array<{ sent: { envelopes: number } }> }).peers[0]?.sent.envelopes ?? 0;

/** Offsets of a frame's parts (see the codec's layout). */
function layout(bytes: Uint8Array) {
  const b = Buffer.from(bytes);
  const bodyStart = 42 + b.readUInt16BE(40) + 4;
  const bodyEnd = bodyStart + b.readUInt32BE(bodyStart - 4);
  const crc = (b[6] as number) & 0x01 ? 4 : 0;
  return { bodyStart, bodyEnd, crc, signedEnd: bodyEnd + crc };
}

test('link.key: made 0600 on first use, the same key on every load; a loose mode, another key type and a low-order peer key are refused', () => {
  const t = tempDir('weft-linkkey-');
  try {
    const path = join(t.dir, 'sub', 'link.key');
    const first = loadOrCreateLinkKeyPair(path);
    assert.equal(first.created, true);
    assert.equal((statSync(path).mode & 0o777).toString(8), '600');
    const again = loadOrCreateLinkKeyPair(path);
    assert.equal(again.created, false);
    assert.deepEqual(again.pair.publicKey, first.pair.publicKey);
    chmodSync(path, 0o644);
    assert.throws(() => loadOrCreateLinkKeyPair(path), (e: Error & { code?: string }) => e.code === 'IDENTITY_KEY_MODE' && /chmod 600/.test(e.message));
    const other = join(t.dir, 'ed.key');
    writeFileSync(other, generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    assert.throws(() => loadOrCreateLinkKeyPair(other), /not x25519/);
    // Both ends derive the same key; a public key that is a low-order point gives none.
    const peer = loadOrCreateLinkKeyPair(join(t.dir, 'peer.key')).pair;
    assert.deepEqual(deriveLinkKey(first.pair.privateKey, peer.publicKey, 'weft:ed25519:a', 'weft:ed25519:b'), deriveLinkKey(peer.privateKey, first.pair.publicKey, 'weft:ed25519:b', 'weft:ed25519:a'));
    assert.throws(() => deriveLinkKey(first.pair.privateKey, new Uint8Array(32), 'a', 'b'));
  } finally {
    t.cleanup();
  }
});

test('default config over Redis: no mesh frame and no other key on the shared Redis holds a payload (the nodes\' own bus streams aside), and every event arrives once', async (t) => {
  const tmp = tempDir('weft-aead-');
  const redis = await TestRedis.start();
  const r = new Redis(redis.url);
  let a: AssembledNode | undefined;
  let b: AssembledNode | undefined;
  try {
    a = await daemonLikeNode(join(tmp.dir, 'a'), 'a', redis.url);
    b = await daemonLikeNode(join(tmp.dir, 'b'), 'b', redis.url);
    const na = a;
    const nb = b;
    await waitFor(() => na.peers.byName('b') !== undefined && nb.peers.byName('a') !== undefined, 20_000, 'discovery through the registry');
    const CANARY = `canary-${randomBytes(6).toString('hex')}`;
    const N = 40;
    for (let i = 0; i < N; i++) await na.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: i, note: `${CANARY}-${i}` } });
    await waitFor(() => pingsIn(nb, CANARY).length >= N, 30_000, 'every event on b');
    await waitFor(() => (na.mesh?.outbox.depth('b') ?? 1) === 0, 20_000, "a's outbox for b drained");
    // Exactly once: every id once, nothing extra after the acks settle.
    await new Promise((res) => setTimeout(res, 300));
    const got = pingsIn(nb, CANARY);
    assert.equal(got.length, N);
    assert.equal(new Set(got.map((e) => e.envelope.id)).size, N);
    // Sealed frames wait for b's hello, which offers json-envelopes too.
    const st = peerStatus(na, 'b');
    assert.deepEqual(st.negotiatedCaps, ['crc32c', 'aead', 'json-envelopes']);
    assert.equal(st.encryption, 'aead');
    assert.equal(st.linkKey, 'known');

    // Every key on that Redis: streams entry by entry, hashes, strings, lists, sets.
    const needles = [Buffer.from(CANARY), Buffer.from('mesh.test.ping')];
    const busStreams = new Set([`${'weft:'}events:a`, `${'weft:'}events:b`]);
    let inboxEntries = 0;
    let sealedFrames = 0;
    let busHits = 0;
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'COUNT', 500);
      cursor = next;
      for (const key of keys) {
        const type = await r.type(key);
        const values: Buffer[] = [];
        if (type === 'stream') {
          for (const [, fields] of (await r.xrangeBuffer(key, '-', '+')) as Array<[Buffer, Buffer[]]>) {
            values.push(...fields);
            if (!key.startsWith('weft:messages:')) continue;
            inboxEntries++;
            const m = new Map<string, Buffer>();
            for (let i = 0; i + 1 < fields.length; i += 2) m.set(String(fields[i]), fields[i + 1] as Buffer);
            const peek = peekFrame(m.get('payload') as Buffer);
            assert.ok(peek.ok, `a Weft frame on ${key}`);
            // Only hellos (a public key, caps and names) cross unsealed.
            if (peek.header.type === 'hello') continue;
            assert.equal(peek.header.aead, 'chacha20-poly1305', `a ${peek.header.type} frame on ${key} is sealed`);
            sealedFrames++;
          }
        } else if (type === 'hash') {
          values.push(...Object.values(await r.hgetallBuffer(key)));
        } else if (type === 'string') {
          values.push((await r.getBuffer(key)) as Buffer);
        } else if (type === 'list') {
          values.push(...(await r.lrangeBuffer(key, 0, -1)));
        } else if (type === 'set') {
          values.push(...(await r.smembersBuffer(key)));
        }
        for (const v of values) {
          for (const needle of needles) {
            if (!v.includes(needle)) continue;
            // Each node's own bus stream is its local log kept on Redis (redis.url puts it there):
            // not mesh traffic, outside what link keys protect. Reported, not hidden.
            if (busStreams.has(key)) busHits++;
            else assert.fail(`plaintext '${needle}' found in ${type} ${key}`);
          }
        }
      }
    } while (cursor !== '0');
    assert.ok(inboxEntries > 0 && sealedFrames > 0, `the mesh inboxes were scanned (${inboxEntries} entries, ${sealedFrames} sealed frames)`);
    t.diagnostic(`${inboxEntries} inbox entries, ${sealedFrames} sealed frames; ${busHits} plaintext hits in the nodes' own bus streams (the local log on Redis, not the mesh)`);
  } finally {
    r.disconnect();
    await a?.stop();
    await b?.stop();
    await redis.stop();
    tmp.cleanup();
  }
});

test('redis: an altered sealed frame and a frame sealed with a wrong key are refused and recorded, never applied', async () => {
  const p = await meshPair('redis');
  try {
    await p.one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 0, note: 'first' } });
    await waitFor(() => pingsIn(p.two, 'first').length === 1, 20_000, 'first event');
    const sealed = p.sent.one.find((bytes) => {
      const h = peekFrame(bytes);
      return h.ok && h.header.type === 'events' && h.header.aead !== null;
    });
    assert.ok(sealed, 'one sealed its events frame');
    const { bodyStart, bodyEnd, crc, signedEnd } = layout(sealed);
    const link = await p.rawLink('one');
    const rejected = (code: string) => p.two.mesh?.counters.rejected[code] ?? 0;
    const recorded = (code: string) => p.two.node.ns.rejections.list({ code }).length;

    // 1. A bit flipped in the ciphertext (the CRC fixed up, as anyone on the path can): the signature fails.
    const flipped = Buffer.from(sealed);
    flipped[bodyStart + 3] = (flipped[bodyStart + 3] as number) ^ 0x01;
    if (crc) flipped.writeUInt32BE(crc32c(flipped.subarray(0, bodyEnd)), bodyEnd);
    await link.send('two', flipped);
    await waitFor(() => rejected('FRAME_BAD_SIGNATURE') === 1, 10_000, 'FRAME_BAD_SIGNATURE');
    await waitFor(() => recorded('FRAME_BAD_SIGNATURE') === 1, 5_000, 'the refusal recorded');

    // 2. The same flip signed again with one's own key (only one could): the AEAD tag fails.
    const resigned = Buffer.from(flipped);
    resigned.set(p.ids.one.sign(resigned.subarray(0, signedEnd)), signedEnd);
    const d = decodeFrame(resigned, { lookupKey: () => p.ids.one.publicKey, aeadKey: () => p.two.mesh?.linkKey('one') });
    assert.equal(d.ok ? 'ok' : d.error.code, 'FRAME_AEAD_FAILED');
    await link.send('two', resigned);
    await waitFor(() => rejected('FRAME_AEAD_FAILED') === 1, 10_000, 'FRAME_AEAD_FAILED (altered ciphertext)');

    // 3. Correctly signed by one, sealed with a key that is not the link's.
    const envelope = p.one.node.build({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 1, note: 'wrong-key' } });
    const wrong = encodeFrame(
      { type: 'events', sequence: 9_000_000, timestamp: Date.now(), body: { envelopes: [envelope as unknown as Record<string, unknown>] } },
      { identity: p.ids.one, crc32c: true, aead: { key: randomBytes(32) } },
    );
    await link.send('two', wrong);
    await waitFor(() => rejected('FRAME_AEAD_FAILED') === 2, 10_000, 'FRAME_AEAD_FAILED (wrong key)');
    await waitFor(() => recorded('FRAME_AEAD_FAILED') === 2, 5_000, 'both recorded');
    const rows = p.two.node.ns.rejections.list({ code: 'FRAME_AEAD_FAILED' });
    assert.ok(rows.every((x) => x.origin === 'mesh:one'), 'recorded against the verified sender');
    // Nothing of it reached the pipeline; the link itself still works.
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(pingsIn(p.two, 'wrong-key').length, 0);
    await p.one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 2, note: 'after' } });
    await waitFor(() => pingsIn(p.two, 'after').length === 1, 20_000, 'the link still carries events');
  } finally {
    await p.cleanup();
  }
});

test('redis: the receiver restarts with its data dir: it still opens what was sealed for it, no new key exchange', async () => {
  const p = await meshPair('redis');
  try {
    const linkKeyFile = join(p.two.node.ns.store.path, '..', 'link.key');
    assert.equal((statSync(linkKeyFile).mode & 0o777).toString(8), '600', 'link.key is 0600');
    await p.one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 0, note: 'r-before' } });
    await waitFor(() => pingsIn(p.two, 'r-before').length === 1, 20_000, 'first event');
    const keyBefore = p.two.mesh?.linkKey('one');
    assert.ok(keyBefore);
    const pem = readFileSync(linkKeyFile, 'utf8');
    await p.two.stop();
    const hellosBefore = p.sent.one.filter((x) => (peekFrame(x) as { header?: { type: string } }).header?.type === 'hello').length;
    for (let i = 0; i < 10; i++) await p.one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: i, note: `r-down-${i}` } });
    await waitFor(() => sentEnvelopes(p.one) >= 11, 10_000, 'sealed frames waiting on Redis');
    const two = await p.restart('two');
    // Known from the store before any frame arrived.
    assert.deepEqual(two.mesh?.linkKey('one'), keyBefore);
    assert.equal(readFileSync(linkKeyFile, 'utf8'), pem, 'the same link key');
    await waitFor(() => pingsIn(two, 'r-down-').length === 10, 20_000, 'events sent while two was down');
    await waitFor(() => (p.one.mesh?.outbox.depth('two') ?? 1) === 0, 20_000, "one's outbox drained");
    assert.equal(two.mesh?.counters.rejected.FRAME_AEAD_FAILED ?? 0, 0);
    assert.equal(two.mesh?.counters.rejected.FRAME_AEAD_KEY_MISSING ?? 0, 0);
    const hellosAfter = p.sent.one.filter((x) => (peekFrame(x) as { header?: { type: string } }).header?.type === 'hello').length;
    assert.equal(hellosAfter, hellosBefore, 'one sent no hello: nothing needed exchanging again');
    assert.equal(pingsIn(two, 'r-down-').length, 10);
  } finally {
    await p.cleanup();
  }
});

test("redis: the receiver's link key is replaced: frames sealed with the stale key are refused, the hellos heal the link, every event arrives once", async () => {
  const p = await meshPair('redis');
  try {
    const linkKeyFile = join(p.two.node.ns.store.path, '..', 'link.key');
    await p.one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 0, note: 's-before' } });
    await waitFor(() => pingsIn(p.two, 's-before').length === 1, 20_000, 'first event');
    const oldKey = p.one.mesh?.linkKey('two');
    await p.two.stop();
    const N = 25;
    for (let i = 0; i < N; i++) await p.one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: i, note: `s-down-${i}` } });
    await waitFor(() => sentEnvelopes(p.one) >= N + 1, 10_000, 'frames sealed with the old key on Redis');
    rmSync(linkKeyFile);
    const two = await p.restart('two');
    await waitFor(() => pingsIn(two, 's-down-').length >= N, 30_000, 'every event after the re-exchange');
    await waitFor(() => (p.one.mesh?.outbox.depth('two') ?? 1) === 0, 20_000, "one's outbox drained");
    await new Promise((res) => setTimeout(res, 500));
    const got = pingsIn(two, 's-down-');
    assert.equal(got.length, N, 'each exactly once');
    assert.equal(new Set(got.map((e) => e.envelope.id)).size, N);
    assert.ok((two.mesh?.counters.rejected.FRAME_AEAD_FAILED ?? 0) >= 1, 'what was sealed with the stale key was refused');
    assert.ok(two.node.ns.rejections.list({ code: 'FRAME_AEAD_FAILED' }).length >= 1, 'and recorded');
    assert.notDeepEqual(p.one.mesh?.linkKey('two'), oldKey, 'one derived the new link key');
    assert.deepEqual(p.one.mesh?.linkKey('two'), two.mesh?.linkKey('one'), 'both ends agree');
    assert.equal(peerStatus(p.one, 'two').state !== 'keying', true);
  } finally {
    await p.cleanup();
  }
});

test('mesh.caps_required = ["aead"] works over Redis and over TLS (sealed frames on both); a peer without aead gets transport.noprov', async () => {
  for (const transport of ['redis', 'tls'] as const) {
    const p = await meshPair(transport, { oneMesh: { caps: { required: ['aead'] } } });
    try {
      await p.one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 0, note: `req-${transport}` } });
      await waitFor(() => pingsIn(p.two, `req-${transport}`).length === 1, 20_000, `delivery over ${transport}`);
      assert.equal(peerStatus(p.one, 'two').encryption, 'aead');
      const events = p.sent.one.filter((x) => (peekFrame(x) as { header?: { type: string } }).header?.type === 'events');
      assert.ok(events.length > 0 && events.every((x) => (peekFrame(x) as { header: { aead: unknown } }).header.aead !== null), `every events frame over ${transport} is sealed`);
    } finally {
      await p.cleanup();
    }
  }
  const p = await meshPair('redis', { oneMesh: { caps: { required: ['aead'] } }, capsOf: { two: ['crc32c', 'deflate', 'reliable', 'ordered', 'durable'] } });
  try {
    await p.one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 0, note: 'noprov' } });
    await waitFor(() => p.one.node.ns.notifications.list({ eventType: 'transport.noprov' }).items.length === 1, 15_000, 'transport.noprov');
    assert.equal(peerStatus(p.one, 'two').negotiatedCaps, 'noprov');
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(pingsIn(p.two, 'noprov').length, 0, 'nothing crossed in plaintext');
    assert.equal((p.one.mesh?.outbox.depth('two') ?? 0) >= 1, true, 'the outbox keeps it');
    await assert.rejects(p.one.mesh!.sendMessage('two', 'text', { text: 'hi' }, { timeoutMs: 500 }), /no link to 'two'/);
  } finally {
    await p.cleanup();
  }
});

test('defaults: over TLS the preferred aead is met by the channel (no sealing twice, no transport.flatneg); the mesh default is the config default', async () => {
  assert.deepEqual(DEFAULT_LINK_CAPS.preferred, loadConfig({ env: { HOME: '/nonexistent' } }).mesh.caps_preferred);
  const p = await meshPair('tls');
  try {
    await p.one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 0, note: 'tls-default' } });
    await waitFor(() => pingsIn(p.two, 'tls-default').length === 1, 20_000, 'delivery');
    // Two's hello (which may come after the first frame) adds json-envelopes.
    await waitFor(() => JSON.stringify(peerStatus(p.one, 'two').negotiatedCaps) === '["crc32c","json-envelopes"]', 10_000, 'caps after the hello');
    const st = peerStatus(p.one, 'two');
    assert.equal(st.encryption, 'tls');
    assert.equal(p.one.node.ns.log.list({ type: 'transport.flatneg' }).length, 0);
    const events = p.sent.one.filter((x) => (peekFrame(x) as { header?: { type: string } }).header?.type === 'events');
    assert.ok(events.length > 0 && events.every((x) => (peekFrame(x) as { header: { aead: unknown } }).header.aead === null));
  } finally {
    await p.cleanup();
  }
});

test('redis: a peer whose key never arrives gets no plaintext: the link shows keying, no frame carries the payload in the clear, sendMessage fails in time', async () => {
  const p = await meshPair('redis');
  try {
    // A peer that is pinned but never runs: no hello ever comes back.
    p.one.peers.upsert({ computer: 'ghost', cluster: 'pair', nodeId: generateIdentity().nodeId, trustLevel: 'peer', origin: 'static' });
    await p.one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 0, note: 'ghost-canary' } });
    await waitFor(() => peerStatus(p.one, 'ghost')?.state === 'keying', 10_000, 'the ghost link keying');
    await assert.rejects(p.one.mesh!.sendMessage('ghost', 'text', { text: 'ghost-canary' }, { timeoutMs: 300 }), /no link key for 'ghost'/);
    await waitFor(() => pingsIn(p.two, 'ghost-canary').length === 1, 20_000, 'two still gets it');
    assert.equal(p.one.mesh?.outbox.depth('ghost'), 1, 'the outbox keeps it for the ghost');
    const toGhost = p.sent.one.filter((x) => Buffer.from(x).includes(Buffer.from('ghost-canary')));
    assert.equal(toGhost.length, 0, 'no frame with the payload in the clear');
  } finally {
    await p.cleanup();
  }
});

test('redis: a message sent with sendMessage on an aead link is sealed, and so is every ack', async () => {
  const p = await meshPair('redis');
  try {
    const got: unknown[] = [];
    p.two.mesh?.onMessage('aead.test', (m) => {
      got.push(m.data);
    });
    await p.one.mesh?.sendMessage('two', 'aead.test', { secret: 'msg-canary' }, { timeoutMs: 10_000 });
    await waitFor(() => got.length === 1, 10_000, 'the message');
    const msg = p.sent.one.filter((x) => (peekFrame(x) as { header?: { type: string } }).header?.type === 'message');
    assert.ok(msg.length === 1 && (peekFrame(msg[0] as Uint8Array) as { header: { aead: unknown } }).header.aead !== null, 'sealed');
    assert.equal(Buffer.from(msg[0] as Uint8Array).includes(Buffer.from('msg-canary')), false);
    // Acks are sealed too.
    await p.one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 0, note: 'ack' } });
    await waitFor(() => (p.one.mesh?.outbox.depth('two') ?? 1) === 0, 20_000, 'acked');
    const acks = p.sent.two.filter((x) => (peekFrame(x) as { header?: { type: string } }).header?.type === 'ack');
    assert.ok(acks.length > 0 && acks.every((x) => (peekFrame(x) as { header: { aead: unknown } }).header.aead !== null), 'every ack sealed');
  } finally {
    await p.cleanup();
  }
});
