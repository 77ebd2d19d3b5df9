import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { deflateRawSync } from 'node:zlib';
import { Packr } from 'msgpackr';
import { generateIdentity, type NodeIdentity } from '../../src/identity/index.js';
import {
  crc32c,
  type DecodeResult,
  decodeFrame,
  deriveLinkKey,
  encodeFrame,
  type FrameErrorCode,
  generateLinkKeyPair,
  type OutgoingFrame,
  peekFrame,
} from '../../src/transport/index.js';

const alice = generateIdentity();
const bob = generateIdentity();
const keys = new Map([
  [alice.nodeId, alice.publicKey],
  [bob.nodeId, bob.publicKey],
]);
const lookupKey = (id: string) => keys.get(id);
const T = Date.UTC(2026, 0, 1);

const envelopes = [
  { id: 'e1', event: 'build.failed', version: 1, payload: { repo: 'weft', n: 3 }, visibility: 'cluster' },
  { id: 'e2', event: 'note', version: 1, payload: { bytes: Buffer.from([1, 2, 3]) } },
];

function events(seq = 1): OutgoingFrame {
  return { type: 'events', sequence: seq, timestamp: T, body: { envelopes } };
}

function expectError(r: DecodeResult, code: FrameErrorCode, label: string = code): void {
  assert.equal(r.ok, false, `${label}: expected ${code}, frame was accepted`);
  if (!r.ok) assert.equal(r.error.code, code, `${label}: ${r.error.message}`);
}

test('crc32c matches the Castagnoli check value', () => {
  assert.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
});

test('crc32c gives the same value for every length and split, so frames from any sender check', () => {
  // Reference: the plain byte-at-a-time definition.
  const table = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const reference = (d: Uint8Array) => {
    let c = 0xffffffff;
    for (const b of d) c = (table[(c ^ b) & 0xff] as number) ^ (c >>> 8);
    return ~c >>> 0;
  };
  for (let n = 0; n < 70; n++) {
    const data = Uint8Array.from({ length: n }, (_, i) => (i * 131 + n * 7) & 0xff);
    assert.equal(crc32c(data), reference(data), `length ${n}`);
    const cut = Math.floor(n / 3);
    assert.equal(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut))), reference(data), `length ${n} split at ${cut}`);
  }
});

test('an events frame round-trips with its header and envelopes', () => {
  const bytes = encodeFrame(events(7), { identity: alice });
  const r = decodeFrame(bytes, { lookupKey });
  assert.ok(r.ok);
  assert.equal(r.frame.type, 'events');
  assert.equal(r.frame.header.sender, alice.nodeId);
  assert.equal(r.frame.header.sequence, 7);
  assert.equal(r.frame.header.timestamp, T);
  assert.equal(r.frame.header.nonce.length, 16);
  if (r.frame.type === 'events') assert.deepEqual(r.frame.body.envelopes, envelopes);
});

test('every frame type round-trips', () => {
  const record = {
    oldNodeId: alice.nodeId,
    newNodeId: bob.nodeId,
    timestamp: T,
    endorsement: 'x',
    proof: 'y',
  };
  const frames: OutgoingFrame[] = [
    { type: 'ack', sequence: 2, timestamp: T, body: { sequences: [1, 2], envelopeIds: ['e1'] } },
    {
      type: 'hello',
      sequence: 3,
      timestamp: T,
      body: {
        computer: 'mars',
        cluster: 'home',
        caps: ['crc32c'],
        protocolVersions: [1],
        x25519: randomBytes(32),
      },
    },
    { type: 'ping', sequence: 4, timestamp: T, body: { id: 1, sentAt: T } },
    { type: 'pong', sequence: 5, timestamp: T, body: { id: 1, pingSentAt: T, sentAt: T + 1 } },
    { type: 'key-rotation', sequence: 6, timestamp: T, body: { record } },
    { type: 'goodbye', sequence: 7, timestamp: T, body: { reason: 'shutdown' } },
    { type: 'message', sequence: 8, timestamp: T, body: { kind: 'mesh.send', data: { text: 'hi' } } },
  ];
  for (const f of frames) {
    const r = decodeFrame(encodeFrame(f, { identity: alice }), { lookupKey });
    assert.ok(r.ok, `${f.type}: ${r.ok ? '' : r.error.message}`);
    assert.equal(r.frame.type, f.type);
    assert.deepEqual(r.frame.body, f.body);
  }
});

