import { createHash, timingSafeEqual } from 'node:crypto';
import type { TSchema } from '@sinclair/typebox';
import type { WeftNode } from '../node/index.js';
import { busProblems } from '../bus/index.js';
import { compile, type Envelope } from '../envelope/index.js';
import { ValidationError, WeftError, isWeftError } from '../errors/index.js';
import type { LoggedEvent, NotificationChange, NotificationFilter } from '../store/index.js';
import { API_BODY_LIMIT_BYTES, jsonDepth, type Logger } from '../util/index.js';
import { VERSION } from '../version.js';
import type { MemberPrincipal } from '../domains/index.js';
import { CSRF_HEADER, type DashboardAuth, type DashboardSession } from './dashboard-auth.js';
import { assertMemberMayReach, attachMemberPrincipal } from './member-auth.js';
import { BodyBudget, DEFAULT_BODY_BYTES_IN_FLIGHT } from './body-budget.js';
import { capConnections } from './connection-cap.js';
import { HttpApp } from './http.js';
import { NotificationHub } from './hub.js';
import {
  AgentBody,
  EmitBody,
  EventsQuery,
  IdParams,
  NotificationQuery,
  ReleaseBody,
  ResolveBody,
  openApiDocument,
  type RegisteredRoute,
} from './routes.js';

export interface ApiInit {
  token: string;
  /** The address the API binds to: loopback (the default) means WebSocket upgrades must name a loopback host. */
  host?: string;
  /** Bytes a WebSocket client may leave unsent before it is dropped (default 1 MiB). */
  wsMaxBufferedBytes?: number;
  /** Largest request body (default 8 MiB). */
  bodyLimit?: number;
  /** Open connections at once (default 1024); one more is answered 429 and closed (connection-cap.ts). */
  maxConnections?: number;
  /** Milliseconds a new connection has to make its first request before it is closed (default 10 s). */
  firstRequestMs?: number;
  /** Request body bytes read at once, all requests together (default 64 MiB); more wait (body-budget.ts). */
  bodyBytesInFlight?: number;
  /** Milliseconds a body has to arrive once its turn came (default 60 s); then its connection is closed. */
  bodyDeadlineMs?: number;
}

export interface ApiDeps {
  node: WeftNode;
  logger: Logger;
  /** Prometheus text for GET /metrics. */
  metrics?: () => string;
  /** Extra health fields (mesh, delivery...). */
  health?: () => Record<string, unknown>;
  /** What is wrong beside the bus (the mesh's discovery, stalled links...), one line each. */
  problems?: () => string[];
  /**
   * Called when a notification is resolved with `approve` or a boolean `resolution.approved`
   * (e.g. an L1 cartridge install). Runs before the resolution is committed, once it is known
   * to be valid: when it throws, the notification stays open and the error is the answer.
   */
  onApproved?: (notificationId: number, approve: boolean) => Promise<void> | void;
  /** More routes from other concerns (mesh, cartridges, quarantine...), registered after auth. */
  extraRoutes?: Array<(app: HttpApp) => void>;
  /** Dashboard sessions: when given, a session cookie also authenticates (see dashboard-auth.ts). */
  dashboard?: DashboardAuth;
  /**
   * Member tokens (a `MemberDirectory`): when given, a bearer that is not the node's token is
   * looked up here; a member reaches only its domains' routes (member-auth.ts).
   */
  members?: { authenticate(token: string): MemberPrincipal | undefined };
}

/** Paths anyone on loopback may fetch: the dashboard's shell and assets (no data in them) and the login link. */
export function isPublicPath(path: string): boolean {
  return path === '/' || path === '/login' || path.startsWith('/assets/');
}

/** The dashboard session a request was authenticated with (undefined: the bearer token). */
export function sessionOfRequest(req: unknown): DashboardSession | undefined {
  return (req as { weftSession?: DashboardSession }).weftSession;
}

type Q = Record<string, unknown>;

/**
 * The node's HTTP + WebSocket API. Every route asks for the bearer token; errors are JSON
 * `{error: {code, message}}` with the status from the error registry.
 */
