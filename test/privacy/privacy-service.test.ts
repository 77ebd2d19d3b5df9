/**
 * The privacy layer on whole nodes linked over the in-memory network: the spool read exactly
 * once (also after a lost read position and a restart), secrets redacted and commands
 * classified before anything is stored, summaries signed and pushed only to peers whose trust
 * allows it, trust changes audited, and aggregate queries answered per policy, merged with
 * the k-threshold, partial when a node is gone.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Envelope } from '../../src/envelope/index.js';
import type { NodeSummary } from '../../src/catalog/index.js';
import { periodAt, signSummary, summarize, verifySummary } from '../../src/privacy/index.js';
import { type PrivacyMesh, privacyMesh, until, writeSpool } from '../helpers/privacy-mesh.js';

let m: PrivacyMesh;
// Noon of yesterday (UTC): the seeded half hour of commands lies inside one hour and one UTC
// day whenever the test runs, and both have ended, so their summaries are final and shared (a
// summary of a period still running is kept on its node).
const T0 = Math.floor(Date.now() / 86_400_000) * 86_400_000 - 12 * 3_600_000;

/** Commands of every node: a and b use git and docker; c git; d only cargo. */
function seed(name: string): Array<{ command: string; ts: number; exit?: number; durationMs?: number }> {
  const out: Array<{ command: string; ts: number; exit?: number; durationMs?: number }> = [];
  for (let i = 0; i < 30; i++) {
    const ts = T0 + i * 60_000;
    if (name === 'd') out.push({ command: `cargo build --release -p crate${i}`, ts });
    else {
      out.push({ command: `git commit -m "change ${i}"`, ts, durationMs: 40 });
      if (name !== 'c') out.push({ command: `docker run --rm img${i}`, ts: ts + 1000, exit: i % 3 === 0 ? 1 : 0, durationMs: 900 });
    }
  }
  return out;
}

async function commands(name: string): Promise<number> {
  const h = m.byName(name);
  return (h.node.node.ns.store.reader.prepare('SELECT COUNT(*) AS n FROM terminal_commands').get() as { n: number }).n;
}

async function auditKinds(name: string): Promise<string[]> {
  return [...m.byName(name).node.audit.exportJsonLines()].map((l) => (JSON.parse(l) as { kind: string }).kind);
}

before(async () => {
  m = await privacyMesh('memory', ['a', 'b', 'c', 'd'], {
    // a trusts b fully, c to receive summaries only, d to query only.
    trust: (self, other) => (self === 'a' ? ({ b: 'peer', c: 'share_to', d: 'query_from' } as const)[other as 'b' | 'c' | 'd'] : 'peer'),
  });
  for (const h of m.nodes) {
    writeSpool(h.spoolDir, 'bash-100-1.spool', seed(h.name));
    await h.node.privacy.observer?.scan();
    assert.ok(await h.node.node.idle());
  }
});

after(async () => {
  await m?.cleanup();
});

test('the spool becomes classified terminal.command events with secrets redacted, and commands that must not be recorded are not', async () => {
  const a = m.byName('a');
  writeSpool(a.spoolDir, 'zsh-200-1.spool', [
    { command: 'export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', ts: T0 },
    { command: ' echo leading-space-canary-91c2', ts: T0 },
    { command: 'rm -rf /', ts: T0, exit: 1 },
    { command: 'curl -H "Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123456789" https://example.test', ts: T0 },
  ]);
  await a.node.privacy.observer?.scan();
  assert.ok(await a.node.node.idle());
  const events = a.node.node.ns.store.reader.prepare("SELECT body FROM events WHERE event = 'terminal.command'").all() as Array<{ body: string }>;
  const bodies = events.map((e) => JSON.parse(e.body) as Envelope);
  const text = events.map((e) => e.body).join('\n');
  assert.doesNotMatch(text, /wJalrXUtnFEMI/, 'the AWS secret is redacted before the event is stored');
  assert.doesNotMatch(text, /abcdefghijklmnopqrstuvwxyz0123456789/, 'the bearer token is redacted');
  assert.doesNotMatch(text, /leading-space-canary-91c2/, 'a command typed with a leading space is never recorded');
  const rm = bodies.find((b) => (b.payload as { command: string }).command === 'rm -rf /');
  assert.ok(rm, 'rm -rf / is recorded');
  assert.equal((rm.payload as { risk_level: string }).risk_level, 'critical');
  assert.equal((rm.payload as { category: string }).category, 'file_ops');
  assert.equal((rm.payload as { exit_code: number }).exit_code, 1);
  assert.ok(bodies.some((b) => (b.payload as { redacted?: number }).redacted === 1), 'the event says how many secrets were removed');
  assert.equal(a.node.privacy.observerStats?.leadingSpace, 1);
});

