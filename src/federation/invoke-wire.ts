/**
 * The messages of invoke on the mesh (signed, replay-protected message frames sent straight
 * to the peer): `invoke.request`, `invoke.result` and `invoke.cancel`, their shapes, and the
 * codes a callee answers with. Payloads and results travel as JSON text, so their byte
 * budgets are exact and no codec type (a Map, a Buffer) ever reaches a handler.
 */
import { type Static, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { BUDGET_LIMITS } from './budgets.js';

export const INVOKE_MESSAGES = {
  request: 'invoke.request',
  result: 'invoke.result',
  cancel: 'invoke.cancel',
} as const;

/** Handler names: letters, digits and `._:-`, starting with a letter or digit (`node.health`, `query.events`). */
export const HANDLER_NAME = '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$';
export const handlerNamePattern = new RegExp(HANDLER_NAME);

/**
 * What a callee answers when it does not run a call, or when the run failed. Stable on the
 * wire once shipped. Refusals (before any work): NO_HANDLER, BUSY, LIMIT, FORBIDDEN,
 * PIPELINE, EDGE, INVALID, STOPPING. After work started: FAILED, TOO_LARGE, TIMEOUT, CANCELLED.
 */
export const INVOKE_CODES = [
  'NO_HANDLER',
  'BUSY',
  'LIMIT',
  'FORBIDDEN',
  'PIPELINE',
  'EDGE',
  'INVALID',
  'STOPPING',
  'FAILED',
  'TOO_LARGE',
  'TIMEOUT',
  'CANCELLED',
] as const;
export type InvokeCode = (typeof INVOKE_CODES)[number];

/** Codes that mean "refused before any work" (raised as transport.invoke.rejected). */
export const REFUSAL_CODES: ReadonlySet<InvokeCode> = new Set(['NO_HANDLER', 'BUSY', 'LIMIT', 'FORBIDDEN', 'PIPELINE', 'EDGE', 'INVALID', 'STOPPING']);

const id = Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9._:-]+$' });
const meta = Type.String({ minLength: 1, maxLength: 200 });

/**
 * The most characters a request's payload text may have on the wire, whatever a node's
 * `maxPayloadBytes` says (which is checked in bytes after this bound; 1 MiB by default).
 */
export const MAX_WIRE_PAYLOAD_CHARS = 16 * 1024 * 1024;

export const WireBudgets = Type.Object({
  hops: Type.Number(),
  bytes: Type.Number(),
  cpuMs: Type.Number(),
  wallMs: Type.Number(),
});

export const WirePipeline = Type.Object({
  pipeline_id: meta,
  stage_id: Type.Optional(meta),
  dag_run_id: Type.Optional(meta),
  hop_index: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
});

/** A caller before the direct one, as the node that forwarded the call verified it. */
export const WireChainLink = Type.Object({
  nodeId: Type.String({ minLength: 1, maxLength: 200 }),
  computer: Type.String({ minLength: 1, maxLength: 200 }),
  /** Its enclave as the forwarding node judged it. */
  enclave: Type.String({ minLength: 1, maxLength: 200 }),
});

export const InvokeRequestWire = Type.Object({
  callId: id,
  handler: Type.String({ pattern: HANDLER_NAME }),
  /** The payload as JSON text. */
  payload: Type.String({ maxLength: MAX_WIRE_PAYLOAD_CHARS }),
  /** Remaining milliseconds when the request was sent (clock-skew safe: no absolute time). */
  deadlineMs: Type.Number(),
  budgets: WireBudgets,
  pipeline: Type.Optional(WirePipeline),
  /** Calls before this one in the chain (0 for a first call, 1 after one invoke.forward, ...). */
  hop: Type.Integer({ minimum: 0, maximum: 1000 }),
  /**
   * The callers the call was forwarded for, oldest first (absent for a first call): each
   * forwarding node appends the caller it verified, so the callee judges every one of them.
   */
  chain: Type.Optional(Type.Array(WireChainLink, { maxItems: BUDGET_LIMITS.maxHops })),
});
export type InvokeRequestWire = Static<typeof InvokeRequestWire>;

export const InvokeResultWire = Type.Object({
  callId: id,
  ok: Type.Boolean(),
  /** The result as JSON text (ok). */
  result: Type.Optional(Type.String()),
  code: Type.Optional(Type.Union(INVOKE_CODES.map((c) => Type.Literal(c)))),
  reason: Type.Optional(Type.String({ maxLength: 4000 })),
  /** The budget a LIMIT or TIMEOUT ran out of. */
  budget: Type.Optional(Type.String({ maxLength: 20 })),
  /** How long the callee worked on it, ms. */
  elapsedMs: Type.Optional(Type.Number()),
  /** The node that refused, when it is not the callee (a refusal relayed by invoke.forward). */
  at: Type.Optional(Type.String({ maxLength: 200 })),
});
export type InvokeResultWire = Static<typeof InvokeResultWire>;

export const InvokeCancelWire = Type.Object({ callId: id });
export type InvokeCancelWire = Static<typeof InvokeCancelWire>;

export const requestCheck = TypeCompiler.Compile(InvokeRequestWire);
export const resultCheck = TypeCompiler.Compile(InvokeResultWire);
export const cancelCheck = TypeCompiler.Compile(InvokeCancelWire);

/** The first problem of a message, in words (for the refusal and the log). */
export function wireProblem(check: typeof requestCheck | typeof resultCheck | typeof cancelCheck, value: unknown): string {
  const e = check.Errors(value).First();
  return e ? `field '${e.path || '(root)'}' ${e.message}` : 'malformed';
}
