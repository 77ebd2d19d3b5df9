/**
 * `npm run load -- --nodes 10 --rate 2000 --minutes 5 [--provider redis|tls] [--trust-rate N] [--out bench/load-report]`
 *
 * Soak/load run against real daemons (child processes) on loopback. Nodes are paired into
 * clusters of two (three for an odd last one); every node emits `mesh.test.load` cluster
 * events carrying their send time, so each event is delivered to its cluster peer(s). `--rate`
 * is the fleet-wide emit rate (events/s). Measured:
 * - sustained delivery rate (events applied on a peer per second) and emit rate;
 * - end-to-end latency: `sentAt` (just before the emitting POST) → the receiver's WebSocket
 *   push of the notification, which comes after its commit (and fsync), p50/p99/p999 overall
 *   and per second;
 * - outbox depth per node over time (GET /api/mesh/status), RSS and CPU per daemon over time
 *   (/proc/<pid>/status VmRSS, /proc/<pid>/stat utime+stime), plus redis-server (INFO).
 * Writes <out>.json and <out>.html (inline SVG charts). The daemons run with the shipped trust
 * rate limit (2,000/s per peer, burst 10,000) unless `--trust-rate N` sets another; the report
 * says which.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { type Fleet, type FleetNodeSpec, startFleet } from '../test/chaos/fleet.js';
import { fmt, percentile } from './harness.js';
import { htmlPage, lineChart, type Series } from './load-report.js';

export interface LoadOptions {
  nodes: number;
  rate: number;
  minutes: number;
  provider: 'redis' | 'tls';
  out: string;
  /** Trust rate limit per peer (events/s) for the run; undefined: the shipped default. */
  trustRate?: number;
  log?: (s: string) => void;
}