test('a terminal.command any producer emits (the API, the CLI, an agent) is redacted as the shell hook\'s are', async () => {
  const a = m.byName('a').node.node;
  const e = await a.emit({
    event: 'terminal.command',
    payload: { shell: 'bash', command: 'mysql -u root -phunter2 db; PGPASSWORD=s3cr3t psql', cwd: '/home/me', caro_generated: false, category: 'other', risk_level: 'safe', user_confirmed: false },
  });
  const stored = a.ns.store.reader.prepare('SELECT body FROM events WHERE id = ?').pluck().get(e.id) as string;
  assert.doesNotMatch(stored, /hunter2|s3cr3t/);
  const p = (JSON.parse(stored) as Envelope).payload as { command: string; redacted?: number };
  assert.equal(p.command, 'mysql -u root -p[REDACTED:mysql-password] db; PGPASSWORD=[REDACTED:secret-env-assignment] psql');
  assert.equal(p.redacted, 2);
  assert.equal(e.payload.command, p.command, 'the emit answers with what was stored');
});

test('every spool record is ingested exactly once, also when the read position was lost (a crash between the two commits)', async () => {
  const a = m.byName('a');
  const before_ = await commands('a');
  await a.node.privacy.observer?.scan();
  assert.equal(await commands('a'), before_, 'a second scan adds nothing');
  // A crash between the emit's commit and the position's commit: the records are read again.
  await a.node.node.ns.store.write(() => a.node.node.ns.store.db.prepare('DELETE FROM spool_positions').run());
  (a.node.privacy.observer as unknown as { positions: unknown }).positions = undefined;
  await a.node.privacy.observer?.scan();
  assert.ok(await a.node.node.idle());
  assert.equal(await commands('a'), before_, 'records read again are dropped by their idempotency key');
  const n = (a.node.node.ns.store.reader.prepare("SELECT COUNT(*) AS n FROM events WHERE event = 'terminal.command'").get() as { n: number }).n;
  assert.equal(n, before_, 'and never logged twice');
});

test('summaries are signed, exactly what the preview showed, and reach only peers whose trust allows summaries', async () => {
  const a = m.byName('a');
  const preview = a.node.privacy.preview('daily', T0);
  assert.ok(preview.summary.total_commands >= 60);
  assert.deepEqual(preview.recipients.sort(), ['b', 'c'], 'peer and share_to receive summaries; query_from does not');
  const stored = await a.node.privacy.generate('daily', T0);
  assert.ok(stored);
  assert.ok(verifySummary(stored.summary), 'the stored summary verifies against the node key');
  const { signature: _s, generated_at: _g, ...content } = stored.summary;
  const { generated_at: _pg, ...previewed } = preview.summary;
  assert.deepEqual(content, previewed, 'what is shared is what the preview showed');
  const tampered: NodeSummary = { ...stored.summary, total_commands: stored.summary.total_commands + 1 };
  assert.equal(verifySummary(tampered), false, 'a changed count no longer verifies');
  const got = (name: string) => m.byName(name).node.privacy.store.peerSummaries({ peer: 'a', limit: 10 }).length;
  await until('b and c hold a\'s summary', () => got('b') === 1 && got('c') === 1);
  // d had every chance: the outbox to d is empty and b, c already have it.
  await until("a's outbox drained", () => ((a.node.mesh as NonNullable<typeof a.node.mesh>).status() as { peers: Array<{ outbox: number }> }).peers.every((p) => p.outbox === 0));
  assert.equal(got('d'), 0, 'a query_from peer never receives a summary');
  assert.ok((await auditKinds('a')).includes('summary.generated'));
  assert.ok((await auditKinds('a')).includes('summary.shared'));
});

