/**
 * `npm run simulate` checks its command line before it starts a fleet: --help prints the options
 * and exits, and a mistyped flag or value is one line and exit code 2 (it used to run the default
 * 100-node simulation for minutes, with NaN or the flag ignored).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseSimulateArgs } from '../../bench/simulate.js';

const SIMULATE = fileURLToPath(new URL('../../bench/simulate.js', import.meta.url));
const TODAY = new Date('2026-12-07T12:00:00Z');

test('simulate takes its documented options, with their defaults', () => {
  const o = parseSimulateArgs(
    ['--nodes', '10', '--seconds=5', '--seed', '42', '--preseed', '0', '--profile'],
    TODAY,
  );
  assert.ok(o);
  assert.equal(o.nodes, 10);
  assert.equal(o.seconds, 5);
  assert.equal(o.seed, 42);
  assert.equal(o.preseed, 0);
  assert.equal(o.profile, true);
  assert.equal(o.rate, 2);
  assert.equal(o.churn, 0.05);
  assert.equal(o.garbage, 0.01);
  assert.equal(o.maxDeliveries, 100);
  assert.equal(o.dataRoot, 'auto');
  assert.match(o.out, /simulate-2026-12-07$/);
  // --sizes sets the main run's node count (the report's config.nodes said 100 beside --sizes 5,10).
  assert.equal(parseSimulateArgs(['--sizes', '5,10'], TODAY)?.nodes, 10);
  assert.equal(parseSimulateArgs(['--help'], TODAY), undefined);
});

test('simulate refuses an unknown flag or a value out of range, naming it', () => {
  for (const [args, said] of [
    [['--node', '10'], /unknown option '--node'/],
    [['--nodes', 'abc'], /--nodes must be a whole number from 2 to 1000, got 'abc'/],
    [['--nodes'], /--nodes needs a value/],
    [['--nodes', '--seconds', '5'], /--nodes needs a value/],
    [['--seconds', '0'], /--seconds must be a whole number from 1 to 3600/],
    [['--rate', '0'], /--rate must be above 0/],
    [['--churn', '1.5'], /--churn must be a number from 0 to 1/],
    [['--garbage', '-0.1'], /--garbage must be a number from 0 to 1/],
    [['--sizes', '5,,10'], /--sizes takes fleet sizes from 2 to 1000/],
    [['--nodes', '20', '--sizes', '5,10'], /disagree/],
  ] as const) {
    assert.throws(() => parseSimulateArgs([...args], TODAY), said, args.join(' '));
  }
});

test('npm run simulate -- --help prints the options and exits 0; a bad flag exits 2 before any node starts', () => {
  const help = spawnSync(process.execPath, [SIMULATE, '--help'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /^Usage: npm run simulate -- \[options\]/);
  assert.match(help.stdout, /--nodes <n> +nodes of the largest run, 2 to 1000 \(default 100\)/);
  assert.doesNotMatch(help.stdout, /phase:/);
  const bad = spawnSync(process.execPath, [SIMULATE, '--nodes', 'ten'], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(bad.status, 2);
  assert.equal(bad.stdout, '');
  assert.equal(bad.stderr, "simulate: --nodes must be a whole number from 2 to 1000, got 'ten'\n");
});
