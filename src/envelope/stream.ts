import { ValidationError } from '../errors/index.js';
import type { ActionDescriptor, Envelope } from './envelope.js';
import { assertPayloadLimits } from './limits.js';
import { envelopeValidator } from './validate.js';

/**
 * The Redis stream entry format the seeds' producers already XADD: a flat map of string
 * fields, one per envelope attribute, snake_case, JSON for structured values and '' for
 * absent ones. A program that writes this with redis-cli is a producer without our library.
 */
const STRING_FIELDS: Array<[keyof Envelope, string]> = [
  ['event', 'event'],
  ['source', 'source'],
  ['timestamp', 'timestamp'],
  ['idempotencyKey', 'idempotency_key'],
  ['domain', 'domain'],
  ['entity', 'entity'],
  ['description', 'description'],
  ['visibility', 'visibility'],
  ['terminalWhen', 'terminal_when'],
  ['id', 'id'],
  ['causationId', 'causation_id'],
  ['correlationId', 'correlation_id'],
  ['session', 'session'],
  ['parentSession', 'parent_session'],
  ['origin', 'origin'],
  ['sourceComputer', 'source_computer'],
];
/**
 * Other names a stream entry may give a field: TeleClaude calls a session `session_id` and
 * the session that started it `initiator_session_id` (its `Session` model). Read when our own
 * name is absent or empty; never written.
 */
const STRING_ALIASES: Array<[keyof Envelope, string]> = [
  ['session', 'session_id'],
  ['parentSession', 'initiator_session_id'],
];
const INT_FIELDS: Array<[keyof Envelope, string]> = [
  ['version', 'version'],
  ['level', 'level'],
  ['hops', 'hops'],
];
const JSON_FIELDS: Array<[keyof Envelope, string]> = [
  ['payload', 'payload'],
  ['actions', 'actions'],
  ['resolutionShape', 'resolution_shape'],
  ['flags', 'flags'],
  ['context', 'context'],
];

/** Flattens an envelope into XADD arguments: [field, value, field, value, ...]. */
export function toStreamFields(env: Envelope): string[] {
  const out: string[] = [];
  const e = env as unknown as Record<string, unknown>;
  for (const [k, f] of STRING_FIELDS) {
    const v = e[k];
    if (v !== undefined) out.push(f, v as string);
  }
  for (const [k, f] of INT_FIELDS) {
    const v = e[k];
    if (v !== undefined) out.push(f, String(v));
  }
  for (const [k, f] of JSON_FIELDS) {
    const v = e[k];
    if (v === undefined) continue;
    out.push(f, JSON.stringify(k === 'actions' ? actionsToWire(v as Record<string, ActionDescriptor>) : v));
  }
  return out;
}

/** Actions on the wire are snake_case, as TeleClaude's `ActionDescriptor.model_dump()` writes them. */
function actionsToWire(actions: Record<string, ActionDescriptor>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, a] of Object.entries(actions)) {
    const { outcomeShape, ...rest } = a;
    out[name] = outcomeShape === undefined ? rest : { ...rest, outcome_shape: outcomeShape };
  }
  return out;
}

/**
 * Actions from the wire: `outcome_shape` (or our `outcomeShape`), a `null` shape meaning none.
 * Anything that is not an object of objects is left for the envelope validator to refuse.
 */
export function actionsFromWire(v: unknown): unknown {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [name, a] of Object.entries(v as Record<string, unknown>)) {
    if (a === null || typeof a !== 'object' || Array.isArray(a)) {
      out[name] = a;
      continue;
    }
    const { outcome_shape, outcomeShape, ...rest } = a as Record<string, unknown>;
    const shape = outcomeShape ?? outcome_shape;
    out[name] = shape === null || shape === undefined ? rest : { ...rest, outcomeShape: shape };
  }
  return out;
}

/**
 * Rebuilds an envelope from a stream entry. Entries from foreign producers may lack our
 * fields: `id` then derives from the entry id (stable across redeliveries) and the version
 * defaults to 1.
 */
export function fromStreamFields(
  fields: Record<string, string>,
  entryId: string,
  /** The id of an entry written without one (default `redis-<entry id>`). */
  idOf: (entryId: string) => string = streamEntryToId,
): Envelope {
  const e: Record<string, unknown> = {};
  for (const [k, f] of STRING_FIELDS) {
    const v = fields[f];
    if (v !== undefined && v !== '') e[k] = v;
  }
  for (const [k, f] of STRING_ALIASES) {
    const v = fields[f];
    if (e[k] === undefined && v !== undefined && v !== '') e[k] = v;
  }
  for (const [k, f] of INT_FIELDS) {
    const v = fields[f];
    if (v !== undefined && v !== '') {
      const n = Number(v);
      if (!Number.isInteger(n)) throw new ValidationError(`stream entry ${entryId}: field '${f}' is not an integer`, { field: f });
      e[k] = n;
    }
  }
  for (const [k, f] of JSON_FIELDS) {
    const v = fields[f];
    if (v !== undefined && v !== '') {
      try {
        e[k] = k === 'actions' ? actionsFromWire(JSON.parse(v)) : JSON.parse(v);
      } catch {
        throw new ValidationError(`stream entry ${entryId}: field '${f}' is not valid JSON`, { field: f });
      }
    }
  }
  if (e.payload !== undefined) assertPayloadLimits(e.payload, `stream entry ${entryId}`);
  if (e.version === undefined) e.version = 1;
  if (e.domain === undefined) e.domain = '';
  if (e.description === undefined) e.description = '';
  if (e.visibility === undefined) e.visibility = 'local';
  if (e.payload === undefined) e.payload = {};
  if (e.id === undefined) e.id = idOf(entryId);
  return envelopeValidator.assert(e, `stream entry ${entryId}`);
}

/** A stable id for an entry written without one: `redis-<ms>-<seq>`. */
export function streamEntryToId(entryId: string): string {
  return `redis-${entryId}`;
}

/** ioredis returns entries as [id, [f1, v1, f2, v2, ...]]. */
export function fieldsFromArray(arr: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < arr.length; i += 2) out[arr[i] as string] = arr[i + 1] as string;
  return out;
}
