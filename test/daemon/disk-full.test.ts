/**
 * A data dir whose disk is full: the daemon keeps answering, says what is wrong, refuses what it
 * cannot keep with a clear error, and carries on by itself once there is space again.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { WeftClient } from '../../src/client/index.js';
import { readToken } from '../../src/config/index.js';
import { eventually } from '../helpers/cluster.js';
import { startDaemonProcess, weft } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

test('a log file that the disk refuses (ENOSPC) does not crash or hang the daemon: it is named in status and the daemon stops when asked', async (t) => {
  if (!existsSync('/dev/full')) return t.skip('no /dev/full on this system');
  const dir = tempDir('weft-logfull-');
  const data = join(dir.dir, 'data');
  mkdirSync(join(data, 'logs'), { recursive: true, mode: 0o700 });
  // Every write to /dev/full fails with ENOSPC: the log file of a full disk, without root.
  symlinkSync('/dev/full', join(data, 'logs', 'weft.log'));
  const env = {
    HOME: dir.dir,
    WEFT_DATA_DIR: data,
    WEFT_API_PORT: '0',
    WEFT_COMPUTER_NAME: 'logfull',
    WEFT_LOG_LEVEL: 'debug',
  };
  const d = await startDaemonProcess(env);
  try {
    const client = new WeftClient({ url: d.url, token: readToken(data) as string });
    // Enough lines that the log is written (and refused) many times over.
    for (let i = 0; i < 20; i++)
      await client.emit({
        event: 'system.worker.crashed',
        payload: { worker: `w${i}`, error: 'x', restarts: 0 },
      });
    let problems: string[] = [];
    await eventually(
      async () => {
        problems = (await client.health()).problems as string[];
        return problems.some((p) => p.startsWith('log: '));
      },
      60_000,
      'the log problem in /api/health',
    );
    const p = problems.find((x) => x.startsWith('log: ')) as string;
    assert.match(p, /weft\.log cannot be written .*ENOSPC.*the disk is full/);
    const status = weft(['status'], env);
    assert.equal(status.code, 3, 'a problem makes weft status exit 3');
    assert.match(status.stdout, /log: .*ENOSPC/);
    // Still serving after all those refused log writes.
    await client.emit({
      event: 'system.worker.crashed',
      payload: { worker: 'after', error: 'x', restarts: 0 },
    });
    d.proc.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      d.exited,
      new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), 60_000))),
    ]);
    clearTimeout(timer);
    assert.equal(
      code,
      0,
      `the daemon stops cleanly (it hung in its exit flush before): ${d.output().slice(-2000)}`,
    );
  } finally {
    if (d.proc.exitCode === null && d.proc.signalCode === null) d.proc.kill('SIGKILL');
    await d.exited;
    dir.cleanup();
  }
});
