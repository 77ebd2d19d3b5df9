import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { CLI } from '../helpers/cli.js';

test('weft demo runs three nodes, shows each step, exits 0 and removes its temporary directories', () => {
  const r = spawnSync(process.execPath, [CLI, 'demo'], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, WEFT_LOG_LEVEL: 'warn' } });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  const out = r.stdout;
  assert.match(out, /local\s+received by: \(no peer\)/);
  assert.match(out, /cluster\s+received by: beta\n/);
  assert.match(out, /public\s+received by: beta, gamma\n/);
  assert.match(out, /alpha received none of its own events back \(mesh events in: 0\)/);
  assert.match(out, /beta: mesh\.event\.rejected\s+FRAME_UNKNOWN_SENDER/);
  assert.match(out, /the forged ping reached beta's pipeline: no/);
  assert.match(out, /beta\s+\(L1\): held: notification #\d+ cartridge\.install_pending \(actionable: true\); installed: no/);
  assert.match(out, /gamma \(L3\): installed at once, pending_activation/);
  assert.match(out, /-> installed greeter 1\.0\.0, pending_activation, in .*cartridges\/incoming\/greeter\.js/);
  assert.match(out, /weft cartridges activate greeter -> active; it runs in the sandbox/);
  assert.match(out, /it emitted "greeter says hi to hello 1"/);
  assert.match(out, /greeter 1\.0\.0 active, invocation count: 3\n/);
  const dir = /data in (\S+)/.exec(out)?.[1];
  assert.ok(dir, 'prints its data directory');
  assert.equal(existsSync(dir), false, 'temporary directory removed');
});
