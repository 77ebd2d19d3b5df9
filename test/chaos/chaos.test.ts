/**
 * The short chaos run inside `npm test`: 4 honest daemons (2 over Redis, 2 over TLS) and a
 * TLS peer whose clock is 6 minutes behind, a seeded stream of local, cluster and public
 * events, one of each fault (kill -9 and restart, Redis restart empty, a TLS link cut,
 * garbage into every inbox). The full suite is `npm run chaos`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { table } from './checker.js';
import { randomSeed } from './prng.js';
import { runChaos } from './run.js';

test('under kills, a Redis restart, a cut link, a skewed clock and garbage, every node applies exactly the events it is entitled to', async () => {
  const seed = process.env.WEFT_CHAOS_SEED ? Number(process.env.WEFT_CHAOS_SEED) : randomSeed();
  const lines: string[] = [];
  const r = await runChaos({ seed, nodes: 4, durationMs: 20_000, rate: 10, garbage: 200, settleMs: 120_000, log: (s) => lines.push(s) });
  const report = `seed ${seed} (replay: WEFT_CHAOS_SEED=${seed}, or npm run chaos -- --seed ${seed} --nodes 4 --duration 20 --rate 10)\n${lines.join('\n')}\n${table(r.result)}`;
  assert.ok(r.result.ok, `${r.result.firstFailure}\n${report}`);
  assert.ok(r.skewRefused, `the skewed-clock peer's frames were not refused by every TLS node\n${report}`);
  assert.ok(r.garbageRefused, `garbage was not refused with FRAME_* codes\n${report}`);
  assert.ok(r.emitted > 0);
});
