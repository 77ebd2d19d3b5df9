/**
 * A data dir whose disk is full: the daemon keeps answering, says what is wrong, refuses what it
 * cannot keep with a clear error, and carries on by itself once there is space again.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { test } from 'node:test';
import { WeftClient } from '../../src/client/index.js';
import { readToken } from '../../src/config/index.js';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';
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

/** A tmpfs of `size` at a temp dir (root only); undefined with the reason when it cannot be made. */
function smallDisk(size: string): { dir: string; remount(opts: string): void; cleanup(): void } | string {
  if (process.getuid?.() !== 0) return 'needs root to mount a small tmpfs';
  const t = tempDir('weft-disk-');
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', t.dir], {
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    t.cleanup();
    return `mount -t tmpfs failed: ${(r.stderr || r.error?.message || '').trim()}`;
  }
  return {
    dir: t.dir,
    remount: (opts) => {
      const m = spawnSync('mount', ['-o', `remount,${opts}`, t.dir], { encoding: 'utf8' });
      assert.equal(m.status, 0, `remount ${opts}: ${m.stderr}`);
    },
    cleanup: () => {
      // Lazy: a daemon that is still dying must not leave the mount behind.
      spawnSync('umount', ['-l', t.dir]);
      t.cleanup();
    },
  };
}

/** Fills the disk holding `dir` with one file until the disk refuses more. */
function fill(file: string): void {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
  } finally {
    closeSync(fd);
  }
}

