/**
 * One chaos run: a fleet of real daemons in a Redis sub-mesh and a TLS sub-mesh (plus one
 * TLS peer whose clock is 6 minutes behind), each emitting a seeded stream of local, cluster
 * and public `mesh.test.ping` events, while a seeded fault schedule kills, restarts, cuts and
 * poisons. Then the checker proves what every node applied.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Applied, type CheckResult, check, converged, type EmittedEvent, type NodeView, readApplied, type Visibility } from './checker.js';
import { type Fleet, type FleetNode, type FleetNodeSpec, startFleet, waitFor } from './fleet.js';
import { garbageToRedis, garbageToTcp } from './garbage.js';
import { Prng } from './prng.js';

export interface ChaosOptions {
  seed: number;
  /** Honest daemons (default 5); the skewed-clock peer comes on top. */
  nodes?: number;
  /** How long the streams and faults run, ms (default 60 s). */
  durationMs?: number;
  /** Events per second per node (default 20). */
  rate?: number;
  /** Garbage entries per Redis inbox in the garbage fault (default 500). */
  garbage?: number;
  /** How long to wait for convergence after the run, ms (default 180 s). */
  settleMs?: number;
  /** Declare Redis peers with trust level `peer` instead of relying on discovery alone. */
  trustedRedisPeers?: boolean;
  log?: (line: string) => void;
}

export interface ChaosResult {
  seed: number;
  emitted: number;
  uncertain: number;
  faults: string[];
  result: CheckResult;
  /** Whether every honest TLS node raised mesh.event.rejected for the skewed peer's frames. */
  skewRefused: boolean;
  /** Whether the nodes that got garbage recorded FRAME_* rejections. */
  garbageRefused: boolean;
  ok: boolean;
}

export const SKEW_MS = -6 * 60_000;

