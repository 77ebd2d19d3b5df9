import { ValidationError } from '../errors/index.js';
import { ENVELOPE_FIELDS, type Envelope } from './envelope.js';
import { envelopeValidator } from './validate.js';

const SORTED_FIELDS = [...ENVELOPE_FIELDS].sort();

/**
 * The stable byte form of an envelope: JSON without whitespace, envelope fields in sorted
 * order, nested values in their own order (which parsing preserves), so
 * `serialize(parse(s)) === s` for every stored or received envelope. Cheaper than fully
 * canonical JSON on the hot path; signatures cover frame bytes, never a re-encoding.
 * @example
 * const s = serializeEnvelope(env); serializeEnvelope(parseEnvelope(s)) === s;
 */
export function serializeEnvelope(env: Envelope): string {
  const e = env as unknown as Record<string, unknown>;
  const ordered: Record<string, unknown> = {};
  for (const k of SORTED_FIELDS) {
    const v = e[k];
    if (v !== undefined) ordered[k] = v;
  }
  return JSON.stringify(ordered);
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