async function post(
  url: string,
  token: string,
  i: number,
): Promise<{ status: number; body: { id?: string; error?: { code: string; message: string } } }> {
  const res = await fetch(`${url}/api/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      event: 'system.worker.crashed',
      payload: { worker: `w${i}`, error: 'x'.repeat(3000), restarts: i },
    }),
  });
  return {
    status: res.status,
    body: (await res.json()) as { id?: string; error?: { code: string; message: string } },
  };
}

test('a full disk: emits are refused with 507 naming the disk, status and doctor say so, nothing accepted is lost, and the node takes events again once there is space, without a restart', async (t) => {
  const disk = smallDisk('24m');
  if (typeof disk === 'string') return t.skip(disk);
  const data = join(disk.dir, 'data');
  const env = { HOME: disk.dir, WEFT_DATA_DIR: data, WEFT_API_PORT: '0', WEFT_COMPUTER_NAME: 'full' };
  let d: Awaited<ReturnType<typeof startDaemonProcess>> | undefined;
  try {
    d = await startDaemonProcess(env);
    const token = readFileSync(join(data, 'api-token'), 'utf8').trim();
    const accepted: string[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await post(d.url, token, i);
      assert.equal(r.status, 201, JSON.stringify(r.body));
      accepted.push(r.body.id as string);
    }
    fill(join(disk.dir, 'filler'));
    // The WAL may still have room for a few: emit until the disk refuses.
    let refused: Awaited<ReturnType<typeof post>> | undefined;
    for (let i = 10; i < 5000 && !refused; i++) {
      const r = await post(d.url, token, i);
      if (r.status === 201) accepted.push(r.body.id as string);
      else refused = r;
    }
    assert.ok(refused, 'the disk refused an emit');
    assert.equal(refused.status, 507, JSON.stringify(refused.body));
    assert.equal(refused.body.error?.code, 'WEFT_STORE_FULL');
    assert.match(
      refused.body.error?.message ?? '',
      /the disk holding .*weft\.db is full: nothing of this request was kept/,
    );
    assert.doesNotMatch(refused.body.error?.message ?? '', /internal error|ref /);

    const cli = weft(
      [
        'emit',
        'system.worker.crashed',
        '--payload',
        JSON.stringify({ worker: 'cli', error: 'x'.repeat(3000), restarts: 0 }),
      ],
      env,
    );
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, /the disk holding .* is full/);
    const status = weft(['status'], env);
    assert.equal(status.code, 3, status.stdout + status.stderr);
    assert.match(
      status.stdout,
      /store: the disk holding .*weft\.db is full since \d+ s .*emits are refused \(HTTP 507\)/,
    );
    const doctor = weft(['doctor', '--json'], env);
    assert.equal(doctor.code, 1, doctor.stdout + doctor.stderr);
    const dr = JSON.parse(doctor.stdout) as { ok: boolean; message: string };
    assert.equal(dr.ok, false);
    assert.match(dr.message, /the disk holding the data dir .* is full .*free space on that disk/);

    rmSync(join(disk.dir, 'filler'));
    // No restart: the next emits are taken.
    await eventually(
      async () => {
        const r = await post(d?.url as string, token, 9999);
        if (r.status === 201) accepted.push(r.body.id as string);
        return r.status === 201;
      },
      60_000,
      'an emit accepted once there is space',
    );
    d.proc.kill('SIGTERM');
    assert.equal(await d.exited, 0, d.output().slice(-2000));
    const db = new Database(join(data, 'weft.db'), { readonly: true });
    try {
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
      const has = db.prepare('SELECT 1 FROM events WHERE id = ?').pluck();
      const missing = accepted.filter((id) => has.get(id) === undefined);
      assert.deepEqual(missing, [], `every emit answered 201 is in the log (${accepted.length} accepted)`);
    } finally {
      db.close();
    }
    const after = weft(['doctor'], env);
    assert.equal(after.code, 0, after.stdout + after.stderr);
  } finally {
    if (d && d.proc.exitCode === null && d.proc.signalCode === null) {
      d.proc.kill('SIGKILL');
      await d.exited;
    }
    disk.cleanup();
  }
});

test('a start on a full disk or on a read-only mount stops with one line saying so, and leaves nothing half-written', async (t) => {
  const disk = smallDisk('8m');
  if (typeof disk === 'string') return t.skip(disk);
  const data = join(disk.dir, 'data');
  mkdirSync(data, { mode: 0o700 });
  const env = { HOME: disk.dir, WEFT_DATA_DIR: data, WEFT_API_PORT: '0', WEFT_COMPUTER_NAME: 'nospace' };
  try {
    fill(join(disk.dir, 'filler'));
    const full = weft(['daemon'], env);
    assert.equal(full.code, 1, full.stdout + full.stderr);
    assert.match(
      full.stderr,
      /^weft: cannot start: the disk holding the data dir .* is full .*free space on that disk/,
    );
    assert.equal(full.stderr.trim().split('\n').length, 1, 'one line');
    for (const f of ['daemon.json', 'weft.lock', 'weft.db'])
      assert.equal(existsSync(join(data, f)), false, `${f} not left behind`);
    const doctor = weft(['doctor'], env);
    assert.equal(doctor.code, 1);
    assert.match(doctor.stdout, /is full/);

    rmSync(join(disk.dir, 'filler'));
    disk.remount('ro');
    const ro = weft(['daemon'], env);
    assert.equal(ro.code, 1, ro.stdout + ro.stderr);
    assert.match(
      ro.stderr,
      /^weft: cannot start: the data dir .* is on a read-only file system.*remount it read-write/,
    );
    const doctorRo = weft(['doctor'], env);
    assert.equal(doctorRo.code, 1);
    assert.match(doctorRo.stdout, /read-only file system/);
  } finally {
    disk.cleanup();
  }
});

test("a peer's frames that arrive while the disk is full are not acknowledged: once there is space every event is applied, once", async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root to mount a small tmpfs');
  const root = tempDir('weft-meshfull-');
  const twoDir = join(root.dir, 'two');
  mkdirSync(twoDir, { recursive: true });
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=24m,mode=0700', 'tmpfs', twoDir], {
    encoding: 'utf8',
  });
  if (m.status !== 0) {
    root.cleanup();
    return t.skip(`mount -t tmpfs failed: ${m.stderr.trim()}`);
  }
  let stopAll: (() => Promise<void>) | undefined;
  try {
    const c = await startCluster(
      root.dir,
      [
        { computer: 'one', cluster: 'home' },
        { computer: 'two', cluster: 'home' },
      ],
      { provider: 'tls' },
    );
    stopAll = c.stopAll;
    const one = c.nodes.one as ClusterNode;
    const two = c.nodes.two as ClusterNode;
    const notes = async () =>
      (await two.api.notifications.list({ type: 'mesh.test.ping', limit: 1000 })).items.map((n) =>
        String((n.payload as { note?: string }).note),
      );
    await one.api.emit({
      event: 'mesh.test.ping',
      visibility: 'cluster',
      payload: { n: 0, note: 'warm-up' },
    });
    await eventually(async () => (await notes()).includes('warm-up'), 60_000, 'the link up');
    fill(join(twoDir, 'filler'));
    // Until two's commits fail (its WAL may hold a few more), then some more while they do.
    const sent = ['warm-up'];
    let failing = false;
    for (let i = 1; i < 3000 && !failing; i++) {
      await one.api.emit({
        event: 'mesh.test.ping',
        visibility: 'cluster',
        payload: { n: i, note: `held-${i}-${'x'.repeat(900)}` },
      });
      sent.push(`held-${i}-${'x'.repeat(900)}`);
      if (i % 20 === 0)
        failing = ((await two.api.health()).problems as string[]).some((p) =>
          p.startsWith('store: the disk holding'),
        );
    }
    assert.ok(failing, "two's commits failed for want of space");
    for (let i = 0; i < 20; i++) {
      await one.api.emit({
        event: 'mesh.test.ping',
        visibility: 'cluster',
        payload: { n: 5000 + i, note: `while-full-${i}` },
      });
      sent.push(`while-full-${i}`);
    }
    rmSync(join(twoDir, 'filler'));
    await eventually(async () => (await notes()).length >= sent.length, 120_000, 'every event on two');
    const got = await notes();
    assert.deepEqual([...got].sort(), [...sent].sort(), 'every event applied once: none lost, none twice');
  } finally {
    await stopAll?.().catch(() => undefined);
    spawnSync('umount', ['-l', twoDir]);
    root.cleanup();
  }
});
