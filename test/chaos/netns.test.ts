/** Partition between two network namespaces (root + ip netns only; skips with the reason otherwise). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { netnsAvailable, runNetns } from './netns.js';

const avail = netnsAvailable();
test('a partition between two hosts loses nothing: events cross exactly once after the link heals', { skip: avail.ok ? false : `needs root and ip netns: ${avail.why}` }, async () => {
  const lines: string[] = [];
  const r = await runNetns({ events: 200, log: (s) => lines.push(s) });
  assert.ok(r.ok, `${r.failure}\n${lines.join('\n')}`);
});
