/**
 * Invoke between real daemons (child processes) linked over TLS on loopback, driven through
 * their HTTP API and the CLI: the acceptance of issue 17's invoke part.
 *
 * a, b and c are in cluster (enclave) `lab`; d is in `prod`, approves pipeline `demo/ingest`
 * (stage StageA), accepts the edge `ops->prod` and counts b as enclave `ops`. b serves a
 * cartridge `hang` whose handler `test.hang` loops forever when asked to, and is the only one
 * with `federation.invoke_forward` on.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { WeftClient } from '../../src/client/index.js';
import { readToken } from '../../src/config/index.js';
import { isWeftError, type WeftError } from '../../src/errors/index.js';
import { CLI } from '../helpers/cli.js';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';

// Run from the sources (node --import tsx --test ...), the daemons and the CLI need tsx too.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
if (FROM_SOURCE && !process.env.WEFT_DAEMON_NODE_ARGS) process.env.WEFT_DAEMON_NODE_ARGS = '--import tsx';

const HANG = {
  manifest: {
    name: 'hang',
    version: '1.0.0',
    author: 'invoke-test',
    description: 'answers test.hang; with {hang: true} it loops forever',
    entryPoint: 'handle',
    dependencies: [],
    consumes: [],
    emits: [],
    invoke: ['test.hang'],
  },
  source: `function handle(event) {
  if (event.payload && event.payload.hang) { for (;;) {} }
  return { event: 'invoke.result', payload: { ok: true, handler: event.handler, caller: event.caller, echo: event.payload } };
}`,
};

async function rejection(p: Promise<unknown>): Promise<WeftError> {
  try {
    await p;
  } catch (err) {
    if (isWeftError(err)) return err;
    throw err;
  }
  assert.fail('expected the call to fail');
}

async function eventsOf(n: ClusterNode, type: string): Promise<Array<Record<string, unknown>>> {
  const page = await n.api.events.list({ type, limit: 200 });
  return page.items.map((i) => i.envelope.payload as Record<string, unknown>);
}

async function auditOf(n: ClusterNode, kind: string): Promise<Array<{ details: Record<string, unknown>; success: boolean; peer: string | null }>> {
  const text = await n.api.text('/api/audit/export');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .filter((e) => e.kind === kind);
}

function cli(n: ClusterNode, args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...(FROM_SOURCE ? ['--import', 'tsx'] : []), CLI, ...args], {
    env: { ...process.env, ...n.env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('invoke between daemons over TLS', { timeout: 180_000 }, () => {
  let root: string;
  let cluster: Awaited<ReturnType<typeof startCluster>>;
  let a: ClusterNode;
  let b: ClusterNode;
  let c: ClusterNode;
  let d: ClusterNode;

  const up = (from: WeftClient, peer: string) =>
    eventually(
      async () =>
        from.invoke({ peer, handler: 'node.health', deadlineMs: 1000 }).then(
          () => true,
          // A refusal is an answer too (d refuses lab's calls without pipeline metadata).
          (err: unknown) => isWeftError(err) && err.code === 'WEFT_INVOKE_REJECTED',
        ),
      30_000,
      `an invoke reaching ${peer}`,
    );

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'weft-invoke-'));
    cluster = await startCluster(
      root,
      [
        { computer: 'a', cluster: 'lab' },
        { computer: 'b', cluster: 'lab', env: { WEFT_FEDERATION_INVOKE_FORWARD: 'true' } },
        { computer: 'c', cluster: 'lab' },
        {
          computer: 'd',
          cluster: 'prod',
          env: {
            WEFT_FEDERATION_ENCLAVES: 'b=ops',
            WEFT_FEDERATION_EDGES: 'ops->prod',
            WEFT_FEDERATION_PIPELINES: JSON.stringify([{ id: 'demo/ingest', stages: ['StageA'] }]),
          },
        },
      ],
      { provider: 'tls' },
    );
    ({ a, b, c, d } = cluster.nodes as Record<'a' | 'b' | 'c' | 'd', ClusterNode>);
    await b.api.request('POST', '/api/cartridges/install', HANG);
    await b.api.request('POST', '/api/cartridges/hang/activate', {});
    // The linked pairs the tests use (a's own pairs, b to c and d for their own calls).
    await Promise.all([up(a.api, 'b'), up(a.api, 'c'), up(a.api, 'd'), up(b.api, 'c'), up(b.api, 'd')]);
  });

  after(async () => {
    await cluster?.stopAll();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('should answer node.health round trip through the API and the CLI', async () => {
    const r = await a.api.invoke({ peer: 'b', handler: 'node.health', deadlineMs: 2000 });
    const h = r.result as { computer: string; cluster: string; version: string; uptimeMs: number; peers: Array<{ computer: string; state: string }>; processed: number };
    assert.equal(h.computer, 'b');
    assert.equal(h.cluster, 'lab');
    assert.ok(h.uptimeMs > 0);
    assert.deepEqual(h.peers.map((p) => p.computer).sort(), ['a', 'c', 'd']);
    assert.ok(h.processed > 0, 'b has processed events (its own start, at least)');

    const ok = cli(a, ['invoke', 'b', 'node.health', '--deadline', '2s', '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).result.computer, 'b');
    const list = cli(a, ['invoke', '--list', 'b']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^test\.hang$/m);
    const no = cli(a, ['invoke', 'b', 'no.such']);
    assert.equal(no.code, 1);
    assert.match(no.stderr, /NO_HANDLER: the peer has no handler of that name/);
  });

  it('should fail an unknown handler at once (not by its deadline) with WEFT_INVOKE_REJECTED, raised on both sides', async (t) => {
    const t0 = performance.now();
    const err = await rejection(a.api.invoke({ peer: 'b', handler: 'does.not.exist', deadlineMs: 5000 }));
    const ms = performance.now() - t0;
    assert.equal(err.code, 'WEFT_INVOKE_REJECTED');
    assert.equal(err.details?.code, 'NO_HANDLER');
    // Refused, not ended by the 5 s deadline; how fast is the bench's (`npm run bench -- federation`).
    assert.ok(ms < 1000, `refused after ${ms.toFixed(1)} ms (HTTP to a included)`);
    t.diagnostic(`unknown handler refused after ${ms.toFixed(1)} ms (HTTP to a included)`);
    const callId = err.details?.callId;
    await eventually(async () => (await eventsOf(a, 'transport.invoke.rejected')).some((e) => e.callId === callId && e.direction === 'outbound'), 10_000, 'a raising it');
    await eventually(async () => (await eventsOf(b, 'transport.invoke.rejected')).some((e) => e.callId === callId && e.direction === 'inbound'), 10_000, 'b raising it');
  });

  it('should end the call at its deadline when the handler hangs, and kill the hanging run', async (t) => {
    // A first call warms b's sandbox, so the timed call hangs in the loop, not in a process start.
    const warm = await a.api.invoke({ peer: 'b', handler: 'test.hang', payload: { hang: false, n: 1 }, deadlineMs: 20_000 });
    assert.deepEqual(warm.result, { ok: true, handler: 'test.hang', caller: 'a', echo: { hang: false, n: 1 } });

    const deadline = 1000;
    const t0 = performance.now();
    const err = await rejection(a.api.invoke({ peer: 'b', handler: 'test.hang', payload: { hang: true }, deadlineMs: deadline }));
    const ms = performance.now() - t0;
    assert.equal(err.code, 'WEFT_INVOKE_TIMEOUT');
    const own = err.details?.elapsedMs as number;
    assert.ok(own >= deadline - 1 && own < deadline + 1000, `a gave up after ${own} ms for a ${deadline} ms deadline`);
    assert.ok(ms >= deadline - 1 && ms < deadline + 1000, `the API answered after ${ms.toFixed(1)} ms for a ${deadline} ms deadline`);
    t.diagnostic(`${deadline} ms deadline: a gave up after ${own} ms; the API answered after ${ms.toFixed(1)} ms`);
    const callId = err.details?.callId;
    await eventually(async () => (await eventsOf(a, 'transport.invoke.timeout')).some((e) => e.callId === callId), 10_000, 'transport.invoke.timeout on a');
    // b stopped the run: its sandbox process was killed. b was given the same deadline, so its
    // own timer or a's cancel did it, whichever came first (the next test proves the cancel).
    await eventually(
      async () =>
        (await auditOf(b, 'invoke.cancelled')).some(
          (e) => e.details.callId === callId && e.details.kind === 'cartridge' && e.details.stopped === true && /process was killed/.test(String(e.details.detail)),
        ),
      10_000,
      'b recording the killed run',
    );
    // The next call gets a fresh sandbox and answers.
    const again = await a.api.invoke({ peer: 'b', handler: 'test.hang', payload: { hang: false }, deadlineMs: 20_000 });
    assert.equal((again.result as { ok: boolean }).ok, true);
  });

  it('should deliver the cancel to a hanging cartridge run when the API client gives up, long before its deadline', async () => {
    const cancelled = async () => (await auditOf(b, 'invoke.cancelled')).filter((e) => e.details.handler === 'test.hang' && e.details.why === 'cancel');
    const before = (await cancelled()).length;
    // b gets 20 s; the client goes away after 500 ms: only a's cancel can stop the run before its deadline.
    const ac = new AbortController();
    const answer = fetch(`${a.api.url}/api/invoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${readToken(a.dataDir)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ peer: 'b', handler: 'test.hang', payload: { hang: true }, deadlineMs: 20_000 }),
      signal: ac.signal,
    });
    setTimeout(() => ac.abort(), 500);
    await assert.rejects(answer, /abort/i);
    await eventually(async () => (await cancelled()).length > before, 10_000, 'b recording the cancel');
    const entry = (await cancelled()).at(-1);
    assert.equal(entry?.details.kind, 'cartridge');
    assert.equal(entry?.details.stopped, true);
    assert.match(String(entry?.details.detail), /process was killed/);
    const after = Number(entry?.details.elapsedMs);
    assert.ok(after >= 400 && after < 5000, `b stopped the run after ${after} ms: the cancel, long before its 20 s deadline`);
  });

  it('should cancel a hanging handler when its wall budget is spent, long before the deadline', async () => {
    const t0 = performance.now();
    const err = await rejection(a.api.invoke({ peer: 'b', handler: 'test.hang', payload: { hang: true }, deadlineMs: 10_000, budgets: { wallMs: 300 } }));
    const ms = performance.now() - t0;
    assert.equal(err.code, 'WEFT_INVOKE_TIMEOUT');
    assert.equal(err.details?.budget, 'wall_ms');
    assert.ok(ms < 1000, `a 300 ms wall budget took ${ms.toFixed(0)} ms to end the call`);
    const callId = err.details?.callId;
    await eventually(async () => (await auditOf(b, 'invoke.cancelled')).some((e) => e.details.callId === callId && e.details.why === 'wall' && e.details.stopped === true), 10_000, 'b stopping the run');
  });

  it('should refuse invoke.forward where federation.invoke_forward is off (the default)', async () => {
    const off = await rejection(a.api.invoke({ peer: 'c', handler: 'invoke.forward', payload: { peer: 'b', handler: 'node.health' }, deadlineMs: 2000 }));
    assert.equal(off.code, 'WEFT_INVOKE_REJECTED');
    assert.equal(off.details?.code, 'NO_HANDLER');
    assert.match(off.message, /invoke\.forward is off here \(federation\.invoke_forward = false\)/);
    const list = await a.api.invoke({ peer: 'c', handler: 'invoke.list', deadlineMs: 2000 });
    assert.ok(!(list.result as { handlers: string[] }).handlers.includes('invoke.forward'));
  });

  it('should make a two-hop call, and refuse it at the second hop with sec.limit.hit when a budget runs out there', async () => {
    const ok = await a.api.invoke({ peer: 'b', handler: 'invoke.forward', payload: { peer: 'c', handler: 'node.health' }, deadlineMs: 3000, budgets: { hops: 2 } });
    const fwd = ok.result as { via: string; peer: string; result: { computer: string } };
    assert.equal(fwd.via, 'b');
    assert.equal(fwd.result.computer, 'c');

    // One hop: b takes it, c has none left.
    const hops = await rejection(a.api.invoke({ peer: 'b', handler: 'invoke.forward', payload: { peer: 'c', handler: 'node.health' }, deadlineMs: 3000, budgets: { hops: 1 } }));
    assert.equal(hops.code, 'WEFT_INVOKE_REJECTED');
    assert.equal(hops.details?.code, 'LIMIT');
    assert.equal(hops.details?.budget, 'hops');
    assert.match(hops.message, /^invoke\.forward on b: c refused node\.health: LIMIT/);
    assert.equal(hops.details?.at, 'c');
    await eventually(async () => (await eventsOf(c, 'sec.limit.hit')).some((e) => e.peer === 'b' && e.budget === 'hops' && e.remaining === 0), 10_000, 'sec.limit.hit (hops) on c');

    // Bytes: b's payload fits the budget, what is left after it does not fit c's.
    const inner = { type: 'x'.repeat(40) };
    const outer = { peer: 'c', handler: 'query.events', payload: inner };
    const budget = Buffer.byteLength(JSON.stringify(outer)) + 10;
    const bytes = await rejection(a.api.invoke({ peer: 'b', handler: 'invoke.forward', payload: outer, deadlineMs: 3000, budgets: { bytes: budget } }));
    assert.equal(bytes.details?.code, 'LIMIT');
    assert.equal(bytes.details?.budget, 'bytes');
    await eventually(
      async () => (await eventsOf(c, 'sec.limit.hit')).some((e) => e.peer === 'b' && e.budget === 'bytes' && e.remaining === 10 && e.needed === Buffer.byteLength(JSON.stringify(inner))),
      10_000,
      'sec.limit.hit (bytes) on c',
    );
    assert.equal((await eventsOf(b, 'sec.limit.hit')).length, 0, 'b itself refused nothing');
  });

  it('should refuse a call across enclaves without pipeline metadata, deny it over an edge not accepted, and pass it with both', async () => {
    const none = await rejection(a.api.invoke({ peer: 'd', handler: 'node.health', deadlineMs: 2000 }));
    assert.equal(none.code, 'WEFT_INVOKE_REJECTED');
    assert.equal(none.details?.code, 'PIPELINE');
    await eventually(async () => (await eventsOf(d, 'sec.pipeline.reject')).some((e) => e.callId === none.details?.callId && (e.origin as { enclave: string }).enclave === 'lab'), 10_000, 'sec.pipeline.reject on d');

    const unapproved = await rejection(a.api.invoke({ peer: 'd', handler: 'node.health', deadlineMs: 2000, pipeline: { pipeline_id: 'not/approved', stage_id: 'StageA' } }));
    assert.equal(unapproved.details?.code, 'PIPELINE');

    const pipeline = { pipeline_id: 'demo/ingest', stage_id: 'StageA', dag_run_id: 'run-1', hop_index: 0 };
    const edge = await rejection(a.api.invoke({ peer: 'd', handler: 'node.health', deadlineMs: 2000, pipeline }));
    assert.equal(edge.details?.code, 'EDGE');
    await eventually(
      async () => (await eventsOf(d, 'sec.edge.deny')).some((e) => e.callId === edge.details?.callId && e.from === 'lab' && e.to === 'prod' && (e.origin as { pipeline_id: string }).pipeline_id === 'demo/ingest'),
      10_000,
      'sec.edge.deny on d',
    );

    // b is enclave `ops` to d, and d accepts ops->prod.
    const ok = await b.api.invoke({ peer: 'd', handler: 'node.health', deadlineMs: 2000, pipeline });
    assert.equal((ok.result as { computer: string }).computer, 'd');
    const stillNone = await rejection(b.api.invoke({ peer: 'd', handler: 'node.health', deadlineMs: 2000 }));
    assert.equal(stillNone.details?.code, 'PIPELINE');
    const refusals = await auditOf(d, 'invoke.refused');
    assert.ok(refusals.some((e) => e.details.code === 'EDGE' && e.peer === 'a' && e.success === false), 'the edge denial is audited');
  });

  it('should not let a forwarder lend its enclave: a call d refuses from a is refused when a goes through b', async () => {
    const pipeline = { pipeline_id: 'demo/ingest', stage_id: 'StageA', dag_run_id: 'run-2', hop_index: 0 };
    // a (lab) is refused by d: no lab->prod edge. b is `ops` to d, and d accepts ops->prod.
    assert.equal((await rejection(a.api.invoke({ peer: 'd', handler: 'node.health', deadlineMs: 2000, pipeline }))).details?.code, 'EDGE');
    const via = await rejection(a.api.invoke({ peer: 'b', handler: 'invoke.forward', payload: { peer: 'd', handler: 'node.health' }, deadlineMs: 3000, pipeline }));
    assert.equal(via.code, 'WEFT_INVOKE_REJECTED');
    assert.equal(via.details?.code, 'EDGE');
    assert.equal(via.details?.at, 'd');
    assert.match(via.message, /^invoke\.forward on b: d refused node\.health: EDGE: the edge lab->prod is not accepted here .*forwarded by b for a/);
    await eventually(
      async () => (await eventsOf(d, 'sec.edge.deny')).some((e) => e.peer === 'b' && e.from === 'lab' && e.to === 'prod' && (e.origin as { dag_run_id?: string }).dag_run_id === 'run-2'),
      10_000,
      'sec.edge.deny on d naming lab',
    );
    await eventually(
      async () => (await auditOf(d, 'invoke.refused')).some((e) => e.peer === 'b' && e.details.code === 'EDGE' && (e.details.chain as Array<{ computer: string }> | undefined)?.[0]?.computer === 'a'),
      10_000,
      'the refusal audited with the chain',
    );

    // A node d does not trust may not call through a node it trusts either.
    await d.api.request('POST', '/api/privacy/trust', { peer: 'a', level: 'untrusted', reason: 'invoke test' });
    try {
      const untrusted = await rejection(a.api.invoke({ peer: 'b', handler: 'invoke.forward', payload: { peer: 'd', handler: 'node.health' }, deadlineMs: 3000, pipeline }));
      assert.equal(untrusted.details?.code, 'FORBIDDEN');
      assert.equal(untrusted.details?.at, 'd');
      assert.match(untrusted.message, /forwarded the call for a, which is untrusted here/);
    } finally {
      await d.api.request('POST', '/api/privacy/trust', { peer: 'a', level: null });
    }
    // b itself still gets through on its own account.
    const own = await b.api.invoke({ peer: 'd', handler: 'node.health', deadlineMs: 2000, pipeline });
    assert.equal((own.result as { computer: string }).computer, 'd');
  });
});
