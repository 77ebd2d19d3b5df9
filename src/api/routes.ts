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
  since: Type.Optional(Type.String({ description: 'ISO time' })),
  cursor: Type.Optional(Type.Integer({ minimum: 1, description: 'nextCursor of the previous page' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })),
});

export const IdParams = Type.Object({ id: Type.Integer({ minimum: 1 }) });
export const AgentBody = Type.Object({ agentId: Type.String({ minLength: 1, maxLength: 200 }) });
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

export interface RouteDoc {
  method: 'GET' | 'POST';
  url: string;
  summary: string;
  params?: TSchema;
  query?: TSchema;
  body?: TSchema;
  response?: TSchema;
  status?: number;
}

/** The route table: registered by the server and rendered as OpenAPI. */
export const ROUTES: RouteDoc[] = [
  { method: 'GET', url: '/api/health', summary: 'Node health and counters' },
  { method: 'GET', url: '/api/notifications', summary: 'List notifications, newest first', query: NotificationQuery, response: NotificationPage },
  { method: 'GET', url: '/api/notifications/{id}', summary: 'One notification', params: IdParams, response: NotificationSchema },
  { method: 'POST', url: '/api/notifications/{id}/seen', summary: 'Mark seen (unseen → seen)', params: IdParams, response: NotificationSchema },
  { method: 'POST', url: '/api/notifications/{id}/claim', summary: 'Claim for an agent (none → claimed)', params: IdParams, body: AgentBody, response: NotificationSchema },
  { method: 'POST', url: '/api/notifications/{id}/in_progress', summary: 'Start work (claimed → in_progress)', params: IdParams, body: AgentBody, response: NotificationSchema },
  { method: 'POST', url: '/api/notifications/{id}/resolve', summary: 'Resolve, with a resolution matching the type’s resolutionShape', params: IdParams, body: ResolveBody, response: NotificationSchema },
  { method: 'POST', url: '/api/events', summary: 'Emit one event, or {events:[...]}', body: EmitBody, status: 201 },
  { method: 'GET', url: '/api/events', summary: 'List events of the local log, newest first', query: EventsQuery, response: EventsPage },
  { method: 'GET', url: '/api/events/{id}', summary: 'One event', response: Envelope },
  { method: 'GET', url: '/api/events/{id}/trace', summary: 'Lineage of an event: its causes and what it caused' },
  { method: 'GET', url: '/api/schemas', summary: 'Event types of the catalog' },
  { method: 'GET', url: '/api/schemas/export', summary: 'JSON Schema of the envelope and every event type' },
  { method: 'GET', url: '/metrics', summary: 'Prometheus metrics' },
  { method: 'GET', url: '/ws', summary: 'WebSocket: send {"type":"subscribe","filter":{...}}, receive notification changes' },
];

/** OpenAPI 3.1 document built from the same schemas the routes validate with. */
export function openApiDocument(version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of ROUTES) {
    const op: Record<string, unknown> = { summary: r.summary, security: [{ bearer: [] }] };
    const parameters: unknown[] = [];
    for (const [where, schema] of [['path', r.params], ['query', r.query]] as const) {
      const props = (schema as { properties?: Record<string, TSchema> } | undefined)?.properties ?? {};
      const required = (schema as { required?: string[] } | undefined)?.required ?? [];
      for (const [name, s] of Object.entries(props)) parameters.push({ name, in: where, required: where === 'path' || required.includes(name), schema: plain(s) });
    }
    if (r.url.includes('{id}') && !r.params) parameters.push({ name: 'id', in: 'path', required: true, schema: { type: 'string' } });
    if (parameters.length) op.parameters = parameters;
    if (r.body) op.requestBody = { required: true, content: { 'application/json': { schema: plain(r.body) } } };
    op.responses = {
      [String(r.status ?? 200)]: { description: 'ok', ...(r.response ? { content: { 'application/json': { schema: plain(r.response) } } } : {}) },
      '4XX': { description: 'error', content: { 'application/json': { schema: plain(ErrorBody) } } },
    };
    paths[r.url] = { ...(paths[r.url] ?? {}), [r.method.toLowerCase()]: op };
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
