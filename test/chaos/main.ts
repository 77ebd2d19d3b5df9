/**
 * `npm run chaos` — the chaos suite against real daemons.
 *
 *   npm run chaos                         three runs, three fresh seeds, 5 nodes, 60 s each
 *   npm run chaos -- --seed 1234          replay one run
 *   npm run chaos -- --nodes 7 --duration 120 --rate 30 --runs 1
 *   npm run chaos -- --fuzz [--count 1000000] [--via redis|tls]   the fuzzed-ingress run (a million frames)
 *   npm run chaos -- --netns              partitions between network namespaces (root)
 *   npm run chaos -- --trusted-peers      declare Redis peers `!peer` (works around the
 *                                         share_to penalty, see docs/reliability.md)
 *
 * Exit code 0 only if every run passed; the first counter-example is printed on failure.
 */
import { table } from './checker.js';
import { randomSeed } from './prng.js';
import { runChaos } from './run.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const has = (name: string) => process.argv.includes(`--${name}`);
const log = (s: string) => console.log(s);

if (has('fuzz')) {
  const { runFuzz } = await import('./fuzz.js');
  const via = arg('via') === 'tls' ? 'tls' : 'redis';
  const r = await runFuzz({ via, count: Number(arg('count') ?? 1_000_000), seed: Number(arg('seed') ?? randomSeed()), log });
  process.exit(r.ok ? 0 : 1);
}
if (has('netns')) {
  const { runNetns } = await import('./netns.js');
  const r = await runNetns({ log });
  process.exit(r.ok ? 0 : 1);
}

const seeds = arg('seed') ? [Number(arg('seed'))] : Array.from({ length: Number(arg('runs') ?? 3) }, () => randomSeed());
let failed = 0;
for (const seed of seeds) {
  console.log(`\nchaos run: seed ${seed} (replay: npm run chaos -- --seed ${seed}${arg('nodes') ? ` --nodes ${arg('nodes')}` : ''}${arg('duration') ? ` --duration ${arg('duration')}` : ''}${arg('rate') ? ` --rate ${arg('rate')}` : ''})`);
  const r = await runChaos({
    seed,
    nodes: Number(arg('nodes') ?? 5),
    durationMs: Number(arg('duration') ?? 60) * 1000,
    rate: Number(arg('rate') ?? 20),
    trustedRedisPeers: has('trusted-peers'),
    log,
  });
  console.log(`\n${table(r.result)}\n`);
  console.log(`emitted ${r.emitted} events (${r.uncertain} uncertain: ${r.result.uncertainResolved.applied} applied at their origin, ${r.result.uncertainResolved.dropped} never)`);
  console.log(`skewed-clock peer refused by every honest TLS node: ${r.skewRefused ? 'yes' : 'NO'}`);
  console.log(`garbage refused with FRAME_* by every Redis node: ${r.garbageRefused ? 'yes' : 'NO'}`);
  if (r.ok) console.log(`PASS seed ${seed}`);
  else {
    failed++;
    console.log(`FAIL seed ${seed}: ${r.result.firstFailure ?? (r.skewRefused ? 'garbage not refused' : 'skewed peer not refused')}`);
  }
}
console.log(`\n${seeds.length - failed}/${seeds.length} chaos runs passed (seeds ${seeds.join(', ')})`);
process.exit(failed === 0 ? 0 : 1);