export function fleetSpecs(n: number): FleetNodeSpec[] {
  const redisCount = Math.max(1, Math.ceil(n / 2));
  const specs: FleetNodeSpec[] = [];
  for (let i = 0; i < n; i++) {
    const onRedis = i < redisCount;
    const j = onRedis ? i : i - redisCount;
    specs.push({ computer: `${onRedis ? 'r' : 't'}${j + 1}`, cluster: j % 3 === 2 ? 'work' : 'home', mesh: onRedis ? 'redis' : 'tls' });
  }
  specs.push({ computer: 'skew', cluster: 'home', mesh: 'tls', clockOffsetMs: SKEW_MS });
  return specs;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The seeded visibility of origin's n-th event: the stream is the same whatever the timing. */
function visibilityOf(seed: number, origin: string, n: number): Visibility {
  let h = seed >>> 0;
  for (const c of `${origin}#${n}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  const x = new Prng(h).next();
  return x < 0.3 ? 'local' : x < 0.65 ? 'cluster' : 'public';
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosResult> {
  const log = opts.log ?? (() => undefined);
  const rng = new Prng(opts.seed);
  const faultRng = rng.fork(1);
  const durationMs = opts.durationMs ?? 60_000;
  const rate = opts.rate ?? 20;
  const specs = fleetSpecs(opts.nodes ?? 5);
  const root = mkdtempSync(join(tmpdir(), 'weft-chaos-'));
  const t0 = Date.now();
  const stamp = () => `${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s`;
  const faults: string[] = [];
  const fault = (s: string) => {
    faults.push(`${stamp()} ${s}`);
    log(`  ${stamp()} ${s}`);
  };
  let fleet: Fleet | undefined;
  let keep = false;
  try {
    fleet = await startFleet(root, specs, { trustedRedisPeers: opts.trustedRedisPeers ?? false });
    const f = fleet;
    log(`  fleet: ${f.nodes.map((n) => `${n.computer}(${n.mesh}/${n.cluster}${n.clockOffsetMs ? ',clock-6m' : ''})`).join(' ')}`);
    // Redis discovery: wait until every Redis node knows the others, so the first events route.
    const redisNodes = f.nodes.filter((n) => n.mesh === 'redis');
    await waitFor(async () => {
      for (const n of redisNodes) if ((await n.api.request<unknown[]>('GET', '/api/peers')).length < redisNodes.length - 1) return false;
      return true;
    }, 30_000);

    const emitted: EmittedEvent[] = [];
    let emitting = true;
    const perTick = Math.max(1, Math.round(rate / 10));
    const emitters = f.nodes.map(async (node) => {
      let n = 0;
      while (emitting) {
        const tick = Date.now();
        if (node.running) {
          const batch = Array.from({ length: perTick }, (_, k) => ({ n: n + k, visibility: visibilityOf(opts.seed, node.computer, n + k) }));
          try {
            await node.api.emitMany(batch.map((b) => ({ event: 'mesh.test.ping', visibility: b.visibility, payload: { n: b.n, note: node.computer } })));
            for (const b of batch) emitted.push({ origin: node.computer, n: b.n, visibility: b.visibility, status: 'ok' });
          } catch {
            for (const b of batch) emitted.push({ origin: node.computer, n: b.n, visibility: b.visibility, status: 'uncertain' });
          }
          n += perTick;
        }
        await sleep(Math.max(0, 100 - (Date.now() - tick)));
      }
    });

    const honest = f.nodes.filter((n) => !n.clockOffsetMs);
    const tlsHonest = honest.filter((n) => n.mesh === 'tls');
    const at = (lo: number, hi: number) => t0 + durationMs * (lo + faultRng.next() * (hi - lo));
    const until = async (t: number) => sleep(Math.max(0, t - Date.now()));
    const killOne = async (lo: number, hi: number) => {
      await until(at(lo, hi));
      const victim = faultRng.pick(honest);
      const down = faultRng.int(1500, 4000);
      fault(`kill -9 ${victim.computer} (pid ${victim.pid}), down ${down} ms`);
      await victim.kill();
      await sleep(down);
      await victim.start();
      fault(`restarted ${victim.computer} (pid ${victim.pid})`);
    };
    const injectionErrors: string[] = [];
    let garbageTargets: FleetNode[] = [];
    /** Targets seen to record a refusal of the garbage with the expected code class. */
    const garbageSeen = new Set<string>();
    const schedule = (async () => {
      await killOne(0.08, 0.18);
      if (f.redis) {
        await until(at(0.25, 0.35));
        fault('redis-server kill -9 and restart empty');
        await f.redis.restart();
        fault('redis-server back (empty)');
      }
      if (tlsHonest.length >= 2) {
        await until(at(0.4, 0.5));
        const a = tlsHonest[0] as FleetNode;
        const b = faultRng.pick(tlsHonest.slice(1));
        const ms = faultRng.int(4000, 9000);
        const links = [f.proxies.get(`${a.computer}->${b.computer}`), f.proxies.get(`${b.computer}->${a.computer}`)];
        fault(`cut TLS link ${a.computer}<->${b.computer} for ${ms} ms`);
        for (const p of links) p?.cutLink();
        await sleep(ms);
        for (const p of links) p?.heal();
        fault(`healed TLS link ${a.computer}<->${b.computer}`);
      }
      await until(at(0.55, 0.65));
      const g = rng.fork(2);
      garbageTargets = honest;
      for (const target of honest) {
        if (target.mesh === 'redis' && f.redis) {
          // An injection that fails is a failed run, not "0 sent".
          const c = await garbageToRedis(f.redis.url, target.computer, opts.garbage ?? 500, g, faultRng.pick(honest).computer).catch((err: Error) => {
            injectionErrors.push(`garbage into weft:messages:${target.computer}: ${err.message}`);
            return 0;
          });
          fault(`garbage: ${c} mutated/random entries into weft:messages:${target.computer}`);
        } else if (target.mesh === 'tls') {
          const c = await garbageToTcp(target.tlsPort, 20, g);
          if (c === 0) injectionErrors.push(`garbage to ${target.computer}'s TLS port: no connection got its bytes written`);
          fault(`garbage: ${c} random-byte connections to ${target.computer}'s TLS port`);
        }
      }
      // Each target has recorded its refusal before the next kill: a kill -9 right after the
      // garbage may otherwise take the refusal's notification (not yet committed) with it.
      const refusedCode = (n: FleetNode) => (n.mesh === 'redis' ? 'FRAME_' : 'PEER_');
      await waitFor(async () => {
        for (const n of garbageTargets) {
          if (garbageSeen.has(n.computer) || !n.running) continue;
          if ((await readApplied(n.api)).rejections.some((r) => r.code.startsWith(refusedCode(n)))) garbageSeen.add(n.computer);
        }
        return garbageTargets.every((n) => garbageSeen.has(n.computer));
      }, 15_000);
      await killOne(0.7, 0.8);
    })();
    await schedule;
    await until(t0 + durationMs);
    emitting = false;
    await Promise.all(emitters);
    for (const p of f.proxies.values()) p.heal();
    for (const n of f.nodes) if (!n.running) await n.start();
    for (const n of f.nodes) for (const c of n.crashes) log(`  CRASH: ${n.computer} exited by itself at ${((c.at - t0) / 1000).toFixed(1)}s (code ${c.code}, signal ${c.signal}); output tail:\n${c.tail}`);
    const uncertain = emitted.filter((e) => e.status === 'uncertain').length;
    log(`  ${stamp()} streams stopped: ${emitted.length} events emitted (${uncertain} uncertain: request cut by a kill)`);

    const views: NodeView[] = f.nodes.map((n) => ({ computer: n.computer, cluster: n.cluster, mesh: n.mesh, skewed: Boolean(n.clockOffsetMs) }));
    const reportCrashes = async () => {
      for (const n of f.nodes) {
        if (n.running) continue;
        const c = n.crashes[n.crashes.length - 1];
        log(`  CRASH: ${n.computer} exited by itself at ${c ? ((c.at - t0) / 1000).toFixed(1) : '?'}s (code ${c?.code}, signal ${c?.signal}); restarting it. Output tail:\n${c?.tail ?? ''}`);
        await n.start();
      }
    };
    const read = async () => {
      await reportCrashes();
      const m = new Map<string, Applied>();
      for (const n of f.nodes) m.set(n.computer, await readApplied(n.api));
      return m;
    };
    let applied = new Map<string, Applied>();
    await waitFor(async () => {
      applied = await read();
      return converged(views, emitted, applied);
    }, opts.settleMs ?? 180_000);
    // A little longer, so late duplicates or leaks would show up too.
    await sleep(3000);
    applied = await read();
    log(`  ${stamp()} settled`);
    const result = check(views, emitted, applied);
    const rejectedBy = (n: FleetNode) => applied.get(n.computer)?.rejections ?? [];
    const skewRefused = tlsHonest.every((n) => rejectedBy(n).some((r) => r.senderComputer === 'skew' && r.code.startsWith('REPLAY_TOO')));
    // Redis garbage is refused frame by frame (FRAME_*), TLS garbage at the handshake (PEER_*).
    const garbageRefused =
      injectionErrors.length === 0 &&
      garbageTargets.every((n) => garbageSeen.has(n.computer) || rejectedBy(n).some((r) => r.code.startsWith(n.mesh === 'redis' ? 'FRAME_' : 'PEER_')));
    if (injectionErrors.length > 0) log(`  injection failed: ${injectionErrors.join('; ')}`);
    for (const n of f.nodes) {
      const s = await n.api.request<{ counters: { rejected: Record<string, number> } }>('GET', '/api/mesh/status').catch(() => undefined);
      if (s) log(`  ${n.computer}: rejected since last start ${JSON.stringify(s.counters.rejected)}`);
    }
    const more = f.nodes.flatMap((n) => n.crashes.map((c) => ({ node: n.computer, ...c })));
    if (more.length > 0 && result.ok) {
      const c = more[0] as (typeof more)[number];
      result.ok = false;
      result.firstFailure = `CRASH: ${c.node} exited by itself (code ${c.code}, signal ${c.signal}); last output: ${c.tail.slice(-1500)}`;
    }
    const ok = result.ok && skewRefused && garbageRefused;
    keep = !ok;
    return { seed: opts.seed, emitted: emitted.length, uncertain, faults, result, skewRefused, garbageRefused, ok };
  } catch (err) {
    keep = true;
    throw err;
  } finally {
    await fleet?.stop();
    if (keep || process.env.WEFT_CHAOS_KEEP) log(`  kept the nodes' data dirs (logs, SQLite) in ${root}`);
    else rmSync(root, { recursive: true, force: true });
  }
}
