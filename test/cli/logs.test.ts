/** `weft logs` reads the daemon's log file: the last N lines, pretty or (--json) as written. */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { weft } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

test('weft logs -n N prints the last N lines, and -n 0 none (it printed the whole file)', () => {
  const t = tempDir('weft-logs-');
  try {
    const data = join(t.dir, 'data');
    mkdirSync(join(data, 'logs'), { recursive: true, mode: 0o700 });
    const lines = [1, 2, 3, 4, 5].map((i) =>
      JSON.stringify({
        level: 30,
        time: Date.UTC(2026, 11, 7, 8, 0, i),
        pid: 1,
        hostname: 'h',
        msg: `line ${i}`,
      }),
    );
    writeFileSync(join(data, 'logs', 'weft.log'), `${lines.join('\n')}\n`, { mode: 0o600 });
    const env = { HOME: t.dir, WEFT_DATA_DIR: data, WEFT_LOG_LEVEL: 'warn' };
    const two = weft(['logs', '-n', '2'], env);
    assert.equal(two.code, 0, two.stderr);
    assert.equal(
      two.stdout,
      '2026-12-07T08:00:04.000Z INFO  line 4\n2026-12-07T08:00:05.000Z INFO  line 5\n',
    );
    const json = weft(['--json', 'logs', '-n', '1'], env);
    assert.equal(json.stdout, `${lines[4]}\n`);
    const none = weft(['logs', '-n', '0'], env);
    assert.equal(none.code, 0, none.stderr);
    assert.equal(none.stdout, '');
  } finally {
    t.cleanup();
  }
});
