import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { generateIdentity } from '../../src/identity/index.js';
import {
  type DecodeResult,
  decodeFrame,
  encodeFrame,
  FRAME_ERROR_CODES,
  type OutgoingFrame,
} from '../../src/transport/index.js';

const alice = generateIdentity();
const aeadKey = new Uint8Array(32).fill(7);
const opts = {
  lookupKey: (id: string) => (id === alice.nodeId ? alice.publicKey : undefined),
  aeadKey,
  maxFrameSize: 64 * 1024,
};
const T = Date.UTC(2026, 0, 1);

const seeds: Uint8Array[] = (() => {
  const frames: OutgoingFrame[] = [
    {
      type: 'events',
      sequence: 1,
      timestamp: T,
      body: { envelopes: [{ id: 'a', payload: { n: 1, s: 'x'.repeat(40) } }, { id: 'b' }] },
    },
    { type: 'ack', sequence: 2, timestamp: T, body: { sequences: [1] } },
    { type: 'ping', sequence: 3, timestamp: T, body: { id: 9, sentAt: T } },
    { type: 'goodbye', sequence: 4, timestamp: T, body: {} },
  ];
  const variants = [
    {},
    { crc32c: true },
    { deflate: true },
    { aead: { key: aeadKey } },
    { crc32c: true, deflate: true, aead: { key: aeadKey, algorithm: 'aes-256-gcm' as const } },
  ];
  return frames.flatMap((f) => variants.map((v) => encodeFrame(f, { identity: alice, ...v })));
})();

const codes = new Set<string>(FRAME_ERROR_CODES);
const seen = new Map<string, number>();

function mustRefuse(bytes: Uint8Array): void {
  let r: DecodeResult;
  try {
    r = decodeFrame(bytes, opts);
  } catch (err) {
    assert.fail(`decodeFrame threw: ${(err as Error).message}`);
  }
  assert.equal(r.ok, false, 'a random or mutated frame was accepted');
  if (!r.ok) {
    assert.ok(codes.has(r.error.code), `unknown code ${r.error.code}`);
    seen.set(r.error.code, (seen.get(r.error.code) ?? 0) + 1);
  }
}

test('the seed frames themselves decode (so mutations start from valid input)', () => {
  for (const s of seeds) assert.ok(decodeFrame(s, opts).ok);
});

test('50,000 random byte strings: the decoder never throws and accepts none', () => {
  const magicPrefix = fc.uint8Array({ maxLength: 400 }).map((tail) => {
    const b = new Uint8Array(8 + tail.length);
    b.set([0x57, 0x45, 0x46, 0x54, 1, 1 + ((tail[0] ?? 0) % 8), (tail[1] ?? 0) % 16, 0]);
    b.set(tail, 8);
    return b;
  });
  fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 600 }), magicPrefix), mustRefuse), {
    numRuns: 50_000,
  });
});

test('60,000 mutated valid frames: the decoder never throws and accepts none', () => {
  const mutation = fc.record({
    seed: fc.nat({ max: seeds.length - 1 }),
    kind: fc.constantFrom('flip', 'bytes', 'truncate', 'extend', 'splice'),
    pos: fc.nat(),
    count: fc.integer({ min: 1, max: 8 }),
    xor: fc.integer({ min: 1, max: 255 }),
    extra: fc.uint8Array({ minLength: 1, maxLength: 32 }),
  });
  fc.assert(
    fc.property(mutation, (m) => {
      const src = seeds[m.seed]!;
      let out: Uint8Array;
      const p = m.pos % src.length;
      switch (m.kind) {
        case 'flip': {
          out = Uint8Array.from(src);
          out[p]! ^= m.xor;
          break;
        }
        case 'bytes': {
          out = Uint8Array.from(src);
          for (let i = 0; i < m.count; i++) out[(p + i * 7) % out.length]! ^= m.xor;
          break;
        }
        case 'truncate':
          out = src.subarray(0, p);
          break;
        case 'extend':
          out = Buffer.concat([src, m.extra]);
          break;
        default:
          out = Buffer.concat([src.subarray(0, p), m.extra, src.subarray(p + m.extra.length)]);
          if (Buffer.from(out).equals(Buffer.from(src))) out = Buffer.concat([out, m.extra]);
      }
      mustRefuse(out);
    }),
    { numRuns: 60_000 },
  );
  // The fuzzer reached the deep checks, not only the cheap ones.
  for (const code of ['FRAME_BAD_MAGIC', 'FRAME_TRUNCATED', 'FRAME_BAD_SIGNATURE', 'FRAME_TRAILING_BYTES']) {
    assert.ok((seen.get(code) ?? 0) > 0, `no input reached ${code}`);
  }
});