test('a peer keeps no summary of a period that had not ended when it was made', async () => {
  const a = m.byName('a');
  const b = m.byName('b');
  const now = Date.now();
  const today = periodAt('daily', now);
  // What a node before this fix pushed for `weft summaries generate` during the day: signed, but a count so far.
  const partial = signSummary(summarize(a.node.node.ns.store.reader, { nodeId: a.identity.nodeId, granularity: 'daily', start: today.start, end: today.end, now }), a.identity, now);
  const refused = b.node.privacy.counters.peerSummariesRefused;
  await a.node.node.emit({ event: 'privacy.summary.shared', payload: partial, visibility: 'public' });
  await until('b refused the running day\'s summary', () => b.node.privacy.counters.peerSummariesRefused > refused);
  assert.ok(!b.node.privacy.store.peerSummaries({ peer: 'a', limit: 100 }).some((x) => x.summary.id === partial.id), 'b does not keep it');
});

test('trust set at run time is stored, audited as TrustChanged, and decides what the peer gets', async () => {
  const a = m.byName('a');
  const r = await a.node.privacy.setTrust('d', 'peer', 'now a teammate');
  assert.deepEqual([r.from, r.to], ['query_from', 'peer']);
  assert.equal(r.rule, 'weft trust set');
  const entry = [...a.node.audit.exportJsonLines()].map((l) => JSON.parse(l) as { kind: string; peer: string; details: Record<string, unknown> }).find((e) => e.kind === 'trust.changed');
  assert.deepEqual([entry?.peer, entry?.details.from, entry?.details.to, entry?.details.reason], ['d', 'query_from', 'peer', 'now a teammate']);
  assert.equal(a.node.privacy.store.trustSettings().find((t) => t.peer === 'd')?.level, 'peer');
  await a.node.privacy.generate('hourly', T0);
  await until('d holds a\'s hourly summary', () => m.byName('d').node.privacy.store.peerSummaries({ peer: 'a', limit: 10 }).length === 1);
  const audited = () => [...a.node.audit.exportJsonLines()].filter((l) => (JSON.parse(l) as { kind: string }).kind === 'trust.changed').length;
  const before = audited();
  const again = await a.node.privacy.setTrust('d', 'peer');
  assert.equal(again.unchanged, true, 'setting the level it has is a no-op');
  assert.equal(audited(), before, 'and writes nothing to the audit log');
  await a.node.privacy.setTrust('d', undefined);
  assert.equal(a.node.peers.byName('d')?.trustLevel, 'query_from', 'reset: the config decides again');
  assert.equal(audited(), before + 1, 'a real change is audited');
});

test("trust set takes a peer by the fingerprint or node id 'weft trust list' shows, or its name in another case", async () => {
  const a = m.byName('a');
  const d = m.byName('d');
  const byFingerprint = await a.node.privacy.setTrust(d.identity.fingerprint, 'supervisor');
  assert.deepEqual([byFingerprint.computer, byFingerprint.from, byFingerprint.to], ['d', 'query_from', 'supervisor']);
  assert.equal(a.node.privacy.trustList().find((p) => p.fingerprint === d.identity.fingerprint)?.level, 'supervisor');
  const byNodeId = await a.node.privacy.setTrust(d.identity.nodeId, 'peer');
  assert.deepEqual([byNodeId.computer, byNodeId.to], ['d', 'peer']);
  const byCase = await a.node.privacy.setTrust('D', undefined);
  assert.deepEqual([byCase.computer, byCase.to], ['d', 'query_from']);
  await assert.rejects(a.node.privacy.setTrust('nobody', 'peer'), /no known peer 'nobody' by name, fingerprint or node id: 'weft trust list' shows the known ones/);
});

test('a query is answered by every node, merged, and buckets from fewer than min_contributors nodes are suppressed', async () => {
  const range = { start: new Date(T0 - 60_000).toISOString(), end: new Date(Date.now()).toISOString() };
  const r = await m.byName('a').node.privacy.query({ type: 'tool_usage', range });
  assert.equal(r.status, 'complete');
  assert.equal(r.asked, 4);
  assert.equal(r.answered, 4);
  assert.equal(r.coverage, 100);
  assert.equal(r.contributors.length, 4);
  const by = (r.data as { by_category: Record<string, { count: number; node_count: number }> }).by_category;
  // git on a, b, c (3 nodes); docker on a, b (2: suppressed); cargo on d only (suppressed).
  assert.deepEqual(Object.keys(by).sort(), ['git']);
  assert.equal(by.git?.node_count, 3);
  assert.ok(r.suppressed.some((s) => s.startsWith('category docker')));
  assert.ok(r.suppressed.some((s) => s.startsWith('category cargo')));
  for (const type of ['safety_posture', 'activity_patterns', 'anomalies', 'node_health'] as const) {
    const q = await m.byName('b').node.privacy.query({ type, range });
    assert.equal(q.answered, 4, `${type}: every node answered`);
    assert.notEqual(q.data, null, `${type} has data`);
  }
  const health = await m.byName('b').node.privacy.query({ type: 'node_health', range });
  assert.deepEqual((health.data as Array<{ fingerprint: string }>).map((h) => h.fingerprint).sort(), m.nodes.map((h) => h.identity.fingerprint).sort());
});

