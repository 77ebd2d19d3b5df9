import { type TSchema, Type } from '@sinclair/typebox';
import { EmitInput, Envelope, Visibility } from '../envelope/index.js';

/** Shapes shared by the routes and the OpenAPI document. */
export const ErrorBody = Type.Object({ error: Type.Object({ code: Type.String(), message: Type.String() }) });

export const NotificationSchema = Type.Object({
  id: Type.Integer(),
  eventId: Type.String(),
  eventType: Type.String(),
  level: Type.Integer(),
  domain: Type.String(),
  visibility: Visibility,
  entity: Type.Union([Type.String(), Type.Null()]),
  source: Type.String(),
  sourceComputer: Type.Union([Type.String(), Type.Null()]),
  description: Type.String(),
  payload: Type.Record(Type.String(), Type.Unknown()),
  idempotencyKey: Type.Union([Type.String(), Type.Null()]),
  groupKey: Type.Union([Type.String(), Type.Null()]),
  actionable: Type.Boolean(),
  humanStatus: Type.Union([Type.Literal('unseen'), Type.Literal('seen')]),
  agentStatus: Type.Union([Type.Literal('none'), Type.Literal('claimed'), Type.Literal('in_progress'), Type.Literal('resolved')]),
  agentId: Type.Union([Type.String(), Type.Null()]),
  resolution: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  createdAt: Type.String(),
  updatedAt: Type.String(),
  seenAt: Type.Union([Type.String(), Type.Null()]),
  claimedAt: Type.Union([Type.String(), Type.Null()]),
  resolvedAt: Type.Union([Type.String(), Type.Null()]),
});

export const NotificationQuery = Type.Object({
  level: Type.Optional(Type.Integer({ minimum: 0, maximum: 3, description: 'minimum level' })),
  domain: Type.Optional(Type.String()),
  humanStatus: Type.Optional(Type.Union([Type.Literal('unseen'), Type.Literal('seen')])),
  agentStatus: Type.Optional(
    Type.Union([Type.Literal('none'), Type.Literal('claimed'), Type.Literal('in_progress'), Type.Literal('resolved')]),
  ),
  visibility: Type.Optional(Visibility),
  type: Type.Optional(Type.String()),
  since: Type.Optional(
    Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}(T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|[+-]\\d{2}:\\d{2})?)?$', description: 'ISO time, e.g. 2026-12-01 or 2026-12-01T08:00:00Z' }),
  ),
  cursor: Type.Optional(Type.Integer({ minimum: 1, description: 'nextCursor of the previous page' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })),
});

export const IdParams = Type.Object({ id: Type.Integer({ minimum: 1 }) });

const DroppedBy = {
  by: Type.String({ description: 'the stage that dropped it: dedup (its idempotency key was processed before), trust, or a cartridge by name' }),
  trust: Type.Optional(Type.String({ description: "the trust outcome, when trust dropped it (quarantine, reject)" })),
  reason: Type.Optional(Type.String()),
};
const FailedOn = {
  by: Type.String({ description: 'the cartridge that threw on it (the event is a dead letter, and system.cartridge.failed says so)' }),
  error: Type.String(),
};
/** What became of an emitted event (every one is stored): applied, dropped or failed in the commit that stored it, or queued behind earlier events. */
export const EmitAnswer = Type.Union([
  Type.Object({
    id: Type.String(),
    envelope: Envelope,
    outcome: Type.Union([
      Type.Object({ state: Type.Literal('applied') }),
      Type.Object({ state: Type.Literal('dropped'), ...DroppedBy }),
      Type.Object({ state: Type.Literal('failed'), ...FailedOn }),
      Type.Object({ state: Type.Literal('queued') }),
    ]),
  }),
  Type.Object({
    ids: Type.Array(Type.String()),
    queued: Type.Boolean(),
    dropped: Type.Array(Type.Object({ id: Type.String(), ...DroppedBy })),
    failed: Type.Array(Type.Object({ id: Type.String(), ...FailedOn })),
  }),
]);
export const AgentBody = Type.Object({ agentId: Type.String({ minLength: 1, maxLength: 200 }) });
export const ReleaseBody = Type.Object({
  agentId: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  force: Type.Optional(Type.Boolean({ description: 'release a claim another agent holds (one that died holding it)' })),
});
export const ResolveBody = Type.Object({
  agentId: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  resolution: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  approve: Type.Optional(Type.Boolean({ description: 'approve an actionable request (e.g. a cartridge install)' })),
});
export const NotificationPage = Type.Object({
  items: Type.Array(NotificationSchema),
  nextCursor: Type.Union([Type.Integer(), Type.Null()]),
});
export const EventsQuery = Type.Object({
  type: Type.Optional(Type.String()),
  cursor: Type.Optional(Type.Integer({ minimum: 1 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })),
});
export const EventsPage = Type.Object({
  items: Type.Array(Type.Object({ seq: Type.Integer(), envelope: Envelope })),
  nextCursor: Type.Union([Type.Integer(), Type.Null()]),
});
export const EmitBody = Type.Union([EmitInput, Type.Object({ events: Type.Array(EmitInput, { minItems: 1, maxItems: 10_000 }) })]);