test('crc32c, deflate and both AEAD algorithms round-trip together', () => {
  const a = generateLinkKeyPair();
  const b = generateLinkKeyPair();
  const keyA = deriveLinkKey(a.privateKey, b.publicKey, alice.nodeId, bob.nodeId);
  const keyB = deriveLinkKey(b.privateKey, a.publicKey, bob.nodeId, alice.nodeId);
  assert.deepEqual(keyA, keyB);
  for (const algorithm of ['chacha20-poly1305', 'aes-256-gcm'] as const) {
    const bytes = encodeFrame(events(), {
      identity: alice,
      crc32c: true,
      deflate: true,
      aead: { key: keyA, algorithm },
    });
    const r = decodeFrame(bytes, { lookupKey, aeadKey: keyB });
    assert.ok(r.ok, r.ok ? '' : r.error.message);
    assert.equal(r.frame.header.aead, algorithm);
    assert.equal(r.frame.header.deflate, true);
    assert.equal(r.frame.header.crc32c, true);
    if (r.frame.type === 'events') assert.deepEqual(r.frame.body.envelopes, envelopes);
    // The body is not readable on the wire.
    assert.equal(Buffer.from(bytes).includes(Buffer.from('build.failed')), false);
  }
});

test('a forged signature is refused with FRAME_BAD_SIGNATURE', () => {
  const bytes = Buffer.from(encodeFrame(events(), { identity: alice }));
  bytes[bytes.length - 1]! ^= 0x01;
  expectError(decodeFrame(bytes, { lookupKey }), 'FRAME_BAD_SIGNATURE');
});

test('a frame claiming another sender is refused with FRAME_BAD_SIGNATURE', () => {
  // Mallory signs with her own key but writes alice's id in the header.
  const mallory: NodeIdentity = { ...generateIdentity(), nodeId: alice.nodeId };
  expectError(
    decodeFrame(encodeFrame(events(), { identity: mallory }), { lookupKey }),
    'FRAME_BAD_SIGNATURE',
  );
});

test('a tampered body is refused with FRAME_BAD_SIGNATURE (no crc) or FRAME_BAD_CRC (crc on)', () => {
  const plain = Buffer.from(encodeFrame(events(), { identity: alice }));
  const i = plain.indexOf(Buffer.from('build.failed'));
  plain[i] = 'B'.charCodeAt(0);
  expectError(decodeFrame(plain, { lookupKey }), 'FRAME_BAD_SIGNATURE');
  const withCrc = Buffer.from(encodeFrame(events(), { identity: alice, crc32c: true }));
  withCrc[withCrc.indexOf(Buffer.from('build.failed'))] = 'B'.charCodeAt(0);
  expectError(decodeFrame(withCrc, { lookupKey }), 'FRAME_BAD_CRC');
});

test('an unknown sender is refused with FRAME_UNKNOWN_SENDER', () => {
  const stranger = generateIdentity();
  expectError(
    decodeFrame(encodeFrame(events(), { identity: stranger }), { lookupKey }),
    'FRAME_UNKNOWN_SENDER',
  );
  // A throwing lookup is an unknown sender, not a crash.
  expectError(
    decodeFrame(encodeFrame(events(), { identity: alice }), {
      lookupKey: () => {
        throw new Error('db down');
      },
    }),
    'FRAME_UNKNOWN_SENDER',
  );
});

test('oversized frames are refused on encode and on decode', () => {
  const big = {
    type: 'events' as const,
    sequence: 1,
    timestamp: T,
    body: { envelopes: [{ blob: randomBytes(2048) }] },
  };
  assert.throws(() => encodeFrame(big, { identity: alice, maxFrameSize: 1024 }), {
    code: 'TRANSPORT_FRAME_TOO_LARGE',
  });
  const bytes = encodeFrame(big, { identity: alice });
  expectError(decodeFrame(bytes, { lookupKey, maxFrameSize: 1024 }), 'FRAME_TOO_LARGE');
});

test('a deflate bomb is refused instead of inflating past the frame limit', () => {
  const huge = new Packr({ useRecords: false }).pack({ envelopes: [{ pad: 'a'.repeat(300_000) }] });
  assert.ok(deflateRawSync(huge).length < 2000);
  const bytes = encodeFrame(
    { type: 'events', sequence: 1, timestamp: T, body: { envelopes: [{ pad: 'a'.repeat(300_000) }] } },
    { identity: alice, deflate: true },
  );
  expectError(decodeFrame(bytes, { lookupKey, maxFrameSize: 64 * 1024 }), 'FRAME_INFLATE_FAILED');
});

