/**
 * The 100-node simulation's own accounting, on a fleet small enough for `npm test`: six whole
 * nodes in this process over the memory transport, one of them stopped and restarted during the
 * load, garbage written straight into the inboxes. What the simulation reports as lost,
 * duplicated and refused must be right, or its 100-node figures mean nothing.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runSimulation } from '../../bench/simulate.js';
import { randomSeed } from '../chaos/prng.js';
import { tempDir } from '../helpers/tmp.js';

test('should deliver every cluster and public event exactly once across a restart and refuse every garbage frame', async () => {
  const seed = process.env.WEFT_SIM_SEED ? Number(process.env.WEFT_SIM_SEED) : randomSeed();
  const out = tempDir('weft-sim-test-');
  const lines: string[] = [];
  try {
    // 5 % garbage rather than the default 1 %: a 5-second run of six nodes puts a few hundred
    // frames on the network, and the check needs some garbage among them.
    const r = await runSimulation({ nodes: 6, seconds: 5, rate: 2, seed, churn: 0.05, garbage: 0.05, out: out.dir, log: (s) => lines.push(s) });
    const why = `seed ${seed} (replay: WEFT_SIM_SEED=${seed})\n${lines.join('\n')}`;
    assert.equal(r.phases.length, 1, why);
    const p = r.phases[0];
    assert.ok(p, why);
    assert.equal(p.nodes, 6, why);
    assert.ok(p.emitted.cluster + p.emitted.public > 0, `nothing was emitted to other nodes\n${why}`);
    assert.ok(p.delivery.expected > 0, why);
    assert.equal(p.delivery.lost, 0, `lost: ${p.delivery.lostExamples.join(', ')}\n${why}`);
    assert.equal(p.delivery.duplicated, 0, why);
    assert.equal(p.delivery.unexpected, 0, why);
    assert.equal(p.delivery.delivered, p.delivery.expected, why);
    assert.equal(p.emitErrors, 0, why);
    // The restart happened, and the node came back on its data dir.
    assert.equal(p.churn.stopped.length, 1, why);
    assert.equal(p.churn.restarts, 1, why);
    // Every garbage frame was refused (as a frame) by the node it was written to.
    assert.ok(p.garbage.injected > 0, `no garbage was injected\n${why}`);
    assert.equal(p.garbage.rejected, p.garbage.injected, why);
    assert.deepEqual(p.garbage.nodesWithMismatch, [], why);
    assert.ok(r.ok, why);
    // The report files, with what they must say.
    assert.ok(existsSync(r.files.json) && existsSync(r.files.html), why);
    assert.equal(r.files.json, join(out.dir, 'report.json'));
    const json = JSON.parse(readFileSync(r.files.json, 'utf8')) as { summary: { delivery: { lost: number } }; goals: Array<{ name: string; met: boolean }> };
    assert.equal(json.summary.delivery.lost, 0);
    assert.ok(json.goals.some((g) => g.name === 'exactly once after churn' && g.met));
    const html = readFileSync(r.files.html, 'utf8');
    assert.match(html, /<svg /);
    assert.match(html, /goal: exactly once after churn/);
  } finally {
    out.cleanup();
  }
});