/** What a registered route says about itself in the OpenAPI document. */
export interface RouteDoc {
  summary: string;
  response?: TSchema;
  status?: number;
}

/**
 * Summaries and response shapes by `METHOD /path` (the router's `:param` form). The document
 * lists the routes the server actually registered (with the schemas they validate with); a
 * route missing here is listed as undocumented and fails the API test.
 */
export const ROUTE_DOCS: Record<string, RouteDoc> = {
  'GET /api/health': { summary: 'Node health and counters' },
  'GET /api/notifications': { summary: 'List notifications, newest first', response: NotificationPage },
  'GET /api/notifications/:id': { summary: 'One notification', response: NotificationSchema },
  'POST /api/notifications/:id/seen': { summary: 'Mark seen (unseen → seen)', response: NotificationSchema },
  'POST /api/notifications/:id/claim': { summary: 'Claim for an agent (none → claimed)', response: NotificationSchema },
  'POST /api/notifications/:id/in_progress': { summary: 'Start work (claimed → in_progress)', response: NotificationSchema },
  'POST /api/notifications/:id/release': { summary: 'Give a claim back (claimed / in_progress → none): by the holder, or anyone with force', response: NotificationSchema },
  'POST /api/notifications/:id/resolve': { summary: 'Resolve, with a resolution matching the type’s resolutionShape', response: NotificationSchema },
  'POST /api/events': { summary: 'Emit one event, or {events:[...]}; says what became of it (applied, dropped by a stage, failed, queued)', status: 201, response: EmitAnswer },
  'GET /api/events': { summary: 'List events of the local log, newest first', response: EventsPage },
  'GET /api/events/:id': { summary: 'One event', response: Envelope },
  'GET /api/events/:id/trace': { summary: 'Lineage of an event: its causes and what it caused' },
  'GET /api/schemas': { summary: 'Event types of the catalog' },
  'GET /api/schemas/export': { summary: 'JSON Schema of the envelope and every event type' },
  'GET /api/pipeline': { summary: 'Cartridges in order, invocation counts, processor counters' },
  'GET /api/quarantine': { summary: 'Events the trust evaluator held back, with outcome totals' },
  'GET /api/quarantine/:id': { summary: 'One quarantined event with its envelope' },
  'POST /api/quarantine/:id/release': { summary: 'Let a quarantined event into the pipeline (after the trust stage)' },
  'POST /api/quarantine/:id/drop': { summary: 'Discard a quarantined event' },
  'POST /api/quarantine/release': { summary: 'Release every held event of a source and/or type (or all), oldest first' },
  'POST /api/quarantine/drop': { summary: 'Discard every held event of a source and/or type (or all)' },
  'GET /api/rejections': { summary: 'Refused input (malformed entries, bad frames, rejected envelopes), newest first' },
  'GET /api/rejections/:id': { summary: 'One refusal with the raw input' },
  'GET /api/deadletters': { summary: 'Events a cartridge failed on (kept for a look; newest first), with the total and how many are kept' },
  'GET /api/deadletters/:id': { summary: 'One dead letter with its event' },
  'GET /api/deliveries': { summary: 'Delivery rows of every channel (or ?channel=), newest first: sent, waiting, or failed (?status=failed) with the last error; counts per channel and status' },
  'GET /api/identity': { summary: 'This node’s computer, cluster, node id and fingerprint' },
  'POST /api/identity/rotate': { summary: 'Rotate the node key (endorsed by the old one) and announce it' },
  'GET /api/peers': { summary: 'Known peers with trust level and score' },
  'GET /api/mesh/status': { summary: 'Mesh provider, per-peer state, caps, rtt, outbox and counters' },
  'POST /api/mesh/send': { summary: 'Send a text to a peer (a notification there)' },
  'POST /api/mesh/decode': { summary: 'Decode a frame (base64) or a TeleClaude mesh_event payload with this node’s verdict' },
  'GET /api/audit/verify': { summary: 'Check the hash chain of the audit log' },
  'GET /api/audit/export': { summary: 'The audit log as JSON lines' },
  'GET /api/cartridges': { summary: 'Installed cartridges with status and invocation counts' },
  'POST /api/cartridges/install': { summary: 'Install a cartridge package (pending activation)' },
  'POST /api/cartridges/publish': { summary: 'Publish a cartridge to every peer (cartridge.published)' },
  'POST /api/cartridges/:name/activate': { summary: 'Activate a pending cartridge (add alpha: true to run it add-only after the pipeline)' },
  'POST /api/cartridges/:name/reject': { summary: 'Reject a cartridge' },
  'POST /api/cartridges/:name/promote': { summary: 'Promote an alpha cartridge into the approved pipeline' },
  'GET /api/privacy/policy': { summary: 'The effective sharing policy (the seed’s SharingPolicy)' },
  'GET /api/privacy/trust': { summary: 'Each peer’s trust level, the rule that set it, and what it is granted' },
  'POST /api/privacy/trust': { summary: 'Set a peer’s trust level at run time (null: back to the config’s); audited' },
  'GET /api/privacy/observe': { summary: 'Shell observation: spool directories and counters' },
  'POST /api/privacy/observe/scan': { summary: 'Read the spool now' },
  'GET /api/privacy/summaries': { summary: 'This node’s signed summaries, newest first' },
  'GET /api/privacy/summaries/preview': { summary: 'Exactly what would be shared for a period, and with whom' },
  'POST /api/privacy/summaries/generate': { summary: 'Sign and store the summary of a period now' },
  'GET /api/privacy/peer-summaries': { summary: 'Summaries peers shared with this node' },
  'POST /api/privacy/query': { summary: 'An aggregate query over the mesh: merged answer, contributors, missing, coverage' },
  'GET /api/mounts': { summary: 'Mounts (link, mirror, invoke) with state, negotiated serializer policy, provider, resume token and live telemetry; ?mode=&peer=&all=true' },
  'GET /api/mounts/:peer/:mode/:name': { summary: 'One mount record with its live telemetry' },
  'POST /api/mounts': { summary: 'Create or reopen a mount: negotiates caps, records the outcome (state open or noprov), starts a mirror' },
  'POST /api/mounts/:peer/:mode/:name/close': { summary: 'Close a mount; the record (and a mirror\'s resume token) is kept' },
  'POST /api/invoke': { summary: 'Call a named handler on a peer with a deadline and budgets (504 timeout, 502 refused: details.code says why)' },
  'GET /api/invoke/handlers': { summary: 'The invoke handlers this node serves (built-ins and cartridges) and its invoke counters' },
  'GET /': { summary: 'The dashboard (open it with `weft dashboard`)' },
  'GET /assets/:file': { summary: 'The dashboard’s scripts and styles' },
  'GET /api/domains': { summary: 'Domain and personal pipelines: settings, DAG levels, lane state, the inbox' },
  'GET /api/domains/:domain': { summary: 'One domain: its settings, cartridges, DAG levels and lane state (its members may read it)' },
  'POST /api/domains/:domain/cartridges': { summary: 'Submit a cartridge to a domain: guardian, then the autonomy level of cartridge.install', status: 201 },
  'DELETE /api/domains/:domain/cartridges/:name': { summary: 'Remove a cartridge from a domain (its admins)' },
  'POST /api/domains/:domain/cartridges/:name/promote': { summary: 'Promote a domain cartridge to the platform (pending activation; node token)' },
  'GET /api/personal/:member': { summary: 'A member’s personal pipeline (the member or the node)' },
  'POST /api/personal/:member/cartridges': { summary: 'Install a leaf cartridge into a member’s personal pipeline', status: 201 },
  'DELETE /api/personal/:member/cartridges/:name': { summary: 'Remove a cartridge from a personal pipeline' },
  'POST /api/personal/:member/cartridges/:name/promote': { summary: 'Promote a personal cartridge into a domain (a submission)' },
  'GET /api/pipeline/validate': { summary: 'Validate every domain and personal pipeline on disk without applying it' },
  'POST /api/pipeline/reload': { summary: 'Read the domain folders again; a change that does not validate is refused; the answer lists the personal pipelines left out (refused) with why' },
  'GET /api/autonomy': { summary: 'The autonomy matrix: rules (CLI and domain.toml) and the global default' },
  'PUT /api/autonomy': { summary: 'Set an autonomy rule for a domain, cartridge and/or event type' },
  'DELETE /api/autonomy': { summary: 'Remove an autonomy rule' },
  'GET /api/autonomy/explain': { summary: 'The level of a decision and the rule that decided it' },
  'GET /api/signals': { summary: 'Signal sources with their polling state, and the last clustering pass' },
  'POST /api/signals/poll': { summary: 'Poll every source now, or {source}: one (Retry-After still honoured)' },
  'POST /api/signals/cluster': { summary: 'Run a clustering pass now (and write the syntheses it calls for)' },
  'POST /api/signals/sources/:id/enable': { summary: 'Turn a source given up on after parse errors back on' },
  'GET /login': { summary: 'Trade a one-time login code for a dashboard session cookie' },
  'POST /api/dashboard/login-link': { summary: 'A one-time dashboard login link (token holders only), role admin or read' },
  'GET /api/session': { summary: 'Who is asking: the dashboard session’s role and CSRF token, or the token' },
  'POST /api/session/logout': { summary: 'End the dashboard session' },
  'GET /api/dashboard/series': { summary: 'The last hour of node figures, sampled every 10 s' },
  'GET /metrics': { summary: 'Prometheus metrics' },
  'GET /openapi.json': { summary: 'This document' },
  'GET /ws': { summary: 'WebSocket: send {"type":"subscribe","filter":{...}}, receive notification changes' },
};