export async function buildApi(
  init: ApiInit,
  deps: ApiDeps,
): Promise<{ app: HttpApp; hub: NotificationHub }> {
  const { node } = deps;
  // Requests are validated by TypeBox's compiled validators, built at a route's first request.
  const validatorCompiler = ({ schema, httpPart }: { schema: unknown; httpPart: string }) => {
    const v = compile(schema as TSchema);
    const coerce = httpPart === 'querystring' || httpPart === 'params';
    // A parameter the route does not take is an error, not ignored: `?eventType=x` listing
    // every type looks like an answer to the question asked.
    const known = httpPart === 'querystring' ? Object.keys((schema as { properties?: object }).properties ?? {}) : undefined;
    return (data: unknown) => {
      if (known && data && typeof data === 'object') {
        const extra = Object.keys(data).find((k) => !known.includes(k));
        if (extra !== undefined)
          return { error: new ValidationError(`querystring: unknown parameter '${extra.slice(0, 100)}'; ${known.length ? `this route takes ${known.join(', ')}` : 'this route takes none'}`) };
      }
      const value = coerce ? coerceStrings(schema as TSchema, data) : data;
      if (v.check(value)) return { value };
      const e = v.firstError(value) ?? { path: '/', message: 'is invalid' };
      const where = httpPart === 'body' ? 'body' : httpPart;
      return { error: new ValidationError(`${where}: field '${e.path}' ${e.message}`) };
    };
  };
  const bodyLimit = init.bodyLimit ?? API_BODY_LIMIT_BYTES;
  // Bodies are JSON bounded in depth before they are parsed: a deeply nested body is a 400 with
  // the limit, never a stack overflow.
  const parseJson = (text: string): unknown => {
    const depth = jsonDepth(text, MAX_BODY_DEPTH);
    if (depth > MAX_BODY_DEPTH)
      throw new ValidationError(`body: nested deeper than ${MAX_BODY_DEPTH} levels (the limit for any JSON sent to Weft)`);
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new ValidationError(`body: not valid JSON (${(err as Error).message})`);
    }
  };
  const app = new HttpApp({ bodyLimit, parseJson, validatorCompiler, wsMaxPayload: 64 * 1024 });
  const connections = capConnections(app.server, deps.logger, {
    max: init.maxConnections,
    firstRequestMs: init.firstRequestMs,
  });
  const bodies = new BodyBudget(init.bodyBytesInFlight ?? DEFAULT_BODY_BYTES_IN_FLIGHT);
  const hub = new NotificationHub(node.ns.notifications, deps.logger, {
    maxBufferedBytes: init.wsMaxBufferedBytes,
  });

  let incident = 0;
  app.setErrorHandler((err, req, reply) => {
    const e = err as Error;
    const w = isWeftError(err) ? err : undefined;
    // A full disk is an answer, not a fault: no reference to a log the disk cannot take either.
    // Nor is a node stopping.
    if (w && (w.status < 500 || w.code === 'WEFT_STORE_FULL' || w.code === 'WEFT_STOPPED'))
      return reply.status(w.status).send({ error: { code: w.code, message: w.message } });
    // Internal errors are logged, not echoed: the client gets a reference to find them in the log.
    const ref = `${Date.now().toString(36)}-${++incident}`;
    deps.logger.error(
      { err: e.message, stack: e.stack, ref, route: `${req.method} ${req.url.split('?')[0]}` },
      'API error',
    );
    return reply
      .status(w ? w.status : 500)
      .send({
        error: {
          code: w ? w.code : 'WEFT_INTERNAL',
          message: `${w ? w.message : 'internal error'} (ref ${ref} in the node's log: weft logs)`,
        },
      });
  });
  app.setNotFoundHandler((req, reply) =>
    reply
      .status(404)
      .send({
        error: {
          code: 'WEFT_NOT_FOUND',
          message: `no route ${req.method} ${req.url.split('?')[0]} (GET /openapi.json lists them)`,
        },
      }),
  );

  // Every route registered from here on (extra routes of other concerns included) is documented.
  const registered: RegisteredRoute[] = [];
  app.addHook('onRoute', (r) => {
    for (const method of Array.isArray(r.method) ? r.method : [r.method]) {
      if (method !== 'HEAD')
        registered.push({
          method,
          url: r.url,
          ...(r.schema ? { schema: r.schema as RegisteredRoute['schema'] } : {}),
        });
    }
  });

  const tokenDigest = createHash('sha256').update(init.token).digest();
  const loopbackOnly = isLoopbackHost(init.host ?? '127.0.0.1');
  app.addHook('onRequest', async (req, reply) => {
    const path = req.url.split('?')[0] ?? '';
    const upgrade = String(req.headers.upgrade ?? '').toLowerCase() === 'websocket';
    // A web page elsewhere (or a rebinding DNS name) must not reach the node: its Host must be a loopback name.
    const hostName = String(req.headers.host ?? '').replace(/:\d+$/, '');
    const foreignHost = loopbackOnly && !isLoopbackHost(hostName);
    if (upgrade) {
      // A refused upgrade must not leave its socket open (it would hold a descriptor, and a stop).
      reply.header('connection', 'close');
      reply.raw.once('finish', () => {
        if (reply.statusCode >= 400) req.raw.socket?.destroy();
      });
      const origin = req.headers.origin;
      const badOrigin = origin !== undefined && !isLoopbackOrigin(origin);
      if (foreignHost || badOrigin) {
        return reply.status(403).send({
          error: {
            code: 'WEFT_FORBIDDEN',
            message: foreignHost
              ? `WebSocket upgrade for host '${hostName}' refused: the API answers loopback names only`
              : `WebSocket upgrade from origin '${origin}' refused`,
          },
        });
      }
    }
    if (isPublicPath(path)) {
      // Not even the dashboard's shell: its script would run as this origin.
      if (foreignHost) {
        return reply
          .status(403)
          .send({
            error: {
              code: 'WEFT_FORBIDDEN',
              message: `host '${hostName}' refused: the dashboard answers loopback names only`,
            },
          });
      }
      return;
    }
    const header = req.headers.authorization;
    if (header === undefined && deps.dashboard) {
      const session = deps.dashboard.sessionOf(req.headers.cookie);
      if (session) {
        const origin = req.headers.origin;
        const own = `http://${String(req.headers.host ?? '')}`;
        if (foreignHost || (origin !== undefined && origin !== own)) {
          return reply
            .status(403)
            .send({
              error: {
                code: 'WEFT_FORBIDDEN',
                message: `request from origin '${origin ?? '-'}' to host '${hostName}' refused: not this node's own page`,
              },
            });
        }
        const writes = req.method !== 'GET' && req.method !== 'HEAD' && !upgrade;
        // Any login may end itself; other writes are an admin login's.
        if (writes && session.role !== 'admin' && path !== '/api/session/logout') {
          return reply
            .status(403)
            .send({
              error: {
                code: 'WEFT_FORBIDDEN',
                message: 'this dashboard login is read-only: run `weft dashboard --role admin` to act',
              },
            });
        }
        if (writes && !deps.dashboard.csrfOk(session, req.headers[CSRF_HEADER])) {
          return reply
            .status(403)
            .send({ error: { code: 'WEFT_FORBIDDEN', message: `missing or wrong ${CSRF_HEADER} header` } });
        }
        (req as unknown as { weftSession: DashboardSession }).weftSession = session;
        return;
      }
    }
    let given = header?.startsWith('Bearer ') ? header.slice(7) : undefined;
    // Only the WebSocket path takes the token from the query (a browser cannot set headers there).
    if (given === undefined && upgrade && path === '/ws')
      given = new URL(req.url, 'http://x').searchParams.get('token') ?? undefined;
    // Digests have one length whatever was sent, so the comparison never depends on it.
    const ok =
      given !== undefined && timingSafeEqual(createHash('sha256').update(given).digest(), tokenDigest);
    if (!ok) {
      // Only a bearer that is not the node's token costs a member lookup.
      const member = given !== undefined && deps.members ? deps.members.authenticate(given) : undefined;
      if (!member) {
        return reply
          .status(401)
          .send({
            error: {
              code: 'WEFT_UNAUTHORIZED',
              message: given === undefined ? 'missing bearer token' : 'wrong bearer token',
            },
          });
      }
      attachMemberPrincipal(req, member);
      // Default deny: throws 403 (or 404 for an unknown notification) for what the member may not reach.
      assertMemberMayReach(req, member, (id) => node.ns.notifications.get(id));
    }
  });

  // After the token: a body is read only when its bytes fit in what all bodies may hold at once,
  // and it must arrive in time once its turn came: a client sending slowly would otherwise keep
  // its share from every other request for as long as it liked (the server sets no request timeout).
  const bodyDeadlineMs = init.bodyDeadlineMs ?? 60_000;
  const arriving = new WeakMap<object, NodeJS.Timeout>();
  // (Called only for a request that has a body: a Content-Length above 0, or a Transfer-Encoding.)
  app.addHook('preParsing', async (req, reply) => {
    const length = req.headers['content-length'];
    const bytes = length === undefined ? bodyLimit : Math.min(Number(length), bodyLimit);
    const turn = bodies.take(bytes);
    let late: NodeJS.Timeout | undefined;
    // One listener: the bytes come back, and a deadline still running ends, when the response does.
    reply.raw.once('close', () => {
      clearTimeout(late);
      turn.release();
    });
    await turn.ready;
    // Its client left while it waited: nothing is coming, and no deadline is owed.
    if (req.raw.destroyed) return;
    late = setTimeout(() => {
      bodies.timedOut++;
      deps.logger.warn(
        { route: `${req.method} ${req.url.split('?')[0]}`, bytes, ms: bodyDeadlineMs },
        'a request body did not arrive in time: its connection is closed',
      );
      req.raw.destroy();
    }, bodyDeadlineMs);
    late.unref();
    arriving.set(req, late);
    return;
  });
  // The body is read (and parsed): the deadline is met.
  app.addHook('preValidation', async (req) => {
    clearTimeout(arriving.get(req));
  });

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

  // `ok` says the node answers; `problems` what it cannot do right now (it still accepts emits).
  app.get('/api/health', async () => {
    const busStats = node.bus.stats();
    return {
      ok: true,
      problems: [...busProblems(busStats, node.clock.now()), ...(deps.problems?.() ?? [])],
      version: VERSION,
      computer: node.self.computer,
      cluster: node.self.cluster ?? null,
      bus: node.bus.kind,
      busStats,
      pid: process.pid,
      uptimeSeconds: Math.round(process.uptime()),
      pipeline: node.pipeline.order,
      processor: node.processor.stats,
      subscribers: hub.size,
      connections: connections.stats(),
      bodies: bodies.stats(),
      ...(deps.health?.() ?? {}),
    };
  });

  app.get('/api/notifications', { schema: { querystring: NotificationQuery } }, async (req) =>
    node.ns.notifications.list(filterOf(req.query as Q)),
  );
  app.get('/api/notifications/:id', { schema: { params: IdParams } }, async (req) =>
    node.ns.notifications.get((req.params as { id: number }).id),
  );
  app.post('/api/notifications/:id/seen', { schema: { params: IdParams } }, async (req) => {
    const r = await node.ns.notifications.markSeen((req.params as { id: number }).id);
    changed(r.change);
    return r.notification;
  });
  app.post('/api/notifications/:id/claim', { schema: { params: IdParams, body: AgentBody } }, async (req) => {
    const r = await node.ns.notifications.claim(
      (req.params as { id: number }).id,
      (req.body as { agentId: string }).agentId,
    );
    changed(r.change);
    return r.notification;
  });
  app.post(
    '/api/notifications/:id/in_progress',
    { schema: { params: IdParams, body: AgentBody } },
    async (req) => {
      const r = await node.ns.notifications.setInProgress(
        (req.params as { id: number }).id,
        (req.body as { agentId: string }).agentId,
      );
      changed(r.change);
      return r.notification;
    },
  );
  app.post('/api/notifications/:id/release', { schema: { params: IdParams, body: ReleaseBody } }, async (req) => {
    const r = await node.ns.notifications.release((req.params as { id: number }).id, req.body as { agentId?: string; force?: boolean });
    changed(r.change);
    return r.notification;
  });
  app.post(
    '/api/notifications/:id/resolve',
    { schema: { params: IdParams, body: ResolveBody } },
    async (req) => {
      const id = (req.params as { id: number }).id;
      const body = req.body as { agentId?: string; resolution?: Record<string, unknown>; approve?: boolean };
      const current = node.ns.notifications.get(id);
      const entry = node.catalog.get(current.eventType);
      const resolution =
        body.approve === undefined ? body.resolution : { ...(body.resolution ?? {}), approved: body.approve };
      // `--resolution '{"approved":true}'` approves as `--approve` does.
      const approve = typeof resolution?.approved === 'boolean' ? resolution.approved : undefined;
      // What the answer does (install a cartridge...) runs first: when it cannot, the error says
      // why and the notification stays open to be answered again.
      if (approve !== undefined && deps.onApproved) {
        node.ns.notifications.assertResolvable(id, { agentId: body.agentId, resolution, entry });
        await deps.onApproved(id, approve);
      }
      const r = await node.ns.notifications.resolve(id, { agentId: body.agentId, resolution, entry });
      changed(r.change);
      return r.notification;
    },
  );

  app.post('/api/events', { schema: { body: EmitBody } }, async (req, reply) => {
    const body = req.body as Q;
    // Stored either way (201); `outcome` says whether the pipeline applied it in the same commit,
    // dropped it there (a duplicate's idempotency key, trust), failed on it, or has it queued.
    if (Array.isArray(body.events)) {
      const rs = await node.emitManyReported(body.events as unknown[]);
      reply.status(201);
      const dropped: Array<{ id: string; by: string; trust?: string; reason?: string }> = [];
      const failed: Array<{ id: string; by: string; error: string }> = [];
      for (const { envelope, outcome: o } of rs) {
        if (o.state === 'dropped')
          dropped.push({ id: envelope.id, by: o.by, trust: o.trust, reason: o.reason });
        else if (o.state === 'failed') failed.push({ id: envelope.id, by: o.by, error: o.error });
      }
      return {
        ids: rs.map((r) => r.envelope.id),
        queued: rs[0]?.outcome.state === 'queued',
        dropped,
        failed,
      };
    }
    const [r] = await node.emitManyReported([body]);
    reply.status(201);
    return { id: r?.envelope.id, envelope: r?.envelope, outcome: r?.outcome };
  });
  app.get('/api/events', { schema: { querystring: EventsQuery } }, async (req) => {
    const q = req.query as Q;
    const limit = (q.limit as number | undefined) ?? 50;
    const items = node.ns.log.list({
      type: q.type as string | undefined,
      beforeSeq: q.cursor as number | undefined,
      limit,
    });
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
  app.get('/openapi.json', async () => openApiDocument(VERSION, registered));
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', 'text/plain; version=0.0.4; charset=utf-8');
    return deps.metrics ? deps.metrics() : '';
  });
  app.get('/ws', { websocket: true }, (socket, req) => hub.add(socket, sessionOfRequest(req)));
  deps.dashboard?.onEnd((s) => hub.endSession(s));
  for (const add of deps.extraRoutes ?? []) add(app);

  return { app, hub };
}

