/**
 * `npm run bench -- volume`: is a node as fast with a million events and notifications stored
 * as with a few? Two real daemons run side by side on data dirs seeded in this process: one
 * with WEFT_BENCH_VOLUME_N events (default 1,000,000, each with its notification), one with
 * 1,000 (a full page of everything, so both answer the same amount). Measured the same way on
 * both, requests alternating between them so a noisy moment hits both:
 * - `GET /api/notifications?limit=50`, `GET /api/events?limit=50` and a filtered page, p50/p99;
 * - emit throughput over HTTP: 8,000 events in batches of 500 (inside one producer's shipped
 *   trust allowance), until the last batch is durable and applied.
 * Goal (issue 14): the full node's p99 and throughput within 1.5× of the small one's.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNode } from '../src/node/index.js';
import { freePort } from '../test/helpers/redis.js';
import { type BenchSection, fmt, percentile } from './harness.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const GOAL = 1.5;

async function seed(dir: string, n: number): Promise<number> {
  const node = await createNode({ dataDir: dir, computer: 'bench' });
  await node.start();
  const t0 = performance.now();
  for (let i = 0; i < n; i += 5000) {
    await node.emitMany(
      Array.from({ length: Math.min(5000, n - i) }, (_, k) => ({
        event: 'domain.software-development.planning.todo.created',
        payload: { slug: `s-${i + k}`, title: `Todo ${i + k}` },
      })),
    );
    if (n >= 100_000 && (i / 5000) % 40 === 0) process.stderr.write(`volume: seeded ${fmt(i)} of ${fmt(n)}\n`);
  }
  await node.idle(600_000);
  const s = (performance.now() - t0) / 1000;
  await node.stop();
  return n / s;
}

interface Daemon {
  proc: ChildProcess;
  url: string;
  token: string;
  /** ms from spawn to the API listening (the start-up check reads the whole file). */
  startMs: number;
}

async function daemon(dir: string): Promise<Daemon> {
  const port = await freePort();
  const t0 = performance.now();
  const proc = spawn(process.execPath, [CLI, 'daemon'], {
    env: { ...process.env, HOME: dir, WEFT_DATA_DIR: dir, WEFT_API_PORT: String(port), WEFT_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (d) => (out += d));
  proc.stderr?.on('data', (d) => (out += d));
  for (let i = 0; i < 2400 && !out.includes('API:'); i++) await new Promise((r) => setTimeout(r, 25));
  if (!out.includes('API:')) throw new Error(`daemon did not start: ${out.slice(0, 2000)}`);
  return { proc, url: `http://127.0.0.1:${port}`, token: readFileSync(join(dir, 'api-token'), 'utf8').trim(), startMs: performance.now() - t0 };
}

async function get(d: Daemon, path: string): Promise<number> {
  const t0 = performance.now();
  const r = await fetch(d.url + path, { headers: { authorization: `Bearer ${d.token}` } });
  await r.arrayBuffer();
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return performance.now() - t0;
}

/** The same request on both daemons in turn, n times each: p50/p99 of each. */
async function paired(a: Daemon, b: Daemon, path: string, n: number): Promise<[{ p50: number; p99: number }, { p50: number; p99: number }]> {
  const la: number[] = [];
  const lb: number[] = [];
  for (let i = 0; i < 20; i++) {
    await get(a, path);
    await get(b, path);
  }
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0) {
      la.push(await get(a, path));
      lb.push(await get(b, path));
    } else {
      lb.push(await get(b, path));
      la.push(await get(a, path));
    }
  }
  const q = (l: number[]) => {
    l.sort((x, y) => x - y);
    return { p50: percentile(l, 50), p99: percentile(l, 99) };
  };
  return [q(la), q(lb)];
}

/** events/s of `n` events POSTed in batches of 500, each answered once durable (and, when the pipeline is caught up, applied). */
async function emitRate(d: Daemon, n: number, tag: string): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i += 500) {
    const events = Array.from({ length: Math.min(500, n - i) }, (_, k) => ({ event: 'domain.software-development.planning.todo.created', payload: { slug: `${tag}-${i + k}`, title: `New ${i + k}` } }));
    const r = await fetch(`${d.url}/api/events`, { method: 'POST', headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ events }) });
    await r.arrayBuffer();
    if (!r.ok) throw new Error(`emit: HTTP ${r.status}`);
  }
  // Until the last one is applied: its notification is listed.
  for (;;) {
    const r = await fetch(`${d.url}/api/notifications?limit=1`, { headers: { authorization: `Bearer ${d.token}` } });
    const page = (await r.json()) as { items: Array<{ payload?: { slug?: string } }> };
    if (page.items[0]?.payload?.slug === `${tag}-${n - 1}`) break;
    await new Promise((res) => setTimeout(res, 2));
  }
  return n / ((performance.now() - t0) / 1000);
}

