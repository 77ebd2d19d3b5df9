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