test('AEAD frames need the right link key', () => {
  const key = randomBytes(32);
  const bytes = encodeFrame(events(), { identity: alice, aead: { key } });
  expectError(decodeFrame(bytes, { lookupKey }), 'FRAME_AEAD_KEY_MISSING');
  expectError(decodeFrame(bytes, { lookupKey, aeadKey: randomBytes(32) }), 'FRAME_AEAD_FAILED');
  assert.ok(decodeFrame(bytes, { lookupKey, aeadKey: (s) => (s === alice.nodeId ? key : undefined) }).ok);
});

/** Re-signs a hand-built frame so the checks after the signature are reached. */
function resign(bytes: Buffer, identity: NodeIdentity): Buffer {
  const out = Buffer.from(bytes);
  out.set(identity.sign(out.subarray(0, out.length - 64)), out.length - 64);
  return out;
}

function withBody(type: number, body: Uint8Array, flags = 0): Buffer {
  const base = Buffer.from(
    encodeFrame({ type: 'goodbye', sequence: 1, timestamp: T, body: {} }, { identity: alice }),
  );
  const senderLen = base.readUInt16BE(40);
  const headerEnd = 42 + senderLen;
  const header = Buffer.from(base.subarray(0, headerEnd));
  header[5] = type;
  header[6] = flags;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return resign(Buffer.concat([header, len, body, Buffer.alloc(64)]), alice);
}

test('every structural defect has its own code', () => {
  const good = Buffer.from(encodeFrame(events(), { identity: alice }));
  const cases: Array<[string, Uint8Array, FrameErrorCode]> = [
    ['empty', new Uint8Array(0), 'FRAME_TRUNCATED'],
    ['bad magic', Buffer.concat([Buffer.from('XEFT'), good.subarray(4)]), 'FRAME_BAD_MAGIC'],
    ['bad version', Buffer.from(good).fill(9, 4, 5), 'FRAME_BAD_VERSION'],
    ['bad type', Buffer.from(good).fill(200, 5, 6), 'FRAME_BAD_TYPE'],
    ['unknown flag', Buffer.from(good).fill(0x80, 6, 7), 'FRAME_BAD_FLAGS'],
    ['two aead flags', Buffer.from(good).fill(0x0c, 6, 7), 'FRAME_BAD_FLAGS'],
    ['reserved byte', Buffer.from(good).fill(1, 7, 8), 'FRAME_BAD_FLAGS'],
    ['truncated', good.subarray(0, good.length - 1), 'FRAME_TRUNCATED'],
    ['trailing bytes', Buffer.concat([good, Buffer.from([0])]), 'FRAME_TRAILING_BYTES'],
    ['sender not a node id', Buffer.from(good).fill(0x21, 42, 50), 'FRAME_BAD_SENDER'],
    ['sequence beyond 2^53', Buffer.from(good).fill(0xff, 8, 16), 'FRAME_BAD_FIELD'],
    ['not msgpack', withBody(1, Buffer.from([0x92, 0x01])), 'FRAME_BAD_MSGPACK'],
    ['msgpack with trailing data', withBody(1, Buffer.from([0x80, 0x80])), 'FRAME_BAD_MSGPACK'],
    ['not deflate', withBody(1, Buffer.from([0xff, 0xff, 0xff]), 0x02), 'FRAME_INFLATE_FAILED'],
    ['body not a map', withBody(1, new Packr().pack([1, 2])), 'FRAME_BAD_FIELD'],
    ['envelopes not an array', withBody(1, new Packr().pack({ envelopes: 3 })), 'FRAME_BAD_FIELD'],
    [
      'envelope not a map',
      withBody(1, new Packr({ useRecords: false }).pack({ envelopes: [1] })),
      'FRAME_BAD_FIELD',
    ],
    [
      'a Date inside',
      withBody(1, new Packr({ useRecords: false }).pack({ envelopes: [{ at: new Date() }] })),
      'FRAME_BAD_FIELD',
    ],
    [
      'ack with strings',
      withBody(2, new Packr({ useRecords: false }).pack({ sequences: ['1'] })),
      'FRAME_BAD_FIELD',
    ],
    ['ping without id', withBody(4, new Packr({ useRecords: false }).pack({ sentAt: 1 })), 'FRAME_BAD_FIELD'],
  ];
  for (const [name, bytes, code] of cases) expectError(decodeFrame(bytes, { lookupKey }), code, name);
  // Non-byte input is a refusal too.
  expectError(decodeFrame('nope' as unknown as Uint8Array, { lookupKey }), 'FRAME_TRUNCATED');
});

