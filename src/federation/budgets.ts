/**
 * The budgets and the enclave policy of invoke, as pure functions: what a call may still
 * spend (deadline, hops, bytes, CPU and wall time), what it hands on at the next hop, and
 * whether a caller from another enclave may call here at all (approved pipeline metadata and
 * an accepted edge). The organ (invoke.ts) applies them before any work; tests drive them
 * without a mesh.
 */

/** An approved pipeline for cross-enclave invoke (config `[[federation.pipelines]]`). */
export interface ApprovedPipeline {
  id: string;
  /** When given (non-empty), the call's `stage_id` must be one of these. */
  stages?: string[];
  /** When given (non-empty), the handler called must be one of these. */
  handlers?: string[];
}

/** Budgets a call carries; each is reduced at every hop and checked before any work. */
export interface InvokeBudgets {
  /** Hops this call may still take, this one included (each hop consumes one). */
  hops?: number;
  /** Payload bytes this call and the calls it makes may still carry. */
  bytes?: number;
  /** CPU milliseconds left (charged as the hop's elapsed time: Node cannot meter one call's CPU). */
  cpuMs?: number;
  /** Wall-clock milliseconds the handler may run (it is stopped at min(deadline, wallMs)). */
  wallMs?: number;
}

/** Pipeline metadata (the seed's `pipeline/`): what makes a cross-enclave call admissible. */
export interface PipelineMeta {
  pipeline_id: string;
  stage_id?: string;
  dag_run_id?: string;
  hop_index?: number;
}

const round1 = (ms: number) => Math.round(ms * 10) / 10;

/** The budget a refusal names (the `budget` field of `sec.limit.hit`). */
export type BudgetName = 'deadline' | 'hops' | 'bytes' | 'cpu_ms' | 'wall_ms';

/** Hard bounds, whatever a caller asks for. */
export const BUDGET_LIMITS = {
  /** A chain of calls never goes deeper than this, whatever `hops` says (no loops). */
  maxHops: 16,
  /** Hops a call gets when it names none. */
  defaultHops: 4,
  /** Payload bytes a call gets when it names none (and the most one request may carry). */
  defaultBytes: 1024 * 1024,
  /**
   * The least deadline worth starting a call with, ms: less is refused (`sec.limit.hit`,
   * budget `deadline`) rather than sent on to fail in transit.
   */
  minDeadlineMs: 10,
  /** The least CPU or wall time worth starting a handler with, ms. */
  minRunMs: 1,
} as const;

/**
 * Every budget filled in: missing ones get their defaults (`cpuMs` and `wallMs` default to
 * the deadline), and `hops` is held to {@link BUDGET_LIMITS.maxHops}.
 * @example
 * fillBudgets({ hops: 2 }, 2000); // { hops: 2, bytes: 1048576, cpuMs: 2000, wallMs: 2000 }
 */
export function fillBudgets(b: InvokeBudgets | undefined, deadlineMs: number): Required<InvokeBudgets> {
  return {
    hops: Math.min(b?.hops ?? BUDGET_LIMITS.defaultHops, BUDGET_LIMITS.maxHops),
    bytes: b?.bytes ?? BUDGET_LIMITS.defaultBytes,
    cpuMs: b?.cpuMs ?? deadlineMs,
    wallMs: b?.wallMs ?? deadlineMs,
  };
}

/** Why a call may not start: the budget it ran out of, what is left and what it needed. */
export interface BudgetRefusal {
  budget: BudgetName;
  remaining: number;
  needed?: number;
  reason: string;
}

/**
 * Checks a call's budgets before any work: at least {@link BUDGET_LIMITS.minDeadlineMs} of
 * the deadline must be left, a hop must be left, the payload must fit the byte budget, at
 * least {@link BUDGET_LIMITS.minRunMs} of CPU and wall time must remain. Answers the first
 * one that fails, or undefined.
 * @example
 * checkBudgets({ deadlineMs: 500, budgets: { hops: 0, bytes: 10, cpuMs: 5, wallMs: 5 }, payloadBytes: 4 });
 * // { budget: 'hops', remaining: 0, needed: 1, reason: 'no hop left: ...' }
 */
export function checkBudgets(c: { deadlineMs: number; budgets: Required<InvokeBudgets>; payloadBytes: number }): BudgetRefusal | undefined {
  const { deadlineMs, budgets: b, payloadBytes } = c;
  const minRun = BUDGET_LIMITS.minRunMs;
  if (!(deadlineMs > 0)) return { budget: 'deadline', remaining: deadlineMs, needed: BUDGET_LIMITS.minDeadlineMs, reason: `the deadline has passed (${deadlineMs} ms remaining)` };
  if (!(deadlineMs >= BUDGET_LIMITS.minDeadlineMs)) {
    return {
      budget: 'deadline',
      remaining: deadlineMs,
      needed: BUDGET_LIMITS.minDeadlineMs,
      reason: `the deadline has ${round1(deadlineMs)} ms left: too little to start a call (at least ${BUDGET_LIMITS.minDeadlineMs} ms)`,
    };
  }
  if (!(b.hops > 0)) return { budget: 'hops', remaining: b.hops, needed: 1, reason: `no hop left: the call has used every hop its budget allowed (${b.hops} remaining)` };
  if (payloadBytes > b.bytes) {
    return { budget: 'bytes', remaining: b.bytes, needed: payloadBytes, reason: `the payload is ${payloadBytes} bytes; the byte budget has ${Math.max(0, b.bytes)} left` };
  }
  if (!(b.cpuMs >= minRun)) return { budget: 'cpu_ms', remaining: b.cpuMs, needed: minRun, reason: `no CPU time left (${round1(b.cpuMs)} ms remaining)` };
  if (!(b.wallMs >= minRun)) return { budget: 'wall_ms', remaining: b.wallMs, needed: minRun, reason: `no wall-clock time left (${round1(b.wallMs)} ms remaining)` };
  return undefined;
}


