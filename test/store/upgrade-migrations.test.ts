/**
 * Databases written by builds whose migrations were later edited in place, opened by this one:
 * the older shape is made here from the migration list (old builds are not built in tests).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { MIGRATIONS, Store } from '../../src/store/index.js';
import { ManualClock, silentLogger } from '../../src/util/index.js';
import { tempDir } from '../helpers/tmp.js';

test("a database from the builds of 2026-12-06 01:51-03:18 (migration 18's first shape) journals only this node's notifications after the upgrade", async () => {
  const t = tempDir('weft-upgrade-18-');
  try {
    const path = join(t.dir, 'weft.db');
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    for (const m of MIGRATIONS.filter((x) => x.version <= 25)) {
      let sql = m.sql;
      if (m.version === 18) {
        // As 919a478 shipped it: every node's notifications marked, no index on moved ids.
        sql = sql.replace(/\n\s+AND \(NEW\.source_computer IS NULL[^\n]*/g, ' BEGIN').replace('CREATE INDEX recovery_notes_moved_id ON recovery_notes_moved(id);', '');
        assert.equal((m.sql.match(/NEW\.source_computer IS NULL/g) ?? []).length, 2);
        assert.doesNotMatch(sql, /source_computer|recovery_notes_moved_id/);
      }
      db.exec(sql);
      db.pragma(`user_version = ${m.version}`);
    }
    db.prepare("INSERT INTO recovery_state (key, value) VALUES ('computer', 'me')").run();
    const add = db.prepare(
      "INSERT INTO notifications (event_id, event_type, level, domain, visibility, source, source_computer, description, payload, created_at, updated_at) VALUES (?, 'mesh.test.ping', 1, 'mesh', 'cluster', 's', ?, 'd', '{}', 't', 't')",
    );
    const mine = Number(add.run('e-mine', 'me').lastInsertRowid);
    const theirs = Number(add.run('e-theirs', 'other').lastInsertRowid);
    db.close();

    const store = Store.open({ path }, { clock: new ManualClock(0), logger: silentLogger });
    try {
      const seen = store.db.prepare("UPDATE notifications SET human_status = 'seen' WHERE id = ?");
      seen.run(theirs);
      seen.run(mine);
      // Before: both were marked, and the journal read another node's notification at every change of it.
      assert.deepEqual(store.db.prepare('SELECT id FROM recovery_notes_dirty ORDER BY id').pluck().all(), [mine]);
      assert.equal(store.db.prepare("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'recovery_notes_moved_id'").pluck().get(), 1);
    } finally {
      await store.close();
    }
  } finally {
    t.cleanup();
  }
});