const verdict = (ratio: number) => (ratio <= GOAL ? 'met' : 'NOT met');

export default async function volumeBench(): Promise<BenchSection> {
  const N = Number(process.env.WEFT_BENCH_VOLUME_N ?? 1_000_000);
  const SMALL = 1000;
  const bigDir = mkdtempSync(join(tmpdir(), 'weft-bench-volume-big-'));
  const smallDir = mkdtempSync(join(tmpdir(), 'weft-bench-volume-small-'));
  const daemons: Daemon[] = [];
  try {
    const seedRate = await seed(bigDir, N);
    await seed(smallDir, SMALL);
    const dbBytes = statSync(join(bigDir, 'weft.db')).size;
    const big = await daemon(bigDir);
    daemons.push(big);
    const small = await daemon(smallDir);
    daemons.push(small);
    await new Promise((r) => setTimeout(r, 2000));
    const [bList, sList] = await paired(big, small, '/api/notifications?limit=50', 500);
    const [bEvents, sEvents] = await paired(big, small, '/api/events?limit=50', 500);
    const [bFiltered, sFiltered] = await paired(big, small, '/api/notifications?limit=50&humanStatus=unseen&level=2', 500);
    const sRate = await emitRate(small, 8000, 'small');
    const bRate = await emitRate(big, 8000, 'big');
    const ratio = {
      list: bList.p99 / sList.p99,
      events: bEvents.p99 / sEvents.p99,
      filtered: bFiltered.p99 / sFiltered.p99,
      emit: sRate / bRate,
    };
    const row = (measure: string, b: { p50: number; p99: number }, s: { p50: number; p99: number }, r: number) => ({
      measure,
      [`${fmt(N)} stored`]: `p50 ${fmt(b.p50, 2)} / p99 ${fmt(b.p99, 2)} ms`,
      [`${fmt(SMALL)} stored`]: `p50 ${fmt(s.p50, 2)} / p99 ${fmt(s.p99, 2)} ms`,
      ratio: `${fmt(r, 2)}× (goal ≤ ${GOAL}×: ${verdict(r)})`,
    });
    return {
      title: `Flat in stored volume: ${fmt(N)} events and notifications vs ${fmt(SMALL)} (two real daemons, requests alternating; seeded at ${fmt(seedRate)} events/s, ${fmt(dbBytes / 2 ** 20)} MiB)`,
      rows: [
        row('GET /api/notifications?limit=50', bList, sList, ratio.list),
        row('GET /api/events?limit=50', bEvents, sEvents, ratio.events),
        row('GET /api/notifications?limit=50&humanStatus=unseen&level=2', bFiltered, sFiltered, ratio.filtered),
        {
          measure: 'emit over HTTP, 8,000 events in batches of 500, until applied',
          [`${fmt(N)} stored`]: `${fmt(bRate)} events/s`,
          [`${fmt(SMALL)} stored`]: `${fmt(sRate)} events/s`,
          ratio: `${fmt(ratio.emit, 2)}× slower (goal ≤ ${GOAL}×: ${verdict(ratio.emit)})`,
        },
        {
          measure: 'daemon start, spawn → API listening (includes the integrity check of the whole file)',
          [`${fmt(N)} stored`]: `${fmt(big.startMs)} ms`,
          [`${fmt(SMALL)} stored`]: `${fmt(small.startMs)} ms`,
          ratio: `${fmt(big.startMs / small.startMs, 2)}× (no goal)`,
        },
      ],
      results: { stored: N, small: SMALL, seedEventsPerSec: seedRate, dbBytes, list: { big: bList, small: sList }, events: { big: bEvents, small: sEvents }, filtered: { big: bFiltered, small: sFiltered }, emitPerSec: { big: bRate, small: sRate }, startMs: { big: big.startMs, small: small.startMs }, ratio, goal: GOAL },
    };
  } finally {
    for (const d of daemons) {
      d.proc.kill('SIGTERM');
      await new Promise((r) => d.proc.once('exit', r));
    }
    rmSync(bigDir, { recursive: true, force: true });
    rmSync(smallDir, { recursive: true, force: true });
  }
}
