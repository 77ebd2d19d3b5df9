/**
 * Hostile input for a node's mesh ingress: random bytes, and frames signed by a stranger
 * (an identity no node has pinned) that are then truncated, bit-flipped or spliced. Sent
 * into a node's Redis inbox (`weft:messages:<computer>`, the same fields a real peer writes) or
 * straight at its TLS port.
 */
import { connect } from 'node:net';
import { Redis } from 'ioredis';
import { generateIdentity, type NodeIdentity } from '../../src/identity/index.js';
import { encodeFrame } from '../../src/transport/index.js';
import type { Prng } from './prng.js';

export function mutate(bytes: Uint8Array, rng: Prng): Buffer {
  const b = Buffer.from(bytes);
  switch (rng.int(0, 5)) {
    case 0: {
      const flips = rng.int(1, 6);
      for (let i = 0; i < flips; i++) {
        const at = rng.int(0, b.length);
        b[at] = (b[at] as number) ^ (1 << rng.int(0, 8));
      }
      return b;
    }
    case 1:
      return b.subarray(0, rng.int(0, b.length));
    case 2:
      return Buffer.concat([b, rng.bytes(rng.int(1, 64))]);
    case 3: {
      const at = rng.int(0, b.length);
      return Buffer.concat([b.subarray(0, at), rng.bytes(rng.int(1, 32)), b.subarray(at)]);
    }
    default:
      return rng.bytes(rng.int(0, 512));
  }
}

/** A validly encoded events frame from `identity` carrying ping envelopes that must never be applied. */
export function strangerFrame(identity: NodeIdentity, rng: Prng, claimOrigin: string, ts = Date.now()): Uint8Array {
  const envelopes = Array.from({ length: rng.int(1, 4) }, (_, i) => ({
    id: `garbage-${rng.int(0, 2 ** 31)}-${i}`,
    event: 'mesh.test.ping',
    version: 1,
    source: `weft@${claimOrigin}`,
    timestamp: new Date(ts).toISOString(),
    visibility: 'public',
    payload: { n: 1_000_000_000 + rng.int(0, 1_000_000), note: claimOrigin },
  }));
  return encodeFrame({ type: 'events', sequence: rng.int(1, 2 ** 30), timestamp: ts, body: { envelopes } }, { identity });
}

/** Pipelines `count` garbage entries into a node's Redis inbox; returns how many were written. */
export async function garbageToRedis(url: string, computer: string, count: number, rng: Prng, claimOrigin: string): Promise<number> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  const stranger = generateIdentity();
  try {
    await r.connect();
    const p = r.pipeline();
    for (let i = 0; i < count; i++) {
      const bytes = rng.next() < 0.3 ? rng.bytes(rng.int(0, 300)) : mutate(strangerFrame(stranger, rng, claimOrigin), rng);
      // Unmutated stranger frames too: signed, well formed, from an unknown key.
      const payload = rng.next() < 0.1 ? Buffer.from(strangerFrame(stranger, rng, claimOrigin)) : bytes;
      p.xadd(`weft:messages:${computer}`, '*', 'weft', '1', 'type', 'mesh_event', 'from', rng.pick(['stranger', claimOrigin]), 'payload', payload);
    }
    await p.exec();
    return count;
  } finally {
    r.disconnect();
  }
}

/** Opens `connections` raw TCP connections to a TLS port and writes random bytes on each. */
export async function garbageToTcp(port: number, connections: number, rng: Prng): Promise<number> {
  let sent = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      const chunk = rng.next() < 0.5 ? rng.bytes(rng.int(1, 4096)) : Buffer.concat([Buffer.from([0x16, 0x03, 0x01]), rng.bytes(rng.int(1, 600))]);
      await new Promise<void>((resolve) => {
        const s = connect(port, '127.0.0.1');
        const done = () => {
          s.destroy();
          resolve();
        };
        s.setTimeout(2000, done);
        s.once('connect', () => {
          s.write(chunk, () => {
            sent++;
            setTimeout(done, 50);
          });
        });
        s.once('error', done);
        s.once('close', done);
      });
    }),
  );
  return sent;
}
