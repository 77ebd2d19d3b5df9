/**
 * The invoke part of `npm run bench -- federation`: the round trip of `node.health` between
 * two whole nodes (the daemon's assembly: signed, replay-checked message frames, the callee's
 * checks, the handler) over real TLS sockets on loopback, 1,000 calls one after another,
 * against NATS request-reply measured in the same run (a real `nats-server` on loopback, the
 * requester and the responder in this process, the same JSON answer). Goal: p99 < 5 ms.
 * Also how fast an unknown handler is refused and how close to its deadline a call to a
 * hanging handler ends (goal for both: p99 < 50 ms; the tests check only which one ended it).
 *
 * Both systems run their two ends in this one process, so neither gets a second core.
 * Run alone: `npm run build && node dist/bench/federation-invoke.js`.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { meshPair } from '../test/helpers/mesh-pair.js';
import { freePort } from '../test/helpers/redis.js';
import { type BenchSection, fmt, percentile } from './harness.js';

const CALLS = Number(process.env.WEFT_INVOKE_BENCH_N ?? 1000);
const WARMUP = 200;
const GOAL_P99_MS = 5;
/** Calls to an unknown handler and to a hanging one (deadline `EDGE_DEADLINE_MS`); goal for both: < 50 ms (p99). */
const EDGE_CALLS = 50;
const EDGE_DEADLINE_MS = 100;
const GOAL_EDGE_MS = 50;

