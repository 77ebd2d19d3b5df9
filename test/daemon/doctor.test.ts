import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { WeftClient } from '../../src/client/index.js';
import { createNode } from '../../src/node/index.js';
import { readToken } from '../../src/config/index.js';
import { eventually } from '../helpers/cluster.js';
import { startDaemonProcess, weft } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

test('a damaged database stops the start with a clear message; doctor --repair salvages and the node starts', async () => {
  const t = tempDir('weft-doctor-');
  const env = { HOME: t.dir, WEFT_DATA_DIR: t.dir, WEFT_API_PORT: '0' };
  try {
    const node = await createNode({ dataDir: t.dir, computer: 'doc' });
    await node.start();
    await node.emitMany(Array.from({ length: 2000 }, (_, i) => ({ event: 'system.worker.crashed', payload: { worker: `w${i}`, error: 'x'.repeat(200), restarts: 0 } })));
    await node.idle();
    // A WITHOUT ROWID table's row, as the cartridge registry writes it.
    node.ns.store.db
      .prepare(
        `INSERT INTO cartridges (name, version, author, description, status, origin, manifest, source_sha256, source_bytes, installed_at, updated_at)
         VALUES ('keep-me', '1.0.0', 'me', 'd', 'pending_activation', 'local', '{}', 'x', 1, '2026-01-01', '2026-01-01')`,
      )
      .run();
    await node.stop();
    const db = join(t.dir, 'weft.db');
    // scribble over pages in the middle of the file (not the header)
    const size = statSync(db).size;
    const fd = openSync(db, 'r+');
    const junk = Buffer.alloc(4096 * 3, 0xa5);
    writeSync(fd, junk, 0, junk.length, Math.floor(size / 2 / 4096) * 4096);
    closeSync(fd);

    const start = weft(['daemon'], env);
    assert.equal(start.code, 1);
    assert.match(start.stderr, /^weft: database .*weft\.db is damaged or unreadable .*run 'weft doctor --repair'/);
    assert.equal(start.stderr.trim().split('\n').length, 1, 'one line, no stack trace');

    const check = weft(['doctor'], env);
    assert.equal(check.code, 1);
    assert.match(check.stdout, /is damaged/);

    const repair = weft(['doctor', '--repair', '--json'], env);
    assert.equal(repair.code, 1, 'rows were lost: the repair says so with its exit code');
    const r = JSON.parse(repair.stdout) as { ok: boolean; movedTo: string; tables: Array<{ table: string; found: number | null; recovered: number; lost: number | null }> };
    assert.equal(r.ok, false);
    assert.ok(readdirSync(t.dir).some((f) => f.startsWith('weft.db.damaged-')), 'the damaged file is kept aside');
    const events = r.tables.find((x) => x.table === 'events');
    assert.ok(events && events.recovered > 0, 'some events were salvaged');
    assert.ok(events.recovered < 2000, 'the damaged pages were skipped, not invented');
    assert.ok(events.lost === null || events.lost > 0, 'and the loss is reported');
    const cart = r.tables.find((x) => x.table === 'cartridges');
    assert.deepEqual(cart && [cart.found, cart.recovered, cart.lost], [1, 1, 0], 'a WITHOUT ROWID table is copied too');
    // Every table a node has exists in the fresh file, made by its module.
    for (const table of ['audit_log', 'replay_nonces', 'replay_senders', 'sovereignty_gate', 'cartridge_promotions', 'mesh_outbox', 'emit_journal']) {
      assert.ok(r.tables.some((x) => x.table === table), `${table} in the repaired file`);
    }

    const after = weft(['doctor'], env);
    assert.equal(after.code, 0);
    assert.match(after.stdout, /is healthy/);
  } finally {
    t.cleanup();
  }
});

test('a file truncated to 1 MB is repaired with its losses named and exit code 1; a check beside a running daemon is read-only', async () => {
  const t = tempDir('weft-doctor-trunc-');
  const env = { HOME: t.dir, WEFT_DATA_DIR: t.dir, WEFT_API_PORT: '0' };
  try {
    const node = await createNode({ dataDir: t.dir, computer: 'doc' });
    await node.start();
    await node.emitMany(Array.from({ length: 6000 }, (_, i) => ({ event: 'system.worker.crashed', payload: { worker: `w${i}`, error: 'y'.repeat(400), restarts: 0 } })));
    await node.idle();
    await node.stop();
    const db = join(t.dir, 'weft.db');
    assert.ok(statSync(db).size > 2 * 1024 * 1024);
    truncateSync(db, 1024 * 1024);
    const repair = weft(['doctor', '--repair'], env);
    assert.equal(repair.code, 1, repair.stdout + repair.stderr);
    assert.match(repair.stdout, /LOST rows in/);
    assert.match(repair.stdout, /events +found (\d+|\?), recovered \d+, lost (\d+|unknown)/);

    const d = await startDaemonProcess(env);
    try {
      const check = weft(['doctor'], env);
      assert.equal(check.code, 0, check.stdout + check.stderr);
      assert.match(check.stdout, /already running .*checked read-only.*looks healthy/);
    } finally {
      d.proc.kill('SIGTERM');
      await d.exited;
    }
  } finally {
    t.cleanup();
  }
});

test('a kill -9 followed by a lost -wal is noticed: doctor warns and the next start raises system.store.rolled_back', async () => {
  const t = tempDir('weft-doctor-wal-');
  const env = { HOME: t.dir, WEFT_DATA_DIR: t.dir, WEFT_API_PORT: '0', WEFT_COMPUTER_NAME: 'walbox' };
  try {
    const d = await startDaemonProcess(env);
    const api = new WeftClient({ url: d.url, token: readToken(t.dir) as string });
    await api.emitMany(Array.from({ length: 300 }, (_, i) => ({ event: 'system.worker.crashed', payload: { worker: `w${i}`, error: 'e', restarts: 0 } })));
    await eventually(async () => (await api.notifications.list({ type: 'system.worker.crashed', limit: 1000 })).items.length === 300, 20_000, 'the 300 notifications');
    const mark = join(t.dir, 'last-commit.json');
    await eventually(async () => existsSync(mark) && (JSON.parse(readFileSync(mark, 'utf8')) as { seq: number }).seq >= 300, 10_000, 'the commit mark');
    d.proc.kill('SIGKILL');
    await d.exited;
    rmSync(join(t.dir, 'weft.db-wal'), { force: true });
    rmSync(join(t.dir, 'weft.db-shm'), { force: true });
    const check = weft(['doctor'], env);
    assert.equal(check.code, 1, check.stdout);
    assert.match(check.stdout, /acknowledged events were rolled back/);
    const d2 = await startDaemonProcess(env);
    try {
      const api2 = new WeftClient({ url: d2.url, token: readToken(t.dir) as string });
      await eventually(async () => (await api2.notifications.list({ type: 'system.store.rolled_back' })).items.length === 1, 20_000, 'the rolled-back notification');
    } finally {
      d2.proc.kill('SIGTERM');
      await d2.exited;
    }
  } finally {
    t.cleanup();
  }
});
