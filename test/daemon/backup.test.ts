/**
 * `weft backup create|restore` on a real daemon: a backup taken while it runs and one taken
 * while it is stopped are whole single files (0600, checked); a restore needs the daemon
 * stopped, keeps the database it replaces, records the events after the backup as a rollback,
 * and the daemon starts on the restored file. Files that are no backup of this node are refused.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { startDaemonProcess, weft } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

interface Info {
  path: string;
  events: number;
  lastSeq: number;
  nodeId: string;
  fromRunningDaemon: boolean;
}

test('a backup taken from the running daemon and one taken with it stopped; a restore puts the first back and names what it rolled back', async () => {
  const t = tempDir('weft-backup-');
  const data = join(t.dir, 'data');
  const env = { HOME: t.dir, WEFT_DATA_DIR: data, WEFT_API_PORT: '0', WEFT_COMPUTER_NAME: 'bk' };
  const emit = (worker: string) => {
    const r = weft(
      ['emit', 'system.worker.crashed', '-p', JSON.stringify({ worker, error: 'x', restarts: 0 })],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
  };
  const b1 = join(t.dir, 'b1.db');
  const b2 = join(t.dir, 'b2.db');
  let d = await startDaemonProcess(env);
  let one: Info;
  try {
    for (let i = 0; i < 3; i++) emit('before');
    const made = weft(['--json', 'backup', 'create', b1], env);
    assert.equal(made.code, 0, made.stderr);
    one = JSON.parse(made.stdout) as Info;
    assert.equal(one.fromRunningDaemon, true);
    assert.ok(one.events >= 3);
    assert.equal((statSync(b1).mode & 0o777).toString(8), '600');
    // One self-contained file: nothing beside it, nothing left in the data dir.
    assert.deepEqual(
      readdirSync(t.dir).filter((f) => f.startsWith('b1')),
      ['b1.db'],
    );
    assert.equal(
      readdirSync(data).some((f) => f.includes('backup')),
      false,
    );
    const again = weft(['backup', 'create', b1], env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /exists: add --force/);

    for (let i = 0; i < 4; i++) emit('after');
    const busy = weft(['backup', 'restore', b1], env);
    assert.equal(busy.code, 1);
    assert.match(busy.stderr, /is running: stop it first/);
  } finally {
    d.proc.kill('SIGTERM');
    await d.exited;
  }

  const stopped = weft(['--json', 'backup', 'create', b2], env);
  assert.equal(stopped.code, 0, stopped.stderr);
  const two = JSON.parse(stopped.stdout) as Info;
  assert.equal(two.fromRunningDaemon, false);
  assert.ok(two.lastSeq >= one.lastSeq + 4);

  // The first backup back in place: what was committed after it is named as rolled back.
  const restored = weft(['--json', 'backup', 'restore', b1], env);
  assert.equal(restored.code, 0, restored.stderr);
  const r = JSON.parse(restored.stdout) as {
    backup: Info;
    keptAs: string[];
    rolledBack?: { lost: number; by: string };
  };
  assert.equal(r.backup.lastSeq, one.lastSeq);
  assert.ok(r.keptAs.length > 0 && r.keptAs.every((p) => existsSync(p) && p.includes('.before-restore-')));
  assert.ok((r.rolledBack?.lost ?? 0) >= 4, JSON.stringify(r.rolledBack));
  assert.equal(r.rolledBack?.by, 'backup restore');
  const doctor = weft(['doctor'], env);
  assert.equal(doctor.code, 1);
  assert.match(doctor.stdout, /ROLLED BACK[\s\S]*backup restore/);

  d = await startDaemonProcess(env);
  try {
    const db = new Database(join(data, 'weft.db'), { readonly: true });
    const count = (w: string) =>
      db
        .prepare("SELECT COUNT(*) FROM events WHERE json_extract(body, '$.payload.worker') = ?")
        .pluck()
        .get(w);
    assert.equal(count('before'), 3);
    assert.equal(count('after'), 0, 'the database as it was at the backup');
    db.close();
  } finally {
    d.proc.kill('SIGTERM');
    await d.exited;
  }
  t.cleanup();
});

test('files that are no backup of this node are refused before anything is moved', async () => {
  const t = tempDir('weft-backup-bad-');
  const data = join(t.dir, 'data');
  const env = { HOME: t.dir, WEFT_DATA_DIR: data, WEFT_API_PORT: '0', WEFT_COMPUTER_NAME: 'bk3' };
  const d = await startDaemonProcess(env);
  d.proc.kill('SIGTERM');
  await d.exited;
  const before = readdirSync(data).sort();

  const junk = join(t.dir, 'junk.db');
  writeFileSync(junk, 'not a database at all, just text that is long enough to have a header');
  let r = weft(['backup', 'restore', junk], env);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /junk\.db is not a (Weft backup|database SQLite can open)/);

  const other = join(t.dir, 'other.db');
  const empty = new Database(other);
  empty.exec('CREATE TABLE x (a)');
  empty.close();
  r = weft(['backup', 'restore', other], env);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /not a Weft node's database/);

  // A backup of another node (another key wrote it).
  const t2 = tempDir('weft-backup-other-');
  const env2 = {
    HOME: t2.dir,
    WEFT_DATA_DIR: join(t2.dir, 'data'),
    WEFT_API_PORT: '0',
    WEFT_COMPUTER_NAME: 'elsewhere',
  };
  const d2 = await startDaemonProcess(env2);
  d2.proc.kill('SIGTERM');
  await d2.exited;
  const foreign = join(t.dir, 'foreign.db');
  assert.equal(weft(['backup', 'create', foreign], env2).code, 0);
  r = weft(['backup', 'restore', foreign], env);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /is a backup of node weft:ed25519:.* and this data dir's key is node/);

  assert.deepEqual(readdirSync(data).sort(), before, 'nothing moved or made');
  t2.cleanup();
  t.cleanup();
});

test('a restore of a data dir copied with cp takes the commits still in its -wal beside it', async () => {
  const t = tempDir('weft-backup-wal-');
  const data = join(t.dir, 'data');
  const env = { HOME: t.dir, WEFT_DATA_DIR: data, WEFT_API_PORT: '0', WEFT_COMPUTER_NAME: 'bkw' };
  const d = await startDaemonProcess(env);
  for (let i = 0; i < 3; i++) {
    const e = weft(
      ['emit', 'system.worker.crashed', '-p', JSON.stringify({ worker: 'in-wal', error: 'x', restarts: 0 })],
      env,
    );
    assert.equal(e.code, 0, e.stderr);
  }
  // Killed: its last commits are in weft.db-wal, not yet in weft.db.
  d.proc.kill('SIGKILL');
  await d.exited;
  const copy = join(t.dir, 'copy');
  mkdirSync(copy);
  copyFileSync(join(data, 'weft.db'), join(copy, 'weft.db'));
  copyFileSync(join(data, 'weft.db-wal'), join(copy, 'weft.db-wal'));
  const r = weft(['--json', 'backup', 'restore', join(copy, 'weft.db'), '--force'], env);
  assert.equal(r.code, 0, r.stderr);
  const db = new Database(join(data, 'weft.db'), { readonly: true });
  try {
    assert.equal(
      db
        .prepare("SELECT COUNT(*) FROM events WHERE json_extract(body, '$.payload.worker') = 'in-wal'")
        .pluck()
        .get(),
      3,
    );
  } finally {
    db.close();
  }
  t.cleanup();
});
