/**
 * What a start must get right about its data dir: one daemon per data dir, and a lock a crashed
 * daemon left never blocks the next start (after a `kill -9` or a reboot another process may have
 * the pid the lock names: a service manager's restart would be refused for good); a stop that
 * nobody reads any more is still clean; a node that lost its key is not silently a new node.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { AuditLog } from '../../src/audit/index.js';
import { recordedNodeId } from '../../src/daemon/index.js';
import { Store } from '../../src/store/index.js';
import { silentLogger, systemClock } from '../../src/util/index.js';
import { startDaemonProcess, weft } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

test('a lock naming a pid another process now has is taken over; a live daemon still refuses a second one', async () => {
  const t = tempDir('weft-lock-');
  const data = join(t.dir, 'data');
  mkdirSync(data, { recursive: true, mode: 0o700 });
  const env = { HOME: t.dir, WEFT_DATA_DIR: data, WEFT_API_PORT: '0', WEFT_COMPUTER_NAME: 'lock' };
  // Some other process that now has "the daemon's" pid.
  const other = spawn('sleep', ['300'], { stdio: 'ignore' });
  try {
    for (const lock of [`${other.pid} 1`, String(other.pid)]) {
      // As this version writes it (pid and a start that is not the sleeper's), and as an older one did (the pid alone).
      writeFileSync(join(data, 'weft.lock'), lock, { mode: 0o600 });
      const d = await startDaemonProcess(env);
      try {
        const second = weft(['daemon'], env);
        assert.equal(second.code, 1, second.stderr);
        assert.match(
          second.stderr,
          new RegExp(
            `another weft daemon \\(pid ${d.proc.pid}\\) is already running on .* \\(it holds .*weft\\.lock\\)`,
          ),
        );
      } finally {
        d.proc.kill('SIGTERM');
        await d.exited;
      }
    }
  } finally {
    other.kill();
    t.cleanup();
  }
});

test('a stop whose terminal stopped reading (weft daemon | head -1) is still clean', async () => {
  const t = tempDir('weft-epipe-');
  const data = join(t.dir, 'data');
  try {
    const d = await startDaemonProcess({ HOME: t.dir, WEFT_DATA_DIR: data, WEFT_API_PORT: '0', WEFT_COMPUTER_NAME: 'epipe' });
    // The reader goes away: the daemon's next line ("SIGTERM: draining and stopping...") meets EPIPE.
    d.proc.stdout?.destroy();
    d.proc.stderr?.destroy();
    d.proc.kill('SIGTERM');
    assert.equal(await d.exited, 0, 'exit 0, not an unhandled EPIPE');
    assert.equal(existsSync(join(data, 'weft.lock')), false, 'the lock is released');
    assert.equal(existsSync(join(data, 'daemon.json')), false, 'daemon.json is removed');
  } finally {
    t.cleanup();
  }
});

test('a node whose identity.key is gone does not start as a new node; with the key back it is itself again', async () => {
  const t = tempDir('weft-lostkey-');
  const data = join(t.dir, 'data');
  const env = { HOME: t.dir, WEFT_DATA_DIR: data, WEFT_API_PORT: '0', WEFT_COMPUTER_NAME: 'lostkey' };
  const nodeIdOf = async (d: Awaited<ReturnType<typeof startDaemonProcess>>) => {
    try {
      const token = readFileSync(join(data, 'api-token'), 'utf8').trim();
      const health = (await (await fetch(`${d.url}/api/health`, { headers: { authorization: `Bearer ${token}` } })).json()) as { nodeId: string };
      return health.nodeId;
    } finally {
      d.proc.kill('SIGTERM');
      await d.exited;
    }
  };
  try {
    const before = await nodeIdOf(await startDaemonProcess(env));
    assert.match(before, /^weft:ed25519:/);
    const key = join(data, 'identity.key');
    copyFileSync(key, join(t.dir, 'backup.key'));
    rmSync(key);
    const r = weft(['daemon'], env);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /identity\.key is missing, but this node's database is there and it was weft:ed25519:.*weft identity import/);
    assert.ok(r.stderr.includes(before), 'it names the node it was');
    assert.equal(existsSync(key), false, 'no new key was made');
    assert.equal(existsSync(join(data, 'weft.lock')), false, 'the lock is not left behind');
    copyFileSync(join(t.dir, 'backup.key'), key);
    assert.equal(await nodeIdOf(await startDaemonProcess(env)), before);
  } finally {
    t.cleanup();
  }
});

test("the database's own key is the node's entries, not a peer's rotation recorded beside them", async () => {
  const t = tempDir('weft-peer-rotated-');
  const data = join(t.dir, 'data');
  const env = { HOME: t.dir, WEFT_DATA_DIR: data, WEFT_API_PORT: '0', WEFT_COMPUTER_NAME: 'rotated' };
  try {
    let d = await startDaemonProcess(env);
    d.proc.kill('SIGTERM');
    await d.exited;
    const own = recordedNodeId(data);
    assert.match(own ?? '', /^weft:ed25519:/);
    // A peer announced a new key: the ingress records it under the peer's name.
    const store = Store.open({ path: join(data, 'weft.db') }, { clock: systemClock, logger: silentLogger });
    await new AuditLog({ store }).record('key.rotated', 'desktop', { ok: true, newNodeId: 'weft:ed25519:somebodyElse' }, true);
    await store.close();
    assert.equal(recordedNodeId(data), own);
    d = await startDaemonProcess(env);
    d.proc.kill('SIGTERM');
    assert.equal(await d.exited, 0);
  } finally {
    t.cleanup();
  }
});
