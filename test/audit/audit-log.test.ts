import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { AuditLog, ensureAuditSchema } from '../../src/audit/index.js';
import { Store } from '../../src/store/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { tempDir } from '../helpers/tmp.js';

const openStore = (path = ':memory:', clock = new ManualClock()) => Store.open({ path }, { clock, logger: silentLogger });

async function filled(store: Store, n = 5): Promise<AuditLog> {
  const clock = store.clock as ManualClock;
  const log = new AuditLog({ store });
  for (let i = 0; i < n; i++) {
    clock.advance(1000);
    await log.record(
      i % 2 ? 'peer.connected' : 'peer.refused',
      `peer-${i}`,
      { i, reason: 'key mismatch' },
      i % 2 === 1,
    );
  }
  return log;
}

/** What an attacker with write access to the file would do first. */
function dropGuards(db: Store['db']): void {
  db.exec('DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;');
}

test('entries chain by hash and verify, across a re-open of the file', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const path = join(dir, 'node.db');
    let store = openStore(path);
    const log = await filled(store);
    const v = log.verify();
    assert.ok(v.ok);
    assert.equal(v.entries, 5);
    const [a, b] = log.entries();
    assert.equal(a!.prevHash, '0'.repeat(64));
    assert.equal(b!.prevHash, a!.hash);
    await store.close();
    store = openStore(path);
    const reopened = new AuditLog({ store });
    await reopened.record('key.rotated', null, { old: 'x', new: 'y' }, true);
    const v2 = reopened.verify();
    assert.ok(v2.ok);
    assert.equal(v2.entries, 6);
    await store.close();
  } finally {
    cleanup();
  }
});

test('the table refuses UPDATE and DELETE', async () => {
  const store = openStore();
  const { db } = store;
  await filled(store);
  assert.throws(() => db.prepare('UPDATE audit_log SET success = 1').run(), /append-only/);
  assert.throws(() => db.prepare('DELETE FROM audit_log').run(), /append-only/);
});

test('an edited entry is reported as the first bad entry', async () => {
  const store = openStore();
  const { db } = store;
  const log = await filled(store);
  dropGuards(db);
  db.prepare(`UPDATE audit_log SET details = '{"i":2,"reason":"ok"}' WHERE seq = 3`).run();
  const v = log.verify();
  assert.equal(v.ok, false);
  if (!v.ok) {
    assert.equal(v.firstBadSeq, 3);
    assert.equal(v.reason, 'content-altered');
  }
});

test('an edit that also recomputes its own hash breaks the link of the next entry', async () => {
  const store = openStore();
  const { db } = store;
  const log = await filled(store);
  dropGuards(db);
  db.prepare(`UPDATE audit_log SET hash = 'f' || substr(hash, 2) WHERE seq = 2`).run();
  const v = log.verify();
  assert.equal(v.ok, false);
  if (!v.ok) assert.equal(v.firstBadSeq, 2);
});

test('a deleted entry in the middle is detected', async () => {
  const store = openStore();
  const { db } = store;
  const log = await filled(store);
  dropGuards(db);
  db.prepare('DELETE FROM audit_log WHERE seq = 2').run();
  const v = log.verify();
  assert.equal(v.ok, false);
  if (!v.ok) {
    assert.equal(v.firstBadSeq, 2);
    assert.equal(v.reason, 'entries-missing');
  }
});

test('deleted entries at the end are detected', async () => {
  const store = openStore();
  const { db } = store;
  const log = await filled(store);
  dropGuards(db);
  db.prepare('DELETE FROM audit_log WHERE seq >= 4').run();
  const v = log.verify();
  assert.equal(v.ok, false);
  if (!v.ok) {
    assert.equal(v.firstBadSeq, 4);
    assert.equal(v.reason, 'tail-truncated');
  }
});

test('export writes one JSON object per entry, oldest first', async () => {
  const store = openStore();
  ensureAuditSchema(store.db);
  ensureAuditSchema(store.db);
  const log = await filled(store, 3);
  const lines = [...log.exportJsonLines()];
  assert.equal(lines.length, 3);
  const parsed = lines.map((l) => JSON.parse(l));
  assert.deepEqual(
    parsed.map((e) => [e.seq, e.kind, e.peer, e.success]),
    [
      [1, 'peer.refused', 'peer-0', false],
      [2, 'peer.connected', 'peer-1', true],
      [3, 'peer.refused', 'peer-2', false],
    ],
  );
  assert.deepEqual(parsed[0].details, { i: 0, reason: 'key mismatch' });
  assert.equal(parsed[1].prevHash, parsed[0].hash);
});

test('an entry recorded while another concern\'s batch is open survives that batch failing', async () => {
  const store = openStore();
  const log = new AuditLog({ store });
  store.db.exec('CREATE TABLE work (n INTEGER)');
  let entered!: () => void;
  const inBatch = new Promise<void>((r) => (entered = r));
  // A batch that writes, awaits (as the pipeline does around cartridges), then fails.
  const batch = store.writeAsync(async () => {
    store.db.prepare('INSERT INTO work (n) VALUES (1)').run();
    entered();
    await new Promise((r) => setTimeout(r, 20));
    throw new Error('the batch fails');
  });
  await inBatch;
  const recorded = log.record('peer.refused', 'saturn', { reason: 'key mismatch' }, false);
  await assert.rejects(batch, /the batch fails/);
  const entry = await recorded;
  assert.equal(store.db.prepare('SELECT count(*) FROM work').pluck().get(), 0, 'the batch rolled back');
  assert.deepEqual(log.entries().map((e) => [e.seq, e.kind, e.peer]), [[entry.seq, 'peer.refused', 'saturn']]);
  assert.ok(log.verify().ok);
});

test('entries recorded in one tick share one commit; recordIn commits or rolls back with its write', async () => {
  const store = openStore();
  const log = new AuditLog({ store });
  let commits = 0;
  const write = store.write.bind(store);
  store.write = (fn) => {
    commits++;
    return write(fn);
  };
  const entries = await Promise.all(Array.from({ length: 50 }, (_, i) => log.record('peer.connected', `p${i}`, {}, true)));
  assert.equal(commits, 1);
  assert.deepEqual(entries.map((e) => e.seq), Array.from({ length: 50 }, (_, i) => i + 1));
  await assert.rejects(
    store.write(() => {
      log.recordIn('trust.changed', 'p1', { to: 'trusted' }, true);
      throw new Error('undo');
    }),
    /undo/,
  );
  assert.equal(log.entries({ limit: 100 }).length, 50);
  assert.throws(() => log.recordIn('trust.changed', 'p1', {}, true), /inside a store write/);
  assert.ok(log.verify().ok);
});
