import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { AuditLog, ensureAuditSchema } from '../../src/audit/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { tempDir } from '../helpers/tmp.js';

function filled(db: Database.Database, n = 5): AuditLog {
  const clock = new ManualClock();
  const log = new AuditLog({ db, clock });
  for (let i = 0; i < n; i++) {
    clock.advance(1000);
    log.record(
      i % 2 ? 'peer.connected' : 'peer.refused',
      `peer-${i}`,
      { i, reason: 'key mismatch' },
      i % 2 === 1,
    );
  }
  return log;
}

/** What an attacker with write access to the file would do first. */
function dropGuards(db: Database.Database): void {
  db.exec('DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;');
}

test('entries chain by hash and verify, across a re-open of the file', () => {
  const { dir, cleanup } = tempDir();
  try {
    const path = join(dir, 'node.db');
    let db = new Database(path);
    const log = filled(db);
    const v = log.verify();
    assert.ok(v.ok);
    assert.equal(v.entries, 5);
    const [a, b] = log.entries();
    assert.equal(a!.prevHash, '0'.repeat(64));
    assert.equal(b!.prevHash, a!.hash);
    db.close();
    db = new Database(path);
    const reopened = new AuditLog({ db, clock: new ManualClock() });
    reopened.record('key.rotated', null, { old: 'x', new: 'y' }, true);
    const v2 = reopened.verify();
    assert.ok(v2.ok);
    assert.equal(v2.entries, 6);
    db.close();
  } finally {
    cleanup();
  }
});

test('the table refuses UPDATE and DELETE', () => {
  const db = new Database(':memory:');
  filled(db);
  assert.throws(() => db.prepare('UPDATE audit_log SET success = 1').run(), /append-only/);
  assert.throws(() => db.prepare('DELETE FROM audit_log').run(), /append-only/);
});

test('an edited entry is reported as the first bad entry', () => {
  const db = new Database(':memory:');
  const log = filled(db);
  dropGuards(db);
  db.prepare(`UPDATE audit_log SET details = '{"i":2,"reason":"ok"}' WHERE seq = 3`).run();
  const v = log.verify();
  assert.equal(v.ok, false);
  if (!v.ok) {
    assert.equal(v.firstBadSeq, 3);
    assert.equal(v.reason, 'content-altered');
  }
});

test('an edit that also recomputes its own hash breaks the link of the next entry', () => {
  const db = new Database(':memory:');
  const log = filled(db);
  dropGuards(db);
  db.prepare(`UPDATE audit_log SET hash = 'f' || substr(hash, 2) WHERE seq = 2`).run();
  const v = log.verify();
  assert.equal(v.ok, false);
  if (!v.ok) assert.equal(v.firstBadSeq, 2);
});

test('a deleted entry in the middle is detected', () => {
  const db = new Database(':memory:');
  const log = filled(db);
  dropGuards(db);
  db.prepare('DELETE FROM audit_log WHERE seq = 2').run();
  const v = log.verify();
  assert.equal(v.ok, false);
  if (!v.ok) {
    assert.equal(v.firstBadSeq, 2);
    assert.equal(v.reason, 'entries-missing');
  }
});

test('deleted entries at the end are detected', () => {
  const db = new Database(':memory:');
  const log = filled(db);
  dropGuards(db);
  db.prepare('DELETE FROM audit_log WHERE seq >= 4').run();
  const v = log.verify();
  assert.equal(v.ok, false);
  if (!v.ok) {
    assert.equal(v.firstBadSeq, 4);
    assert.equal(v.reason, 'tail-truncated');
  }
});

test('export writes one JSON object per entry, oldest first', () => {
  const db = new Database(':memory:');
  ensureAuditSchema(db);
  ensureAuditSchema(db);
  const log = filled(db, 3);
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
