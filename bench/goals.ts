/**
 * The performance issue's goals in one table, from the figures the sections of this run wrote
 * (a goal whose section did not run is left out): each with the figure, the peer or ceiling it
 * is held against from the same run, their ratio, and met / not met. `npm run bench` prints it
 * last and saves it as `goals` in bench/results.json.
 */
import { fmt } from './harness.js';

export interface GoalRow {
  goal: string;
  figure: string;
  against: string;
  ratio: string;
  verdict: 'met' | 'not met';
}

interface Phase {
  eventsPerSec: number;
  p99: number;
  delivered: number;
  expected: number;
}
interface CompareSystem {
  system: string;
  burst?: Phase;
  paced?: Phase;
}

const verdict = (ok: boolean): GoalRow['verdict'] => (ok ? 'met' : 'not met');
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** Rows for the goals whose figures are in `results` (keyed by section name, as bench/results.json). */
export function goalRows(results: Record<string, unknown>): GoalRow[] {
  const rows: GoalRow[] = [];
  const section = (name: string) => results[name] as Record<string, unknown> | undefined;

  const compare = section('compare');
  const systems = (compare?.systems as CompareSystem[] | undefined) ?? [];
  const jet = systems.find((s) => s.system.startsWith('NATS JetStream'));
  const complete = (s: CompareSystem) => !!s.burst && !!s.paced && s.burst.delivered === s.burst.expected && s.paced.delivered === s.paced.expected;
  for (const [over, p99Goal] of [
    ['TLS', 5],
    ['Redis', 10],
  ] as const) {
    const w = systems.find((s) => s.system === `Weft mesh over ${over}`);
    if (!w?.burst || !w.paced) continue;
    if (jet?.burst) {
      const r = w.burst.eventsPerSec / jet.burst.eventsPerSec;
      rows.push({
        goal: `compare: Weft over ${over} burst ≥ 1.0× JetStream`,
        figure: `${fmt(w.burst.eventsPerSec)} events/s`,
        against: `JetStream ${fmt(jet.burst.eventsPerSec)} events/s`,
        ratio: `${fmt(r, 2)}×`,
        verdict: verdict(r >= 1 && complete(w)),
      });
    }
    rows.push({
      goal: `compare: Weft over ${over} p99 at 1,000/s ≤ ${p99Goal} ms`,
      figure: `${fmt(w.paced.p99, 1)} ms`,
      against: jet?.paced ? `JetStream ${fmt(jet.paced.p99, 1)} ms` : '-',
      ratio: jet?.paced && jet.paced.p99 > 0 ? `${fmt(w.paced.p99 / jet.paced.p99, 1)}×` : '-',
      verdict: verdict(w.paced.p99 <= p99Goal && complete(w)),
    });
  }

  const startup = section('startup');
  if (startup) {
    const bareMs = num(startup.bareNodeMs);
    for (const [key, what, goal] of [
      ['versionMs', '`weft --version`', 80],
      ['emitMs', '`weft emit`', 150],
      ['notificationsListMs', '`weft notifications list`', 150],
    ] as const) {
      const ms = num(startup[key]);
      if (ms === undefined) continue;
      rows.push({
        goal: `CLI: ${what} < ${goal} ms (median wall)`,
        figure: `${fmt(ms)} ms`,
        against: bareMs !== undefined ? `bare node ${fmt(bareMs)} ms` : '-',
        ratio: bareMs ? `${fmt(ms / bareMs, 2)}×` : '-',
        verdict: verdict(ms < goal),
      });
    }
    const bareRss = num(startup.bareIdleRssMb);
    const rss = (goal: string, mb: number | undefined, limit: number, ok = true) => {
      if (mb === undefined) return;
      rows.push({
        goal: `${goal} < ${limit} MB RSS after 30 s`,
        figure: `${fmt(mb, 1)} MB`,
        against: bareRss !== undefined ? `bare idle node ${fmt(bareRss, 1)} MB` : '-',
        ratio: bareRss ? `${fmt(mb / bareRss, 2)}×` : '-',
        verdict: verdict(mb < limit && ok),
      });
    };
    rss('idle embedded daemon', num(startup.daemonIdleRssMb), 50);
    rss('idle daemon with the mesh on (TLS, 3 peers)', num((startup.meshIdleRssMb as unknown[] | undefined)?.[0]), 70, startup.meshLinked === true);
  }

  const pipeline = section('pipeline');
  const emb = num(pipeline?.embeddedEventsPerSec);
  const ceiling = num(pipeline?.ceilingRowsPerSec);
  if (emb !== undefined && ceiling) {
    rows.push({
      goal: 'pipeline (embedded) ≥ 40% of the raw SQLite batched insert',
      figure: `${fmt(emb)} events/s`,
      against: `ceiling ${fmt(ceiling)} rows/s`,
      ratio: `${fmt((emb / ceiling) * 100, 1)}%`,
      verdict: verdict(emb / ceiling >= 0.4),
    });
  }

  const eps = section('transport')?.eventsPerSecond as Record<string, number> | undefined;
  const viaRedis = num(eps?.redis);
  const xadd = num(eps?.rawRedisCeiling);
  if (viaRedis !== undefined && xadd) {
    const r = viaRedis / xadd;
    rows.push({
      goal: 'signed frames A → B over Redis ≥ 50% of raw XADD+XREADGROUP of the same bytes',
      figure: `${fmt(viaRedis)} events/s`,
      against: `ceiling ${fmt(xadd)} events/s`,
      ratio: `${fmt(r * 100, 1)}%`,
      verdict: verdict(r >= 0.5),
    });
  }

  const fan = section('mesh')?.fanOutDeliveriesPerSec as Record<string, number> | undefined;
  const to16 = num(fan?.[16]);
  const to1 = num(fan?.[1]);
  if (to16 !== undefined && to1) {
    const r = to16 / to1;
    rows.push({
      goal: 'fan-out: deliveries/s to 16 peers ≥ 0.8× to 1 peer',
      figure: `${fmt(to16)} deliveries/s`,
      against: `1 peer ${fmt(to1)} deliveries/s`,
      ratio: `${fmt(r, 2)}×`,
      verdict: verdict(r >= 0.8),
    });
  }

  const ratio = section('volume')?.ratio as Record<string, number> | undefined;
  if (ratio) {
    const worst = Object.entries(ratio).reduce((a, b) => (b[1] > a[1] ? b : a));
    rows.push({
      goal: 'flat in stored volume: list p99 and emit rate at 1,000,000 stored within 1.5× of an empty node',
      figure: `worst: ${worst[0]} ${fmt(worst[1], 2)}×`,
      against: 'the same requests on a node with 1,000',
      ratio: Object.entries(ratio)
        .map(([k, v]) => `${k} ${fmt(v, 2)}×`)
        .join(', '),
      verdict: verdict(worst[1] <= 1.5),
    });
  }
  return rows;
}