/** A route as the server registered it. */
export interface RegisteredRoute {
  method: string;
  url: string;
  schema?: { params?: TSchema; querystring?: TSchema; body?: TSchema };
}

/** OpenAPI 3.1 document of the routes the server registered, with the schemas they validate with. */
export function openApiDocument(version: string, routes: readonly RegisteredRoute[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const doc = ROUTE_DOCS[`${r.method} ${r.url}`];
    const url = r.url.replace(/:([A-Za-z_]+)/g, '{$1}');
    const op: Record<string, unknown> = { summary: doc?.summary ?? '(undocumented)', security: [{ bearer: [] }] };
    const parameters: unknown[] = [];
    for (const [where, schema] of [['path', r.schema?.params], ['query', r.schema?.querystring]] as const) {
      const props = (schema as { properties?: Record<string, TSchema> } | undefined)?.properties ?? {};
      const required = (schema as { required?: string[] } | undefined)?.required ?? [];
      for (const [name, s] of Object.entries(props)) parameters.push({ name, in: where, required: where === 'path' || required.includes(name), schema: plain(s) });
    }
    for (const m of url.matchAll(/\{([A-Za-z_]+)\}/g)) {
      if (!parameters.some((p) => (p as { name: string }).name === m[1])) parameters.push({ name: m[1], in: 'path', required: true, schema: { type: 'string' } });
    }
    if (parameters.length) op.parameters = parameters;
    if (r.schema?.body) op.requestBody = { required: true, content: { 'application/json': { schema: plain(r.schema.body) } } };
    op.responses = {
      [String(doc?.status ?? 200)]: { description: 'ok', ...(doc?.response ? { content: { 'application/json': { schema: plain(doc.response) } } } : {}) },
      '4XX': { description: 'error', content: { 'application/json': { schema: plain(ErrorBody) } } },
    };
    paths[url] = { ...(paths[url] ?? {}), [r.method.toLowerCase()]: op };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Weft node API', version },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths,
  };
}

function plain(s: TSchema): unknown {
  return JSON.parse(JSON.stringify(s));
}