test('peekFrame reads the header without trusting it', () => {
  const p = peekFrame(encodeFrame(events(3), { identity: bob }));
  assert.ok(p.ok);
  assert.equal(p.header.sender, bob.nodeId);
  assert.equal(p.header.sequence, 3);
  assert.equal(p.header.type, 'events');
});

test('the same frame encoded twice differs only by nonce and signature', () => {
  const a = Buffer.from(encodeFrame(events(), { identity: alice }));
  const b = Buffer.from(encodeFrame(events(), { identity: alice }));
  assert.notDeepEqual(a.subarray(24, 40), b.subarray(24, 40));
  const n = Buffer.from(randomBytes(16));
  const c = encodeFrame({ ...events(), nonce: n }, { identity: alice });
  const r = decodeFrame(c, { lookupKey });
  assert.ok(r.ok);
  assert.deepEqual(Buffer.from(r.frame.header.nonce), n);
});

test('an events frame may carry envelopes as their JSON text (json-envelopes): decoded, they are the maps the text says', () => {
  const asMaps = [
    { id: 'e1', event: 'build.failed', version: 1, payload: { repo: 'weft', n: 3, nested: { list: [1, 'two', null, true] } }, visibility: 'cluster' },
    { id: 'e2', event: 'note', version: 1, payload: { text: 'ünïcödé ✓ "quoted" \\ back' } },
  ];
  // Mixed on purpose: a frame's envelopes may be either form.
  const bytes = encodeFrame({ type: 'events', sequence: 1, timestamp: T, body: { envelopes: [JSON.stringify(asMaps[0]), asMaps[1] as Record<string, unknown>] } }, { identity: alice, crc32c: true });
  assert.ok(Buffer.from(bytes).includes(Buffer.from('"event":"build.failed"')), 'the first envelope travels as its JSON text');
  const r = decodeFrame(bytes, { lookupKey });
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  assert.equal(r.frame.type, 'events');
  if (r.frame.type === 'events') assert.deepEqual(r.frame.body.envelopes, asMaps);
});

test('envelope JSON text that does not parse, is not a map, or holds a number JSON cannot carry is refused with FRAME_BAD_FIELD', () => {
  const cases: Array<[string, string]> = [
    ['does not parse', '{"id":"e1","event":'],
    ['a number', '5'],
    ['a list', '[{"id":"e1"}]'],
    ['null', 'null'],
    ['an infinite number', '{"id":"e1","payload":{"x":1e400}}'],
  ];
  for (const [label, text] of cases) {
    const bytes = encodeFrame({ type: 'events', sequence: 1, timestamp: T, body: { envelopes: [{ id: 'ok', event: 'note' }, text] } }, { identity: alice });
    expectError(decodeFrame(bytes, { lookupKey }), 'FRAME_BAD_FIELD', label);
  }
  // JSON text parses at any depth (msgpack gives up a few thousand levels down): the body's
  // bound refuses it, as it refuses maps nested as deep.
  for (const depth of [600, 200_000]) {
    const deep = `{"id":"d","payload":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    const r = decodeFrame(encodeFrame({ type: 'events', sequence: 2, timestamp: T, body: { envelopes: [deep] } }, { identity: alice }), { lookupKey });
    expectError(r, 'FRAME_BAD_FIELD', `text nested ${depth} deep`);
    if (!r.ok) assert.match(r.error.message, /deeper than 512 levels/);
  }
  let nested: unknown = 'leaf';
  for (let i = 0; i < 600; i++) nested = [nested];
  expectError(decodeFrame(encodeFrame({ type: 'events', sequence: 3, timestamp: T, body: { envelopes: [{ id: 'm', payload: nested as Record<string, unknown> }] } }, { identity: alice }), { lookupKey }), 'FRAME_BAD_FIELD', 'maps nested 600 deep');
  // A legitimately nested envelope (well within the bound) still passes.
  let ok: unknown = 'leaf';
  for (let i = 0; i < 100; i++) ok = { x: ok };
  assert.ok(decodeFrame(encodeFrame({ type: 'events', sequence: 4, timestamp: T, body: { envelopes: [JSON.stringify({ id: 'n', payload: ok })] } }, { identity: alice }), { lookupKey }).ok);
});
