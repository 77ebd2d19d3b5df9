import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { WeftClient } from '../../src/client/index.js';
import { createNode } from '../../src/node/index.js';
import { MIGRATIONS } from '../../src/store/index.js';
import { readToken } from '../../src/config/index.js';
import { eventually } from '../helpers/cluster.js';
import { CLI, CLI_NODE_ARGS, startDaemonProcess, weft } from '../helpers/cli.js';
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

test('a file truncated to 1 MB is repaired with its loss said in one line and exit code 1; a check beside a running daemon is read-only', async () => {
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
    // The schema itself is past the cut: nothing can be read, and that is said in one line, not a line per table.
    assert.match(repair.stdout, /the damaged file cannot be read at all \(.*\): nothing was recovered/);
    assert.equal(repair.stdout.trim().split('\n').length, 1, repair.stdout);

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

test('a repair keeps every row of a damaged page it can still read, names only the tables that lost rows, and the check after it does not blame a lost -wal', async () => {
  const t = tempDir('weft-doctor-page-');
  const env = { HOME: t.dir, WEFT_DATA_DIR: t.dir, WEFT_API_PORT: '0' };
  try {
    const node = await createNode({ dataDir: t.dir, computer: 'doc' });
    await node.start();
    await node.emitMany(
      Array.from({ length: 50 }, (_, i) => ({
        event: 'system.worker.crashed',
        payload: { worker: `w${i}`, error: 'x'.repeat(200), restarts: 0 },
      })),
    );
    await node.idle();
    await node.stop();
    const db = join(t.dir, 'weft.db');
    // The daemon's record of its last commit, as it leaves it at a clean stop.
    writeFileSync(
      join(t.dir, 'last-commit.json'),
      `${JSON.stringify({ seq: 50, at: new Date().toISOString() })}\n`,
    );
    const probe = new Database(db, { readonly: true });
    const pageSize = probe.pragma('page_size', { simple: true }) as number;
    const leaves = probe
      .prepare(`SELECT pageno FROM dbstat WHERE name = 'events' AND pagetype = 'leaf' ORDER BY pageno`)
      .pluck()
      .all() as number[];
    probe.close();
    assert.ok(leaves.length >= 4, `events spans ${leaves.length} leaf pages`);
    const fd = openSync(db, 'r+');
    // Part of one page in the middle (its header and some cells stay), and the whole last page.
    const middle = leaves[Math.floor(leaves.length / 2)] as number;
    writeSync(fd, Buffer.alloc(1000, 0xa5), 0, 1000, (middle - 1) * pageSize + 1500);
    writeSync(fd, Buffer.alloc(pageSize, 0xa5), 0, pageSize, ((leaves.at(-1) as number) - 1) * pageSize);
    closeSync(fd);

    const repair = weft(['doctor', '--repair'], env);
    assert.equal(repair.code, 1, repair.stdout + repair.stderr);
    const moved = readdirSync(t.dir).find((f) => /^weft\.db\.damaged-[^.]*$/.test(f)) as string;
    // What a user can read of the kept file row by row is what the repair must have kept.
    const kept = new Database(join(t.dir, moved), { readonly: true });
    let readable = 0;
    for (let seq = 1; seq <= 50; seq++) {
      try {
        if (kept.prepare('SELECT * FROM events WHERE seq = ?').get(seq)) readable++;
      } catch {
        // unreadable
      }
    }
    kept.close();
    assert.ok(readable > 25 && readable < 50, `${readable} of 50 events readable one by one`);
    const repaired = new Database(db, { readonly: true });
    const recovered = repaired.prepare('SELECT COUNT(*) FROM events').pluck().get() as number;
    repaired.close();
    assert.equal(recovered, readable, 'every event the kept file still gives is in the repaired one');
    assert.match(
      repair.stdout,
      new RegExp(`LOST ${50 - readable} rows in 1 table\\(s\\): events \\(${50 - readable}\\)`),
      'the seeded counters are not reported lost',
    );
    const tableLines = repair.stdout.split('\n').filter((l) => /found .*, recovered/.test(l));
    assert.deepEqual(
      tableLines.map((l) => l.trim().split(/ +/)[0]),
      ['events'],
      'only the table that lost rows is listed',
    );

    const after = weft(['doctor'], env);
    assert.equal(after.code, 0, after.stdout);
    assert.doesNotMatch(
      after.stdout,
      /rolled back|-wal/,
      'rows the repair lost are not blamed on a lost -wal',
    );
    assert.match(
      after.stdout,
      /is healthy .*the last repair lost rows in 1 table\(s\) \(events \d+\): see .*report\.json/,
    );
  } finally {
    t.cleanup();
  }
});

test('a database truncated while the daemon was stopped: the start says so in its banner and in weft status, and weft doctor keeps saying it after a clean stop until acknowledged', async () => {
  const t = tempDir('weft-doctor-rollback-');
  const env = { HOME: t.dir, WEFT_DATA_DIR: t.dir, WEFT_API_PORT: '0', WEFT_COMPUTER_NAME: 'rollbox' };
  try {
    const d = await startDaemonProcess(env);
    const api = new WeftClient({ url: d.url, token: readToken(t.dir) as string });
    await api.emitMany(
      Array.from({ length: 200 }, (_, i) => ({
        event: 'system.worker.crashed',
        payload: { worker: `w${i}`, error: 'e', restarts: 0 },
      })),
    );
    const mark = join(t.dir, 'last-commit.json');
    await eventually(
      async () => existsSync(mark) && (JSON.parse(readFileSync(mark, 'utf8')) as { seq: number }).seq >= 200,
      10_000,
      'the commit mark',
    );
    d.proc.kill('SIGTERM');
    await d.exited;
    const recorded = (JSON.parse(readFileSync(mark, 'utf8')) as { seq: number }).seq;
    truncateSync(join(t.dir, 'weft.db'), 0);

    const d2 = await startDaemonProcess(env);
    try {
      await eventually(async () => /ROLLED BACK/.test(d2.output()), 10_000, 'the banner');
      const banner = d2
        .output()
        .split('\n')
        .filter((l) => /rolled back/.test(l));
      assert.equal(banner.length, 1, d2.output());
      assert.match(
        banner[0] as string,
        new RegExp(`${recorded} acknowledged events were rolled back.*see weft doctor`),
      );
      const status = weft(['status'], env);
      assert.equal(status.code, 3, status.stdout + status.stderr);
      assert.match(
        status.stdout,
        new RegExp(`problems \\(1\\):\\n  - ${recorded} acknowledged events were rolled back`),
      );
    } finally {
      d2.proc.kill('SIGTERM');
      await d2.exited;
    }
    // The clean stop moved the commit mark on with the new file; the record keeps the evidence.
    const check = weft(['doctor'], env);
    assert.equal(check.code, 1, check.stdout);
    assert.match(
      check.stdout,
      new RegExp(
        `ROLLED BACK: .*\\n  - ${recorded} acknowledged events were rolled back \\(found by the daemon start`,
      ),
    );
    const ack = weft(['doctor', '--acknowledge'], env);
    assert.equal(ack.code, 0, ack.stdout);
    assert.match(ack.stdout, /acknowledged 1 recorded rollback/);
    assert.equal(weft(['doctor'], env).code, 0);

    // The problem is for that daemon's lifetime: the next start has none.
    const d3 = await startDaemonProcess(env);
    try {
      const status = weft(['status'], env);
      assert.equal(status.code, 0, status.stdout);
      assert.match(status.stdout, /problems: none/);
    } finally {
      d3.proc.kill('SIGTERM');
      await d3.exited;
    }
  } finally {
    t.cleanup();
  }
});

test('a database file deleted under a running daemon is reported by weft status and weft doctor, and its clean stop puts everything back', async () => {
  const t = tempDir('weft-doctor-deleted-');
  const env = { HOME: t.dir, WEFT_DATA_DIR: t.dir, WEFT_API_PORT: '0', WEFT_COMPUTER_NAME: 'delbox' };
  try {
    const d = await startDaemonProcess(env);
    try {
      const api = new WeftClient({ url: d.url, token: readToken(t.dir) as string });
      await api.emitMany(
        Array.from({ length: 100 }, (_, i) => ({
          event: 'system.worker.crashed',
          payload: { worker: `a${i}`, error: 'e', restarts: 0 },
        })),
      );
      rmSync(join(t.dir, 'weft.db'));
      await eventually(
        async () => weft(['status'], env).code === 3,
        20_000,
        'weft status to report a problem',
      );
      const status = weft(['status'], env);
      assert.match(
        status.stdout,
        /the database file .*weft\.db was deleted while the daemon runs: .*stop the daemon cleanly/,
      );
      const check = weft(['doctor'], env);
      assert.equal(check.code, 1, check.stdout);
      assert.match(check.stdout, /already running .*but its database .*weft\.db was deleted while it runs/);
      assert.doesNotMatch(check.stdout, /no database .* yet/);
      await eventually(
        async () => (await api.notifications.list({ type: 'system.store.file_lost' })).items.length === 1,
        20_000,
        'the file_lost notification',
      );
      // Emits are still accepted; the stop saves them too.
      await api.emitMany(
        Array.from({ length: 50 }, (_, i) => ({
          event: 'system.worker.crashed',
          payload: { worker: `b${i}`, error: 'e', restarts: 0 },
        })),
      );
      await eventually(
        async () =>
          (await api.notifications.list({ type: 'system.worker.crashed', limit: 1000 })).items.length === 150,
        20_000,
        'the 150 notifications',
      );
    } finally {
      d.proc.kill('SIGTERM');
      await d.exited;
    }
    const after = weft(['doctor', '--json'], env);
    assert.equal(after.code, 0, after.stdout);
    const db = new Database(join(t.dir, 'weft.db'), { readonly: true });
    const workers = db
      .prepare(`SELECT COUNT(*) FROM notifications WHERE event_type = 'system.worker.crashed'`)
      .pluck()
      .get() as number;
    db.close();
    assert.equal(
      workers,
      150,
      'every notification written before and after the delete is in the file at its path',
    );
  } finally {
    t.cleanup();
  }
});

test("weft doctor refuses a data dir the daemon refuses: a file, or another user's directory", async (ctx) => {
  const t = tempDir('weft-doctor-dir-');
  try {
    const file = join(t.dir, 'not-a-dir');
    writeFileSync(file, 'x');
    const env = { HOME: t.dir, WEFT_DATA_DIR: file, WEFT_API_PORT: '0' };
    const check = weft(['doctor'], env);
    assert.equal(check.code, 1, check.stdout + check.stderr);
    assert.match(check.stdout, /not-a-dir is a file, not a directory.*the daemon refuses to start on it/);
    const start = weft(['daemon'], env);
    assert.equal(start.code, 2, 'a config error');
    assert.match(start.stderr, /not-a-dir is a file, not a directory/);

    if (process.getuid?.() !== 0) {
      ctx.diagnostic("another user's directory: needs root to make one; skipped");
      return;
    }
    // A directory of root's, checked as nobody (65534).
    const dir = join(t.dir, 'roots');
    mkdirSync(dir, { mode: 0o755 });
    const home = join(t.dir, 'nobody-home');
    mkdirSync(home);
    chownSync(home, 65534, 65534);
    chmodSync(t.dir, 0o755);
    const asNobody = (args: string[]) =>
      spawnSync(process.execPath, [...CLI_NODE_ARGS, CLI, ...args], {
        uid: 65534,
        gid: 65534,
        env: { ...process.env, HOME: home, WEFT_DATA_DIR: dir, WEFT_API_PORT: '0' },
        encoding: 'utf8',
        timeout: 30_000,
      });
    const version = asNobody(['--version']);
    if (version.status !== 0) {
      ctx.diagnostic(
        `another user's directory: nobody cannot run the CLI here (${version.stderr.trim().split('\n')[0]}); skipped`,
      );
      return;
    }
    const other = asNobody(['doctor']);
    assert.equal(other.status, 1, other.stdout + other.stderr);
    assert.match(
      other.stdout,
      /roots belongs to another user \(uid 0, this is uid 65534\).*the daemon refuses to start on it/,
    );
    const otherStart = asNobody(['daemon']);
    assert.equal(otherStart.status, 2, otherStart.stderr);
    assert.match(otherStart.stderr, /roots belongs to another user/);
  } finally {
    t.cleanup();
  }
});

test('weft doctor checks a database an older Weft wrote as it is: no migration, so that Weft still opens it', () => {
  const t = tempDir('weft-doctor-older-');
  try {
    const path = join(t.dir, 'weft.db');
    // The schema of c124b10 (2026-12-02): migrations 1 to 6, which have not changed since.
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    for (const m of MIGRATIONS.filter((x) => x.version <= 6)) {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    }
    const add = db.prepare("INSERT INTO events (id, event, timestamp, source, body) VALUES (?, 'system.worker.crashed', '2026-12-02T00:00:00Z', 'test', '{}')");
    for (const id of ['e1', 'e2', 'e3']) add.run(id);
    db.close();
    const r = weft(['doctor'], { HOME: t.dir, WEFT_DATA_DIR: t.dir });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /is healthy \(3 events, 0 notifications\); it has the schema of an older Weft \(6\): the daemon's next start migrates it to \d+, this check changed nothing/);
    // Before: the check migrated the file to this Weft's schema, and a Weft that refuses a newer
    // schema (every build since 2026-12-07) could no longer start on it.
    const after = new Database(path, { readonly: true });
    try {
      assert.equal(after.pragma('user_version', { simple: true }), 6);
    } finally {
      after.close();
    }
  } finally {
    t.cleanup();
  }
});
