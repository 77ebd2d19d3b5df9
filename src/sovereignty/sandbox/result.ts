import { SANDBOX_EVENT_ERRORS as E, type SandboxEventErrorCode } from './protocol.js';

/** An event a cartridge emitted through `ctx.emit`. */
export interface EmittedEvent {
  readonly type: string;
  readonly payload: Record<string, unknown>;
}

/** Why one event failed in the sandbox. */
export interface SandboxEventError {
  readonly code: SandboxEventErrorCode;
  readonly message: string;
}

/**
 * The outcome of one event: the event the cartridge returned (`null` when it returned null or
 * undefined) and what it emitted, or the error that stopped it.
 */
export type SandboxEventResult =
  | {
      readonly ok: true;
      readonly event: Record<string, unknown> | null;
      readonly emitted: readonly EmittedEvent[];
    }
  | { readonly ok: false; readonly error: SandboxEventError };

/** Checks an event a cartridge returned; answers a problem in words, or null when it is fine. */
export type EventValidator = (event: Record<string, unknown>) => string | null;

/**
 * The default check of a returned event: a JSON object with a non-empty string `event` and,
 * when present, an object `payload`. The node passes its envelope validator instead.
 */
export const minimalEventValidator: EventValidator = (event) => {
  if (typeof event.event !== 'string' || event.event.length === 0)
    return 'field "event" must be a non-empty string';
  if ('payload' in event && !isRecord(event.payload)) return 'field "payload" must be an object';
  return null;
};

const KNOWN_CODES: ReadonlySet<string> = new Set(Object.values(E));

/** Builds a failed result. */
export function failure(code: SandboxEventErrorCode, message: string): SandboxEventResult {
  return { ok: false, error: { code, message } };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Walks a parsed JSON value without recursion: refuses nesting deeper than `maxDepth` and any
 * `__proto__` key, which merge helpers further down the pipeline could turn into prototype
 * pollution of the host.
 */
export function checkJsonShape(value: unknown, maxDepth: number): string | null {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= maxDepth) return `nested deeper than ${maxDepth} levels`;
    if (Array.isArray(v)) {
      for (const item of v) stack.push([item, depth + 1]);
      continue;
    }
    for (const key of Object.keys(v)) {
      if (key === '__proto__') return 'contains a "__proto__" key';
      stack.push([(v as Record<string, unknown>)[key], depth + 1]);
    }
  }
  return null;
}

/**
 * Decodes and validates one outcome the sandbox child sent. The child and the in-engine runner
 * are not trusted with the final word: anything malformed becomes an error for that event.
 */
export function decodeOutcome(
  text: unknown,
  emits: ReadonlySet<string>,
  validateEvent: EventValidator,
  maxDepth: number,
  /** Events one input may emit; counted here, on the host, whatever the engine's prelude counted. */
  maxEmits = 64,
): SandboxEventResult {
  if (typeof text !== 'string') return failure(E.BAD_RESULT, 'the sandbox answered no text for this event');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return failure(E.BAD_RESULT, 'the sandbox answered text that is not JSON');
  }
  if (!isRecord(value)) return failure(E.BAD_RESULT, 'the sandbox answered a value that is not an outcome');
  if ('x' in value) {
    const code =
      typeof value.x === 'string' && KNOWN_CODES.has(value.x)
        ? (value.x as SandboxEventErrorCode)
        : E.BAD_RESULT;
    const message = typeof value.m === 'string' ? value.m : 'unknown failure';
    return failure(code, message);
  }
  const { r, e } = value;
  if (r !== null && !isRecord(r))
    return failure(E.BAD_RESULT, 'process returned something that is not an event object');
  if (!Array.isArray(e)) return failure(E.BAD_RESULT, 'the sandbox answered no list of emitted events');
  if (e.length > maxEmits) {
    return failure(E.RESULT_TOO_LARGE, `the cartridge emitted ${e.length} events for one input; at most ${maxEmits} are allowed`);
  }
  if (r !== null) {
    const shape = checkJsonShape(r, maxDepth);
    if (shape) return failure(E.BAD_RESULT, `returned event ${shape}`);
    const problem = validateEvent(r);
    if (problem) return failure(E.BAD_RESULT, `returned event is invalid: ${problem}`);
  }
  const emitted: EmittedEvent[] = [];
  for (const item of e) {
    if (!isRecord(item) || typeof item.type !== 'string')
      return failure(E.BAD_RESULT, 'an emitted event has no type');
    if (!emits.has(item.type)) {
      return failure(
        E.EMIT_UNDECLARED,
        `ctx.emit refused event type '${item.type.slice(0, 128)}': not declared in the manifest`,
      );
    }
    if (!isRecord(item.payload))
      return failure(E.BAD_RESULT, `payload emitted as '${item.type}' must be an object`);
    const shape = checkJsonShape(item.payload, maxDepth);
    if (shape) return failure(E.BAD_RESULT, `payload emitted as '${item.type}' ${shape}`);
    emitted.push({ type: item.type, payload: item.payload });
  }
  return { ok: true, event: r, emitted };
}
