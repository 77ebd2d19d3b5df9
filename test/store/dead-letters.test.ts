/**
 * Dead letters on a real SQLite file: a cartridge failing on every event keeps the table
 * bounded, the newest kept.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Envelope } from '../../src/envelope/index.js';
import { MAX_KEPT_DEAD_LETTERS, openNodeStore } from '../../src/store/index.js';
import { ManualClock, silentLogger } from '../../src/util/index.js';

const event = (i: number) =>
  ({
    id: `evt-${i}`,
    event: 'mesh.test.ping',
    version: 1,
    source: 'test',
    timestamp: '2026-12-06T10:00:00.000Z',
    level: 1,
    domain: 'mesh',
    description: 'ping',
    visibility: 'local',
    payload: { n: i, note: 'x'.repeat(1000) },
  }) as unknown as Envelope;

test('dead letters keep the newest `limit` rows however many failures come', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-dead-letters-'));
  const ns = openNodeStore(
    { path: join(dir, 'weft.db') },
    { clock: new ManualClock(Date.parse('2026-12-06T10:00:00.000Z')), logger: silentLogger },
  );
  try {
    assert.equal(ns.deadLetters.limit, MAX_KEPT_DEAD_LETTERS);
    assert.equal(MAX_KEPT_DEAD_LETTERS, 10_000);
    ns.deadLetters.limit = 200;
    for (let i = 0; i < 2_000; i += 100) {
      await ns.store.write(() => {
        for (let j = i; j < i + 100; j++)
          ns.deadLetters.add(event(j), 'cartridge:thrower', 'WEFT_CARTRIDGE_THREW: boom');
      });
    }
    const count = ns.deadLetters.count();
    assert.ok(
      count >= 200 && count <= 220,
      `${count} dead letters kept of 2,000 (limit 200, pruned in steps of 20)`,
    );
    assert.equal(ns.deadLetters.list(1)[0]?.eventId, 'evt-1999', 'the newest is kept');
    const oldest = ns.store.reader
      .prepare('SELECT event_id FROM dead_letters ORDER BY id LIMIT 1')
      .pluck()
      .get() as string;
    assert.ok(Number(oldest.slice(4)) >= 1_780, `the oldest kept is ${oldest}`);
  } finally {
    await ns.store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
