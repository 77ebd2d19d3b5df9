/**
 * Files in the data dir that are not what the daemon left there, and a port that is not the
 * daemon's: each gets one line saying what is in the way, not a bare errno or a stack trace,
 * and never advice that cannot work ("start one" while one runs).
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { startDaemonProcess, weft } from '../helpers/cli.js';
import { freePort } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

test('a logs folder that is a file, or a log file that is a folder, is one line naming it', () => {
  const t = tempDir('weft-logs-');
  try {
    for (const [i, spoil] of [(d: string) => writeFileSync(join(d, 'logs'), 'x'), (d: string) => mkdirSync(join(d, 'logs', 'weft.log'), { recursive: true })].entries()) {
      const data = join(t.dir, `data-${i}`);
      mkdirSync(data, { recursive: true, mode: 0o700 });
      spoil(data);
      const r = weft(['daemon'], { HOME: t.dir, WEFT_DATA_DIR: data, WEFT_API_PORT: '0' });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, i === 0 ? /^weft: cannot write the daemon's log file .*weft\.log: .*logs is not a directory; move what is there aside/ : /^weft: cannot write the daemon's log file .*weft\.log: .*weft\.log is a directory/);
      assert.equal(r.stderr.trim().split('\n').length, 1, 'one line, no stack trace');
    }
  } finally {
    t.cleanup();
  }
});

test('the token file gone while the daemon runs: the CLI says to restart it, not to start one', async () => {
  const t = tempDir('weft-token-');
  const data = join(t.dir, 'data');
  const env = { HOME: t.dir, WEFT_DATA_DIR: data, WEFT_API_PORT: '0' };
  const d = await startDaemonProcess(env);
  try {
    rmSync(join(data, 'api-token'));
    const r = weft(['status'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^weft: the API token file .*api-token is missing or empty, but a weft daemon \\(pid ${d.proc.pid}\\) runs on .*: restart it`));
  } finally {
    d.proc.kill('SIGTERM');
    await d.exited;
    t.cleanup();
  }
});

test('another program on api.port is named as such, not as an HTTP status', async () => {
  const t = tempDir('weft-squat-');
  const port = await freePort();
  // In its own process: weft() below blocks this one until the CLI is done.
  const other = spawn(process.execPath, ['-e', `require('http').createServer((q, r) => r.writeHead(404).end('not here')).listen(${port}, '127.0.0.1', () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise((r) => other.stdout?.once('data', r));
  try {
    const data = join(t.dir, 'data');
    mkdirSync(data, { recursive: true, mode: 0o700 });
    writeFileSync(join(data, 'api-token'), 'x'.repeat(43), { mode: 0o600 });
    const r = weft(['status'], { HOME: t.dir, WEFT_DATA_DIR: data, WEFT_API_PORT: String(port) });
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^weft: http://127\\.0\\.0\\.1:${port} answered HTTP 404 and is not a weft daemon \\(another program on api\\.port\\?\\)`));
  } finally {
    other.kill();
    t.cleanup();
  }
});

test('an identity.key that is garbage or a folder says what it is and how to put the key back', () => {
  const t = tempDir('weft-badkey-');
  try {
    for (const [i, spoil] of [(p: string) => writeFileSync(p, 'not a key', { mode: 0o600 }), (p: string) => mkdirSync(p, { mode: 0o700 })].entries()) {
      const data = join(t.dir, `data-${i}`);
      mkdirSync(data, { recursive: true, mode: 0o700 });
      spoil(join(data, 'identity.key'));
      const r = weft(['daemon'], { HOME: t.dir, WEFT_DATA_DIR: data, WEFT_API_PORT: '0' });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, i === 0 ? /identity\.key is not a PEM private key \(damaged or overwritten\?\): put this node's key back from a backup \('weft identity import <file>'/ : /identity\.key is a directory, not a key file: put this node's key back/);
      assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    }
  } finally {
    t.cleanup();
  }
});
