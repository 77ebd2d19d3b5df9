import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CLI } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const DOC = fileURLToPath(new URL('../../../docs/pillars.md', import.meta.url));

/** The shell blocks of the doc's "## Walkthrough" section, in order. */
function walkthrough(): string[] {
  const text = readFileSync(DOC, 'utf8');
  const start = text.indexOf('## Walkthrough');
  const end = text.indexOf('\n## ', start + 1);
  const section = text.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] as string);
}

/** What the doc says a notification list prints: the DESCRIPTION column of its table rows. */
function expectedDescriptions(blocks: readonly string[]): string[] {
  const out: string[] = [];
  for (const block of blocks) {
    for (const line of block.split('\n')) {
      const m = /^#\s+\d+\s{2,}\S+\s{2,}\S+\s{2,}\S+\s{2,}\S+\s{2,}\S+\s{2,}(.+)$/.exec(line);
      if (m) out.push((m[1] as string).replace(/…$/, '').trim());
    }
  }
  return out;
}

describe('docs/pillars.md: the walkthrough runs as written', () => {
  const t = tempDir('weft-walkthrough-');
  after(() => t.cleanup());

  it('every command succeeds and every alert the doc shows appears', () => {
    const blocks = walkthrough();
    assert.ok(blocks.length >= 3, 'the walkthrough has its shell blocks');
    const bin = join(t.dir, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'weft'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
    chmodSync(join(bin, 'weft'), 0o755);
    // The blocks exactly as the doc has them, in one shell; stops at the first failing command.
    // A failure part-way must not leave the walkthrough's daemon running.
    const script = ['set -e', "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT", ...blocks].join('\n');
    const r = spawnSync('bash', ['-c', script], {
      cwd: t.dir,
      encoding: 'utf8',
      timeout: 120_000,
      env: { PATH: `${bin}:${process.env.PATH}`, HOME: t.dir, WEFT_API_PORT: '0', LANG: 'C.UTF-8' },
    });
    const output = `${r.stdout}\n${r.stderr}`;
    assert.equal(r.status, 0, `the walkthrough stopped:\n${output.slice(-3000)}`);
    const expected = expectedDescriptions(blocks);
    assert.ok(expected.length >= 5, 'the doc shows what to expect');
    for (const d of expected) assert.ok(r.stdout.includes(d), `the doc shows '${d}'; the run printed:\n${r.stdout.slice(-3000)}`);
  });
});