test('a node whose policy does not let the requester query answers ACCESS_DENIED, recorded on both sides', async () => {
  const c = m.byName('c');
  await c.node.privacy.setTrust('b', 'share_to');
  const range = { start: new Date(T0 - 60_000).toISOString(), end: new Date().toISOString() };
  const r = await m.byName('b').node.privacy.query({ type: 'safety_posture', range });
  assert.deepEqual(r.denied.map((d) => d.computer), ['c']);
  assert.equal(r.contributors.length, 3, "c's data is not in the answer");
  assert.ok(!r.contributors.includes(c.identity.fingerprint));
  const onC = [...c.node.audit.exportJsonLines()].map((l) => JSON.parse(l) as { kind: string; peer: string; success: boolean });
  assert.ok(onC.some((e) => e.kind === 'query.received' && e.peer === 'b'));
  assert.ok(onC.some((e) => e.kind === 'policy.violation' && e.peer === 'b' && e.success === false));
  assert.ok(onC.some((e) => e.kind === 'response.sent' && e.peer === 'b'));
  const onB = [...m.byName('b').node.audit.exportJsonLines()].map((l) => JSON.parse(l) as { kind: string; peer: string });
  assert.ok(onB.some((e) => e.kind === 'policy.violation' && e.peer === 'c'));
  assert.equal(c.node.audit.verify().ok, true);
  await c.node.privacy.setTrust('b', undefined);
});

test('a node that fails to answer is not counted as answered: the result is partial and names it', async () => {
  const c = m.byName('c');
  const rename = (from: string, to: string) => c.node.node.ns.store.write(() => c.node.node.ns.store.db.exec(`ALTER TABLE ${from} RENAME TO ${to}`));
  await rename('terminal_commands', 'terminal_commands_away');
  try {
    const range = { start: new Date(T0 - 60_000).toISOString(), end: new Date().toISOString() };
    const r = await m.byName('a').node.privacy.query({ type: 'activity_patterns', range });
    assert.equal(r.status, 'partial');
    assert.deepEqual(r.failed.map((f) => [f.computer, f.status]), [['c', 'ERROR']]);
    assert.equal(r.answered, 3);
    assert.equal(r.coverage, 75);
    assert.equal(r.contributors.length, 3);
  } finally {
    await rename('terminal_commands_away', 'terminal_commands');
  }
});

test('with a node stopped, a query is a partial result naming it', async () => {
  await m.stop('d');
  const range = { start: new Date(T0 - 60_000).toISOString(), end: new Date().toISOString() };
  const r = await m.byName('a').node.privacy.query({ type: 'activity_patterns', range, timeoutMs: 500 });
  assert.equal(r.status, 'partial');
  assert.deepEqual(r.missing.map((x) => x.computer), ['d']);
  assert.equal(r.answered, 3);
  assert.equal(r.coverage, 75);
  assert.notEqual(r.data, null, 'a partial result is still a result');
});

test('finished periods are summarized once, on the timer\'s schedule, and shared when the policy says so', async () => {
  const b = m.byName('b');
  const hourEnd = (Math.floor(T0 / 3_600_000) + 1) * 3_600_000;
  const made = await b.node.privacy.summarizeDue(hourEnd + 1000);
  const hourly = made.find((s) => s.granularity === 'hourly');
  assert.ok(hourly, 'the hour that just ended is summarized');
  assert.equal(hourly.periodStart, new Date(hourEnd - 3_600_000).toISOString());
  assert.ok(hourly.sharedAt, 'and shared (share_summaries is on, peers are trusted)');
  assert.deepEqual(
    (await b.node.privacy.summarizeDue(hourEnd + 2000)).map((s) => s.granularity),
    [],
    'a period already summarized is not summarized again',
  );
});
