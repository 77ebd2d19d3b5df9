import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { createDomainRunner } from '../../src/domains/index.js';
import { createNode } from '../../src/node/index.js';
import { MIGRATIONS } from '../../src/store/migrations.js';
import { silentLogger, systemClock } from '../../src/util/index.js';
import { tempDir } from '../helpers/tmp.js';
import { alerting, todo, writeCartridge, writeDomain } from './fixtures.js';

const SUBSCRIBE_TODOS = `[subscribe]\ndomains = []\nevents = ["domain.software-development.*"]\n`;

/**
 * Writes `<dir>/weft.db` as an older Weft left it: the migrations up to 9, with the domain inbox
 * in `inboxShape`, after lane `eng` finished `position` events and the clean-up emptied the inbox.
 */
function olderDatabase(dir: string, inboxShape: 'shipped-2026-12-04' | 'fixed', position: number): void {
  const db = new Database(join(dir, 'weft.db'));
  db.pragma('journal_mode = WAL');
  for (const m of MIGRATIONS.filter((x) => x.version <= 9)) {
    let sql = m.sql;
    if (m.version === 9 && inboxShape === 'shipped-2026-12-04') {
      // Migration 9 as the build of 2026-12-04 (79a6c86) shipped it, before it was edited in place.
      sql = sql.replace('seq INTEGER PRIMARY KEY AUTOINCREMENT,', 'seq INTEGER PRIMARY KEY,');
      assert.notEqual(sql, m.sql, 'the old shape of the inbox was made');
    }
    db.exec(sql);
    db.pragma(`user_version = ${m.version}`);
  }
  const add = db.prepare("INSERT INTO domain_inbox (event_id, event_type, targets, body, created_at) VALUES (?, 'domain.software-development.planning.todo.created', ',eng,', '{}', 0)");
  for (let i = 1; i <= position; i++) add.run(`old-${i}`);
  db.prepare("INSERT INTO consumer_offsets (name, position, updated_at) VALUES ('domains:eng', ?, 0)").run(String(position));
  db.exec('DELETE FROM domain_inbox');
  db.close();
}

async function runUpgraded(inboxShape: 'shipped-2026-12-04' | 'fixed'): Promise<string[]> {
  const t = tempDir('weft-domains-upgrade-');
  try {
    olderDatabase(t.dir, inboxShape, 5);
    writeCartridge(writeDomain(t.dir, 'eng', SUBSCRIBE_TODOS), 'pager', alerting('eng'));
    const node = await createNode({ dataDir: t.dir, computer: 'test' });
    await node.start();
    const runner = createDomainRunner(
      { dataDir: t.dir },
      { node, logger: silentLogger, clock: systemClock, autonomy: { resolve: () => ({ level: 'L3', reason: 'test' }) }, rolesOf: () => undefined },
    );
    node.pipeline.replace([...node.pipeline.cartridges, runner.stage]);
    try {
      await runner.start();
      await node.emitMany([todo('u1'), todo('u2'), todo('u3')]);
      await runner.idle();
      return node.ns.notifications
        .list({ eventType: 'domains.alert', limit: 100 })
        .items.map((n) => String(n.payload.body))
        .sort();
    } finally {
      await runner.stop();
      await node.stop();
    }
  } finally {
    t.cleanup();
  }
}

describe('domain pipelines on a database written by an older Weft', () => {
  it('an inbox made by the build of 2026-12-04 (positions reused after a clean-up) loses no event after the upgrade', async () => {
    // Before migration 26 the three todos took inbox positions 1-3, below the lane's 5: no alert, no backlog, nothing said.
    assert.deepEqual(await runUpgraded('shipped-2026-12-04'), ['u1', 'u2', 'u3']);
  });

  it('an inbox made after the fix keeps its counter through migration 26', async () => {
    assert.deepEqual(await runUpgraded('fixed'), ['u1', 'u2', 'u3']);
  });
});
