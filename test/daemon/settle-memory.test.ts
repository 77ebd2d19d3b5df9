/**
 * The collection a daemon runs once after start-up (src/daemon/settle-memory.ts) takes V8's
 * `gc` without leaving it where code could call it: no context made afterwards sees `gc`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runInNewContext } from 'node:vm';
import { memoryReducingGc } from '../../src/daemon/settle-memory.js';

test('the settling collection runs, and leaves no `gc` for a context made after it', () => {
  assert.equal(runInNewContext('typeof gc'), 'undefined', 'this test runs without --expose-gc');
  const gc = memoryReducingGc();
  assert.equal(typeof gc, 'function', 'Node 20 offers the collection');
  gc?.({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  assert.equal(runInNewContext('typeof gc'), 'undefined', 'a context made later does not see gc');
  assert.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined');
});
