/**
 * The installed command (package.json's `bin`: `weft` and `telec`) is a CommonJS file that
 * answers `--version` itself and hands every other command to the ESM entry. It must say what
 * the ESM entry says, with the same exit codes, so nothing depends on which one a user ran.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CLI } from '../helpers/cli.js';

/** The repository root: dist/test/cli (compiled) or test/cli (source) is two or three levels below it. */
function root(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'weft') return dir;
    } catch {
      // go up
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json of weft not found');
    dir = up;
  }
}

const ROOT = root();
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };

function run(file: string, args: string[]) {
  const r = spawnSync(process.execPath, [file, ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, WEFT_LOG_LEVEL: 'warn' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('weft and telec, as installed, print the package version, and say what the ESM entry says with its exit codes', () => {
  assert.deepEqual(Object.keys(PKG.bin).sort(), ['telec', 'weft']);
  for (const [name, rel] of Object.entries(PKG.bin)) {
    const bin = join(ROOT, rel);
    for (const flag of ['--version', '-V']) {
      const v = run(bin, [flag]);
      assert.equal(v.code, 0, `${name} ${flag}: ${v.stderr}`);
      assert.equal(v.stdout, `${PKG.version}\n`, `${name} ${flag}`);
      assert.deepEqual(v, run(CLI, [flag]), `${name} ${flag}: as the ESM entry`);
    }
    const help = run(bin, ['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: weft \[options\] \[command\]/);
    assert.deepEqual(help, run(CLI, ['--help']), `${name} --help: as the ESM entry`);
    // A usage error reaches the user the same way: its message and commander's exit code.
    const bad = run(bin, ['no-such-command']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /unknown command 'no-such-command'/);
    assert.deepEqual(bad, run(CLI, ['no-such-command']), `${name} no-such-command: as the ESM entry`);
  }
});
