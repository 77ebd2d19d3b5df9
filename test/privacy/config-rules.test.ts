/**
 * The `[[observe.rules]]` example in docs/privacy.md is a config the daemon accepts, and
 * `weft config show` refuses (exit 2, the daemon's own line) a config `weft daemon` refuses.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { weft } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

// From dist/test/privacy (compiled) or test/privacy (source).
const DOC = [new URL('../../../docs/privacy.md', import.meta.url), new URL('../../docs/privacy.md', import.meta.url)].map((u) => fileURLToPath(u)).find((p) => existsSync(p)) as string;

function envFor(dir: string, toml: string): NodeJS.ProcessEnv {
  const file = join(dir, 'config.toml');
  writeFileSync(file, `data_dir = ${JSON.stringify(join(dir, 'data'))}\napi.port = 0\n${toml}`);
  return { HOME: dir, WEFT_CONFIG: file, WEFT_DATA_DIR: '', WEFT_MESH_PROVIDER: 'none' };
}

test("docs/privacy.md's [[observe.rules]] example passes 'weft config show'", () => {
  const t = tempDir('weft-config-rules-');
  try {
    const blocks = [...readFileSync(DOC, 'utf8').matchAll(/```toml\n([\s\S]*?)```/g)].map((m) => m[1] as string);
    const rules = blocks.find((b) => b.includes('[[observe.rules]]'));
    assert.ok(rules, 'the doc has the example');
    const r = weft(['config', 'show'], envFor(t.dir, rules));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /observe\.rules = \[\{"name":"prod-deploys"/);
  } finally {
    t.cleanup();
  }
});

test("a rule name the daemon refuses makes 'weft config show' exit 2 with the daemon's line", () => {
  const t = tempDir('weft-config-rules-');
  try {
    const env = envFor(t.dir, '[[observe.rules]]\nname = "prod deploys"\npattern = "deploy\\\\.sh"\nrisk = "high"\n');
    const message = /config key observe\.rules: rule #1: name "prod deploys" must be 1-64 letters, digits, '-', '_' or '\.'/;
    const show = weft(['config', 'show'], env);
    assert.equal(show.code, 2, show.stdout + show.stderr);
    assert.match(show.stderr, message);
    assert.equal(show.stderr.trim().split('\n').length, 1, 'one line');
    assert.match(show.stdout, /observe\.rules = /, 'the config is still shown, to find the mistake in');
    const daemon = weft(['daemon'], env);
    assert.equal(daemon.code, 2, 'the daemon refuses the same config');
    assert.match(daemon.stderr, message);
  } finally {
    t.cleanup();
  }
});