export interface LatencyFigures {
  calls: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

function figures(samples: number[]): LatencyFigures {
  const s = [...samples].sort((a, b) => a - b);
  return { calls: s.length, p50: percentile(s, 50), p99: percentile(s, 99), max: s[s.length - 1] ?? Number.NaN, mean: s.reduce((a, b) => a + b, 0) / Math.max(1, s.length) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * 1,000 sequential `node.health` invokes between two nodes over TLS on loopback. `dataDir`
 * puts the nodes' SQLite files elsewhere than the system's temp dir (tmpfs: commits without
 * a disk flush, to show what the flushes cost).
 */
export async function invokeRoundTrip(
  n = CALLS,
  opts: { dataDir?: string } = {},
): Promise<LatencyFigures & { example: unknown; refused: LatencyFigures; overshoot: LatencyFigures }> {
  const tmp = process.env.TMPDIR;
  if (opts.dataDir) process.env.TMPDIR = opts.dataDir;
  let pair: Awaited<ReturnType<typeof meshPair>>;
  try {
    pair = await meshPair('tls');
  } finally {
    if (tmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = tmp;
  }
  try {
    const organ = pair.one.federation?.invoke;
    if (!organ) throw new Error('the assembled node has no federation');
    const call = () => organ.call({ peer: 'two', handler: 'node.health', deadlineMs: 2000 });
    // The link comes up in the background.
    for (const deadline = Date.now() + 15_000; ; ) {
      const ok = await call().then(
        () => true,
        () => false,
      );
      if (ok) break;
      if (Date.now() > deadline) throw new Error('the TLS link between the two nodes did not come up in 15 s');
      await sleep(50);
    }
    for (let i = 0; i < WARMUP; i++) await call();
    const samples: number[] = [];
    let example: unknown;
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const r = await call();
      samples.push(performance.now() - t0);
      example = r.result;
    }
    // An unknown handler is refused at once, and a hanging one ends at the deadline: how fast
    // (the tests check only which of the two ended each call).
    const refused: number[] = [];
    for (let i = 0; i < EDGE_CALLS; i++) {
      const t0 = performance.now();
      const ok = await organ.call({ peer: 'two', handler: 'bench.no.such.handler', deadlineMs: 5000 }).then(() => true, () => false);
      if (ok) throw new Error('an unknown handler answered');
      refused.push(performance.now() - t0);
    }
    const hangs = pair.two.federation?.invoke;
    if (!hangs) throw new Error('the assembled node has no federation');
    const unregister = hangs.register('bench.hang', (_p: unknown, ctx: { signal: AbortSignal }) => new Promise((_r, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))));
    const overshoot: number[] = [];
    try {
      for (let i = 0; i < EDGE_CALLS; i++) {
        const t0 = performance.now();
        const ok = await organ.call({ peer: 'two', handler: 'bench.hang', deadlineMs: EDGE_DEADLINE_MS }).then(() => true, () => false);
        if (ok) throw new Error('a hanging handler answered');
        overshoot.push(performance.now() - t0 - EDGE_DEADLINE_MS);
      }
    } finally {
      unregister();
    }
    return { ...figures(samples), example, refused: figures(refused), overshoot: figures(overshoot) };
  } finally {
    await pair.cleanup();
  }
}

/** The same round trip on NATS request-reply: `nats-server` on loopback, a responder answering a health-sized JSON. */
export async function natsRequestReply(answer: unknown, n = CALLS): Promise<LatencyFigures | { skipped: string }> {
  const bin = spawnSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' }).stdout.trim();
  if (!bin) return { skipped: 'nats-server not found on PATH' };
  let nats: typeof import('nats');
  try {
    nats = await import('nats');
  } catch {
    return { skipped: 'the npm package nats (a dev dependency) is not installed' };
  }
  const port = await freePort();
  const server: ChildProcess = spawn(bin, ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  try {
    const connect = async () => {
      for (const deadline = Date.now() + 10_000; ; ) {
        const nc = await nats.connect({ servers: `127.0.0.1:${port}` }).catch(() => undefined);
        if (nc) return nc;
        if (Date.now() > deadline) throw new Error(`nats-server on ${port} did not answer within 10 s`);
        await sleep(50);
      }
    };
    const responder = await connect();
    const requester = await connect();
    const body = new TextEncoder().encode(JSON.stringify(answer));
    const sub = responder.subscribe('weft.bench.node.health', {
      callback: (_err, msg) => {
        // Like the handler: read the request, answer JSON.
        JSON.parse(new TextDecoder().decode(msg.data));
        msg.respond(body);
      },
    });
    await responder.flush();
    const ask = new TextEncoder().encode(JSON.stringify({ handler: 'node.health', payload: null }));
    const request = () => requester.request('weft.bench.node.health', ask, { timeout: 2000 }).then((m) => JSON.parse(new TextDecoder().decode(m.data)));
    for (let i = 0; i < WARMUP; i++) await request();
    const samples: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await request();
      samples.push(performance.now() - t0);
    }
    sub.unsubscribe();
    await requester.close();
    await responder.close();
    return figures(samples);
  } finally {
    server.kill();
  }
}

/**
 * The invoke section: Weft's figures, NATS's, and whether the goal is met.
 * @example
 * const s = await federationInvokeBench(); console.table(s.rows);
 */
export async function federationInvokeBench(): Promise<BenchSection> {
  const weft = await invokeRoundTrip();
  const nats = await natsRequestReply(weft.example);
  // Each message frame's replay record commits with synchronous=FULL: on tmpfs the flush is free.
  const shm = existsSync('/dev/shm') ? await invokeRoundTrip(CALLS, { dataDir: '/dev/shm' }) : undefined;
  const ms = (x: number) => `${fmt(x, 2)} ms`;
  const skipped = 'skipped' in nats;
  const peer = skipped ? `NATS: ${nats.skipped}` : `NATS request-reply p50 ${ms(nats.p50)}, p99 ${ms(nats.p99)}`;
  const rows = [
    { measure: `invoke node.health round trip p50 (TLS loopback, ${weft.calls} calls)`, goal: '-', figure: ms(weft.p50), peer: skipped ? '-' : `NATS p50 ${ms(nats.p50)}`, met: '-' },
    { measure: `invoke node.health round trip p99 (TLS loopback, ${weft.calls} calls)`, goal: `< ${GOAL_P99_MS} ms`, figure: ms(weft.p99), peer, met: weft.p99 < GOAL_P99_MS ? 'yes' : 'no' },
    { measure: 'invoke node.health round trip max', goal: '-', figure: ms(weft.max), peer: skipped ? '-' : `NATS max ${ms(nats.max)}`, met: '-' },
    ...(shm
      ? [{ measure: 'the same, data on tmpfs (no disk flush): p50 / p99', goal: `< ${GOAL_P99_MS} ms`, figure: `${ms(shm.p50)} / ${ms(shm.p99)}`, peer, met: shm.p99 < GOAL_P99_MS ? 'yes' : 'no' }]
      : []),
    { measure: `unknown handler refused, p99 of ${weft.refused.calls} (5 s deadline)`, goal: `< ${GOAL_EDGE_MS} ms`, figure: ms(weft.refused.p99), peer: `p50 ${ms(weft.refused.p50)}, max ${ms(weft.refused.max)}`, met: weft.refused.p99 < GOAL_EDGE_MS ? 'yes' : 'no' },
    { measure: `hanging handler: call ends after its ${EDGE_DEADLINE_MS} ms deadline by, p99 of ${weft.overshoot.calls}`, goal: `< ${GOAL_EDGE_MS} ms`, figure: ms(weft.overshoot.p99), peer: `p50 ${ms(weft.overshoot.p50)}, max ${ms(weft.overshoot.max)}`, met: weft.overshoot.p99 < GOAL_EDGE_MS ? 'yes' : 'no' },
  ];
  const strip = (f: LatencyFigures & { example: unknown }): LatencyFigures => ({ calls: f.calls, p50: f.p50, p99: f.p99, max: f.max, mean: f.mean });
  return {
    title: 'Federation: invoke round trip (node.health, two nodes, TLS loopback) vs NATS request-reply',
    rows,
    results: {
      invoke: { ...strip(weft), goalP99Ms: GOAL_P99_MS, met: weft.p99 < GOAL_P99_MS },
      refused: { ...weft.refused, goalP99Ms: GOAL_EDGE_MS, met: weft.refused.p99 < GOAL_EDGE_MS },
      deadlineOvershoot: { ...weft.overshoot, deadlineMs: EDGE_DEADLINE_MS, goalP99Ms: GOAL_EDGE_MS, met: weft.overshoot.p99 < GOAL_EDGE_MS },
      ...(shm ? { invokeTmpfs: strip(shm) } : {}),
      nats,
      note: 'both ends of each system run in this one process; on a disk the tail is the SQLite commits (synchronous=FULL) of the replay records of message frames, which block the event loop; the tmpfs row is the same run without the flush',
    },
  };
}

// `node dist/bench/federation-invoke.js` runs it alone.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const s = await federationInvokeBench();
  console.log(`\n## ${s.title}`);
  console.table(s.rows);
  console.log(JSON.stringify(s.results, null, 2));
}
