/**
 * `npm run bench -- compare`: the same job on what users would pick instead and on Weft —
 * N events delivered durably from one process to a consumer in another, deduplicated by event
 * id, acknowledged only after processing:
 * - NATS JetStream: file storage, `Nats-Msg-Id` dedup, durable pull consumer with explicit
 *   ack, against its own `nats-server -js` on a free loopback port (temp store dir). Needs the
 *   `nats` npm package (nats@2.29.3) and the binary; says which is missing otherwise.
 * - Redis Streams: XADD with the id as a field, a consumer group (XREADGROUP), dedup by
 *   SADD on a processed-ids set, XACK after processing, in a child process.
 * - Weft over Redis, over a Redis Cluster (3 masters + 3 replicas, six local redis-servers,
 *   `redis.cluster = true`) and over TLS: two real daemons; the producer POSTs `mesh.test.load`
 *   cluster events to A; B applies them (dedup by envelope id, outbox row removed only on B's
 *   signed ack). Delivery time is when B's WebSocket push arrives, i.e. after B committed, at
 *   a consumer process of its own as for the other systems; TLS peers dial each other directly.
 * Two phases each: a burst of N events as fast as the producer goes (events/s), and a paced
 * run at 1,000 events/s (p50/p99 latency, send → processed).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { WeftClient } from '../src/client/index.js';
import { readToken } from '../src/config/index.js';
import { freePort, TestRedis } from '../test/helpers/redis.js';
import { startFleet } from '../test/chaos/fleet.js';
import { startCluster } from '../test/helpers/cluster.js';
import { TestNats } from '../test/helpers/nats.js';
import { TestRedisCluster } from '../test/helpers/redis-cluster.js';
import { type BenchSection, fmt, percentile } from './harness.js';

const BURST = Number(process.env.WEFT_COMPARE_N ?? 5000);
const PACED_RATE = 1000;
const PACED_N = Number(process.env.WEFT_COMPARE_PACED_N ?? 3000);

interface PhaseResult {
  eventsPerSec: number;
  p50: number;
  p99: number;
  delivered: number;
  /** Events sent; a phase with fewer delivered hit its deadline and its figures are not comparable. */
  expected: number;
}
interface SystemResult {
  system: string;
  burst?: PhaseResult;
  paced?: PhaseResult;
  skipped?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends n events at `rate` per second (0 = as fast as possible) in batches. */
async function produce(n: number, rate: number, send: (batch: Array<{ id: string; sentAt: number }>) => Promise<void>, prefix: string): Promise<void> {
  const t0 = Date.now();
  let i = 0;
  while (i < n) {
    const due = rate === 0 ? n : Math.min(n, Math.floor(((Date.now() - t0) / 1000) * rate) + 1);
    const k = Math.min(rate === 0 ? 500 : 200, due - i);
    if (k > 0) {
      const sentAt = Date.now();
      await send(Array.from({ length: k }, (_, j) => ({ id: `${prefix}-${i + j}`, sentAt })));
      i += k;
    } else await sleep(2);
  }
}

function phase(lat: Array<{ sentAt: number; doneAt: number }>, expected: number): PhaseResult {
  const l = lat.map((x) => x.doneAt - x.sentAt).sort((a, b) => a - b);
  const first = Math.min(...lat.map((x) => x.sentAt));
  const last = Math.max(...lat.map((x) => x.doneAt));
  return { eventsPerSec: lat.length / Math.max(0.001, (last - first) / 1000), p50: percentile(l, 50), p99: percentile(l, 99), delivered: lat.length, expected };
}

/** The consumer side, in a child process: prints one JSON line per processed batch. */
async function worker(kind: string, url: string, stream: string, n: number): Promise<void> {
  if (kind !== 'redis') throw new Error(`unknown worker ${kind}`);
  const r = new Redis(url);
  await r.xgroup('CREATE', stream, 'g', '0', 'MKSTREAM').catch(() => undefined);
  let done = 0;
  process.stdout.write('ready\n');
  while (done < n) {
    const res = (await r.xreadgroup('GROUP', 'g', 'c1', 'COUNT', 500, 'BLOCK', 1000, 'STREAMS', stream, '>')) as Array<[string, Array<[string, string[]]>]> | null;
    if (!res) continue;
    const entries = res[0]?.[1] ?? [];
    const p = r.multi();
    for (const [, f] of entries) p.sadd(`${stream}:seen`, f[1] as string);
    const added = ((await p.exec()) ?? []).map((x) => x[1] as number);
    const out: Array<[number, number]> = [];
    const now = Date.now();
    entries.forEach(([, f], i) => {
      if (added[i] === 1) out.push([Number(f[3]), now]); // processing = recording it
    });
    await r.xack(stream, 'g', ...entries.map((e) => e[0]));
    done += out.length;
    process.stdout.write(`${JSON.stringify(out)}\n`);
  }
  r.disconnect();
}

function spawnWorker(args: string[]): { proc: ChildProcess; results: Array<{ sentAt: number; doneAt: number }>; ready: Promise<void>; done: (n: number) => Promise<void> } {
  const proc = spawn(process.execPath, [fileURLToPath(import.meta.url), '--compare-worker', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const results: Array<{ sentAt: number; doneAt: number }> = [];
  let buf = '';
  let readyResolve: () => void = () => undefined;
  let readyReject: (e: Error) => void = () => undefined;
  const ready = new Promise<void>((res, rej) => {
    readyResolve = res;
    readyReject = rej;
  });
  // A consumer that dies before it is ready (cannot connect, cannot subscribe) fails its system's row.
  proc.once('exit', (code) => readyReject(new Error(`the ${args[0]} consumer exited with code ${code} before it was ready`)));
  proc.stdout?.on('data', (d) => {
    buf += d;
    let i = buf.indexOf('\n');
    while (i >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line === 'ready') readyResolve();
      else for (const [s, t] of JSON.parse(line) as Array<[number, number]>) results.push({ sentAt: s, doneAt: t });
      i = buf.indexOf('\n');
    }
  });
  return {
    proc,
    results,
    ready,
    done: async (n) => {
      const deadline = Date.now() + 120_000;
      while (results.length < n && Date.now() < deadline) await sleep(20);
    },
  };
}

async function redisStreams(): Promise<SystemResult> {
  const redis = await TestRedis.start();
  try {
    const out: SystemResult = { system: 'Redis Streams (consumer group)' };
    for (const [name, n, rate] of [['burst', BURST, 0], ['paced', PACED_N, PACED_RATE]] as const) {
      const stream = `bench:${name}`;
      const w = spawnWorker(['redis', redis.url, stream, String(n)]);
      await w.ready;
      const r = new Redis(redis.url);
      await produce(n, rate, async (batch) => {
        const p = r.pipeline();
        for (const e of batch) p.xadd(stream, '*', 'id', e.id, 'sentAt', String(e.sentAt));
        await p.exec();
      }, name);
      await w.done(n);
      r.disconnect();
      w.proc.kill();
      out[name] = phase(w.results, n);
    }
    return out;
  } finally {
    await redis.stop();
  }
}

/** Two daemons on a private Redis Cluster, shaped like a fleet. */
async function clusterPair(root: string, rc: TestRedisCluster) {
  const c = await startCluster(root, [{ computer: 'a', cluster: 'pair' }, { computer: 'b', cluster: 'pair' }], {
    provider: 'redis',
    redisUrl: rc.url,
    extraEnv: { WEFT_LOG_LEVEL: 'error', WEFT_REDIS_CLUSTER: 'true' },
  });
  return { byName: (name: string) => c.nodes[name] as (typeof c.nodes)[string], stop: () => c.stopAll() };
}

/** Two daemons on a private nats-server -js, shaped like a fleet. */
async function natsPair(root: string, ns: TestNats) {
  const c = await startCluster(root, [{ computer: 'a', cluster: 'pair' }, { computer: 'b', cluster: 'pair' }], {
    provider: 'nats',
    natsUrl: ns.url,
    extraEnv: { WEFT_LOG_LEVEL: 'error' },
  });
  return { byName: (name: string) => c.nodes[name] as (typeof c.nodes)[string], stop: () => c.stopAll() };
}

async function weft(provider: 'redis' | 'tls' | 'redis-cluster' | 'nats'): Promise<SystemResult> {
  const root = mkdtempSync(join(tmpdir(), 'weft-compare-'));
  const rc = provider === 'redis-cluster' ? await TestRedisCluster.start() : undefined;
  const ns = provider === 'nats' ? await TestNats.start() : undefined;
  const fleet = rc
    ? await clusterPair(root, rc).catch(async (err: unknown) => {
        await rc.stop();
        throw err;
      })
    : ns
      ? await natsPair(root, ns).catch(async (err: unknown) => {
          await ns.stop();
          throw err;
        })
      : await startFleet(
        root,
        [
          { computer: 'a', cluster: 'pair', mesh: provider as 'redis' | 'tls' },
          { computer: 'b', cluster: 'pair', mesh: provider as 'redis' | 'tls' },
        ],
        // The shipped trust defaults (a cluster peer at trust level `peer` may send 20,000/s).
        // TLS peers dial each other directly: the fleet's link proxies would put this busy
        // process (producer, WebSocket reader) in the middle of every frame.
        { extraEnv: { WEFT_LOG_LEVEL: 'error' }, directTls: true },
      );
  try {
    const a = fleet.byName('a');
    const b = fleet.byName('b');
    if (provider !== 'tls') {
      for (let i = 0; i < 200; i++) {
        if ((await a.api.request<unknown[]>('GET', '/api/peers')).length > 0) break;
        await sleep(100);
      }
    }
    const out: SystemResult = { system: `Weft mesh over ${({ redis: 'Redis', 'redis-cluster': 'Redis Cluster', nats: 'NATS JetStream', tls: 'TLS' } as const)[provider]}` };
    for (const [name, n, rate] of [['burst', BURST, 0], ['paced', PACED_N, PACED_RATE]] as const) {
      // The consumer is a process of its own, as for the other systems: B's pushes are read
      // and timed there, not in this process while it produces.
      const w = spawnWorker(['weft', b.api.url, name, String(n), b.dataDir]);
      await w.ready;
      await produce(n, rate, async (batch) => {
        await a.api.emitMany(batch.map((e, i) => ({ event: 'mesh.test.load', visibility: 'cluster', payload: { n: i, sentAt: e.sentAt, note: e.id } })));
      }, name);
      await w.done(n);
      w.proc.kill();
      out[name] = phase(w.results, n);
    }
    return out;
  } finally {
    await fleet.stop();
    await rc?.stop();
    await ns?.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

interface NatsLike {
  connect(o: { servers: string }): Promise<{
    jetstream(): { publish(subj: string, data: Uint8Array, o: { msgID: string }): Promise<unknown> };
    jetstreamManager(): Promise<{ streams: { add(c: unknown): Promise<unknown> }; consumers: { add(s: string, c: unknown): Promise<unknown> } }>;
    close(): Promise<void>;
  }>;
}

async function jetstream(): Promise<SystemResult> {
  const system = 'NATS JetStream (file, Nats-Msg-Id, durable explicit ack)';
  const bin = spawnSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' }).stdout.trim();
  if (!bin) return { system, skipped: 'nats-server not found on PATH' };
  const modName = 'nats';
  const nats = (await import(modName).catch(() => undefined)) as (NatsLike & Record<string, unknown>) | undefined;
  if (!nats) return { system, skipped: `nats-server found at ${bin}, but the npm package nats@2.29.3 is not installed (npm i -D nats@2.29.3)` };
  const port = await freePort();
  const store = mkdtempSync(join(tmpdir(), 'weft-nats-'));
  const server = spawn(bin, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', store], { stdio: 'ignore' });
  try {
    // Ready when it answers: connect until it does (up to 10 s), not a fixed sleep.
    let nc: Awaited<ReturnType<NatsLike['connect']>> | undefined;
    for (const deadline = Date.now() + 10_000; !nc; ) {
      nc = await nats.connect({ servers: `127.0.0.1:${port}` }).catch(() => undefined);
      if (!nc) {
        if (Date.now() > deadline) throw new Error(`nats-server on ${port} did not answer within 10 s`);
        await sleep(50);
      }
    }
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: 'BENCH', subjects: ['bench.>'], storage: 'file', duplicate_window: 120_000_000_000 });
    const js = nc.jetstream();
    const out: SystemResult = { system };
    for (const [name, n, rate] of [['burst', BURST, 0], ['paced', PACED_N, PACED_RATE]] as const) {
      await jsm.consumers.add('BENCH', { durable_name: `c-${name}`, ack_policy: 'explicit', filter_subject: `bench.${name}` });
      const w = spawnWorker(['nats', `127.0.0.1:${port}`, name, String(n)]);
      await w.ready;
      await produce(n, rate, async (batch) => {
        await Promise.all(batch.map((e) => js.publish(`bench.${name}`, new TextEncoder().encode(JSON.stringify(e)), { msgID: e.id })));
      }, name);
      await w.done(n);
      w.proc.kill();
      out[name] = phase(w.results, n);
    }
    await nc.close();
    return out;
  } finally {
    server.kill();
    rmSync(store, { recursive: true, force: true });
  }
}

/**
 * How a consumer process reports: `delivered(sentAt)` once per first delivery, written as one
 * stdout line per batch (a line per message would cost the consumer more than the system it
 * times); `end()` writes what is left.
 */
function deliveryLines(): { delivered(sentAt: number): void; end(): void } {
  let lines: Array<[number, number]> = [];
  let flushing: NodeJS.Immediate | undefined;
  const flush = () => {
    if (lines.length > 0) process.stdout.write(`${JSON.stringify(lines)}\n`);
    lines = [];
  };
  return {
    delivered(sentAt) {
      lines.push([sentAt, Date.now()]);
      if (lines.length >= 500) flush();
      flushing ??= setImmediate(() => {
        flushing = undefined;
        flush();
      });
    },
    end() {
      if (flushing) clearImmediate(flushing);
      flush();
    },
  };
}

/**
 * The Weft consumer side: B's WebSocket pushes of created `mesh.test.load` notifications. B
 * pushes after its commit (and fsync), so a push's arrival is when the event was durably
 * processed there, not the batch start that createdAt records.
 */
async function weftWorker(url: string, name: string, n: number, dataDir: string): Promise<void> {
  const client = new WeftClient({ url, token: readToken(dataDir) as string });
  const sub = client.subscribe({ eventType: 'mesh.test.load' });
  await sub.ready;
  process.stdout.write('ready\n');
  const seen = new Set<string>();
  const out = deliveryLines();
  for await (const p of sub) {
    if (p.change.kind !== 'created') continue;
    const note = String(p.notification.payload.note);
    if (!note.startsWith(`${name}-`) || seen.has(note)) continue;
    seen.add(note);
    out.delivered(Number(p.notification.payload.sentAt));
    if (seen.size >= n) break;
  }
  out.end();
  sub.close();
}

/** The NATS consumer side (needs the nats package): durable pull consumer, ack after processing. */
async function natsWorker(server: string, name: string, n: number): Promise<void> {
  const modName = 'nats';
  // biome-ignore lint/suspicious/noExplicitAny: optional dependency, typed loosely
  const nats = (await import(modName)) as any;
  const nc = await nats.connect({ servers: server });
  const c = await nc.jetstream().consumers.get('BENCH', `c-${name}`);
  const seen = new Set<string>();
  process.stdout.write('ready\n');
  const out = deliveryLines();
  const msgs = await c.consume({ max_messages: 500 });
  for await (const m of msgs) {
    const e = JSON.parse(new TextDecoder().decode(m.data)) as { id: string; sentAt: number };
    if (!seen.has(e.id)) {
      seen.add(e.id);
      out.delivered(e.sentAt);
    }
    m.ack();
    if (seen.size >= n) break;
  }
  out.end();
  await nc.close();
}

/** What a row's "processed" survives, so the rows are read like for like. */
const DURABILITY: Record<string, string> = {
  // A second row with `sync_interval: always` needs nats-server 2.10+; this machine has 2.9.10.
  'NATS JetStream': 'file store, default sync (fsync every 2 min)',
  'Redis Streams': 'memory (no AOF): lost on a Redis crash',
  'Weft mesh over Redis': 'SQLite synchronous=FULL on both ends (fsync per batch)',
  'Weft mesh over Redis Cluster': 'SQLite synchronous=FULL on both ends (fsync per batch)',
  'Weft mesh over TLS': 'SQLite synchronous=FULL on both ends (fsync per batch)',
  'Weft mesh over NATS JetStream': 'SQLite synchronous=FULL on both ends (fsync per batch); the inbox on JetStream\'s file store between them',
};

export default async function compare(): Promise<BenchSection> {
  const results: SystemResult[] = [];
  // WEFT_COMPARE_ONLY=weft-tls,jetstream runs only those (for profiling one system).
  const only = (process.env.WEFT_COMPARE_ONLY ?? '').split(',').filter(Boolean);
  const systems: Array<[string, () => Promise<SystemResult>]> = [
    ['jetstream', jetstream],
    ['redis-streams', redisStreams],
    ['weft-redis', () => weft('redis')],
    ['weft-redis-cluster', () => weft('redis-cluster')],
    ['weft-tls', () => weft('tls')],
    ['weft-nats', () => weft('nats')],
  ];
  for (const [key, run] of systems.filter(([k]) => only.length === 0 || only.includes(k))) {
    const r = await run().catch((err: Error) => ({ system: `${key} (failed)`, skipped: err.message }) as SystemResult);
    process.stderr.write(`compare: ${r.system} ${r.skipped ? `skipped: ${r.skipped}` : 'done'}\n`);
    results.push(r);
  }
  const weftRows = results.filter((r) => r.system.startsWith('Weft') && r.burst);
  const rows = results.map((r) => {
    const row: Record<string, string | number> = {
      system: r.system,
      'burst events/s': r.burst ? fmt(r.burst.eventsPerSec) : r.skipped ?? '-',
      [`p50 ms @${PACED_RATE}/s`]: r.paced ? fmt(r.paced.p50, 1) : '-',
      [`p99 ms @${PACED_RATE}/s`]: r.paced ? fmt(r.paced.p99, 1) : '-',
      // Every row says how much arrived; one that missed its deadline is not a result.
      delivered: r.burst && r.paced ? `${r.burst.delivered}/${r.burst.expected}, ${r.paced.delivered}/${r.paced.expected}` : '-',
      complete: r.burst && r.paced && r.burst.delivered === r.burst.expected && r.paced.delivered === r.paced.expected ? 'yes' : 'NO (not met)',
      durability: DURABILITY[r.system.split(' (')[0] as string] ?? '?',
    };
    for (const w of weftRows) {
      if (w === r || !r.burst || !w.burst) continue;
      row[`${w.system.replace('Weft mesh over ', 'Weft/')} throughput ratio`] = fmt(w.burst.eventsPerSec / r.burst.eventsPerSec, 2);
    }
    return row;
  });
  return { title: `Same job, other systems: ${BURST} events burst, ${PACED_N} events at ${PACED_RATE}/s`, rows, results: { burst: BURST, pacedN: PACED_N, pacedRate: PACED_RATE, systems: results } };
}

if (process.argv[2] === '--compare-worker') {
  const [kind, url, stream, n, dataDir] = process.argv.slice(3) as [string, string, string, string, string];
  if (kind === 'nats') await natsWorker(url, stream, Number(n));
  else if (kind === 'weft') await weftWorker(url, stream, Number(n), dataDir);
  else await worker(kind, url, stream, Number(n));
  process.exit(0);
} else if (process.argv[1]?.endsWith('compare.js')) {
  const s = await compare();
  console.table(s.rows);
  console.log(JSON.stringify(s.results, null, 1));
}
