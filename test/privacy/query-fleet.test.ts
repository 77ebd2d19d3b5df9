/**
 * Aggregate queries across a fleet of four whole nodes, asked the way a curious or hostile
 * user would: with filters that single out one node's habits, and against a peer that lies in
 * its answers. What the k-threshold withholds must not come back another way.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { MeshQuery, ResponseData } from '../../src/catalog/index.js';
import { ANSWER_MESSAGE, QUERY_MESSAGE, signContent } from '../../src/privacy/index.js';
import { type PrivacyMesh, privacyMesh, until, writeSpool } from '../helpers/privacy-mesh.js';

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
    const r = await m.byName('a').node.privacy.query({
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

test('the audit logs of the asked nodes and of the asker record who asked what: type, range and every filter as written', async () => {
  const filters = [
    { field: 'duration_ms', operator: 'greater_than' as const, value: '4000' },
    { field: 'category', operator: 'in_list' as const, value: 'git,kubernetes' },
  ];
  const r = await m.byName('a').node.privacy.query({ type: 'tool_usage', range: range(), filters });
  const entries = (name: string) =>
    [...m.byName(name).node.audit.exportJsonLines()].map(
      (l) => JSON.parse(l) as { kind: string; peer: string | null; details: Record<string, unknown> },
    );
  // Both are written while the answers travel: wait for them.
  await until('c audited the query', () =>
    entries('c').some((e) => e.kind === 'query.received' && e.details.query_id === r.query_id),
  );
  await until('a audited its query', () =>
    entries('a').some((e) => e.kind === 'query.sent' && e.details.query_id === r.query_id),
  );
  const received = entries('c').find((e) => e.kind === 'query.received' && e.details.query_id === r.query_id);
  assert.ok(received);
  assert.equal(received.peer, 'a');
  assert.deepEqual(received.details.filters, ['duration_ms > 4000', 'category in git,kubernetes']);
  assert.deepEqual(received.details.time_range, r.time_range);
  const sent = entries('a').find((e) => e.kind === 'query.sent' && e.details.query_id === r.query_id);
  assert.ok(sent);
  assert.deepEqual(sent.details.filters, ['duration_ms > 4000', 'category in git,kubernetes']);
  assert.deepEqual(sent.details.time_range, r.time_range);
});

test('a peer that lies about other nodes is left out and named: anomalies or health pinned on another node, data of another query type', async () => {
  const b = m.byName('b');
  const c = m.byName('c');
  const d = m.byName('d');
  // d runs modified software: its privacy layer is replaced by one that answers with forged data.
  await d.node.privacy.stop();
  const mesh = d.node.mesh;
  assert.ok(mesh);
  mesh.onMessage(QUERY_MESSAGE, async (msg) => {
    const q = msg.data as MeshQuery;
    const now = Date.now();
    const at = new Date(now).toISOString();
    // Counts no real node has: 25 hours in a day (malformed), 2^60 git commands (beyond what JSON numbers hold exactly).
    const patterns = {
      hourly_pattern: new Array(24).fill(0),
      daily_pattern: new Array(7).fill(0),
      peak_hours: [],
      active_nodes: 1,
    };
    const data: ResponseData =
      q.query_type === 'activity_patterns'
        ? ({
            type: 'activity_patterns',
            value: patterns,
            hourly_counts: new Array(25).fill(1),
            daily_counts: new Array(7).fill(0),
          } as ResponseData)
        : q.query_type === 'safety_posture'
          ? {
              type: 'safety_posture',
              value: {
                risk_distribution: { safe: 100, moderate: 0, high: 0, critical: 0 },
                blocked_count: 0,
                confirmed_risky: 0,
                coverage: 100,
              },
              risk_counts: { safe: 5, moderate: 0, high: 0, critical: 0 },
              total_commands: 5,
            }
          : q.query_type === 'tool_usage' && q.filters.length > 0
            ? {
                type: 'tool_usage',
                value: {
                  by_category: { git: { count: 2 ** 60, node_count: 1, avg_duration_ms: 5 } },
                  total_commands: 2 ** 60,
                  time_range: q.time_range,
                },
              }
            : q.query_type === 'anomalies'
              ? {
                  type: 'anomalies',
                  value: [
                    {
                      anomaly_type: 'repeated_risky',
                      severity: 10,
                      node_fingerprint: b.identity.fingerprint,
                      detected_at: at,
                      description: '40 critical commands',
                    },
                  ],
                }
              : q.query_type === 'node_health'
                ? {
                    type: 'node_health',
                    value: {
                      fingerprint: c.identity.fingerprint,
                      online: false,
                      last_seen: at,
                      protocol_version: 1,
                      uptime_seconds: 0,
                      event_count_24h: 99_999,
                    },
                  }
                : { type: 'anomalies', value: [] };
    const content = {
      query_id: q.query_id,
      responder: d.identity.nodeId,
      status: 'SUCCESS' as const,
      data,
      contributors: [d.identity.fingerprint],
      timestamp: at,
    };
    await mesh.sendMessage(msg.computer, ANSWER_MESSAGE, {
      ...content,
      signature: signContent(content, d.identity, now),
    });
  });
  const anomalies = await m.byName('a').node.privacy.query({ type: 'anomalies', range: range() });
  assert.ok(
    !(anomalies.data as Array<{ node_fingerprint: string; severity: number }>).some(
      (x) => x.node_fingerprint === b.identity.fingerprint,
    ),
    'no anomaly is pinned on b',
  );
  assert.deepEqual(
    anomalies.failed.map((f) => [f.computer, f.status]),
    [['d', 'INVALID']],
  );
  assert.match(anomalies.failed[0]?.reason ?? '', /another node/);
  assert.equal(anomalies.status, 'partial');
  assert.ok(!anomalies.contributors.includes(d.identity.fingerprint));

  const health = await m.byName('a').node.privacy.query({ type: 'node_health', range: range() });
  const reports = health.data as Array<{ fingerprint: string; event_count_24h: number }>;
  assert.equal(
    reports.filter((h) => h.fingerprint === c.identity.fingerprint).length,
    1,
    'c is reported once, by c',
  );
  assert.ok(!reports.some((h) => h.event_count_24h === 99_999));
  assert.deepEqual(
    health.failed.map((f) => [f.computer, f.status]),
    [['d', 'INVALID']],
  );

  const usage = await m.byName('a').node.privacy.query({ type: 'tool_usage', range: range() });
  assert.deepEqual(
    usage.failed.map((f) => [f.computer, f.status]),
    [['d', 'INVALID']],
    'anomalies sent to a tool_usage query',
  );
  assert.equal(usage.answered, 3);
  assert.equal(usage.contributors.length, 3);
});

test("an asker's own min_contributors cannot lower the threshold another node's owner set for its counts", async () => {
  // x asks with min_contributors 1; y and z keep the default 3. Only y uses kubernetes.
  const fleet = await privacyMesh('memory', ['x', 'y', 'z'], {
    policy: (name) =>
      name === 'x' ? { shareSummaries: true, minContributors: 1 } : { shareSummaries: true },
  });
  try {
    for (const h of fleet.nodes) {
      const cmds = [{ command: 'git status', ts: T0 }];
      if (h.name === 'y')
        cmds.push(
          { command: 'kubectl get pods', ts: T0 + 1000 },
          { command: 'kubectl get svc', ts: T0 + 2000 },
        );
      writeSpool(h.spoolDir, 'bash-100-1.spool', cmds);
      await h.node.privacy.observer?.scan();
      assert.ok(await h.node.node.idle());
    }
    const x = fleet.byName('x').node.privacy;
    const r = await x.query({
      type: 'tool_usage',
      range: range(),
      filters: [{ field: 'category', operator: 'equals', value: 'kubernetes' }],
    });
    assert.equal(r.status, 'complete');
    assert.equal(r.min_contributors, 3, "the largest of the asker's and the answering nodes' thresholds");
    assert.equal(r.data, null, "y's kubernetes count is not shown from one node");
    const all = await x.query({ type: 'tool_usage', range: range() });
    const by = (all.data as { by_category: Record<string, unknown> }).by_category;
    assert.deepEqual(Object.keys(by), ['git'], 'git is on all three nodes; kubernetes on one is suppressed');
    assert.ok(all.suppressed.some((s) => s.startsWith('category kubernetes')));
    // y asking keeps its own 3: nothing changes for an asker whose threshold is the largest.
    assert.equal(
      (await fleet.byName('y').node.privacy.query({ type: 'tool_usage', range: range() })).min_contributors,
      3,
    );
  } finally {
    await fleet.cleanup();
  }
});

test('a malformed answer from an asked node is named under failed at once, not waited for until the timeout as missing', async () => {
  // d still runs the forged software of the test before: its activity_patterns answer has 25 hours.
  const t0 = Date.now();
  const r = await m
    .byName('a')
    .node.privacy.query({ type: 'activity_patterns', range: range(), timeoutMs: 5000 });
  assert.ok(Date.now() - t0 < 2500, `answered in ${Date.now() - t0} ms, not after the 5 s timeout`);
  assert.deepEqual(r.missing, []);
  assert.deepEqual(
    r.failed.map((f) => [f.computer, f.status]),
    [['d', 'INVALID']],
  );
  assert.match(r.failed[0]?.reason ?? '', /^malformed answer: field '\/data/);
  assert.equal(r.status, 'partial');
  assert.equal(r.answered, 3);
});

test('a count beyond what a JSON number holds exactly is a malformed answer, not a total that swamps the others', async () => {
  // d's forged tool_usage answer to a filtered query claims 2^60 git commands.
  const r = await m.byName('a').node.privacy.query({
    type: 'tool_usage',
    range: range(),
    filters: [{ field: 'category', operator: 'equals', value: 'git' }],
  });
  assert.deepEqual(
    r.failed.map((f) => [f.computer, f.status]),
    [['d', 'INVALID']],
  );
  assert.match(r.failed[0]?.reason ?? '', /^malformed answer: field '\/data/);
  assert.equal(r.answered, 3);
});

test('answering queries has a time budget per minute for all peers together: past it, a query is answered busy, at once', async () => {
  // A budget of 1 µs: the first query of the minute is answered, every later one is refused.
  const fleet = await privacyMesh('memory', ['x', 'y', 'z'], { answerMsPerMinute: 0.001 });
  try {
    for (const h of fleet.nodes) {
      writeSpool(h.spoolDir, 'bash-100-1.spool', [{ command: 'git status', ts: T0 }]);
      await h.node.privacy.observer?.scan();
      assert.ok(await h.node.node.idle());
    }
    const x = fleet.byName('x').node.privacy;
    const first = await x.query({ type: 'tool_usage', range: range() });
    assert.equal(first.status, 'complete');
    const t0 = Date.now();
    // y and z spent their budget answering x; x's answer to itself is not counted.
    const second = await x.query({ type: 'safety_posture', range: range(), timeoutMs: 5000 });
    assert.ok(Date.now() - t0 < 2500, 'refused at once, not left to time out');
    assert.equal(second.status, 'partial');
    assert.deepEqual(
      second.failed.map((f) => [f.computer, f.status]),
      [
        ['y', 'ERROR'],
        ['z', 'ERROR'],
      ],
    );
    for (const f of second.failed)
      assert.match(
        f.reason,
        /^busy: this node spent its 0.001 ms a minute answering queries; ask again in \d+ s$/,
      );
  } finally {
    await fleet.cleanup();
  }
});

test('an answer without min_contributors (a node that predates the field) is merged as the default 3, not as no threshold', async () => {
  // Everyone here lowered the threshold to 1 but w, whose older software does not say its own.
  const fleet = await privacyMesh('memory', ['x', 'y', 'z', 'w'], {
    policy: () => ({ shareSummaries: true, minContributors: 1 }),
  });
  try {
    const w = fleet.byName('w');
    await w.node.privacy.stop();
    const mesh = w.node.mesh;
    assert.ok(mesh);
    mesh.onMessage(QUERY_MESSAGE, async (msg) => {
      const q = msg.data as MeshQuery;
      const now = Date.now();
      const data: ResponseData = {
        type: 'tool_usage',
        value: {
          by_category: { kubernetes: { count: 4, node_count: 1, avg_duration_ms: 9 } },
          total_commands: 4,
          time_range: q.time_range,
        },
      };
      const content = {
        query_id: q.query_id,
        responder: w.identity.nodeId,
        status: 'SUCCESS' as const,
        data,
        contributors: [w.identity.fingerprint],
        timestamp: new Date(now).toISOString(),
      };
      await mesh.sendMessage(msg.computer, ANSWER_MESSAGE, {
        ...content,
        signature: signContent(content, w.identity, now),
      });
    });
    const r = await fleet.byName('x').node.privacy.query({
      type: 'tool_usage',
      range: range(),
      filters: [{ field: 'category', operator: 'equals', value: 'kubernetes' }],
    });
    assert.equal(r.answered, 4);
    assert.equal(r.min_contributors, 3);
    assert.equal(r.data, null, "w's kubernetes count is not shown from one node");
  } finally {
    await fleet.cleanup();
  }
});

test("a node whose clock is 45 s ahead answers a fresh query with an error naming the clocks, not with silence the asker reads as 'no answer'", async () => {
  const fleet = await privacyMesh('memory', ['x', 'y', 'z'], {
    clock: (name) => (name === 'z' ? { now: () => Date.now() + 45_000 } : undefined),
  });
  try {
    for (const h of fleet.nodes) {
      writeSpool(h.spoolDir, 'bash-100-1.spool', [{ command: 'git status', ts: T0 }]);
      await h.node.privacy.observer?.scan();
      assert.ok(await h.node.node.idle());
    }
    const t0 = Date.now();
    const r = await fleet
      .byName('x')
      .node.privacy.query({ type: 'tool_usage', range: range(), timeoutMs: 3000 });
    assert.ok(Date.now() - t0 < 2000, 'not left to time out');
    assert.deepEqual(r.missing, []);
    assert.deepEqual(
      r.failed.map((f) => [f.computer, f.status]),
      [['z', 'ERROR']],
    );
    assert.match(
      r.failed[0]?.reason ?? '',
      /^the query was signed 4\d s ago by this node's clock, past its 3000 ms deadline: if it was sent just now, the two computers' clocks are that far apart$/,
    );
  } finally {
    await fleet.cleanup();
  }
});
