/**
 * `npm run bench -- startup`: what a new user feels first. Wall time of CLI calls (median of
 * 20, each a fresh process) against bare `node -e 0` measured in the same run, and the resident
 * memory of an idle embedded daemon after 30 s against an idle bare node. Then what each module
 * adds to a process's memory when loaded in the daemon's order, so the cost of each is written
 * down. Goals from the performance issue: `weft --version` < 80 ms, `weft emit` and
 * `weft notifications list` < 150 ms, idle daemon < 50 MB, and < 70 MB with the mesh on (TLS,
 * linked to 3 peers: four real daemons in one cluster, shipped defaults).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFleet } from '../test/chaos/fleet.js';
import { freePort } from '../test/helpers/redis.js';
import { type BenchSection, fmt, percentile, rssMiB } from './harness.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The daemon as `npm start` runs it. */
const CLI = join(ROOT, 'dist/src/cli/main.js');
/** The command a user types: package.json's `bin` (a CommonJS file that hands all but `--version` to main.js). */
const BIN = join(ROOT, 'dist/src/cli/weft.cjs');
const RUNS = Number(process.env.WEFT_STARTUP_RUNS ?? 20);
const IDLE_MS = Number(process.env.WEFT_STARTUP_IDLE_MS ?? 30_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Median wall ms of `RUNS` fresh processes (one warm-up not counted); throws if one fails. */
function medianWallMs(args: string[], env: NodeJS.ProcessEnv = process.env): number {
  const times: number[] = [];
  for (let i = 0; i <= RUNS; i++) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const ms = performance.now() - t0;
    if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${String(r.stderr).slice(0, 400)}`);
    if (i > 0) times.push(ms);
  }
  return percentile(times.sort((a, b) => a - b), 50);
}

/** RSS of a process that has been idle for `ms`. */
async function idleRss(args: string[], env: NodeJS.ProcessEnv, ready: () => boolean, ms: number): Promise<number> {
  const child = spawn(process.execPath, args, { env, stdio: 'ignore' });
  try {
    const deadline = Date.now() + 20_000;
    while (!ready()) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${args.join(' ')} did not become ready`);
      await sleep(50);
    }
    await sleep(ms);
    return rssMiB(child.pid as number);
  } finally {
    child.kill('SIGINT');
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
  }
}

/**
 * RSS of each of four daemons linked over TLS in one cluster (each has 3 peers), idle for `ms`
 * once the first one's three links are up.
 */
