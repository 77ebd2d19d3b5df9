/**
 * Aggregate queries across ten real daemons linked over TLS on loopback, as a user runs them
 * (`weft query … --json`), with the defaults: every query type answers from all ten; with one
 * daemon stopped the result is partial and names it; a requester a node does not trust gets
 * ACCESS_DENIED from it, recorded in both audit chains.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { QUERY_TYPES } from '../../src/catalog/index.js';
import { weft } from '../helpers/cli.js';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';
import { writeSpool } from '../helpers/privacy-mesh.js';
import { tempDir } from '../helpers/tmp.js';

const NAMES = Array.from({ length: 10 }, (_, i) => `q${i + 1}`);

test('ten daemons answer every query type; a stopped one makes a partial result naming it; an untrusted requester is refused and audited', async () => {
  const t = tempDir('weft-query-');
  const c = await startCluster(
    t.dir,
    NAMES.map((computer) => ({ computer, cluster: 'team', env: { WEFT_OBSERVE_SPOOL_DIR: join(t.dir, computer, 'spool') } })),
    { provider: 'tls' },
  );
  try {
    const nodes = NAMES.map((n) => c.nodes[n] as ClusterNode);
    const now = Date.now();
    for (const [i, n] of nodes.entries()) {
      writeSpool(
        join(n.dataDir, 'spool'),
        `bash-${1000 + i}-1.spool`,
        Array.from({ length: 200 }, (_, k) => ({
          command: k % 4 === 0 ? `docker ps -a cnry${n.computer}z ${k}` : `git status cnry${n.computer}z ${k}`,
          cwd: `/srv/cnry${n.computer}z`,
          ts: now - 7_200_000 + k * 10_000,
          exit: k % 9 === 0 ? 2 : 0,
        })),
      );
    }
    for (const n of nodes) {
      await eventually(async () => {
        await n.api.request('POST', '/api/privacy/observe/scan');
        return ((await n.api.request<{ stats: { ingested: number } }>('GET', '/api/privacy/observe')).stats.ingested) === 200;
      }, 30_000, `${n.computer} ingested its spool`);
    }
    const q1 = nodes[0] as ClusterNode;
    await eventually(
      async () => (await q1.api.request<{ peers: Array<{ state: string }> }>('GET', '/api/mesh/status')).peers.filter((p) => p.state === 'connected').length === 9,
      30_000,
      'q1 linked to the nine others',
    );
    const query = (type: string, extra: string[] = []) => {
      // node-health has no range: it reports each node now.
      const r = weft(['--json', 'query', type.replace('_', '-'), ...(type === 'node_health' ? [] : ['--range', '1d']), ...extra], q1.env);
      assert.equal(r.code, 0, `weft query ${type}: ${r.stderr}`);
      return JSON.parse(r.stdout) as {
        status: string;
        answered: number;
        asked: number;
        coverage: number;
        data: unknown;
        contributors: string[];
        missing: Array<{ computer: string }>;
        denied: Array<{ computer: string }>;
      };
    };
    for (const type of QUERY_TYPES) {
      const r = query(type);
      assert.equal(r.status, 'complete', `${type}: ${JSON.stringify(r).slice(0, 300)}`);
      assert.equal(r.answered, 10, type);
      assert.equal(r.coverage, 100, type);
      assert.notEqual(r.data, null, type);
    }
    // No node's commands in what the others answer: every query result, every summary, every API answer.
    const texts: string[] = QUERY_TYPES.map((type) => JSON.stringify(query(type)));
    for (const n of nodes) {
      await n.api.request('POST', '/api/privacy/summaries/generate', { period: 'day' });
      for (const path of ['/api/events?limit=1000', '/api/notifications?limit=1000', '/api/privacy/summaries', '/api/privacy/peer-summaries', '/api/privacy/summaries/preview?period=day', '/api/mesh/status', '/api/rejections?limit=1000']) {
        const body = JSON.stringify(await n.api.request('GET', path));
        texts.push(path.startsWith('/api/events') ? body.replaceAll(`cnry${n.computer}z`, '(own)') : body);
      }
      texts.push(await n.api.text('/api/audit/export'));
    }
    const leaks = NAMES.filter((name) => texts.some((t) => t.includes(`cnry${name}z`)));
    assert.deepEqual(leaks, [], "no node's commands appear anywhere but in its own log");
    const usage = query('tool_usage').data as { by_category: Record<string, { count: number; node_count: number }>; total_commands: number };
    assert.equal(usage.total_commands, 2000);
    assert.deepEqual([usage.by_category.docker?.node_count, usage.by_category.git?.node_count], [10, 10]);

    // One node stopped: a partial result that names it.
    assert.equal(await (nodes[9] as ClusterNode).stop(), 0);
    const partial = query('activity_patterns', ['--timeout', '1500']);
    assert.equal(partial.status, 'partial');
    assert.deepEqual(partial.missing.map((m) => m.computer), ['q10']);
    assert.equal(partial.answered, 9);
    assert.equal(partial.coverage, 90);
    assert.notEqual(partial.data, null);

    // q2 stops trusting q1: its answer is ACCESS_DENIED, audited on both sides.
    const set = weft(['trust', 'set', 'q1', 'untrusted', '--reason', 'test'], (nodes[1] as ClusterNode).env);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /q1: peer → untrusted/);
    const denied = query('safety_posture', ['--timeout', '1500']);
    assert.deepEqual(denied.denied.map((d) => d.computer), ['q2']);
    const audit = async (n: ClusterNode) =>
      (await n.api.text('/api/audit/export'))
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { kind: string; peer: string | null });
    const onQ2 = await audit(nodes[1] as ClusterNode);
    assert.ok(onQ2.some((e) => e.kind === 'trust.changed' && e.peer === 'q1'));
    assert.ok(onQ2.some((e) => e.kind === 'policy.violation' && e.peer === 'q1'));
    const onQ1 = await audit(q1);
    assert.ok(onQ1.some((e) => e.kind === 'policy.violation' && e.peer === 'q2'));
    const human = weft(['query', 'safety-posture', '--range', '1d', '--timeout', '1500'], q1.env);
    assert.equal(human.code, 0);
    assert.match(human.stdout, /ACCESS_DENIED: q2/);
    assert.match(human.stdout, /missing: q10/);
  } finally {
    await c.stopAll();
    t.cleanup();
  }
});
