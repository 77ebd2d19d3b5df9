/**
 * API benchmark: p50/p99 of GET /api/notifications?limit=50 (and a filtered page) with 100,000
 * notifications stored, over real HTTP to a real daemon process; and the idle daemon's RSS.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNode } from '../src/node/index.js';
import { freePort } from '../test/helpers/redis.js';
import { type BenchSection, fmt, percentile, rssMiB } from './harness.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

async function seed(dir: string, n: number): Promise<void> {
  const node = await createNode({ dataDir: dir, computer: 'bench' });
  await node.start();
  for (let i = 0; i < n; i += 5000) {
    await node.emitMany(
      Array.from({ length: 5000 }, (_, k) => ({
        event: 'domain.software-development.planning.todo.created',
        payload: { slug: `s-${i + k}`, title: `Todo ${i + k}` },
      })),
    );
  }
  await node.idle(120_000);
  await node.stop();
}

async function timeGets(url: string, token: string, path: string, n: number): Promise<{ p50: number; p99: number }> {
  const lat: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await fetch(url + path, { headers: { authorization: `Bearer ${token}` } });
    await r.arrayBuffer();
    lat.push(performance.now() - t0);
  }
  lat.sort((a, b) => a - b);
  return { p50: percentile(lat, 50), p99: percentile(lat, 99) };
}

export default async function apiBench(): Promise<BenchSection> {
  const N = Number(process.env.WEFT_BENCH_API_NOTIFICATIONS ?? 100_000);
  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-api-'));
  try {
    await seed(dir, N);
    const port = await freePort();
    const proc = spawn(process.execPath, [CLI, 'daemon'], {
      env: { ...process.env, HOME: dir, WEFT_DATA_DIR: dir, WEFT_API_PORT: String(port), WEFT_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    for (let i = 0; i < 400 && !out.includes('API:'); i++) await new Promise((r) => setTimeout(r, 25));
    const url = `http://127.0.0.1:${port}`;
    const token = readFileSync(join(dir, 'api-token'), 'utf8').trim();
    await new Promise((r) => setTimeout(r, 3000)); // settle, then read the idle RSS
    const idleRss = rssMiB(proc.pid as number);
    await timeGets(url, token, '/api/notifications?limit=50', 50); // warm up
    const plain = await timeGets(url, token, '/api/notifications?limit=50', 1000);
    const filtered = await timeGets(url, token, '/api/notifications?limit=50&humanStatus=unseen&level=2', 1000);
    const deep = await timeGets(url, token, `/api/notifications?limit=50&cursor=${Math.floor(N / 2)}`, 500);
    const loadedRss = rssMiB(proc.pid as number);
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    return {
      title: `HTTP API with ${fmt(N)} notifications stored (real daemon, keep-alive fetch from another process)`,
      rows: [
        { measure: 'GET /api/notifications?limit=50', value: `p50 ${fmt(plain.p50, 2)} ms, p99 ${fmt(plain.p99, 2)} ms` },
        { measure: 'same, filtered (humanStatus=unseen, level>=2)', value: `p50 ${fmt(filtered.p50, 2)} ms, p99 ${fmt(filtered.p99, 2)} ms` },
        { measure: 'same, a page in the middle (cursor)', value: `p50 ${fmt(deep.p50, 2)} ms, p99 ${fmt(deep.p99, 2)} ms` },
        { measure: 'idle daemon RSS (embedded, no mesh)', value: `${fmt(idleRss, 1)} MiB` },
        { measure: 'RSS after the API load', value: `${fmt(loadedRss, 1)} MiB` },
      ],
      results: { notifications: N, listMs: plain, filteredMs: filtered, deepPageMs: deep, idleRssMiB: idleRss, loadedRssMiB: loadedRss },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
