/** The budget and enclave-policy checks of invoke, without a mesh. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WeftError } from '../../src/errors/index.js';
import { BUDGET_LIMITS, type BudgetRefusal, checkBudgets, checkEnclave, checkEnclaves, enclaveOf, fillBudgets, type InvokeContext, onwardBudgets } from '../../src/federation/index.js';
import { builtinHandlers, typeMatches } from '../../src/federation/invoke-builtins.js';
import { parseDurationMs } from '../../src/cli/commands/invoke.js';
import { packageFromPublished, publishedPayload, validateManifest } from '../../src/sovereignty/index.js';

const full = { hops: 2, bytes: 1000, cpuMs: 500, wallMs: 500 };

describe('invoke budgets', () => {
  it('should fill missing budgets from the deadline and cap hops', () => {
    assert.deepEqual(fillBudgets(undefined, 2000), { hops: BUDGET_LIMITS.defaultHops, bytes: BUDGET_LIMITS.defaultBytes, cpuMs: 2000, wallMs: 2000 });
    assert.deepEqual(fillBudgets({ hops: 1000, wallMs: 10 }, 2000), { hops: BUDGET_LIMITS.maxHops, bytes: BUDGET_LIMITS.defaultBytes, cpuMs: 2000, wallMs: 10 });
  });

  it('should pass a call with every budget left', () => {
    assert.equal(checkBudgets({ deadlineMs: 100, budgets: full, payloadBytes: 1000 }), undefined);
  });

  it('should refuse a spent deadline first, naming it', () => {
    const r = checkBudgets({ deadlineMs: 0, budgets: { ...full, hops: 0 }, payloadBytes: 1 });
    assert.equal(r?.budget, 'deadline');
  });

  it('should refuse a deadline too short to be worth starting, naming the least it takes', () => {
    const r = checkBudgets({ deadlineMs: BUDGET_LIMITS.minDeadlineMs - 1, budgets: full, payloadBytes: 1 });
    assert.deepEqual([r?.budget, r?.remaining, r?.needed], ['deadline', BUDGET_LIMITS.minDeadlineMs - 1, BUDGET_LIMITS.minDeadlineMs]);
    assert.match(r?.reason ?? '', /too little to start a call/);
    assert.equal(checkBudgets({ deadlineMs: 1, budgets: full, payloadBytes: 1 })?.budget, 'deadline', 'a 1 ms deadline is no deadline');
    assert.equal(checkBudgets({ deadlineMs: BUDGET_LIMITS.minDeadlineMs, budgets: full, payloadBytes: 1 }), undefined);
    assert.equal(checkBudgets({ deadlineMs: 100, budgets: { ...full, cpuMs: 0.5 }, payloadBytes: 1 })?.budget, 'cpu_ms');
  });

  it('should refuse a call with no hop left', () => {
    const r = checkBudgets({ deadlineMs: 100, budgets: { ...full, hops: 0 }, payloadBytes: 1 });
    assert.deepEqual([r?.budget, r?.remaining, r?.needed], ['hops', 0, 1]);
  });

  it('should refuse a payload larger than the byte budget, with what it needed', () => {
    const r = checkBudgets({ deadlineMs: 100, budgets: { ...full, bytes: 10 }, payloadBytes: 11 });
    assert.deepEqual([r?.budget, r?.remaining, r?.needed], ['bytes', 10, 11]);
    assert.match(r?.reason ?? '', /11 bytes/);
  });

  it('should refuse spent CPU and wall time', () => {
    assert.equal(checkBudgets({ deadlineMs: 100, budgets: { ...full, cpuMs: 0 }, payloadBytes: 1 })?.budget, 'cpu_ms');
    assert.equal(checkBudgets({ deadlineMs: 100, budgets: { ...full, wallMs: -3 }, payloadBytes: 1 })?.budget, 'wall_ms');
  });

  it('should hand on one hop fewer, the received bytes spent and the elapsed time charged', () => {
    assert.deepEqual(onwardBudgets(full, { elapsedMs: 20, receivedBytes: 100 }), { hops: 1, bytes: 900, cpuMs: 480, wallMs: 480 });
  });

  it('should run out on the second hop when the first hop had the last one', () => {
    const second = onwardBudgets({ ...full, hops: 1 }, { elapsedMs: 1, receivedBytes: 10 });
    assert.equal(checkBudgets({ deadlineMs: 100, budgets: second, payloadBytes: 5 })?.budget, 'hops');
  });
});

describe('invoke.forward with a spent deadline', () => {
  const now = 10_000;
  const ctx = (deadlineAt: number): InvokeContext => ({
    callId: 'c1',
    caller: 'a',
    callerNodeId: 'weft:ed25519:A',
    enclave: 'lab',
    deadlineAt,
    receivedAt: now - 50,
    budgets: { hops: 3, bytes: 1000, cpuMs: 500, wallMs: 500 },
    pipeline: undefined,
    handler: 'invoke.forward',
    hop: 0,
    chain: [],
    payloadBytes: 40,
    signal: new AbortController().signal,
  });
  const harness = () => {
    const calls: unknown[] = [];
    const spent: BudgetRefusal[] = [];
    const handlers = builtinHandlers({
      deps: { clock: { now: () => now }, node: { self: { computer: 'b' } } } as never,
      startedAt: () => 0,
      stats: () => ({}),
      call: async (c, o) => {
        calls.push({ c, o });
        return { callId: 'c2', peer: c.peer, handler: c.handler, result: 'ok', elapsedMs: 1 };
      },
      handlers: () => [],
      egress: () => undefined,
      onwardSpent: (_ctx, r) => {
        spent.push(r);
        return new WeftError('WEFT_LIMIT', r.reason, { details: { code: 'LIMIT', budget: r.budget, at: 'b' } });
      },
    });
    const forward = handlers['invoke.forward'];
    assert.ok(forward);
    return { forward, calls, spent };
  };

  it('should refuse to call onward with less than the least deadline left, and never send it', async () => {
    const { forward, calls, spent } = harness();
    await assert.rejects(Promise.resolve(forward({ peer: 'c', handler: 'node.health' }, ctx(now + 3))), (err: WeftError) => err.code === 'WEFT_LIMIT' && (err.details as { budget: string }).budget === 'deadline');
    await assert.rejects(Promise.resolve(forward({ peer: 'c', handler: 'node.health' }, ctx(now - 20))), /0 ms left/);
    assert.equal(calls.length, 0, 'nothing was sent on');
    assert.deepEqual(
      spent.map((r) => [r.budget, r.remaining, r.needed]),
      [
        ['deadline', 3, BUDGET_LIMITS.minDeadlineMs],
        ['deadline', 0, BUDGET_LIMITS.minDeadlineMs],
      ],
    );
  });

  it('should call onward with what is left of the deadline and the budgets, one hop deeper, the caller added to the chain', async () => {
    const { forward, calls } = harness();
    const r = (await forward({ peer: 'c', handler: 'node.health' }, { ...ctx(now + 400), chain: [{ nodeId: 'weft:ed25519:Z', computer: 'z', enclave: 'ops' }] })) as { via: string };
    assert.equal(r.via, 'b');
    assert.equal(calls.length, 1);
    const { c, o } = calls[0] as { c: { deadlineMs: number; budgets: Record<string, number> }; o: { hop: number; chain: unknown[] } };
    assert.equal(c.deadlineMs, 400);
    assert.deepEqual(c.budgets, { hops: 2, bytes: 960, cpuMs: 450, wallMs: 450 });
    assert.equal(o.hop, 1);
    assert.deepEqual(o.chain, [
      { nodeId: 'weft:ed25519:Z', computer: 'z', enclave: 'ops' },
      { nodeId: 'weft:ed25519:A', computer: 'a', enclave: 'lab' },
    ]);
  });
});

describe('invoke enclave policy', () => {
  const pipelines = [{ id: 'demo/ingest', stages: ['StageA'], handlers: ['node.health'] }, { id: 'open' }];
  const base = { from: 'lab', to: 'prod', handler: 'node.health', pipelines, edges: ['lab->prod'] };

  it('should let a call inside one enclave through without metadata', () => {
    assert.equal(checkEnclave({ ...base, from: 'prod', pipeline: undefined, edges: [] }), undefined);
  });

  it('should refuse a cross-enclave call without pipeline metadata', () => {
    const r = checkEnclave({ ...base, pipeline: undefined });
    assert.equal(r?.kind, 'pipeline');
    assert.match(r?.reason ?? '', /needs pipeline metadata/);
  });

  it('should refuse a pipeline that is not approved, a stage or handler it does not list', () => {
    assert.match(checkEnclave({ ...base, pipeline: { pipeline_id: 'other' } })?.reason ?? '', /not approved/);
    assert.match(checkEnclave({ ...base, pipeline: { pipeline_id: 'demo/ingest', stage_id: 'StageB' } })?.reason ?? '', /stage 'StageB'/);
    assert.match(checkEnclave({ ...base, handler: 'query.events', pipeline: { pipeline_id: 'demo/ingest', stage_id: 'StageA' } })?.reason ?? '', /handler 'query.events'/);
  });

  it('should refuse an approved call over an edge that is not accepted', () => {
    const r = checkEnclave({ ...base, edges: ['ops->prod'], pipeline: { pipeline_id: 'demo/ingest', stage_id: 'StageA' } });
    assert.deepEqual([r?.kind, r?.from, r?.to], ['edge', 'lab', 'prod']);
  });

  it('should pass an approved call over an accepted edge (stages and handlers unlisted: any)', () => {
    assert.equal(checkEnclave({ ...base, pipeline: { pipeline_id: 'demo/ingest', stage_id: 'StageA' } }), undefined);
    assert.equal(checkEnclave({ ...base, handler: 'anything', pipeline: { pipeline_id: 'open' } }), undefined);
  });

  it('should judge every enclave of a forwarded call: a forwarder lends none of its own', () => {
    const pipeline = { pipeline_id: 'demo/ingest', stage_id: 'StageA' };
    // b (ops) forwards for a (lab): ops->prod is accepted, lab->prod is not.
    const r = checkEnclaves({ ...base, from: ['ops', 'lab'], edges: ['ops->prod'], pipeline });
    assert.deepEqual([r?.kind, r?.from, r?.to], ['edge', 'lab', 'prod']);
    assert.equal(checkEnclaves({ ...base, from: ['ops', 'lab'], edges: ['ops->prod', 'lab->prod'], pipeline }), undefined);
    // The callee's own enclave needs no edge; without metadata any foreign one is refused.
    assert.equal(checkEnclaves({ ...base, from: ['prod', 'prod'], edges: [], pipeline: undefined }), undefined);
    assert.equal(checkEnclaves({ ...base, from: ['prod', 'lab'], edges: ['lab->prod'], pipeline: undefined })?.kind, 'pipeline');
  });

  it('should name a caller by the enclave map (computer, node id, fingerprint), else its cluster, else its name', () => {
    const who = { computer: 'b', nodeId: 'weft:ed25519:X', fingerprint: 'abcd', cluster: 'lab' };
    assert.equal(enclaveOf(who, { b: 'ops' }), 'ops');
    assert.equal(enclaveOf(who, { 'weft:ed25519:X': 'n' }), 'n');
    assert.equal(enclaveOf(who, { abcd: 'f' }), 'f');
    assert.equal(enclaveOf(who, {}), 'lab');
    assert.equal(enclaveOf({ computer: 'solo', nodeId: 'x' }, {}), 'solo');
    // A map is data, not a prototype: "constructor" is nobody's enclave.
    assert.equal(enclaveOf({ computer: 'constructor', nodeId: 'x' }, {}), 'constructor');
  });
});

describe('invoke helpers', () => {
  it('should match event types by pattern', () => {
    assert.equal(typeMatches('build.*', 'build.failed'), true);
    assert.equal(typeMatches('build.*', 'build.step.failed'), true);
    assert.equal(typeMatches('build.*', 'deploy.failed'), false);
    assert.equal(typeMatches('*', 'x.y'), true);
    assert.equal(typeMatches('a.*.c', 'a.b.c'), true);
    assert.equal(typeMatches('a.b', 'a.b.c'), false);
  });

  it('should read durations as people write them', () => {
    assert.equal(parseDurationMs('2s'), 2000);
    assert.equal(parseDurationMs('500ms'), 500);
    assert.equal(parseDurationMs('1.5s'), 1500);
    assert.equal(parseDurationMs('2m'), 120_000);
    assert.equal(parseDurationMs('250'), 250);
    assert.throws(() => parseDurationMs('soon'), /not a duration/);
    assert.throws(() => parseDurationMs('0s'), /positive/);
  });
});

describe('the invoke field of a cartridge manifest', () => {
  const manifest = { name: 'reporter', version: '1.0.0', author: 'a', description: 'd', entryPoint: 'handle', dependencies: [], consumes: [], emits: [] };

  it('should be optional, and take a list of handler names', () => {
    assert.equal(validateManifest(manifest).invoke, undefined);
    assert.deepEqual(validateManifest({ ...manifest, invoke: ['report.build', 'report:v2'] }).invoke, ['report.build', 'report:v2']);
  });

  it('should refuse a name that is no handler name, naming the field', () => {
    assert.throws(() => validateManifest({ ...manifest, invoke: ['bad name'] }), /manifest\.invoke\[0\].*invoke handler names/);
    assert.throws(() => validateManifest({ ...manifest, invoke: ['a', 'a'] }), /manifest\.invoke/);
  });

  it('should travel with a cartridge published over the mesh', () => {
    const pkg = { manifest: { ...manifest, invoke: ['report.build'] }, source: 'function handle(e) { return e; }' };
    assert.deepEqual(packageFromPublished(publishedPayload(pkg)).manifest.invoke, ['report.build']);
  });
});
