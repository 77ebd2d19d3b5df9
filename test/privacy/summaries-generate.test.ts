/**
 * `weft summaries generate` on two real daemons linked over TLS, both sharing summaries: a
 * period that has not started is refused (exit 2, one line), a period still running is kept on
 * its node and never reaches the peer, a finished one is signed and shared, and a period long
 * before the node's data says it had no commands and stores nothing.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { weft } from '../helpers/cli.js';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';
import { writeSpool } from '../helpers/privacy-mesh.js';
import { tempDir } from '../helpers/tmp.js';

const HOUR = 3_600_000;

test('a summary is shared only for a period that has ended: a future period is refused, the running one stays on its node', async () => {
  const t = tempDir('weft-summaries-');
  const c = await startCluster(
    t.dir,
    ['sa', 'sb'].map((computer) => ({ computer, cluster: 'team', env: { WEFT_OBSERVE_SPOOL_DIR: join(t.dir, computer, 'spool'), WEFT_PRIVACY_SHARE_SUMMARIES: 'true' } })),
    { provider: 'tls' },
  );
  try {
    const a = c.nodes.sa as ClusterNode;
    const b = c.nodes.sb as ClusterNode;
    const now = Date.now();
    const finishedHour = Math.floor(now / HOUR) * HOUR - 2 * HOUR;
    writeSpool(join(a.dataDir, 'spool'), 'bash-500-1.spool', [
      ...Array.from({ length: 5 }, (_, i) => ({ command: `git status ${i}`, ts: finishedHour + i * 60_000 })),
      { command: 'git log', ts: now },
    ]);
    await eventually(async () => {
      await a.api.request('POST', '/api/privacy/observe/scan');
      return (await a.api.request<{ stats: { ingested: number } }>('GET', '/api/privacy/observe')).stats.ingested === 6;
    }, 30_000, 'sa ingested its spool');
    await eventually(
      async () => (await a.api.request<{ peers: Array<{ state: string }> }>('GET', '/api/mesh/status')).peers.some((p) => p.state === 'connected'),
      30_000,
      'sa linked to sb',
    );

    const future = weft(['summaries', 'generate', '--period', 'day', '--at', '2031-06-01T00:00:00Z'], a.env);
    assert.equal(future.code, 2, `a future period is a usage error: ${future.stdout}${future.stderr}`);
    assert.match(future.stderr, /daily period 2031-06-01T00:00:00\.000Z \.\. 2031-06-02T00:00:00\.000Z has not started yet/);
    assert.equal(future.stderr.trim().split('\n').length, 1, 'one line');
    await assert.rejects(a.api.request('POST', '/api/privacy/summaries/generate', { period: 'hour', at: '2031-06-01T00:00:00Z' }), (err: { status: number }) => err.status === 400, 'the API answers 400');

    const running = weft(['summaries', 'generate', '--period', 'hour'], a.env);
    assert.equal(running.code, 0, running.stderr);
    assert.match(running.stdout, /1 commands\n.*kept on this node and not shared/);

    const past = weft(['summaries', 'generate', '--period', 'day', '--at', '1999-01-01T12:00:00Z'], a.env);
    assert.equal(past.code, 0, past.stderr);
    assert.match(past.stdout, /nothing to summarize: 0 commands observed in the daily period 1999-01-01T00:00:00\.000Z/);

    const finished = weft(['summaries', 'generate', '--period', 'hour', '--at', new Date(finishedHour + 30 * 60_000).toISOString()], a.env);
    assert.equal(finished.code, 0, finished.stderr);
    assert.match(finished.stdout, /5 commands\nshared /);

    // The peer's outbox is in order: once the finished hour arrived, anything sent before it had too.
    const held = async () => (await b.api.request<{ items: Array<{ summary: { period: { start: string; granularity: string } } }> }>('GET', '/api/privacy/peer-summaries')).items;
    await eventually(async () => (await held()).length > 0, 30_000, 'sb received the finished hour');
    assert.deepEqual(
      (await held()).map((i) => [i.summary.period.granularity, i.summary.period.start]),
      [['hourly', new Date(finishedHour).toISOString()]],
      'the peer holds the finished hour only: no future, running or empty period',
    );
    const mine = await a.api.request<{ items: Array<{ periodStart: string; sharedAt: number | null }> }>('GET', '/api/privacy/summaries');
    assert.equal(mine.items.length, 2, 'sa stored the running hour and the finished hour, nothing for 2031 or 1999');
  } finally {
    await c.stopAll();
    t.cleanup();
  }
});
