/**
 * The sharing policy as a user configures it: which rule sets a peer's trust level (most
 * specific wins), subnets by CIDR, categories (deny wins), what each level is granted, and a
 * broken setting refused with the key named. Also the contract: every schema and enum value
 * of Caro's plan is in the catalog's export.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ANOMALY_TYPES,
  AUDIT_EVENT_TYPES,
  AUDIT_KIND_OF,
  COMMAND_CATEGORY_VALUES,
  createDefaultCatalog,
  FILTER_OPERATORS,
  QUERY_TYPES,
  RESPONSE_STATUSES,
  RISK_LEVEL_VALUES,
  TRUST_LEVEL_VALUES,
} from '../../src/catalog/index.js';
import { generateIdentity } from '../../src/identity/index.js';
import type { KnownPeer } from '../../src/mesh/index.js';
import { COMMAND_CATEGORIES, GRANTS, parseCidr, PrivacyPolicy, RISK_LEVELS } from '../../src/privacy/index.js';

const peer = (over: Partial<KnownPeer>): KnownPeer => ({ computer: 'p', nodeId: generateIdentity().nodeId, trustLevel: 'peer', origin: 'static', ...over });

test('the most specific rule sets a peer\'s trust: weft trust set > node_trust > !trust > subnet > default', () => {
  const id = generateIdentity();
  const pol = new PrivacyPolicy({
    defaultTrust: 'untrusted',
    nodeTrust: { laptop: 'supervisor', [id.fingerprint]: 'query_from' },
    subnetTrust: { '10.0.0.0/8': 'share_to', '10.1.2.0/24': 'peer' },
  });
  assert.deepEqual(pol.resolve(peer({ computer: 'laptop', address: '10.1.2.3:9238' }), 'home'), { level: 'supervisor', rule: 'privacy.node_trust.laptop' });
  assert.equal(pol.resolve(peer({ computer: 'x', nodeId: id.nodeId }), 'home').level, 'query_from', 'by fingerprint');
  assert.deepEqual(pol.resolve(peer({ computer: 'y', address: '10.1.2.9:9238', trustSet: true }), 'home').level, undefined, 'an explicit !trust beats a subnet');
  assert.deepEqual(pol.resolve(peer({ computer: 'y', address: '10.1.2.9:9238' }), 'home'), { level: 'peer', rule: 'privacy.subnet_trust.10.1.2.0/24' }, 'the longest prefix wins');
  assert.equal(pol.resolve(peer({ computer: 'y', address: '10.9.9.9:9238' }), 'home').level, 'share_to');
  assert.deepEqual(pol.resolve(peer({ computer: 'z', origin: 'discovered', cluster: 'other' }), 'home'), { level: 'untrusted', rule: 'privacy.default_trust' });
  assert.equal(pol.resolve(peer({ computer: 'z', origin: 'discovered', cluster: 'home' }), 'home').level, undefined, 'a cluster mate keeps what the mesh gave it');
  pol.setRuntime('laptop', 'untrusted');
  assert.deepEqual(pol.resolve(peer({ computer: 'laptop' }), 'home'), { level: 'untrusted', rule: 'weft trust set' });
});

test('subnets match IPv4 and IPv6 addresses, and a bad CIDR names the key', () => {
  const pol = new PrivacyPolicy({ subnetTrust: { 'fd00::/8': 'peer', '192.168.1.0/24': 'query_from' } });
  assert.equal(pol.resolve(peer({ computer: 'a', address: '[fd12::5]:9238' }), undefined).level, 'peer');
  assert.equal(pol.resolve(peer({ computer: 'b', address: '192.168.1.77:9238' }), undefined).level, 'query_from');
  assert.equal(pol.resolve(peer({ computer: 'c', address: '192.168.2.1:9238' }), undefined).level, undefined);
  assert.equal(parseCidr('0.0.0.0/0').bits, 0);
  assert.throws(() => parseCidr('10.0.0.0/33'), /privacy\.subnet_trust: '10\.0\.0\.0\/33' is not a CIDR/);
  assert.throws(() => new PrivacyPolicy({ nodeTrust: { x: 'friend' as never } }), /privacy\.node_trust: 'x' = 'friend' is not one of untrusted, share_to/);
  assert.throws(() => new PrivacyPolicy({ maxLevel: 'raw' as never }), /raw data never leaves its node/);
});

test('a denied category is never shared, even when also allowed; an empty allow list allows all', () => {
  const pol = new PrivacyPolicy({ allowedCategories: ['git', 'docker'], deniedCategories: ['docker'] });
  assert.equal(pol.shares('git'), true);
  assert.equal(pol.shares('docker'), false);
  assert.equal(pol.shares('network'), false);
  const open = new PrivacyPolicy({ deniedCategories: ['network'] });
  assert.deepEqual(COMMAND_CATEGORIES.filter((c) => open.shares(c)), COMMAND_CATEGORIES.filter((c) => c !== 'network'));
});

test('grants: untrusted nothing, share_to summaries, query_from queries, peer both, supervisor queries but never summaries', () => {
  assert.deepEqual(GRANTS.untrusted, { receivesSummaries: false, mayQuery: false });
  assert.deepEqual(GRANTS.share_to, { receivesSummaries: true, mayQuery: false });
  assert.deepEqual(GRANTS.query_from, { receivesSummaries: false, mayQuery: true });
  assert.deepEqual(GRANTS.peer, { receivesSummaries: true, mayQuery: true });
  assert.deepEqual(GRANTS.supervisor, { receivesSummaries: false, mayQuery: true });
  const off = new PrivacyPolicy();
  assert.equal(off.pushesSummariesTo('peer'), false, 'nothing is pushed until share_summaries is on');
  const on = new PrivacyPolicy({ shareSummaries: true });
  assert.equal(on.pushesSummariesTo('peer'), true);
  assert.equal(on.pushesSummariesTo('supervisor'), false);
  assert.equal(new PrivacyPolicy({ shareSummaries: true, maxLevel: 'aggregated' }).pushesSummariesTo('peer'), false, 'max_level aggregated keeps summaries home');
});

test('every schema and enum value of the seed\'s contract is in weft schemas export', () => {
  const doc = createDefaultCatalog().exportJsonSchema() as { records: Record<string, { anyOf?: Array<{ const: string }> }>; types: Record<string, { dataClass: string }> };
  for (const name of ['TerminalEvent', 'NodeSummary', 'MeshQuery', 'MeshResponse', 'TrustLevel', 'SharingPolicy', 'AuditEventType', 'QueryType', 'AnomalyType', 'AnomalySignal', 'NodeHealthStatus', 'DataLevel', 'FilterOperator', 'ResponseStatus', 'CategoryStat', 'SafetyStats', 'TimeRange', 'QueryFilter', 'AggregatedToolUsage', 'AggregatedSafetyPosture', 'AggregatedActivityPatterns', 'Signature', 'SummaryPeriod', 'Granularity', 'ShellType', 'AuditEvent']) {
    assert.ok(doc.records[name], `record ${name}`);
  }
  const values = (name: string) => (doc.records[name]?.anyOf ?? []).map((v) => v.const);
  assert.deepEqual(values('QueryType'), [...QUERY_TYPES]);
  assert.deepEqual(values('QueryType'), ['tool_usage', 'safety_posture', 'activity_patterns', 'anomalies', 'node_health']);
  assert.deepEqual(values('AnomalyType'), [...ANOMALY_TYPES]);
  assert.equal(ANOMALY_TYPES.length, 5);
  assert.deepEqual(values('TrustLevel'), [...TRUST_LEVEL_VALUES]);
  assert.deepEqual(values('AuditEventType'), [...AUDIT_EVENT_TYPES]);
  assert.equal(AUDIT_EVENT_TYPES.length, 10);
  assert.deepEqual(values('FilterOperator'), [...FILTER_OPERATORS]);
  assert.deepEqual(values('ResponseStatus'), [...RESPONSE_STATUSES]);
  assert.deepEqual(values('CommandCategory'), [...COMMAND_CATEGORY_VALUES]);
  assert.deepEqual([...COMMAND_CATEGORY_VALUES], [...COMMAND_CATEGORIES], 'the classifier and the schema name the same categories');
  assert.deepEqual(values('RiskLevel'), [...RISK_LEVEL_VALUES]);
  assert.deepEqual([...RISK_LEVEL_VALUES], [...RISK_LEVELS]);
  for (const t of AUDIT_EVENT_TYPES) assert.match(AUDIT_KIND_OF[t], /^[a-z]+\.[a-z]+$/);
  assert.equal(doc.types['terminal.command']?.dataClass, 'raw');
  assert.equal(doc.types['privacy.summary.shared']?.dataClass, 'summarized');
});

test('a peer sending more queries a minute than allowed is answered up to the limit, then dropped with one audit entry', async () => {
  const { privacyMesh } = await import('../helpers/privacy-mesh.js');
  const m = await privacyMesh('memory', ['x', 'y'], { queriesPerPeerPerMinute: 5 });
  try {
    const range = { start: new Date(Date.now() - 3_600_000).toISOString(), end: new Date().toISOString() };
    const results = [];
    for (let i = 0; i < 12; i++) results.push(await m.byName('y').node.privacy.query({ type: 'node_health', range, timeoutMs: 300 }));
    assert.deepEqual(results.map((r) => r.answered), [2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1]);
    assert.equal(m.byName('x').node.privacy.counters.queriesDropped, 7);
    const kinds = [...m.byName('x').node.audit.exportJsonLines()].map((l) => JSON.parse(l) as { kind: string; details: { reason?: string } });
    assert.equal(kinds.filter((k) => k.kind === 'query.received').length, 5);
    assert.equal(kinds.filter((k) => k.kind === 'policy.violation' && /queries a minute/.test(k.details.reason ?? '')).length, 1);
  } finally {
    await m.cleanup();
  }
});

test('a discovered node cannot take a name or an address to inherit trust; a level set at run time stays with the key it was set for', () => {
  const id = generateIdentity();
  const pol = new PrivacyPolicy({ nodeTrust: { 'ci-box': 'peer' }, subnetTrust: { '10.0.1.0/24': 'peer' }, defaultTrust: 'share_to' });
  const impostor = peer({ computer: 'ci-box', origin: 'discovered', address: '10.0.1.9:7000', cluster: 'elsewhere' });
  assert.deepEqual(pol.resolve(impostor, 'home'), { level: 'share_to', rule: 'privacy.default_trust' }, 'neither its chosen name nor its announced address counts');
  assert.equal(pol.resolve(peer({ computer: 'ci-box' }), 'home').level, 'peer', 'a configured peer of that name does');
  pol.setRuntime('laptop', 'supervisor', id.nodeId);
  assert.equal(pol.resolve(peer({ computer: 'laptop', nodeId: id.nodeId }), 'home').level, 'supervisor');
  assert.equal(pol.resolve(peer({ computer: 'laptop' }), 'home').level, undefined, 'the same name with another key gets nothing of it');
  const next = generateIdentity();
  assert.equal(pol.rekey('laptop', id.nodeId, next.nodeId), true, 'an endorsed rotation moves it');
  assert.equal(pol.resolve(peer({ computer: 'laptop', nodeId: next.nodeId }), 'home').level, 'supervisor');
});

test('the merge suppresses each bucket made by fewer than min_contributors nodes, not only whole answers', async () => {
  const { mergeAnswers } = await import('../../src/privacy/index.js');
  const range = { start: '2026-12-01T00:00:00.000Z', end: '2026-12-02T00:00:00.000Z' };
  const posture = (critical: number, confirmed: number) => ({
    fingerprint: 'f',
    data: { type: 'safety_posture' as const, value: { risk_distribution: { safe: 0, moderate: 0, high: 0, critical: 0 }, blocked_count: 0, confirmed_risky: confirmed, coverage: 100 }, risk_counts: { safe: 10, moderate: 0, high: 0, critical }, total_commands: 10 + critical },
  });
  const m = mergeAnswers('safety_posture', [posture(5, 1), posture(0, 0), posture(0, 0)], 3, range);
  const d = m.data as { risk_distribution: Record<string, number>; confirmed_risky: number };
  assert.equal(d.risk_distribution.critical, 0, "one node's critical commands are not shown");
  assert.equal(d.risk_distribution.safe, 100);
  assert.equal(d.confirmed_risky, 0);
  assert.deepEqual(m.suppressed, ['risk critical: 1 node(s)', 'confirmed risky: 1 node(s)']);
  const hours = (h: number) => {
    const hourly = new Array<number>(24).fill(0);
    hourly[12] = 5;
    hourly[h] = (hourly[h] ?? 0) + 1;
    return { fingerprint: 'f', data: { type: 'activity_patterns' as const, value: { hourly_pattern: [], daily_pattern: [], peak_hours: [], active_nodes: 1 }, hourly_counts: hourly, daily_counts: [1, 0, 0, 0, 0, 0, 0] } };
  };
  const a = mergeAnswers('activity_patterns', [hours(3), hours(12), hours(12)], 3, range);
  assert.ok(a.suppressed.includes('hour 3: 1 node(s)'), 'a 3 a.m. bucket from one node is withheld');
  assert.deepEqual((a.data as { peak_hours: number[] }).peak_hours, [12]);
  const usage = mergeAnswers('tool_usage', [1, 2, 3].map(() => ({ fingerprint: 'f', data: { type: 'tool_usage' as const, value: { by_category: { git: { count: 2, node_count: 1, avg_duration_ms: 1 }, constructor: { count: 9, node_count: 1, avg_duration_ms: 1 } }, total_commands: 11, time_range: range } } })), 3, range);
  assert.deepEqual(Object.keys((usage.data as { by_category: object }).by_category), ['git'], 'a made-up category from a peer is ignored');
});

test('a summary carrying another node\'s id does not verify, and a query range is bounded', async () => {
  const { signSummary, summaryId, verifySummary, rangeMs } = await import('../../src/privacy/index.js');
  const a = generateIdentity();
  const b = generateIdentity();
  const start = '2026-12-01T00:00:00.000Z';
  const content = {
    id: summaryId(a.nodeId, 'daily', start),
    node_id: b.nodeId,
    period: { start, end: '2026-12-02T00:00:00.000Z', granularity: 'daily' as const },
    category_stats: [],
    hourly_activity: new Array<number>(24).fill(0),
    daily_activity: new Array<number>(7).fill(0),
    safety_stats: { by_risk: { safe: 0, moderate: 0, high: 0, critical: 0 }, blocked_count: 0, user_confirmed_risky: 0, caro_generated: 0, caro_executed: 0 },
    total_commands: 0,
    unique_patterns: 0,
    generated_at: start,
  };
  assert.equal(verifySummary(signSummary(content, b, Date.now())), false, "b signed it, but the id is a's");
  assert.equal(verifySummary(signSummary({ ...content, id: summaryId(b.nodeId, 'daily', start) }, b, Date.now())), true);
  assert.throws(() => rangeMs({ start: '2020-01-01T00:00:00Z', end: '2026-01-01T00:00:00Z' }, 'tool_usage'), /longer than 366 days/);
  assert.throws(() => rangeMs({ start: '2026-01-01T00:00:00Z', end: '2026-03-01T00:00:00Z' }, 'anomalies'), /longer than 31 days \(anomalies\)/);
});
