/**
 * Refused input on a real SQLite file: the first refusal of an input is a row, the same input
 * refused again counts on that row (its last time moves), and only the first says so.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openNodeStore } from '../../src/store/index.js';
import { ManualClock, silentLogger } from '../../src/util/index.js';

test('a refusal is recorded once per input and counted when the same input is refused again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-rejections-'));
  const clock = new ManualClock(Date.parse('2026-12-06T10:00:00.000Z'));
  const ns = openNodeStore({ path: join(dir, 'weft.db') }, { clock, logger: silentLogger });
  try {
    const input = { origin: 'bus:redis', ref: '1-0', code: 'ENTRY_INVALID', reason: 'payload is not JSON', field: '/payload', raw: '{"payload":"{"}' };
    assert.equal(await ns.store.write(() => ns.rejections.add(input)), true, 'the first time');
    clock.advance(5_000);
    assert.equal(await ns.store.write(() => ns.rejections.add(input)), false, 'again: not new');
    clock.advance(5_000);
    assert.equal(await ns.store.write(() => ns.rejections.add({ ...input, reason: 'another reason' })), false);
    assert.equal(await ns.store.write(() => ns.rejections.add({ ...input, ref: '2-0' })), true, 'another input is new');
    assert.equal(await ns.store.write(() => ns.rejections.add({ ...input, origin: 'mesh' })), true, 'the same ref from elsewhere is new');
    const rows = ns.rejections.list({ origin: 'bus:redis' });
    const first = rows.find((r) => r.ref === '1-0');
    assert.ok(first);
    assert.equal(first.count, 3);
    assert.equal(first.reason, 'payload is not JSON', 'the first reason is kept');
    assert.equal(first.createdAt, '2026-12-06T10:00:00.000Z');
    assert.equal(first.lastAt, '2026-12-06T10:00:10.000Z');
    assert.equal(rows.find((r) => r.ref === '2-0')?.count, 1);
    assert.equal(ns.rejections.count(), 3);
  } finally {
    await ns.store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
