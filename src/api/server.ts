import { timingSafeEqual } from 'node:crypto';
import websocket from '@fastify/websocket';
import type { TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import Fastify, { type FastifyInstance } from 'fastify';
import type { WeftNode } from '../daemon/node.js';
import type { Envelope } from '../envelope/index.js';
import { ValidationError, WeftError, isWeftError } from '../errors/index.js';
import type { LoggedEvent, NotificationChange, NotificationFilter } from '../store/index.js';
import type { Logger } from '../util/logger.js';
import { VERSION } from '../version.js';
import { NotificationHub } from './hub.js';
import { AgentBody, EmitBody, EventsQuery, IdParams, NotificationQuery, ResolveBody, openApiDocument } from './routes.js';

export interface ApiInit {
  token: string;
  /** Bytes a WebSocket client may leave unsent before it is dropped (default 1 MiB). */
  wsMaxBufferedBytes?: number;
  /** Largest request body (default 8 MiB). */
  bodyLimit?: number;
}

export interface ApiDeps {
  node: WeftNode;
  logger: Logger;
  /** Prometheus text for GET /metrics. */
  metrics?: () => string;
  /** Extra health fields (mesh, delivery...). */
  health?: () => Record<string, unknown>;
  /**
   * Called when a notification is resolved with `approve` (e.g. an L1 cartridge install).
   * Runs after the resolution committed.
   */
  onApproved?: (notificationId: number, approve: boolean) => Promise<void> | void;
  /** More routes from other concerns (mesh, cartridges, quarantine...), registered after auth. */
  extraRoutes?: Array<(app: FastifyInstance) => void>;
}

type Q = Record<string, unknown>;

/**
 * The node's HTTP + WebSocket API. Every route asks for the bearer token; errors are JSON
 * `{error: {code, message}}` with the status from the error registry.
 */
export async function buildApi(init: ApiInit, deps: ApiDeps): Promise<{ app: FastifyInstance; hub: NotificationHub }> {
  const { node } = deps;
  const app = Fastify({ logger: false, bodyLimit: init.bodyLimit ?? 8 * 1024 * 1024 });
  const hub = new NotificationHub(node.ns.notifications, deps.logger, { maxBufferedBytes: init.wsMaxBufferedBytes });
  const token = Buffer.from(init.token);

  app.setValidatorCompiler(({ schema, httpPart }) => {
    const check = TypeCompiler.Compile(schema as TSchema);
    const coerce = httpPart === 'querystring' || httpPart === 'params';
    return (data: unknown) => {
      const value = coerce ? Value.Convert(schema as TSchema, data) : data;
      if (check.Check(value)) return { value };
      const e = check.Errors(value).First();
      const where = httpPart === 'body' ? 'body' : httpPart;
      return { error: new ValidationError(`${where}: field '${e?.path || '/'}' ${e?.message.toLowerCase() ?? 'invalid'}`) };
    };
  });

  app.setErrorHandler((err, _req, reply) => {
    const e = err as Error & { statusCode?: number; code?: string; validation?: unknown };
    if (isWeftError(e)) return reply.status(e.status).send({ error: { code: e.code, message: e.message } });
    if (e.validation || e.code === 'FST_ERR_VALIDATION') {
      return reply.status(400).send({ error: { code: 'WEFT_VALIDATION', message: e.message } });
    }
    const status = e.statusCode && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 500;
    if (status === 500) deps.logger.error({ err: e.message }, 'API error');
    return reply.status(status).send({ error: { code: status === 500 ? 'WEFT_INTERNAL' : (e.code ?? 'WEFT_VALIDATION'), message: e.message } });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.status(404).send({ error: { code: 'WEFT_NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` } }),
  );

  app.addHook('onRequest', async (req, reply) => {
    const header = req.headers.authorization;
    let given = header?.startsWith('Bearer ') ? header.slice(7) : undefined;
    if (given === undefined && req.url.startsWith('/ws')) given = new URL(req.url, 'http://x').searchParams.get('token') ?? undefined;
    const ok = given !== undefined && given.length === token.length && timingSafeEqual(Buffer.from(given), token);
    if (!ok) {
      return reply
        .status(401)
        .send({ error: { code: 'WEFT_UNAUTHORIZED', message: given === undefined ? 'missing bearer token' : 'wrong bearer token' } });
    }
  });

  await app.register(websocket, { options: { maxPayload: 64 * 1024 } });

  const changed = (c: NotificationChange | null) => {
    if (c) hub.publish([c]);
  };
  const filterOf = (q: Q): NotificationFilter => ({
    minLevel: q.level as number | undefined,
    domain: q.domain as string | undefined,
    humanStatus: q.humanStatus as NotificationFilter['humanStatus'],
    agentStatus: q.agentStatus as NotificationFilter['agentStatus'],
    visibility: q.visibility as NotificationFilter['visibility'],
    eventType: q.type as string | undefined,
    since: q.since as string | undefined,
    before: q.cursor as number | undefined,
    limit: (q.limit as number | undefined) ?? 50,
  });

  app.get('/api/health', async () => ({
    ok: true,
    version: VERSION,
    computer: node.self.computer,
    cluster: node.self.cluster ?? null,
    bus: node.bus.kind,
    pid: process.pid,
    uptimeSeconds: Math.round(process.uptime()),
    pipeline: node.pipeline.order,
    processor: node.processor.stats,
    subscribers: hub.size,
    ...(deps.health?.() ?? {}),
  }));

  app.get('/api/notifications', { schema: { querystring: NotificationQuery } }, async (req) => node.ns.notifications.list(filterOf(req.query as Q)));
  app.get('/api/notifications/:id', { schema: { params: IdParams } }, async (req) => node.ns.notifications.get((req.params as { id: number }).id));
  app.post('/api/notifications/:id/seen', { schema: { params: IdParams } }, async (req) => {
    const r = await node.ns.notifications.markSeen((req.params as { id: number }).id);
    changed(r.change);
    return r.notification;
  });
  app.post('/api/notifications/:id/claim', { schema: { params: IdParams, body: AgentBody } }, async (req) => {
    const r = await node.ns.notifications.claim((req.params as { id: number }).id, (req.body as { agentId: string }).agentId);
    changed(r.change);
    return r.notification;
  });
  app.post('/api/notifications/:id/in_progress', { schema: { params: IdParams, body: AgentBody } }, async (req) => {
    const r = await node.ns.notifications.setInProgress((req.params as { id: number }).id, (req.body as { agentId: string }).agentId);
    changed(r.change);
    return r.notification;
  });
  app.post('/api/notifications/:id/resolve', { schema: { params: IdParams, body: ResolveBody } }, async (req) => {
    const id = (req.params as { id: number }).id;
    const body = req.body as { agentId?: string; resolution?: Record<string, unknown>; approve?: boolean };
    const current = node.ns.notifications.get(id);
    const entry = node.catalog.get(current.eventType);
    const resolution = body.approve === undefined ? body.resolution : { ...(body.resolution ?? {}), approved: body.approve };
    const r = await node.ns.notifications.resolve(id, { agentId: body.agentId, resolution, entry });
    changed(r.change);
    if (body.approve !== undefined && deps.onApproved) await deps.onApproved(id, body.approve);
    return r.notification;
  });

  app.post('/api/events', { schema: { body: EmitBody } }, async (req, reply) => {
    const body = req.body as Q;
    const envs = Array.isArray(body.events) ? await node.emitMany(body.events as unknown[]) : [await node.emit(body)];
    reply.status(201);
    return Array.isArray(body.events) ? { ids: envs.map((e) => e.id) } : { id: envs[0]?.id, envelope: envs[0] };
  });
  app.get('/api/events', { schema: { querystring: EventsQuery } }, async (req) => {
    const q = req.query as Q;
    const limit = (q.limit as number | undefined) ?? 50;
    const items = node.ns.log.list({ type: q.type as string | undefined, beforeSeq: q.cursor as number | undefined, limit });
    return { items, nextCursor: items.length === limit ? (items[items.length - 1]?.seq ?? null) : null };
  });
  app.get('/api/events/:id', async (req) => {
    const id = (req.params as { id: string }).id;
    const e = node.ns.log.get(id);
    if (!e) throw new WeftError('WEFT_NOT_FOUND', `event ${id} not found`);
    return e.envelope;
  });
  app.get('/api/events/:id/trace', async (req) => trace(node, (req.params as { id: string }).id));

  app.get('/api/schemas', async () =>
    node.catalog.list().map((e) => ({
      type: e.type,
      description: e.description,
      domain: e.domain,
      level: e.level,
      visibility: e.visibility,
      idempotencyFields: e.idempotencyFields,
      lifecycle: e.lifecycle ?? null,
      actionable: e.actionable,
    })),
  );
  app.get('/api/schemas/export', async () => node.catalog.exportJsonSchema());
  app.get('/openapi.json', async () => openApiDocument(VERSION));
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', 'text/plain; version=0.0.4; charset=utf-8');
    return deps.metrics ? deps.metrics() : '';
  });
  app.get('/ws', { websocket: true }, (socket) => hub.add(socket));
  for (const add of deps.extraRoutes ?? []) add(app);

  return { app, hub };
}

/** The lineage of an event: its chain of causes up to the root, and the tree of what it caused. */
export interface TraceNode {
  id: string;
  event: string;
  source: string;
  timestamp: string;
  origin?: string;
  children: TraceNode[];
}

export function trace(node: WeftNode, id: string): { root: TraceNode; ancestors: Array<Pick<Envelope, 'id' | 'event'>> } {
  const start = node.ns.log.get(id);
  if (!start) throw new WeftError('WEFT_NOT_FOUND', `event ${id} not found in the local log`);
  const ancestors: Array<Pick<Envelope, 'id' | 'event'>> = [];
  let cur: LoggedEvent | undefined = start;
  const seen = new Set<string>([id]);
  while (cur?.envelope.causationId && !seen.has(cur.envelope.causationId)) {
    seen.add(cur.envelope.causationId);
    const parent = node.ns.log.get(cur.envelope.causationId);
    if (!parent) {
      ancestors.unshift({ id: cur.envelope.causationId, event: '(not in the local log)' });
      break;
    }
    ancestors.unshift({ id: parent.envelope.id, event: parent.envelope.event });
    cur = parent;
  }
  const build = (e: Envelope, depth: number): TraceNode => ({
    id: e.id,
    event: e.event,
    source: e.source,
    timestamp: e.timestamp,
    ...(e.origin ? { origin: e.origin } : {}),
    children: depth > 20 ? [] : node.ns.log.children(e.id).map((c) => build(c.envelope, depth + 1)),
  });
  return { root: build(start.envelope, 0), ancestors };
}
