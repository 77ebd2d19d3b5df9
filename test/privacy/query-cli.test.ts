/**
 * `weft query` against a real daemon, as a user types it: a filter mistake is one line and
 * exit 2 before any node is asked (the API refuses the same with 400); a correct filter counts
 * what it names; when no node can answer, the result says failed and the CLI exits 1.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { weft } from '../helpers/cli.js';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';
import { writeSpool } from '../helpers/privacy-mesh.js';
import { tempDir } from '../helpers/tmp.js';

const t = tempDir('weft-query-cli-');
let c: Awaited<ReturnType<typeof startCluster>>;
let solo: ClusterNode;

before(async () => {
  c = await startCluster(t.dir, [{ computer: 'solo', env: { WEFT_OBSERVE_SPOOL_DIR: join(t.dir, 'solo', 'spool'), WEFT_PRIVACY_MIN_CONTRIBUTORS: '1' } }], { provider: 'tls' });
  solo = c.nodes.solo as ClusterNode;
  const now = Date.now();
  writeSpool(join(solo.dataDir, 'spool'), 'bash-700-1.spool', [
    { command: 'git status', ts: now - 60_000 },
    { command: 'git log', ts: now - 50_000 },
    { command: 'git diff', ts: now - 40_000, exit: 1 },
    { command: 'docker ps', ts: now - 30_000 },
    { command: 'docker images', ts: now - 20_000 },
  ]);
  await eventually(async () => {
    await solo.api.request('POST', '/api/privacy/observe/scan');
    return (await solo.api.request<{ stats: { ingested: number } }>('GET', '/api/privacy/observe')).stats.ingested === 5;
  }, 30_000, 'solo ingested its spool');
});

after(async () => {
  await c?.stopAll();
  t.cleanup();
});

test('a filter mistake is one line naming the filter and what is allowed, exit 2, and the API answers 400', async () => {
  const cases: Array<[string, RegExp]> = [
    ['hour > abc', /filter 'hour > abc': hour takes a whole number, not 'abc'/],
    ['duration_ms > 1.5', /filter 'duration_ms > 1.5': duration_ms takes a whole number, not '1.5'/],
    ['exit_code ~ 1', /filter 'exit_code ~ 1': ~ \(contains\) compares text: category, risk_level, shell/],
    ['category > git', /filter 'category > git': > compares numbers: exit_code, duration_ms, hour/],
    ['category = gti', /filter 'category = gti': category is one of git, docker, .*, not 'gti'/],
    ['risk_level in high,', /filter 'risk_level in high,': 'in' takes values separated by commas, none empty/],
    ['colour = red', /filter 'colour = red': field 'colour' is not one of category, risk_level/],
  ];
  for (const [filter, message] of cases) {
    const r = weft(['query', 'tool-usage', '--range', '1d', '--filter', filter], solo.env);
    assert.equal(r.code, 2, `${filter}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, message, filter);
    assert.equal(r.stderr.trim().split('\n').length, 1, `${filter}: one line`);
    assert.equal(r.stdout, '', `${filter}: no result printed`);
  }
  for (const filters of [['exit_code ~ 1'], [{ field: 'hour', operator: 'greater_than', value: 'abc' }]]) {
    await assert.rejects(
      solo.api.request('POST', '/api/privacy/query', { type: 'tool_usage', range: '1d', filters }),
      (err: { status: number; message: string }) => err.status === 400 && /^filter '/.test(err.message),
      JSON.stringify(filters),
    );
  }
});

test('--timeout out of 1..600000 ms is refused naming the flag, exit 2', () => {
  for (const v of ['0', '700000']) {
    const r = weft(['query', 'tool-usage', '--timeout', v], solo.env);
    assert.equal(r.code, 2, `--timeout ${v}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stderr.trim(), `weft: --timeout must be a whole number from 1 to 600000, got '${v}'`);
  }
});

test("'category == git' is the filter it looks like: it counts the git commands", () => {
  for (const [i, filter] of ['category == git', 'category = git', 'category in git', 'category equals git'].entries()) {
    // The type as the JSON answer spells it (tool_usage) works as well.
    const r = weft(['--json', 'query', i === 0 ? 'tool_usage' : 'tool-usage', '--range', '1d', '--filter', filter], solo.env);
    assert.equal(r.code, 0, `${filter}: ${r.stderr}`);
    const q = JSON.parse(r.stdout) as { filters: Array<{ operator: string; value: string }>; data: { by_category: Record<string, { count: number }>; total_commands: number } };
    assert.deepEqual(q.filters.map((f) => f.value), ['git'], filter);
    assert.deepEqual(Object.keys(q.data.by_category), ['git'], filter);
    assert.equal(q.data.total_commands, 3, filter);
  }
});

test('node-health refuses --filter and --range it would ignore (exit 2), and answers without them', async () => {
  for (const args of [['--filter', 'category = git'], ['--range', '1d']]) {
    const r = weft(['query', 'node-health', ...args], solo.env);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`node-health takes no ${args[0]}: it reports each node's state now and its command count of the last 24 hours`));
  }
  await assert.rejects(solo.api.request('POST', '/api/privacy/query', { type: 'node_health', filters: ['category = git'] }), (err: { status: number }) => err.status === 400);
  const ok = weft(['--json', 'query', 'node-health'], solo.env);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal((JSON.parse(ok.stdout) as { data: Array<{ event_count_24h: number }> }).data[0]?.event_count_24h, 5);
});

test('when no node can answer, the result is failed, not complete, and the CLI exits 1', () => {
  // A real fault: the table answers are read from is gone (renamed back afterwards).
  const db = new Database(join(solo.dataDir, 'weft.db'));
  db.pragma('busy_timeout = 10000');
  db.exec('ALTER TABLE terminal_commands RENAME TO terminal_commands_away');
  try {
    const json = weft(['--json', 'query', 'tool-usage', '--range', '1d'], solo.env);
    assert.equal(json.code, 1, json.stderr);
    const q = JSON.parse(json.stdout) as { status: string; answered: number; asked: number; coverage: number; failed: Array<{ computer: string; status: string }> };
    assert.deepEqual([q.status, q.answered, q.asked, q.coverage], ['failed', 0, 1, 0]);
    assert.deepEqual(q.failed.map((f) => [f.computer, f.status]), [['solo', 'ERROR']]);
    const text = weft(['query', 'tool-usage', '--range', '1d'], solo.env);
    assert.equal(text.code, 1);
    assert.match(text.stdout, /^failed: 0 of 1 nodes answered \(coverage 0%\), 1 failed, 0 contributed/m);
  } finally {
    db.exec('ALTER TABLE terminal_commands_away RENAME TO terminal_commands');
    db.close();
  }
  const ok = weft(['query', 'tool-usage', '--range', '1d'], solo.env);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^complete: 1 of 1 nodes answered/m);
});

test('weft privacy policy prints the sharing policy as lines for people, and --json for scripts', () => {
  const text = weft(['privacy', 'policy'], solo.env);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^max level shared: +summarized$/m);
  assert.match(text.stdout, /^min contributors: +1 /m);
  assert.doesNotMatch(text.stdout, /[{}]/, 'no JSON in the text form');
  const json = JSON.parse(weft(['--json', 'privacy', 'policy'], solo.env).stdout) as { policy: { max_level: string }; min_contributors: number };
  assert.deepEqual([json.policy.max_level, json.min_contributors], ['summarized', 1]);
});

test('weft status says how many queries this node asked and how many from peers it answered, refused, dropped or was too busy for', () => {
  const before = weft(['--json', 'status'], solo.env);
  const asked = (JSON.parse(before.stdout) as { privacy: { queriesSent: number } }).privacy.queriesSent;
  assert.equal(weft(['query', 'safety-posture', '--range', '1d'], solo.env).code, 0);
  const r = weft(['status'], solo.env);
  assert.match(r.stdout, new RegExp(`^queries: ${asked + 1} asked by this node; from peers 0 answered, 0 refused, 0 dropped over the rate, 0 busy since the start \\(who asked what: weft audit export\\)$`, 'm'), r.stdout);
});

test('a query no node has counts for says so: it was answered, and how many had counts, not that too few nodes answered', () => {
  const r = weft(['query', 'tool-usage', '--range', '1d', '--filter', 'category = kubernetes'], solo.env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^\(no aggregate: 0 of the nodes that answered had counts, fewer than min_contributors\)$/m);
  assert.match(r.stdout, /^complete: 1 of 1 nodes answered \(coverage 100%\), 1 contributed \(0 with counts\); min_contributors 1$/m);
});
