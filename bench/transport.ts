/**
 * Transport bench: events/s from node A to node B over each provider with signing and
 * verification on, against raw pipelined ioredis XADD + XREADGROUP of the same bytes (the
 * ceiling), plus the cost of signing and verifying per event at batch sizes 1, 16 and 256.
 * The envelopes go as the mesh's sender sends them to a peer that offered `json-envelopes`:
 * the outbox's JSON text as it is (B's decoder parses it back to maps); the per-event costs
 * are printed for maps too (what goes to an older peer).
 */
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { TestRedis, freePort } from '../test/helpers/redis.js';
import { generateIdentity, type NodeIdentity } from '../src/identity/index.js';
import {
  decodeFrame,
  encodeFrame,
  MemoryNetwork,
  memoryProvider,
  type Provider,
  redisProvider,
  tlsProvider,
  type WireEnvelope,
} from '../src/transport/index.js';
import { systemClock } from '../src/util/clock.js';
import { silentLogger } from '../src/util/logger.js';
import { type BenchSection, fmt } from './harness.js';

const BATCH = Number(process.env.WEFT_BENCH_BATCH ?? 64);
const FRAMES = 3000;
const WINDOW = 128;

function envelope(i: number): WireEnvelope {
  return {
    id: `01J${String(i).padStart(23, '0')}`,
    event: 'build.failed',
    version: 1,
    source: 'ci-runner',
    timestamp: '2026-01-01T00:00:00.000Z',
    level: 2,
    domain: 'engineering',
    visibility: 'cluster',
    description: 'build of weft failed on main',
    payload: { repo: 'weft', branch: 'main', attempt: i % 7, url: 'https://ci.example/run/12345' },
  };
}

/** The envelopes as the sender's outbox holds them: their JSON text. */
function texts(n: number): string[] {
  return Array.from({ length: n }, (_, i) => JSON.stringify(envelope(i)));
}

let seq = 0;
function frameOf(identity: NodeIdentity, n: number): Uint8Array {
  const envelopes = texts(n);
  return encodeFrame(
    { type: 'events', sequence: ++seq, timestamp: Date.now(), body: { envelopes } },
    { identity },
  );
}

/** A→B through a provider pair: A signs and sends, B verifies and acks. */
async function runProvider(a: Provider, b: Provider, peer: string, idA: NodeIdentity): Promise<number> {
  const lookupKey = (s: string) => (s === idA.nodeId ? idA.publicKey : undefined);
  await a.waitForPeer(peer, { timeoutMs: 10_000 });
  const envelopes = texts(BATCH);
  const t0 = performance.now();
  const receiver = (async () => {
    let n = 0;
    for await (const f of b.frames()) {
      const r = decodeFrame(f.bytes, { lookupKey });
      if (!r.ok) throw new Error(`bench frame refused: ${r.error.code}`);
      await f.ack();
      if (++n >= FRAMES) break;
    }
  })();
  const inflight = new Set<Promise<void>>();
  for (let i = 0; i < FRAMES; i++) {
    const bytes = encodeFrame(
      { type: 'events', sequence: ++seq, timestamp: Date.now(), body: { envelopes } },
      { identity: idA },
    );
    const p = a.send(peer, bytes).then(() => {
      inflight.delete(p);
    });
    inflight.add(p);
    if (inflight.size >= WINDOW) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  await receiver;
  return (FRAMES * BATCH) / ((performance.now() - t0) / 1000);
}

/** The ceiling: the same frame bytes, pipelined XADD and XREADGROUP + XACK, no crypto. */
async function runRawRedis(url: string, bytes: Uint8Array): Promise<number> {
  const w = new Redis(url, { enableAutoPipelining: true });
  const r = new Redis(url);
  const stream = `bench:raw:${Date.now()}`;
  await w.call('XGROUP', 'CREATE', stream, 'g', '0', 'MKSTREAM');
  const payload = Buffer.from(bytes);
  const t0 = performance.now();
  const reader = (async () => {
    let n = 0;
    while (n < FRAMES) {
      const res = (await r.callBuffer(
        'XREADGROUP',
        'GROUP',
        'g',
        'c',
        'COUNT',
        256,
        'BLOCK',
        1000,
        'STREAMS',
        stream,
        '>',
      )) as unknown[] | null;
      if (!res || res.length === 0) continue;
      const entries = (Array.isArray(res[0]) ? (res[0] as unknown[])[1] : res[1]) as [Buffer, Buffer[]][];
      const ids = entries.map((e) => e[0]);
      n += entries.length;
      await w.call('XACK', stream, 'g', ...ids);
    }
  })();
  for (let i = 0; i < FRAMES; i += WINDOW) {
    const p = w.pipeline();
    for (let j = i; j < Math.min(FRAMES, i + WINDOW); j++)
      p.call('XADD', stream, '*', 'type', 'mesh_event', 'payload', payload);
    await p.exec();
  }
  await reader;
  const rate = (FRAMES * BATCH) / ((performance.now() - t0) / 1000);
  w.disconnect();
  r.disconnect();
  return rate;
}

function signingCost(
  identity: NodeIdentity,
  batch: number,
  form: 'text' | 'maps',
): { signUs: number; verifyUs: number; bytesPerEvent: number } {
  // Maps: what the sender parsed from its outbox to pack (the parse counted, as it was paid).
  const rows = texts(batch);
  const envelopes = (): Array<WireEnvelope | string> => (form === 'text' ? rows : rows.map((r) => JSON.parse(r) as WireEnvelope));
  const iterations = Math.max(20, Math.floor(4000 / batch));
  let bytes: Uint8Array = new Uint8Array(0);
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) {
    bytes = encodeFrame(
      { type: 'events', sequence: i + 1, timestamp: Date.now(), body: { envelopes: envelopes() } },
      { identity, crc32c: true },
    );
  }
  const t1 = performance.now();
  const lookupKey = () => identity.publicKey;
  for (let i = 0; i < iterations; i++) decodeFrame(bytes, { lookupKey });
  const t2 = performance.now();
  const events = iterations * batch;
  return {
    signUs: ((t1 - t0) * 1000) / events,
    verifyUs: ((t2 - t1) * 1000) / events,
    bytesPerEvent: bytes.length / batch,
  };
}

