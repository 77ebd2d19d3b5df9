/**
 * The data dir holds private data (event payloads sit in the database and its WAL): another
 * local user must not read it, and a misconfigured path gets one line that says what to fix.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { startDaemonProcess, weft } from '../helpers/cli.js';
import { freePort } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);

test('a data dir made 0755 by someone else is tightened to 0700, and every file in it is 0600', async () => {
  const t = tempDir('weft-modes-');
  const data = join(t.dir, 'data');
  mkdirSync(data, { mode: 0o755 });
  chmodSync(data, 0o755);
  const env = { HOME: t.dir, WEFT_DATA_DIR: data, WEFT_API_PORT: '0', WEFT_COMPUTER_NAME: 'modes' };
  const d = await startDaemonProcess(env);
  try {
    assert.equal(mode(data), '700');
    for (const f of ['weft.db', 'weft.db-wal', 'weft.db-shm', 'api-token', 'identity.key', 'daemon.json']) assert.equal(mode(join(data, f)), '600', f);
    assert.equal(mode(join(data, 'logs')), '700');
    for (const f of readdirSync(join(data, 'logs'))) assert.equal(mode(join(data, 'logs', f)), '600', `logs/${f}`);
  } finally {
    d.proc.kill('SIGTERM');
    await d.exited;
    t.cleanup();
  }
});

test('data_dir that is a file, and a TLS port in use, are one line naming the key', async () => {
  const t = tempDir('weft-badpaths-');
  try {
    const file = join(t.dir, 'not-a-dir');
    writeFileSync(file, 'x');
    let r = weft(['daemon'], { HOME: t.dir, WEFT_DATA_DIR: file, WEFT_API_PORT: '0' });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^weft: config key data_dir \(WEFT_DATA_DIR\): .*not-a-dir is a file, not a directory/);
    assert.equal(r.stderr.trim().split('\n').length, 1);

    const port = await freePort();
    const squatter = createServer().listen(port, '127.0.0.1');
    await new Promise((res) => squatter.once('listening', res));
    try {
      r = weft(['daemon'], { HOME: t.dir, WEFT_DATA_DIR: join(t.dir, 'data'), WEFT_API_PORT: '0', WEFT_MESH_PROVIDER: 'tls', WEFT_MESH_TLS_PORT: String(port) });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`^weft: config key mesh\\.tls_port \\(WEFT_MESH_TLS_PORT\\): ${port} on 127\\.0\\.0\\.1 is already in use \\(another node\\?\\); set mesh\\.tls_port$`, 'm'));
    } finally {
      squatter.close();
    }
  } finally {
    t.cleanup();
  }
});

test('a database this user cannot write names its path and what to check', async (t) => {
  if (process.getuid?.() === 0) {
    t.skip('runs as root here: file modes do not stop root, so a read-only file cannot be staged');
    return;
  }
  const dir = tempDir('weft-ro-');
  try {
    const data = join(dir.dir, 'data');
    const env = { HOME: dir.dir, WEFT_DATA_DIR: data, WEFT_API_PORT: '0' };
    const d = await startDaemonProcess(env);
    d.proc.kill('SIGTERM');
    await d.exited;
    chmodSync(join(data, 'weft.db'), 0o400);
    const r = weft(['daemon'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^weft: database .*weft\.db cannot be written by this user/);
  } finally {
    dir.cleanup();
  }
});

test('a database a newer Weft has migrated is refused unchanged: the daemon says so, doctor --repair leaves it where it is', async () => {
  const t = tempDir('weft-newer-');
  try {
    const data = join(t.dir, 'data');
    const env = { HOME: t.dir, WEFT_DATA_DIR: data, WEFT_API_PORT: '0' };
    const d = await startDaemonProcess(env);
    d.proc.kill('SIGTERM');
    await d.exited;
    const path = join(data, 'weft.db');
    // What a later version's migration leaves behind: a schema number this one never wrote.
    const db = new Database(path);
    db.pragma('user_version = 999');
    db.close();
    const sum = () => createHash('sha256').update(readFileSync(path)).digest('hex');
    const before = sum();
    const files = readdirSync(data).sort();

    const start = weft(['daemon'], env);
    assert.equal(start.code, 1);
    assert.match(start.stderr, /^weft: database .*weft\.db was written by a newer Weft \(schema 999; this Weft knows schemas up to \d+\): run that version or a newer one/);
    assert.doesNotMatch(start.stderr, /doctor --repair/);

    const repair = weft(['doctor', '--repair', '--json'], env);
    assert.equal(repair.code, 1, repair.stdout + repair.stderr);
    const r = JSON.parse(repair.stdout) as { ok: boolean; message: string; movedTo?: string };
    assert.equal(r.ok, false);
    assert.match(r.message, /newer Weft/);
    assert.equal(r.movedTo, undefined);
    assert.equal(sum(), before, 'the file is unchanged');
    assert.deepEqual(readdirSync(data).sort(), files, 'nothing moved aside, nothing made');
  } finally {
    t.cleanup();
  }
});
