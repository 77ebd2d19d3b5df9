import { type Static, Type } from '@sinclair/typebox';
import { SESSION_ID_PATTERN } from '../util/index.js';

/** Who may receive an event: this node only, the owner's cluster, or every peer. */
export const Visibility = Type.Union([Type.Literal('local'), Type.Literal('cluster'), Type.Literal('public')], {
  description: 'local stays on this node, cluster goes to the cluster, public to every peer',
});
export type Visibility = Static<typeof Visibility>;
export const VISIBILITIES: readonly Visibility[] = ['local', 'cluster', 'public'];

/** infrastructure 0, operational 1, workflow 2, business 3. */
export const Level = Type.Integer({ minimum: 0, maximum: 3, description: '0 infrastructure .. 3 business' });
export const LEVELS = { infrastructure: 0, operational: 1, workflow: 2, business: 3 } as const;
export type LevelName = keyof typeof LEVELS;
export const LEVEL_NAMES: readonly LevelName[] = ['infrastructure', 'operational', 'workflow', 'business'];

/** An action a human or agent can take on the event. */
export const ActionDescriptor = Type.Object(
  {
    description: Type.String({ maxLength: 1000 }),
    produces: Type.String({ maxLength: 200, description: 'event type the action emits' }),
    outcomeShape: Type.Optional(Type.Record(Type.String(), Type.String())),
  },
  { additionalProperties: false },
);
export type ActionDescriptor = Static<typeof ActionDescriptor>;

/**
 * Dotted lowercase words. A single word passes here too: producers of the mesh roadmap send
 * bare names (`graph_update`) that the catalog maps onto its types by alias; a name the catalog
 * does not know is refused there, by name.
 */
const EVENT_TYPE_PATTERN = '^[a-z][a-z0-9_-]*(\\.[a-z0-9][a-z0-9_-]*)*$';
const ISO_TIMESTAMP_PATTERN = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?(Z|[+-]\\d{2}:\\d{2})$';

export const EventType = Type.String({ pattern: EVENT_TYPE_PATTERN, maxLength: 200, description: "an event type: lowercase words separated by dots, e.g. system.worker.crashed ('weft schemas list' shows the known ones)" });
export const Timestamp = Type.String({ pattern: ISO_TIMESTAMP_PATTERN, maxLength: 40 });

export { SESSION_ID_PATTERN, sessionIdProblem } from '../util/index.js';
export const SessionId = Type.String({ minLength: 1, maxLength: 200, pattern: SESSION_ID_PATTERN, description: 'session id: [A-Za-z0-9] then [A-Za-z0-9._:@+-], 1..200 chars' });


/**
 * One event. Layers: identity, semantic, data, affordances, resolution, lineage (causation,
 * correlation, and the producer's `session` with the `parentSession` that spawned it), and the
 * provenance the mesh adds. Field names are camelCase here; the Redis stream format uses the
 * seeds' snake_case (see stream.ts).
 */
export const Envelope = Type.Object(
  {
    // identity
    id: Type.String({ minLength: 1, maxLength: 64, description: 'time-ordered unique id (UUIDv7)' }),
    event: EventType,
    version: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    source: Type.String({ minLength: 1, maxLength: 200, description: 'producer name' }),
    timestamp: Timestamp,
    idempotencyKey: Type.Optional(Type.String({ minLength: 1, maxLength: 1000 })),
    // semantic
    level: Level,
    domain: Type.String({ maxLength: 200 }),
    entity: Type.Optional(Type.String({ maxLength: 500 })),
    description: Type.String({ maxLength: 4000 }),
    visibility: Visibility,
    // data
    payload: Type.Record(Type.String(), Type.Unknown()),
    // affordances
    actions: Type.Optional(Type.Record(Type.String(), ActionDescriptor)),
    // resolution
    terminalWhen: Type.Optional(Type.String({ maxLength: 1000 })),
    resolutionShape: Type.Optional(Type.Record(Type.String(), Type.String())),
    // lineage
    causationId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    correlationId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    /** The producer's session; indexed by the node into the session tree (`weft sessions tree`). */
    session: Type.Optional(SessionId),
    /** The session that spawned `session`; only meaningful with `session`. */
    parentSession: Type.Optional(SessionId),
    // provenance (added by the mesh)
    origin: Type.Optional(Type.String({ maxLength: 200, description: 'node id of the node that emitted it' })),
    sourceComputer: Type.Optional(Type.String({ maxLength: 200 })),
    hops: Type.Optional(Type.Integer({ minimum: 0, maximum: 255 })),
    // added by system cartridges
    flags: Type.Optional(Type.Array(Type.String({ maxLength: 200 }), { maxItems: 64 })),
    context: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false, $id: 'weft.envelope' },
);
export type Envelope = Static<typeof Envelope>;

/** What a producer hands to emit(): the type and payload, everything else optional. */
export const EmitInput = Type.Object(
  {
    event: EventType,
    payload: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    version: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
    source: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    timestamp: Type.Optional(Timestamp),
    idempotencyKey: Type.Optional(Type.String({ minLength: 1, maxLength: 1000 })),
    level: Type.Optional(Level),
    domain: Type.Optional(Type.String({ maxLength: 200 })),
    entity: Type.Optional(Type.String({ maxLength: 500 })),
    description: Type.Optional(Type.String({ maxLength: 4000 })),
    visibility: Type.Optional(Visibility),
    actions: Type.Optional(Type.Record(Type.String(), ActionDescriptor)),
    terminalWhen: Type.Optional(Type.String({ maxLength: 1000 })),
    resolutionShape: Type.Optional(Type.Record(Type.String(), Type.String())),
    causationId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    correlationId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    session: Type.Optional(SessionId),
    parentSession: Type.Optional(SessionId),
  },
  { additionalProperties: false, $id: 'weft.emit-input' },
);
export type EmitInput = Static<typeof EmitInput>;

/** Field order of the canonical form: layer by layer, as DESIGN.md lists them. */
export const ENVELOPE_FIELDS = Object.keys(Envelope.properties) as Array<keyof Envelope>;
