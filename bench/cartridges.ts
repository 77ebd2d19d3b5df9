/**
 * System cartridges benchmark: events/s through the full six-stage system pipeline (trust,
 * dedup, enrichment, correlation, classification, projection) against the core two-stage
 * pipeline (dedup, projection), same event mix, same run, alternating rounds; the figure is
 * the median round. Goal: the four new stages cost less than 30% of throughput.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemPipeline } from '../src/cartridges/index.js';
import { createNode, type NodeInit } from '../src/node/index.js';
import { type BenchSection, driveThroughput, fmt } from './harness.js';

const TODO = 'domain.software-development.planning.todo.created';
const N = Number(process.env.WEFT_BENCH_CARTRIDGE_EVENTS ?? process.env.WEFT_BENCH_EVENTS ?? 50_000);
const ROUNDS = 3;

// 90% new todos (a notification each, a new entity each), 10% worker crashes over 50 workers
// (updates of open notifications, failure history, cascade windows).
function input(i: number, run: string) {
  if (i % 10 === 9) {
    return {
      event: 'system.worker.crashed',
      payload: { worker: `w${i % 50}`, error: 'oom', restarts: i },
      source: 'bench',
    };
  }
  return {
    event: TODO,
    payload: { slug: `${run}-${i}`, title: `Todo number ${i}`, author: 'bench' },
    entity: `todo/${run}-${i}`,
    source: 'bench',
  };
}

async function throughput(cartridges: NodeInit['cartridges'], run: string): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-cart-'));
  const node = await createNode({ dataDir: dir, computer: 'bench', ...(cartridges ? { cartridges } : {}) });
  await node.start();
  const rate = await driveThroughput(node, N, (j) => input(j, run), (b) => b.entries);
  await node.stop();
  rmSync(dir, { recursive: true, force: true });
  return rate;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

export default async function cartridgesBench(): Promise<BenchSection> {
  // The bench is one producer at full speed: give it a rate it cannot hit, so the limiter
  // still runs on every event but throttles nothing.
  const full: NodeInit['cartridges'] = (_defaults, stores) =>
    systemPipeline({ trust: { rate: { perSecond: 1e9, burst: 1e9 } } })(stores);
  const two: number[] = [];
  const six: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    two.push(await throughput(undefined, `two${r}`));
    six.push(await throughput(full, `six${r}`));
  }
  const twoStage = median(two);
  const sixStage = median(six);
  const cost = 1 - sixStage / twoStage;
  return {
    title: `System cartridges (${fmt(N)} events, 90% new todos + 10% worker crashes, median of ${ROUNDS} rounds)`,
    rows: [
      { measure: 'two stages: dedup → projection', value: `${fmt(twoStage)} events/s` },
      {
        measure: 'six stages: trust → dedup → enrichment → correlation → classification → projection',
        value: `${fmt(sixStage)} events/s`,
      },
      { measure: 'cost of the four new stages (goal < 30%)', value: `${fmt(cost * 100, 1)}% of throughput` },
    ],
    results: {
      events: N,
      rounds: ROUNDS,
      twoStageEventsPerSec: twoStage,
      sixStageEventsPerSec: sixStage,
      cost,
      two,
      six,
    },
  };
}