async function meshIdleRss(ms: number): Promise<{ rss: number[]; linked: boolean }> {
  const root = mkdtempSync(join(tmpdir(), 'weft-bench-mesh-idle-'));
  const fleet = await startFleet(
    root,
    ['a', 'b', 'c', 'd'].map((computer) => ({ computer, cluster: 'idle', mesh: 'tls' as const })),
    { extraEnv: { WEFT_LOG_LEVEL: 'error' } },
  );
  try {
    const a = fleet.byName('a');
    let linked = false;
    const deadline = Date.now() + 30_000;
    while (!linked && Date.now() < deadline) {
      const s = await a.api.request<{ peers: Array<{ state: string }> }>('GET', '/api/mesh/status');
      linked = s.peers.length === 3 && s.peers.every((p) => p.state === 'connected' || p.state === 'active');
      if (!linked) await sleep(200);
    }
    await sleep(ms);
    return { rss: fleet.nodes.map((n) => rssMiB(n.pid as number)), linked };
  } finally {
    await fleet.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

/** What each module adds to RSS when loaded in turn, in a fresh process (shared start-up cost lands on the first). */
function moduleCosts(): Array<{ module: string; mb: number }> {
  const mods = [
    'pino',
    'better-sqlite3',
    '@sinclair/typebox',
    ...['envelope', 'store', 'catalog', 'pipeline', 'cartridges', 'node', 'api', 'transport', 'mesh', 'sovereignty', 'delivery', 'daemon'].map(
      (m) => join(ROOT, `dist/src/${m}/index.js`),
    ),
    'ws',
    'ioredis',
    'msgpackr',
  ];
  const script = `
    const out = [];
    let prev = process.memoryUsage().rss;
    for (const m of ${JSON.stringify(mods)}) {
      await import(m.startsWith('/') ? 'file://' + m : m);
      globalThis.gc();
      const r = process.memoryUsage().rss;
      out.push({ module: m.replace(${JSON.stringify(`${join(ROOT, 'dist/src')}/`)}, 'weft:').replace('/index.js', ''), mb: (r - prev) / 1048576 });
      prev = r;
    }
    console.log(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`module cost probe failed: ${r.stderr.slice(0, 400)}`);
  return JSON.parse(r.stdout) as Array<{ module: string; mb: number }>;
}

const verdict = (ok: boolean) => (ok ? 'met' : 'not met');

export default async function startup(): Promise<BenchSection> {
  const bare = medianWallMs(['-e', '0']);
  const version = medianWallMs([BIN, '--version']);

  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-startup-'));
  const port = await freePort();
  const env = { ...process.env, WEFT_DATA_DIR: dir, WEFT_API_PORT: String(port), HOME: dir };
  const daemon = spawn(process.execPath, [CLI, 'daemon'], { env, stdio: 'ignore' });
  let emit = Number.NaN;
  let list = Number.NaN;
  try {
    const info = join(dir, 'daemon.json');
    const deadline = Date.now() + 20_000;
    while (!existsSync(info)) {
      if (Date.now() > deadline || daemon.exitCode !== null) throw new Error('the daemon did not start');
      await sleep(50);
    }
    await sleep(500);
    emit = medianWallMs(
      [BIN, 'emit', 'system.worker.crashed', '-p', '{"worker":"bench","error":"startup bench","restarts":0}'],
      env,
    );
    list = medianWallMs([BIN, 'notifications', 'list'], env);
  } finally {
    daemon.kill('SIGINT');
    await new Promise((r) => (daemon.exitCode !== null ? r(null) : daemon.once('exit', r)));
  }
  rmSync(dir, { recursive: true, force: true });

  const idleDir = mkdtempSync(join(tmpdir(), 'weft-bench-idle-'));
  const idleEnv = { ...process.env, WEFT_DATA_DIR: idleDir, WEFT_API_PORT: String(await freePort()), HOME: idleDir };
  const [daemonRss, bareRss] = await Promise.all([
    idleRss([CLI, 'daemon'], idleEnv, () => existsSync(join(idleDir, 'daemon.json')), IDLE_MS),
    idleRss(['-e', 'setInterval(() => {}, 1000)'], process.env, () => true, IDLE_MS),
  ]);
  rmSync(idleDir, { recursive: true, force: true });
  const mesh = await meshIdleRss(IDLE_MS);
  const meshRss = mesh.rss[0] as number;
  const costs = moduleCosts();

  const rows: Array<Record<string, string | number>> = [
    { measure: 'bare `node -e 0` (floor, same run)', value: `${fmt(bare)} ms`, goal: '', verdict: '' },
    { measure: '`weft --version`', value: `${fmt(version)} ms`, goal: '< 80 ms', verdict: verdict(version < 80) },
    { measure: '`weft emit` (daemon running)', value: `${fmt(emit)} ms`, goal: '< 150 ms', verdict: verdict(emit < 150) },
    { measure: '`weft notifications list`', value: `${fmt(list)} ms`, goal: '< 150 ms', verdict: verdict(list < 150) },
    { measure: `idle bare node RSS after ${IDLE_MS / 1000} s (floor)`, value: `${fmt(bareRss, 1)} MB`, goal: '', verdict: '' },
    { measure: `idle embedded daemon RSS after ${IDLE_MS / 1000} s`, value: `${fmt(daemonRss, 1)} MB`, goal: '< 50 MB', verdict: verdict(daemonRss < 50) },
    {
      measure: `idle daemon RSS after ${IDLE_MS / 1000} s, mesh on (TLS, 3 peers)${mesh.linked ? '' : ' (links not all up!)'}`,
      value: `${fmt(meshRss, 1)} MB (the four: ${mesh.rss.map((r) => fmt(r, 1)).join(' / ')})`,
      goal: '< 70 MB',
      verdict: verdict(mesh.linked && meshRss < 70),
    },
    ...costs.map((c) => ({ measure: `  + ${c.module}`, value: `${fmt(c.mb, 1)} MB`, goal: '', verdict: '' })),
  ];
  return {
    title: `Start-up and idle memory (median of ${RUNS} fresh processes)`,
    rows,
    results: {
      runs: RUNS,
      bareNodeMs: bare,
      versionMs: version,
      emitMs: emit,
      notificationsListMs: list,
      bareIdleRssMb: bareRss,
      daemonIdleRssMb: daemonRss,
      meshIdleRssMb: mesh.rss,
      meshLinked: mesh.linked,
      idleMs: IDLE_MS,
      moduleRssMb: Object.fromEntries(costs.map((c) => [c.module, Number(c.mb.toFixed(2))])),
      goals: { versionMs: 80, emitMs: 150, notificationsListMs: 150, daemonIdleRssMb: 50, meshIdleRssMb: 70 },
    },
  };
}
