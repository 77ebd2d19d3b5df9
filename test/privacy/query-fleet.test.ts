/**
 * Aggregate queries across a fleet of four whole nodes, asked the way a curious or hostile
 * user would: with filters that single out one node's habits, and against a peer that lies in
 * its answers. What the k-threshold withholds must not come back another way.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type PrivacyMesh, privacyMesh, writeSpool } from '../helpers/privacy-mesh.js';

let m: PrivacyMesh;
// Noon of yesterday (UTC): inside any range of 2 days ending now.
const T0 = Math.floor(Date.now() / 86_400_000) * 86_400_000 - 12 * 3_600_000;
const range = () => ({
  start: new Date(Date.now() - 2 * 86_400_000).toISOString(),
  end: new Date().toISOString(),
});

before(async () => {
  m = await privacyMesh('memory', ['a', 'b', 'c', 'd']);
  for (const h of m.nodes) {
    const cmds: Array<{ command: string; ts: number }> = [];
    for (let i = 0; i < 5; i++) cmds.push({ command: `git commit -m "change ${i}"`, ts: T0 + i * 60_000 });
    // Only c uses kubernetes.
    if (h.name === 'c')
      for (let i = 0; i < 7; i++) cmds.push({ command: `kubectl get pods -n ns${i}`, ts: T0 + i * 60_000 });
    writeSpool(h.spoolDir, 'bash-100-1.spool', cmds);
    await h.node.privacy.observer?.scan();
    assert.ok(await h.node.node.idle());
  }
});

after(async () => {
  await m?.cleanup();
});

test('a filter that only one node matches does not name that node: contributors are every node that answered, no_data names none', async () => {
  const c = m.byName('c');
  for (const type of ['tool_usage', 'safety_posture', 'activity_patterns'] as const) {
    const r = await m
      .byName('a')
      .node.privacy.query({
        type,
        range: range(),
        filters: [{ field: 'category', operator: 'equals', value: 'kubernetes' }],
      });
    assert.equal(r.status, 'complete');
    assert.equal(r.data, null, `${type}: one node's counts are withheld`);
    assert.deepEqual(
      r.contributors,
      m.nodes.map((h) => h.identity.fingerprint).sort(),
      `${type}: every node that answered is a contributor, whether it had counts or not`,
    );
    assert.deepEqual(r.no_data, [], `${type}: no node is named as having nothing matching`);
    assert.equal(r.with_data, 1, `${type}: how many had counts is a number, not a name`);
    assert.ok(
      !JSON.stringify({ ...r, contributors: [] }).includes(c.identity.fingerprint),
      `${type}: c's fingerprint appears nowhere else`,
    );
  }
  // Unfiltered, every node has counts: nothing changes for the ordinary query.
  const all = await m.byName('a').node.privacy.query({ type: 'tool_usage', range: range() });
  assert.equal(all.with_data, 4);
  assert.equal(all.contributors.length, 4);
});
