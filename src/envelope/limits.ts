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

/**
 * Depth and an upper bound of the JSON size of a value, in one pass without recursion; stops
 * past `stopAt` levels. The bound counts every UTF-16 unit of a string or key as 6 bytes (the
 * longest escape, `\uXXXX`), a number as 24, and every bracket, quote, colon and comma, so
 * `JSON.stringify` never makes more bytes.
 */
function depthAndBound(value: unknown, stopAt: number): { depth: number; bound: number } {
  let max = 0;
  let bound = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop() as [unknown, number];
    if (typeof v === 'string') {
      bound += 2 + 6 * v.length;
      continue;
    }
    if (v === null || typeof v !== 'object') {
      // A BigInt has no JSON form: the exact count below says so (JSON.stringify throws) as it always did.
      bound += typeof v === 'bigint' ? Number.POSITIVE_INFINITY : 24;
      continue;
    }
    if (d > max) {
      max = d;
      if (max > stopAt) return { depth: max, bound };
    }
    // An object that writes itself (a Date, anything with toJSON) is not bounded here: counted exactly.
    if (typeof (v as { toJSON?: unknown }).toJSON === 'function') bound = Number.POSITIVE_INFINITY;
    bound += 2;
    if (Array.isArray(v)) {
      bound += v.length;
      for (const c of v) stack.push([c, d + 1]);
    } else {
      for (const k in v as Record<string, unknown>) {
        bound += 4 + 6 * k.length;
        stack.push([(v as Record<string, unknown>)[k], d + 1]);
      }
    }
  }
  return { depth: max, bound };
}

/** The problem with a payload, or undefined when it is within the limits. */
export function payloadProblem(payload: unknown): { code: 'PAYLOAD_TOO_DEEP' | 'PAYLOAD_TOO_LARGE'; message: string } | undefined {
  const { depth, bound } = depthAndBound(payload, PAYLOAD_LIMITS.depth);
  if (depth > PAYLOAD_LIMITS.depth) {
    return { code: 'PAYLOAD_TOO_DEEP', message: `field '/payload' is nested deeper than ${PAYLOAD_LIMITS.depth} levels (the limit)` };
  }
  // Most payloads are far below the limit even counted at their worst: no need to write them out.
  if (bound <= PAYLOAD_LIMITS.bytes) return undefined;
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