/** Depth any JSON body may have; the envelope's own payload limit is checked at emit. */
export const MAX_BODY_DEPTH = 64;

/**
 * Query strings and path params arrive as strings: convert only those that are exactly a
 * number, an integer or a boolean where the schema asks for one (`1.5` is not an id, `12abc`
 * is not a limit), so the validator names the field instead of a silent rounding.
 */
function coerceStrings(schema: TSchema, data: unknown): unknown {
  const props = (schema as { properties?: Record<string, TSchema> }).properties;
  if (!props || data === null || typeof data !== 'object') return data;
  const out: Record<string, unknown> = { ...(data as Record<string, unknown>) };
  for (const [k, s] of Object.entries(props)) {
    const v = out[k];
    if (typeof v !== 'string') continue;
    const type = (s as { type?: string }).type;
    if (type === 'integer' && /^-?\d{1,15}$/.test(v)) out[k] = Number(v);
    else if (type === 'number' && /^-?\d+(\.\d+)?$/.test(v)) out[k] = Number(v);
    else if (type === 'boolean' && (v === 'true' || v === 'false')) out[k] = v === 'true';
  }
  return out;
}

function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

function isLoopbackOrigin(origin: string): boolean {
  try {
    const u = new URL(origin);
    return (u.protocol === 'http:' || u.protocol === 'https:') && isLoopbackHost(u.hostname);
  } catch {
    return false;
  }
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

export function trace(
  node: WeftNode,
  id: string,
): { root: TraceNode; ancestors: Array<Pick<Envelope, 'id' | 'event'>> } {
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