export default async function transportBench(): Promise<BenchSection> {
  const redis = await TestRedis.start();
  const deps = { logger: silentLogger, clock: systemClock };
  const idA = generateIdentity();
  const idB = generateIdentity();
  const rows: BenchSection['rows'] = [];
  const results: Record<string, unknown> = {};
  try {
    const ceiling = await runRawRedis(redis.url, frameOf(idA, BATCH));

    const net = new MemoryNetwork();
    const ma = memoryProvider({ network: net, computer: 'a' })(deps);
    const mb = memoryProvider({ network: net, computer: 'b' })(deps);
    await ma.start();
    await mb.start();
    const memory = await runProvider(ma, mb, 'b', idA);
    await ma.stop();
    await mb.stop();

    const ra = redisProvider({ url: redis.url, computer: 'bench-a', trimEveryMs: 0 })(deps);
    const rb = redisProvider({ url: redis.url, computer: 'bench-b', trimEveryMs: 0 })(deps);
    await ra.start();
    await rb.start();
    const viaRedis = await runProvider(ra, rb, 'bench-b', idA);
    await ra.stop();
    await rb.stop();

    const [pa, pb] = [await freePort(), await freePort()];
    const ta = tlsProvider({
      computer: 'a',
      port: pa,
      peers: [{ computer: 'b', nodeId: idB.nodeId, host: '127.0.0.1', port: pb }],
    })({ ...deps, identity: idA });
    const tb = tlsProvider({
      computer: 'b',
      port: pb,
      peers: [{ computer: 'a', nodeId: idA.nodeId, host: '127.0.0.1', port: pa }],
    })({ ...deps, identity: idB });
    await ta.start();
    await tb.start();
    const viaTls = await runProvider(ta, tb, 'b', idA);
    await ta.stop();
    await tb.stop();

    const show = (name: string, rate: number) =>
      rows.push({
        what: `A→B ${name} (sign+verify, ${BATCH}/frame, JSON text)`,
        'events/s': fmt(rate),
        'vs raw redis': `${fmt((rate / ceiling) * 100)}%`,
      });
    rows.push({
      what: `raw ioredis XADD+XREADGROUP, same bytes (ceiling)`,
      'events/s': fmt(ceiling),
      'vs raw redis': '100%',
    });
    show('redis provider', viaRedis);
    show('tls provider', viaTls);
    show('memory provider', memory);
    results.eventsPerSecond = { rawRedisCeiling: ceiling, redis: viaRedis, tls: viaTls, memory };
    results.redisRatioToCeiling = viaRedis / ceiling;
    results.batch = BATCH;
    results.frames = FRAMES;

    const costs: Record<string, unknown> = {};
    for (const form of ['text', 'maps'] as const) {
      for (const b of [1, 16, 256]) {
        const c = signingCost(idA, b, form);
        costs[`${form}${b}`] = c;
        rows.push({
          what: `encode+sign per event, batch ${b}, envelopes as ${form === 'text' ? 'JSON text' : 'maps (parsed from the outbox)'}`,
          'events/s': `${fmt(c.signUs, 2)} µs`,
          'vs raw redis': `verify+decode ${fmt(c.verifyUs, 2)} µs, ${fmt(c.bytesPerEvent)} B/event`,
        });
      }
    }
    results.perEventCost = costs;
  } finally {
    await redis.stop();
  }
  return { title: 'Transport: frames A→B per provider', rows, results };
}