interface Sample {
  t: number;
  outbox: Record<string, number>;
  rssMb: Record<string, number>;
  cpuPct: Record<string, number>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TICK_HZ = 100;

function procStat(pid: number): { rssKb: number; ticks: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields after the name start at #3 (state); utime is #14, stime #15
    return { rssKb, ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return undefined;
  }
}

export function loadSpecs(n: number, provider: 'redis' | 'tls'): FleetNodeSpec[] {
  return Array.from({ length: n }, (_, i) => {
    const pair = n % 2 === 1 && i === n - 1 ? Math.floor(i / 2) - 1 : Math.floor(i / 2);
    return { computer: `n${String(i + 1).padStart(2, '0')}`, cluster: `c${Math.max(0, pair)}`, mesh: provider };
  });
}

export async function runLoad(o: LoadOptions): Promise<Record<string, unknown>> {
  const log = o.log ?? ((s: string) => console.log(s));
  const root = mkdtempSync(join(tmpdir(), 'weft-load-'));
  let fleet: Fleet | undefined;
  try {
    fleet = await startFleet(root, loadSpecs(o.nodes, o.provider), {
      extraEnv: {
        WEFT_LOG_LEVEL: 'error',
        ...(o.trustRate !== undefined ? { WEFT_TRUST_RATE_PER_SECOND: String(o.trustRate), WEFT_TRUST_RATE_BURST: String(o.trustRate * 5) } : {}),
      },
    });
    const f = fleet;
    if (o.provider === 'redis') {
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        const counts = await Promise.all(f.nodes.map((n) => n.api.request<unknown[]>('GET', '/api/peers').then((p) => p.length)));
        if (counts.every((c) => c >= o.nodes - 1)) break;
        await sleep(250);
      }
    }
    const durationMs = o.minutes * 60_000;
    const perNode = o.rate / o.nodes;
    log(`load: ${o.nodes} daemons over ${o.provider}, ${o.rate} events/s fleet-wide (${fmt(perNode, 1)}/node), ${o.minutes} min`);
    // Each receiver's pushes: sent after its commit, so their arrival is when the event was durable there.
    const pushes: Array<{ recv: number; lat: number }> = [];
    const subs = f.nodes.map((n) => {
      const sub = n.api.subscribe({ eventType: 'mesh.test.load' });
      const reading = (async () => {
        for await (const p of sub) {
          if (p.change.kind !== 'created' || p.notification.payload.note === n.computer) continue;
          const recv = Date.now();
          pushes.push({ recv, lat: recv - Number(p.notification.payload.sentAt) });
        }
      })().catch(() => undefined);
      return { sub, reading };
    });
    await Promise.all(subs.map((s) => s.sub.ready));
    const t0 = Date.now();
    let emitting = true;
    const emittedBy: Record<string, number> = {};
    let emitErrors = 0;
    const emitters = f.nodes.map(async (node) => {
      let n = 0;
      while (emitting) {
        const owed = Math.min(2000, Math.floor(((Date.now() - t0) / 1000) * perNode) - n);
        if (owed > 0) {
          const sentAt = Date.now();
          const batch = Array.from({ length: owed }, (_, k) => ({ event: 'mesh.test.load', visibility: 'cluster', payload: { n: n + k, sentAt, note: node.computer } }));
          try {
            await node.api.emitMany(batch);
            n += owed;
          } catch {
            emitErrors++;
          }
        }
        await sleep(20);
      }
      emittedBy[node.computer] = n;
    });
    const samples: Sample[] = [];
    const last = new Map<string, { ticks: number; t: number }>();
    const redisStats: Array<{ t: number; rssMb: number; cpuPct: number }> = [];
    const rc = f.redis ? new Redis(f.redis.url) : undefined;
    let lastRedis: { cpu: number; t: number } | undefined;
    const sampler = (async () => {
      while (emitting || samples.length === 0 || Date.now() - t0 < durationMs + 1000) {
        const t = (Date.now() - t0) / 1000;
        const s: Sample = { t, outbox: {}, rssMb: {}, cpuPct: {} };
        await Promise.all(
          f.nodes.map(async (n) => {
            const st = await n.api.request<{ peers: Array<{ outbox: number }> }>('GET', '/api/mesh/status').catch(() => undefined);
            s.outbox[n.computer] = st ? st.peers.reduce((a, p) => a + p.outbox, 0) : Number.NaN;
            const p = n.pid ? procStat(n.pid) : undefined;
            if (p) {
              s.rssMb[n.computer] = p.rssKb / 1024;
              const prev = last.get(n.computer);
              const now = Date.now();
              if (prev) s.cpuPct[n.computer] = ((p.ticks - prev.ticks) / TICK_HZ / ((now - prev.t) / 1000)) * 100;
              last.set(n.computer, { ticks: p.ticks, t: now });
            }
          }),
        );
        if (rc) {
          const info = await rc.info().catch(() => '');
          const rss = Number(/used_memory_rss:(\d+)/.exec(info)?.[1] ?? 0) / 1048576;
          const cpu = Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? 0) + Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? 0);
          const now = Date.now();
          redisStats.push({ t, rssMb: rss, cpuPct: lastRedis ? ((cpu - lastRedis.cpu) / ((now - lastRedis.t) / 1000)) * 100 : Number.NaN });
          lastRedis = { cpu, t: now };
        }
        samples.push(s);
        if (!emitting && Date.now() - t0 >= durationMs) break;
        await sleep(1000);
      }
    })();
    await sleep(durationMs);
    emitting = false;
    await Promise.all(emitters);
    await sampler;
    const emitted = Object.values(emittedBy).reduce((a, b) => a + b, 0);
    log(`load: emission stopped at ${fmt((Date.now() - t0) / 1000, 1)} s, ${emitted} events emitted; draining`);
    // Drain: wait until every outbox is empty (bounded), sampling on.
    const drainStart = Date.now();
    for (;;) {
      const depths = await Promise.all(
        f.nodes.map((n) => n.api.request<{ peers: Array<{ outbox: number }> }>('GET', '/api/mesh/status').then((s) => s.peers.reduce((a, p) => a + p.outbox, 0))),
      );
      const t = (Date.now() - t0) / 1000;
      samples.push({ t, outbox: Object.fromEntries(f.nodes.map((n, i) => [n.computer, depths[i] as number])), rssMb: Object.fromEntries(f.nodes.map((n) => [n.computer, (n.pid ? procStat(n.pid)?.rssKb ?? 0 : 0) / 1024])), cpuPct: {} });
      if (depths.every((d) => d === 0) || Date.now() - drainStart > 300_000) break;
      await sleep(1000);
    }
    const drainMs = Date.now() - drainStart;
    rc?.disconnect();
    for (const s of subs) s.sub.close();
    await Promise.all(subs.map((s) => s.reading));
    // What each receiver stored (the loss figure), apart from the pushes that time it.
    let stored = 0;
    for (const n of f.nodes) {
      let cursor: number | undefined;
      for (;;) {
        const page = await n.api.notifications.list({ type: 'mesh.test.load', limit: 1000, ...(cursor ? { cursor } : {}) });
        stored += page.items.filter((x) => x.payload.note !== n.computer).length;
        if (!page.nextCursor) break;
        cursor = page.nextCursor;
      }
    }
    const latencies: number[] = [];
    const perSecond = new Map<number, number[]>();
    for (const { recv, lat } of pushes) {
      latencies.push(lat);
      const sec = Math.floor((recv - t0) / 1000);
      const b = perSecond.get(sec) ?? [];
      if (b.length === 0) perSecond.set(sec, b);
      b.push(lat);
    }
    const expected = f.nodes.reduce((a, n) => a + (emittedBy[n.computer] ?? 0) * (f.nodes.filter((m) => m.cluster === n.cluster).length - 1), 0);
    latencies.sort((a, b) => a - b);
    const secs = [...perSecond.keys()].sort((a, b) => a - b);
    const lastDelivery = secs.length > 0 ? (secs[secs.length - 1] as number) + 1 : 1;
    const windowS = durationMs / 1000;
    const inWindow = secs.filter((s) => s < windowS).reduce((a, s) => a + (perSecond.get(s)?.length ?? 0), 0);
    const rssGrowth = f.nodes.map((n) => {
      const xs = samples.map((s) => s.rssMb[n.computer]).filter((v): v is number => typeof v === 'number' && v > 0);
      return { node: n.computer, firstMb: xs[Math.min(5, xs.length - 1)] ?? 0, lastMb: xs[xs.length - 1] ?? 0, maxMb: Math.max(0, ...xs) };
    });
    const cpuAvg = Object.fromEntries(
      f.nodes.map((n) => {
        const xs = samples.map((s) => s.cpuPct[n.computer]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
        return [n.computer, xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)];
      }),
    );
    const summary = {
      date: new Date().toISOString(),
      machine: { cores: cpus().length, cpu: cpus()[0]?.model, node: process.version },
      config: { nodes: o.nodes, provider: o.provider, targetRate: o.rate, minutes: o.minutes, trustRate: o.trustRate ?? 'shipped default (2000/s per peer, burst 10000)', latencyEndsAt: 'the receiver\'s WebSocket push, after its commit' },
      emitted,
      emitErrors,
      emitRate: emitted / windowS,
      delivered: stored,
      timed: latencies.length,
      expectedDeliveries: expected,
      lost: expected - stored,
      sustainedDeliveredPerSec: inWindow / windowS,
      overallDeliveredPerSec: latencies.length / Math.max(windowS, lastDelivery),
      drainMs,
      latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), p999: percentile(latencies, 99.9), max: latencies[latencies.length - 1] ?? Number.NaN },
      cpuAvgPct: cpuAvg,
      rss: rssGrowth,
    };
    const series = {
      latencyPerSecond: secs.map((s) => {
        const b = (perSecond.get(s) as number[]).sort((x, y) => x - y);
        return { t: s, n: b.length, p50: percentile(b, 50), p99: percentile(b, 99), p999: percentile(b, 99.9) };
      }),
      samples,
      redis: redisStats,
    };
    const result = { summary, series };
    writeFileSync(`${o.out}.json`, `${JSON.stringify(result, null, 1)}\n`);
    const byNode = (pick: (s: Sample) => Record<string, number>): Series[] =>
      f.nodes.map((n) => ({ name: n.computer, points: samples.filter((s) => pick(s)[n.computer] !== undefined).map((s) => [s.t, pick(s)[n.computer] as number] as [number, number]) }));
    const charts = [
      lineChart('Delivered events per second (all receivers)', 'events/s', [{ name: 'delivered', points: series.latencyPerSecond.map((x) => [x.t, x.n]) }]),
      lineChart('End-to-end latency per second (emit → committed notification on the peer)', 'ms (log)', [
        { name: 'p50', points: series.latencyPerSecond.map((x) => [x.t, x.p50]) },
        { name: 'p99', points: series.latencyPerSecond.map((x) => [x.t, x.p99]) },
        { name: 'p999', points: series.latencyPerSecond.map((x) => [x.t, x.p999]) },
      ], { logY: true }),
      lineChart('Outbox depth per node (events not yet acknowledged by peers)', 'events', byNode((s) => s.outbox)),
      lineChart('RSS per daemon', 'MiB', [...byNode((s) => s.rssMb), ...(redisStats.length ? [{ name: 'redis-server', points: redisStats.map((r) => [r.t, r.rssMb] as [number, number]) }] : [])]),
      lineChart('CPU per daemon', '% of one core', [...byNode((s) => s.cpuPct), ...(redisStats.length ? [{ name: 'redis-server', points: redisStats.filter((r) => Number.isFinite(r.cpuPct)).map((r) => [r.t, r.cpuPct] as [number, number]) }] : [])]),
    ];
    const l = summary.latencyMs;
    const table: Array<[string, string]> = [
      ['date', summary.date],
      ['machine', `${summary.machine.cores} cores, ${summary.machine.cpu}, Node ${summary.machine.node}`],
      ['fleet', `${o.nodes} daemons over ${o.provider}, clusters of two, cluster events`],
      ['target emit rate', `${o.rate} events/s for ${o.minutes} min`],
      ['achieved emit rate', `${fmt(summary.emitRate, 0)} events/s (${emitted} events, ${emitErrors} failed requests)`],
      ['sustained delivery', `${fmt(summary.sustainedDeliveredPerSec, 0)} events/s during the run; drain after stop ${fmt(drainMs / 1000, 1)} s`],
      ['delivered / expected', `${summary.delivered} / ${expected} (${summary.lost} missing)`],
      ['latency p50 / p99 / p999 / max', `${fmt(l.p50)} / ${fmt(l.p99)} / ${fmt(l.p999)} / ${fmt(l.max)} ms`],
      ['CPU avg per daemon', Object.entries(cpuAvg).map(([k, v]) => `${k} ${fmt(v, 0)}%`).join(', ')],
      ['RSS first → last (max)', rssGrowth.map((r) => `${r.node} ${fmt(r.firstMb, 0)}→${fmt(r.lastMb, 0)} (${fmt(r.maxMb, 0)}) MiB`).join(', ')],
    ];
    writeFileSync(`${o.out}.html`, htmlPage(`Weft load run — ${o.nodes} nodes, ${o.rate} events/s, ${o.minutes} min, ${o.provider}`, table, charts, summary));
    for (const [k, v] of table) log(`  ${k.padEnd(32)} ${v}`);
    log(`wrote ${o.out}.json and ${o.out}.html`);
    return summary;
  } finally {
    await fleet?.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] as string) : dflt;
}

if (process.argv[1]?.endsWith('load.js')) {
  const provider = arg('provider', 'redis');
  if (provider !== 'redis' && provider !== 'tls') throw new Error('--provider is redis or tls');
  const s = await runLoad({
    nodes: Number(arg('nodes', '10')),
    rate: Number(arg('rate', '2000')),
    minutes: Number(arg('minutes', '5')),
    provider,
    out: arg('out', 'bench/load-report'),
    ...(process.argv.includes('--trust-rate') ? { trustRate: Number(arg('trust-rate', '2000')) } : {}),
  });
  process.exit((s.lost as number) === 0 ? 0 : 1);
}
