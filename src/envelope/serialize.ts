import { ValidationError } from '../errors/index.js';
import { ENVELOPE_FIELDS, type Envelope } from './envelope.js';
import { envelopeValidator } from './validate.js';

const SORTED_FIELDS = [...ENVELOPE_FIELDS].sort();

/**
 * `JSON.stringify` of an object literal with every envelope field in sorted order (undefined
 * ones are left out by JSON itself), compiled once from the schema's field list, as TypeBox
 * compiles its validators: one object of a fixed shape per call, no loop over names.
 */
const writeSorted = new Function('e', `return JSON.stringify({ ${SORTED_FIELDS.map((k) => `${JSON.stringify(k)}: e[${JSON.stringify(k)}]`).join(', ')} });`) as (
  e: Envelope,
) => string;

/**
 * The stable byte form of an envelope: JSON without whitespace, envelope fields in sorted
 * order, nested values in their own order (which parsing preserves), so
 * `serialize(parse(s)) === s` for every stored or received envelope. Cheaper than fully
 * canonical JSON on the hot path; signatures cover frame bytes, never a re-encoding.
 * @example
 * const s = serializeEnvelope(env); serializeEnvelope(parseEnvelope(s)) === s;
 */
export function serializeEnvelope(env: Envelope): string {
  return writeSorted(env);
}

/** Parses and validates stored or received bytes into an envelope. */
export function parseEnvelope(text: string | Buffer): Envelope {
  let value: unknown;
  try {
    value = JSON.parse(typeof text === 'string' ? text : text.toString('utf8'));
  } catch (err) {
    throw new ValidationError(`envelope: not valid JSON (${(err as Error).message})`, { field: '/' });
  }
  return envelopeValidator.assert(value, 'envelope');
}

/**
 * A copy of an envelope (or of a received one, not yet validated) with some fields set. Made
 * with `Object.assign`, never `{ ...env, field }`: V8 (Node 20) gives such a spread copy a
 * shape the code that reads envelopes afterwards handles far more slowly. Measured on
 * 20,000 received envelopes stamped with their provenance, each way in its own process:
 * validation 5.6–6.7 µs vs 0.7–1.4 µs an envelope, serializeEnvelope 5.0–8.1 µs vs 1.5–2.7 µs.
 * @example
 * const stamped = envelopeWith(raw, { origin: sender, hops: 1 });
 */
export function envelopeWith<T extends object, U extends object>(env: T, fields: U): T & U {
  // JSON.parse gives a received object an own "__proto__" key when its text has one. Object.assign
  // would set the copy's prototype from it (fields the validator never sees as the copy's own,
  // read through it afterwards); a spread keeps it an own key, which the validator refuses.
  if (Object.hasOwn(env, '__proto__')) return { ...env, ...fields };
  return Object.assign({}, env, fields);
}
