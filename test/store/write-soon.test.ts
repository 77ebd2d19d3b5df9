import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Store } from '../../src/store/index.js';
import { ManualClock, silentLogger } from '../../src/util/index.js';

/** A real file (WAL, a reader connection), with a table the test writes to. */
function open(): { store: Store; rows: () => number[]; insert: (n: number) => void; done: () => Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), 'weft-soon-'));
  const store = Store.open({ path: join(dir, 'weft.db') }, { clock: new ManualClock(0), logger: silentLogger });
  store.db.exec('CREATE TABLE IF NOT EXISTS t (n INTEGER PRIMARY KEY)');
  const ins = store.db.prepare('INSERT OR IGNORE INTO t (n) VALUES (?)');
  return {
    store,
    // Committed rows only: the reader sees nothing of an open transaction.
    rows: () => (store.reader.prepare('SELECT n FROM t ORDER BY n').pluck().all() as number[]),
    insert: (n) => ins.run(n),
    done: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('a deferred write commits with the next transaction anyone opens, not in one of its own', async () => {
  const s = open();
  try {
    const soon = s.store.writeSoon(() => s.insert(1), 60_000);
    assert.deepEqual(s.rows(), [], 'nothing is written until a transaction carries it');
    await s.store.write(() => s.insert(2));
    await soon;
    assert.deepEqual(s.rows(), [1, 2], 'it rode in the other write');
    const viaAsync = s.store.writeSoon(() => s.insert(3), 60_000);
    await s.store.writeAsync(async () => s.insert(4));
    await viaAsync;
    assert.deepEqual(s.rows(), [1, 2, 3, 4]);
  } finally {
    await s.done();
  }
});

test('a deferred write commits on its own after its delay when nobody else writes', async () => {
  const s = open();
  try {
    await s.store.writeSoon(() => s.insert(7), 5);
    assert.deepEqual(s.rows(), [7]);
  } finally {
    await s.done();
  }
});

test('a deferred write that rode in a transaction that rolled back rides in the next one', async () => {
  const s = open();
  try {
    const soon = s.store.writeSoon(() => s.insert(1), 60_000);
    await assert.rejects(
      s.store.write(() => {
        s.insert(2);
        throw new Error('the batch fails');
      }),
      /the batch fails/,
    );
    assert.deepEqual(s.rows(), [], 'the failed batch took the rider with it');
    await s.store.write(() => s.insert(3));
    await soon;
    assert.deepEqual(s.rows(), [1, 3], 'the rider is not lost with the failed batch');
  } finally {
    await s.done();
  }
});

test('closing the store commits the deferred writes still waiting', async () => {
  const s = open();
  const soon = s.store.writeSoon(() => s.insert(9), 60_000);
  const path = s.store.path;
  await s.store.close();
  await soon;
  const again = Store.open({ path }, { clock: new ManualClock(0), logger: silentLogger });
  try {
    assert.deepEqual(again.db.prepare('SELECT n FROM t').pluck().all(), [9]);
  } finally {
    await again.close();
  }
});

test('deferred writes committing on their own skip the fsync (synchronous NORMAL for that transaction only); riding another write or marked durable, they are synced', async () => {
  const s = open();
  // What the connection's synchronous setting is while the rider runs: 1 NORMAL, 2 FULL.
  const sync = () => s.store.db.pragma('synchronous', { simple: true }) as number;
  try {
    assert.equal(sync(), 2, 'FULL to begin with');
    let seen = 0;
    await s.store.writeSoon(() => {
      seen = sync();
      s.insert(1);
    }, 1);
    assert.equal(seen, 1, 'on its own: not synced');
    assert.equal(sync(), 2, 'FULL again for every commit after it');

    await s.store.writeSoon(() => {
      seen = sync();
      s.insert(2);
    }, 1, { durable: true });
    assert.equal(seen, 2, 'a durable one is synced');

    const plain = s.store.writeSoon(() => s.insert(3), 1);
    const durable = s.store.writeSoon(() => {
      seen = sync();
      s.insert(4);
    }, 1, { durable: true });
    await Promise.all([plain, durable]);
    assert.equal(seen, 2, 'one durable rider among others: the commit is synced');

    const riding = s.store.writeSoon(() => {
      seen = sync();
      s.insert(5);
    }, 60_000);
    await s.store.write(() => s.insert(6));
    await riding;
    assert.equal(seen, 2, 'riding in an ordinary write: synced with it');
    assert.deepEqual(s.rows(), [1, 2, 3, 4, 5, 6]);
    assert.equal(sync(), 2);
  } finally {
    await s.done();
  }
});

test('a deferred write that committed on its own survives the process being killed at once (kill -9)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-soon-kill-'));
  const path = join(dir, 'weft.db');
  const storeUrl = new URL('../../src/store/index.js', import.meta.url).href;
  const utilUrl = new URL('../../src/util/index.js', import.meta.url).href;
  try {
    const script = `
      const { Store } = await import(${JSON.stringify(storeUrl)});
      const { ManualClock, silentLogger } = await import(${JSON.stringify(utilUrl)});
      const store = Store.open({ path: ${JSON.stringify(path)} }, { clock: new ManualClock(0), logger: silentLogger });
      store.db.exec('CREATE TABLE t (n INTEGER PRIMARY KEY)');
      const ins = store.db.prepare('INSERT INTO t (n) VALUES (?)');
      await store.writeSoon(() => { for (let n = 1; n <= 100; n++) ins.run(n); }, 1);
      process.kill(process.pid, 'SIGKILL');`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.signal, 'SIGKILL', `the child was killed, not ended: ${r.stderr}`);
    const again = Store.open({ path }, { clock: new ManualClock(0), logger: silentLogger });
    try {
      assert.equal(again.db.prepare('SELECT COUNT(*) FROM t').pluck().get(), 100);
    } finally {
      await again.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a transaction end hook learns whether the transaction committed or rolled back, once', async () => {
  const s = open();
  try {
    const seen: string[] = [];
    s.store.onTransactionEnd((c) => seen.push(`outside:${c}`));
    await s.store.write(() => {
      s.insert(1);
      s.store.onTransactionEnd((c) => seen.push(`write:${c}`));
    });
    await assert.rejects(
      s.store.write(() => {
        s.insert(2);
        s.store.onTransactionEnd((c) => seen.push(`failed write:${c}`));
        throw new Error('no');
      }),
    );
    await s.store.writeAsync(async () => {
      s.store.onTransactionEnd((c) => seen.push(`async:${c}`));
      await new Promise((r) => setImmediate(r));
      s.insert(3);
    });
    await assert.rejects(
      s.store.writeAsync(async () => {
        s.insert(4);
        s.store.onTransactionEnd((c) => seen.push(`failed async:${c}`));
        await new Promise((r) => setImmediate(r));
        throw new Error('no');
      }),
    );
    // A hook runs once: the next transaction calls nobody.
    await s.store.write(() => s.insert(5));
    assert.deepEqual(seen, ['outside:true', 'write:true', 'failed write:false', 'async:true', 'failed async:false']);
    assert.deepEqual(s.rows(), [1, 3, 5]);
  } finally {
    await s.done();
  }
});
