import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateIdentity } from '../../src/identity/index.js';
import { ensureReplayGuardSchema, ReplayGuard, type ReplayHeader } from '../../src/mesh/index.js';
import { Store } from '../../src/store/index.js';
import { decodeFrame, encodeFrame } from '../../src/transport/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { tempDir } from '../helpers/tmp.js';

const sender = generateIdentity().nodeId;
const other = generateIdentity().nodeId;

function header(clock: ManualClock, sequence: number, from = sender, offsetMs = 0): ReplayHeader {
  return { sender: from, sequence, timestamp: clock.now() + offsetMs, nonce: randomBytes(16) };
}

function open(path: string, clock: ManualClock): { store: Store; db: Store['db']; guard: ReplayGuard } {
  const store = Store.open({ path }, { clock, logger: silentLogger });
  return { store, db: store.db, guard: new ReplayGuard({}, { store }) };
}

const inMemory = (clock: ManualClock) => Store.open({ path: ':memory:' }, { clock, logger: silentLogger });

test('a replayed frame is refused, also after the guard is re-opened on the same file', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const clock = new ManualClock();
    const id = generateIdentity();
    const bytes = encodeFrame(
      { type: 'events', sequence: 1, timestamp: clock.now(), body: { envelopes: [] } },
      { identity: id },
    );
    const decoded = decodeFrame(bytes, { lookupKey: () => id.publicKey });
    assert.ok(decoded.ok);
    const path = join(dir, 'node.db');
    let { store, guard } = open(path, clock);
    assert.deepEqual(await guard.accept(decoded.frame.header), { ok: true });
    const again = await guard.accept(decoded.frame.header);
    assert.equal(again.ok, false);
    if (!again.ok) assert.equal(again.error.code, 'REPLAY_NONCE_SEEN');
    await store.close();

    ({ store, guard } = open(path, clock));
    clock.advance(60_000);
    const afterRestart = await guard.accept(decoded.frame.header);
    assert.equal(afterRestart.ok, false);
    if (!afterRestart.ok) assert.equal(afterRestart.error.code, 'REPLAY_NONCE_SEEN');
    assert.equal(guard.highWaterMark(id.nodeId), 1);
    await store.close();
  } finally {
    cleanup();
  }
});

test('too old and too new frames are refused with an error naming the skew in seconds', async () => {
  const clock = new ManualClock();
  const guard = new ReplayGuard({}, { store: inMemory(clock) });
  const old = guard.check(header(clock, 1, sender, -(5 * 60_000 + 12_000)));
  assert.equal(old.ok, false);
  if (!old.ok) {
    assert.equal(old.error.code, 'REPLAY_TOO_OLD');
    assert.equal(old.error.skewSeconds, 312);
    assert.match(old.error.message, /312 s old/);
  }
  const future = guard.check(header(clock, 1, sender, 5 * 60_000 + 30_000));
  assert.equal(future.ok, false);
  if (!future.ok) {
    assert.equal(future.error.code, 'REPLAY_TOO_NEW');
    assert.match(future.error.message, /330 s in the future/);
  }
  // Just inside both edges is fine.
  assert.ok((await guard.accept(header(clock, 1, sender, -5 * 60_000))).ok);
  assert.ok((await guard.accept(header(clock, 2, sender, 5 * 60_000))).ok);
});

test('a repeated sequence with a fresh nonce is refused; sequences are per sender', async () => {
  const clock = new ManualClock();
  const guard = new ReplayGuard({}, { store: inMemory(clock) });
  assert.ok((await guard.accept(header(clock, 5))).ok);
  const dup = await guard.accept(header(clock, 5));
  assert.equal(dup.ok ? '' : dup.error.code, 'REPLAY_SEQUENCE_SEEN');
  assert.ok((await guard.accept(header(clock, 5, other))).ok, 'another sender may use the same sequence');
});

test('out-of-order sequences within the window are accepted, far older ones refused as stale', async () => {
  const clock = new ManualClock();
  const guard = new ReplayGuard({ sequenceWindow: 100 }, { store: inMemory(clock) });
  assert.ok((await guard.accept(header(clock, 500))).ok);
  assert.ok((await guard.accept(header(clock, 450))).ok, 'a reclaimed frame may arrive after later ones');
  assert.equal(guard.highWaterMark(sender), 500);
  const stale = await guard.accept(header(clock, 400));
  assert.equal(stale.ok ? '' : stale.error.code, 'REPLAY_SEQUENCE_STALE');
});

test('a re-send after reconnect is a new frame and is accepted', async () => {
  // At-least-once: the sender rebuilds unacknowledged envelopes into a new frame.
  const clock = new ManualClock();
  const guard = new ReplayGuard({}, { store: inMemory(clock) });
  assert.ok((await guard.accept(header(clock, 1))).ok);
  clock.advance(30_000);
  assert.ok((await guard.accept(header(clock, 2))).ok);
});

test('check() does not remember; record() inside the caller transaction does, and rolls back with it', async () => {
  const clock = new ManualClock();
  const store = inMemory(clock);
  const { db } = store;
  db.exec('CREATE TABLE applied (id TEXT PRIMARY KEY)');
  const guard = new ReplayGuard({}, { store });
  const h = header(clock, 1);
  assert.ok(guard.check(h).ok);
  assert.ok(guard.check(h).ok, 'check is read-only');
  // The effect fails: the frame must be accepted again on redelivery.
  await assert.rejects(
    store.write(() => {
      guard.record(h);
      throw new Error('crash before commit');
    }),
  );
  assert.ok(guard.check(h).ok);
  assert.throws(() => guard.record(h), /inside a store write/);
  await store.write(() => {
    guard.record(h);
    db.prepare('INSERT INTO applied VALUES (?)').run('e1');
  });
  assert.equal(guard.check(h).ok, false);
});

test('nonces are kept for the window plus skew, then pruned', async () => {
  const clock = new ManualClock();
  const guard = new ReplayGuard({}, { store: inMemory(clock) });
  const h = header(clock, 1);
  assert.ok((await guard.accept(h)).ok);
  clock.advance(9 * 60_000);
  assert.equal(await guard.prune(), 0, 'still within window plus skew');
  clock.advance(2 * 60_000);
  assert.equal(await guard.prune(), 1);
  // The frame is too old by now anyway, and the high-water mark survives pruning.
  const v = guard.check(h);
  assert.equal(v.ok ? '' : v.error.code, 'REPLAY_TOO_OLD');
  assert.equal(guard.highWaterMark(sender), 1);
});

test('the schema function is idempotent and forgetSender resets a sender', async () => {
  const clock = new ManualClock();
  const store = inMemory(clock);
  ensureReplayGuardSchema(store.db);
  ensureReplayGuardSchema(store.db);
  const guard = new ReplayGuard({}, { store });
  assert.ok((await guard.accept(header(clock, 10_000))).ok);
  assert.equal((await guard.accept(header(clock, 1))).ok, false);
  await guard.forgetSender(sender);
  assert.equal(guard.highWaterMark(sender), undefined);
  assert.ok((await guard.accept(header(clock, 1))).ok);
});
