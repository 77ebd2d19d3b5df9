import type { Catalog } from '../catalog/index.js';
import { assertPayloadLimits, type EmitInput, type Envelope, emitInputValidator } from '../envelope/index.js';
import { ValidationError } from '../errors/index.js';
import type { Clock, IdGenerator } from '../util/index.js';

export interface BuildDeps {
  catalog: Catalog;
  clock: Clock;
  ids: IdGenerator;
  /** Default `source` when the producer names none. */
  defaultSource: string;
  /** Provenance stamped on every local event. */
  origin?: string;
  computer?: string;
}

/**
 * Turns a producer's input into a complete envelope: maps aliases, validates the input and the payload
 * against the catalog (errors name the type and the field), gives it a time-ordered id, and
 * fills defaults from the event type.
 */
export function buildEnvelope(input: unknown, deps: BuildDeps): Envelope {
  // Another producer family's type name or payload shape becomes ours first (catalog aliases).
  const inp: EmitInput = deps.catalog.normalize(emitInputValidator.assert(input, 'emit'));
  const entry = deps.catalog.require(inp.event);
  assertSessionPair(inp);
  assertPayloadLimits(inp.payload ?? {}, `event '${inp.event}'`);
  const payload = deps.catalog.filterPayload(inp.event, entry.validator.assert(inp.payload ?? {}, `event '${inp.event}' payload`));
  const now = deps.clock.now();
  const env: Envelope = {
    id: deps.ids.next(now),
    event: inp.event,
    version: inp.version ?? entry.version,
    source: inp.source ?? deps.defaultSource,
    timestamp: inp.timestamp ?? new Date(now).toISOString(),
    level: inp.level ?? entry.level,
    domain: inp.domain ?? entry.domain,
    description: inp.description ?? entry.description,
    visibility: inp.visibility ?? entry.visibility,
    payload,
  };
  const key = inp.idempotencyKey ?? deps.catalog.idempotencyKey(inp.event, payload);
  if (key !== undefined) env.idempotencyKey = key;
  if (inp.entity !== undefined) env.entity = inp.entity;
  const actions = inp.actions ?? entry.actions;
  if (actions !== undefined) env.actions = actions;
  const terminalWhen = inp.terminalWhen ?? entry.terminalWhen;
  if (terminalWhen !== undefined) env.terminalWhen = terminalWhen;
  const shape = inp.resolutionShape ?? entry.resolutionShape;
  if (shape !== undefined) env.resolutionShape = shape;
  if (inp.causationId !== undefined) env.causationId = inp.causationId;
  if (inp.correlationId !== undefined) env.correlationId = inp.correlationId;
  // Taken as given, never inherited: the producer knows its session, the node does not.
  if (inp.session !== undefined) env.session = inp.session;
  if (inp.parentSession !== undefined) env.parentSession = inp.parentSession;
  if (deps.origin !== undefined) env.origin = deps.origin;
  if (deps.computer !== undefined) env.sourceComputer = deps.computer;
  return env;
}

/** A parent names the session it spawned; without that session, or as its own parent, it says nothing. */
function assertSessionPair(inp: EmitInput): void {
  if (inp.parentSession === undefined) return;
  if (inp.session === undefined) {
    throw new ValidationError(`emit: field '/parentSession' needs '/session' too: a parent is the parent of this event's session (set both, e.g. WEFT_SESSION and WEFT_PARENT_SESSION)`, {
      field: '/parentSession',
    });
  }
  if (inp.parentSession === inp.session) {
    throw new ValidationError(`emit: field '/parentSession' is the session itself ('${inp.session}'); a session cannot spawn itself`, { field: '/parentSession' });
  }
}
