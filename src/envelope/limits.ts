import { ValidationError } from '../errors/index.js';

/**
 * What any event may carry, checked wherever an event enters: emit (API, CLI, client), the
 * Redis bus, mesh ingress (both wires). Below the sandbox's own bound (64 levels), so no
 * input can make an innocent cartridge exceed it.
 */
export const PAYLOAD_LIMITS = {
  /** Nesting depth of the payload (objects and arrays). */
  depth: 32,
  /** Size of the payload as JSON, bytes. */
  bytes: 64 * 1024,
} as const;

/** Depth of a JSON value, counted without recursion; stops past `stopAt`. */
export function valueDepth(value: unknown, stopAt: number): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop() as [unknown, number];
    if (v === null || typeof v !== 'object') continue;
    if (d > max) {
      max = d;
      if (max > stopAt) return max;
    }
    for (const c of Array.isArray(v) ? v : Object.values(v as Record<string, unknown>)) {
      if (c !== null && typeof c === 'object') stack.push([c, d + 1]);
    }
  }
  return max;
}

/** The problem with a payload, or undefined when it is within the limits. */
export function payloadProblem(payload: unknown): { code: 'PAYLOAD_TOO_DEEP' | 'PAYLOAD_TOO_LARGE'; message: string } | undefined {
  const depth = valueDepth(payload, PAYLOAD_LIMITS.depth);
  if (depth > PAYLOAD_LIMITS.depth) {
    return { code: 'PAYLOAD_TOO_DEEP', message: `field '/payload' is nested deeper than ${PAYLOAD_LIMITS.depth} levels (the limit)` };
  }
  const bytes = Buffer.byteLength(JSON.stringify(payload) ?? '');
  if (bytes > PAYLOAD_LIMITS.bytes) {
    return { code: 'PAYLOAD_TOO_LARGE', message: `field '/payload' is ${bytes} bytes as JSON; the limit is ${PAYLOAD_LIMITS.bytes}` };
  }
  return undefined;
}

/** Throws a ValidationError (HTTP 400, exit 2) naming the limit when the payload exceeds one. */
export function assertPayloadLimits(payload: unknown, what: string): void {
  const p = payloadProblem(payload);
  if (p) throw new ValidationError(`${what}: ${p.message}`, { field: '/payload', code: p.code });
}