/**
 * What a handler hands on when it calls onward: one hop fewer, the bytes this hop received
 * spent, CPU and wall time reduced by the time this hop has taken so far.
 * @example
 * onwardBudgets({ hops: 2, bytes: 1000, cpuMs: 500, wallMs: 500 }, { elapsedMs: 20, receivedBytes: 100 });
 * // { hops: 1, bytes: 900, cpuMs: 480, wallMs: 480 }
 */
export function onwardBudgets(b: Required<InvokeBudgets>, spent: { elapsedMs: number; receivedBytes: number }): Required<InvokeBudgets> {
  return {
    hops: b.hops - 1,
    bytes: b.bytes - spent.receivedBytes,
    cpuMs: b.cpuMs - spent.elapsedMs,
    wallMs: b.wallMs - spent.elapsedMs,
  };
}

/**
 * One caller before the direct one in a forwarded chain, as the node that forwarded the call
 * verified it: its node id, its computer name and the enclave that node judged it to be in.
 */
export interface ChainLink {
  nodeId: string;
  computer: string;
  enclave: string;
}

/** Who a caller is, as the enclave map may name it. */
export interface CallerIdentity {
  computer: string;
  nodeId: string;
  fingerprint?: string;
  cluster?: string;
}

/**
 * The enclave of a caller: `federation.enclaves` by computer name, node id or fingerprint,
 * else its cluster, else its computer name (a node of no cluster is an enclave of its own).
 * @example
 * enclaveOf({ computer: 'saturn', nodeId: 'weft:ed25519:...', cluster: 'home' }, { saturn: 'lab' }); // 'lab'
 */
export function enclaveOf(caller: CallerIdentity, enclaves: Readonly<Record<string, string>>): string {
  const own = (k: string | undefined) => (k !== undefined && Object.hasOwn(enclaves, k) ? enclaves[k] : undefined);
  return own(caller.computer) ?? own(caller.nodeId) ?? own(caller.fingerprint) ?? caller.cluster ?? caller.computer;
}

/** A refusal of the enclave policy: `pipeline` (sec.pipeline.reject) or `edge` (sec.edge.deny). */
export interface PolicyRefusal {
  kind: 'pipeline' | 'edge';
  reason: string;
  from: string;
  to: string;
}

/**
 * The enclave policy: a call inside one enclave passes; across enclaves it needs pipeline
 * metadata naming an approved pipeline (its stage and handler among those listed, when
 * listed) and the edge `from->to` among the accepted ones. Answers the refusal, or undefined.
 * @example
 * checkEnclave({ from: 'lab', to: 'prod', handler: 'node.health', pipeline: undefined, pipelines: [], edges: [] });
 * // { kind: 'pipeline', reason: 'a call from enclave lab to prod needs pipeline metadata ...', ... }
 */
export function checkEnclave(c: {
  from: string;
  to: string;
  handler: string;
  pipeline: PipelineMeta | undefined;
  pipelines: readonly ApprovedPipeline[];
  edges: readonly string[];
}): PolicyRefusal | undefined {
  const { from, to, handler, pipeline } = c;
  if (from === to) return undefined;
  const refuse = (kind: PolicyRefusal['kind'], reason: string): PolicyRefusal => ({ kind, reason, from, to });
  if (!pipeline?.pipeline_id) {
    return refuse('pipeline', `a call from enclave ${from} to ${to} needs pipeline metadata (pipeline_id, stage_id) of an approved pipeline; it carried none`);
  }
  const approved = c.pipelines.find((p) => p.id === pipeline.pipeline_id);
  if (!approved) return refuse('pipeline', `pipeline '${pipeline.pipeline_id}' is not approved here (federation.pipelines)`);
  if (approved.stages && approved.stages.length > 0 && !(pipeline.stage_id !== undefined && approved.stages.includes(pipeline.stage_id))) {
    return refuse('pipeline', `stage '${pipeline.stage_id ?? '(none)'}' is not a stage of approved pipeline '${approved.id}' (${approved.stages.join(', ')})`);
  }
  if (approved.handlers && approved.handlers.length > 0 && !approved.handlers.includes(handler)) {
    return refuse('pipeline', `handler '${handler}' is not one approved pipeline '${approved.id}' may call (${approved.handlers.join(', ')})`);
  }
  if (!c.edges.includes(`${from}->${to}`)) return refuse('edge', `the edge ${from}->${to} is not accepted here (federation.edges)`);
  return undefined;
}

/**
 * The enclave policy for a call and every caller it was forwarded for: each enclave in
 * `from` (the direct caller's, then those the chain names or this node judges its members to
 * be in) must be this node's own or pass {@link checkEnclave}. So a forwarder never lends its
 * own enclave to a caller this node would refuse. Answers the first refusal, or undefined.
 * @example
 * checkEnclaves({ from: ['ops', 'lab'], to: 'prod', handler: 'node.health', pipeline: { pipeline_id: 'p' }, pipelines: [{ id: 'p' }], edges: ['ops->prod'] });
 * // { kind: 'edge', reason: 'the edge lab->prod is not accepted here (federation.edges)', from: 'lab', to: 'prod' }
 */
export function checkEnclaves(c: {
  from: readonly string[];
  to: string;
  handler: string;
  pipeline: PipelineMeta | undefined;
  pipelines: readonly ApprovedPipeline[];
  edges: readonly string[];
}): PolicyRefusal | undefined {
  for (const from of new Set(c.from)) {
    const r = checkEnclave({ ...c, from });
    if (r) return r;
  }
  return undefined;
}
