/**
 * Who is asking, and what a member token may reach. The node's token and dashboard sessions
 * act as the node (everything); a member token (domains/members.ts) reaches, by default, only:
 * its domains' notifications, routes under `/api/domains/<its domain>/`, `GET /api/health` and
 * `GET /api/me`. Routes under `/api/domains/` check admin-only actions themselves with
 * `assertDomainAccess`. Managing members is the node's alone.
 */
import { Type } from '@sinclair/typebox';
import type { ApiRequest, HttpApp } from './http.js';
import {
  type MemberDirectory,
  type MemberPrincipal,
  type MemberRole,
  type NodePrincipal,
  type Principal,
  roleIn,
  SCOPE_NAME,
} from '../domains/index.js';
import { ValidationError, WeftError } from '../errors/index.js';
import { ROUTE_DOCS, type RouteDoc } from './routes.js';

const NODE: NodePrincipal = Object.freeze({ kind: 'node' });
/** Member principals by request: private to this file, so nothing else can set one. */
const principals = new WeakMap<object, MemberPrincipal>();

/**
 * The principal of an authenticated request: the member whose token it carried, else the node
 * (the node's token or a dashboard session; the server's hook refused everything else).
 * @example
 * app.get('/api/domains/:domain/report', async (req) => ({ asker: principalOf(req) }));
 */
export function principalOf(req: ApiRequest): Principal {
  return principals.get(req) ?? NODE;
}

/** Called by the server's hook once a member token checked out. */
export function attachMemberPrincipal(req: ApiRequest, principal: MemberPrincipal): void {
  principals.set(req, principal);
}

/**
 * Refuses (403 WEFT_FORBIDDEN) a member without the role `need` in `domain`; an `admin` role
 * satisfies `member` too. The node passes always.
 * @example
 * app.post('/api/domains/:domain/cartridges/:name/approve', async (req) => {
 *   const { domain } = req.params as { domain: string };
 *   assertDomainAccess(req, domain, 'admin');
 *   ...
 * });
 */
export function assertDomainAccess(req: ApiRequest, domain: string, need: MemberRole): void {
  const p = principalOf(req);
  if (p.kind === 'node') return;
  const role = roleIn(p, domain);
  if (role === undefined) {
    throw new WeftError('WEFT_FORBIDDEN', `member '${p.name}' holds no role in domain '${domain}'`, {
      details: { member: p.name, domain },
    });
  }
  if (need === 'admin' && role !== 'admin') {
    throw new WeftError(
      'WEFT_FORBIDDEN',
      `this needs the admin role in domain '${domain}'; member '${p.name}' is a member there`,
      {
        details: { member: p.name, domain, role },
      },
    );
  }
}

const FORBIDDEN = "member tokens may only use their domains' routes";

/** The domains a member holds a role in, for messages. */
function domainsOf(p: MemberPrincipal): string {
  const ds = Object.keys(p.roles).sort();
  return ds.length === 0
    ? `member '${p.name}' holds no role in any domain`
    : `member '${p.name}' may read: ${ds.join(', ')}`;
}

/**
 * The default-deny policy for a member token, decided on the route the request matched (its
 * pattern and decoded params, exactly what the handler will see: `/api/%6Eotifications/5`
 * is `/api/notifications/:id`). Throws 403 WEFT_FORBIDDEN for anything not allowed, 404 for an
 * unknown notification id (answered here, so a notification created between this check and
 * the handler is never served unchecked).
 * @example
 * assertMemberMayReach(req, member, (id) => node.ns.notifications.get(id).domain);
 */
export function assertMemberMayReach(
  req: ApiRequest,
  p: MemberPrincipal,
  notificationOf: (id: number) => { domain: string; eventType: string },
): void {
  const route = req.routeOptions.url;
  const method = req.method === 'HEAD' ? 'GET' : req.method;
  if (route === undefined) throw new WeftError('WEFT_FORBIDDEN', FORBIDDEN);
  if (method === 'GET' && (route === '/api/health' || route === '/api/me')) return;

  if (route === '/api/notifications' && method === 'GET') {
    const domain = (req.query as Record<string, unknown> | undefined)?.domain;
    if (typeof domain === 'string' && notificationRole(p, domain) !== undefined) return;
    throw new WeftError(
      'WEFT_FORBIDDEN',
      typeof domain === 'string'
        ? `member '${p.name}' holds no role in domain '${domain}' (${domainsOf(p)})`
        : `a member lists notifications of one domain at a time: add ?domain=<domain> (weft notifications list --domain <domain>; ${domainsOf(p)})`,
    );
  }

  const byId =
    (method === 'GET' && route === '/api/notifications/:id') ||
    (method === 'POST' && route.startsWith('/api/notifications/:id/'));
  if (byId) {
    const raw = (req.params as Record<string, unknown>).id;
    if (typeof raw !== 'string' || !/^\d{1,15}$/.test(raw) || Number(raw) < 1) {
      throw new ValidationError(
        `params: field '/id' must be a whole number from 1 (got ${JSON.stringify(raw)?.slice(0, 40)})`,
      );
    }
    const id = Number(raw);
    const { domain, eventType } = notificationOf(id);
    const role = notificationRole(p, domain);
    // Answering what only a domain's admins decide (a submitted cartridge, a held action) needs the admin role.
    if (role === 'member' && method === 'POST' && ADMIN_ANSWERED.has(eventType)) {
      throw new WeftError('WEFT_FORBIDDEN', `notification ${id} (${eventType}) is answered by an admin of domain '${domain}'; member '${p.name}' is a member there`, {
        details: { member: p.name, domain, role },
      });
    }
    if (role !== undefined) return;
    throw new WeftError(
      'WEFT_FORBIDDEN',
      `notification ${id} belongs to domain '${domain}', where member '${p.name}' holds no role`,
      {
        details: { member: p.name, domain },
      },
    );
  }

  if (route.startsWith('/api/domains/')) {
    const [segment, ...rest] = route.slice('/api/domains/'.length).split('/');
    const domain = domainOfSegment(req, segment ?? '');
    if (domain === undefined || rest[0] === '') throw new WeftError('WEFT_FORBIDDEN', FORBIDDEN);
    if (roleIn(p, domain) !== undefined) return;
    throw new WeftError('WEFT_FORBIDDEN', `member '${p.name}' holds no role in domain '${domain}'`, {
      details: { member: p.name, domain },
    });
  }

  // A member's own personal pipeline.
  if (route.startsWith('/api/personal/:member')) {
    const member = (req.params as Record<string, unknown>).member;
    if (member === p.name) return;
    throw new WeftError('WEFT_FORBIDDEN', `member '${p.name}' may only change their own personal pipeline`, { details: { member: p.name } });
  }

  throw new WeftError('WEFT_FORBIDDEN', FORBIDDEN);
}

/** A member's role for notifications: their domains', and their own personal pipeline's (`personal:<name>`). */
function notificationRole(p: MemberPrincipal, domain: string): MemberRole | undefined {
  return domain === `personal:${p.name}` ? 'member' : roleIn(p, domain);
}

/** Notification types only a domain's admins answer. */
const ADMIN_ANSWERED: ReadonlySet<string> = new Set(['domains.cartridge.submitted', 'domains.action.pending']);

/** The domain a route's segment after `/api/domains/` names: a `:param` (decoded) or a literal; a wildcard names none. */
function domainOfSegment(req: ApiRequest, segment: string): string | undefined {
  if (segment.includes('*')) return undefined;
  if (!segment.startsWith(':')) return segment.length > 0 ? segment : undefined;
  // `:name(regex)` or `:name-:other`: the name is what precedes either.
  const name = /^:([A-Za-z0-9_]+)$/.exec(segment)?.[1];
  const value = name === undefined ? undefined : (req.params as Record<string, unknown>)[name];
  return typeof value === 'string' ? value : undefined;
}

/** Refuses anyone but the node (members and their tokens are the node's to manage). */
function requireNode(req: ApiRequest): void {
  const p = principalOf(req);
  if (p.kind !== 'node')
    throw new WeftError(
      'WEFT_FORBIDDEN',
      `member '${p.name}' cannot manage members: that needs the node's token`,
    );
}

export interface MemberRoutesDeps {
  members: MemberDirectory;
}

const Name = Type.String({
  pattern: SCOPE_NAME.source,
  description: '1 to 64 of a-z, 0-9, ".", "_", "-", starting with a letter or digit',
});
const Role = Type.Union([Type.Literal('admin'), Type.Literal('member')]);
const NameParams = Type.Object({ name: Name });
const RoleParams = Type.Object({ name: Name, domain: Name });
const AddBody = Type.Object(
  {
    name: Name,
    displayName: Type.Optional(Type.String({ maxLength: 200 })),
    roles: Type.Optional(
      Type.Record(Type.String({ pattern: SCOPE_NAME.source }), Role, {
        maxProperties: 256,
        description: 'domain → admin | member',
      }),
    ),
  },
  { additionalProperties: false },
);
const RoleBody = Type.Object({ role: Role }, { additionalProperties: false });
const TokenBody = Type.Object(
  { label: Type.Optional(Type.String({ maxLength: 200 })) },
  { additionalProperties: false },
);

/** Summaries of the member routes for /openapi.json (its registry is keyed `METHOD /path`). */
export const MEMBER_ROUTE_DOCS: Readonly<Record<string, RouteDoc>> = {
  'GET /api/me': {
    summary: 'Who is asking: the node (its token, a dashboard session) or a member with their roles',
  },
  'GET /api/members': {
    summary: 'Members with their roles per domain and their tokens (never the tokens themselves)',
  },
  'POST /api/members': {
    summary: 'Add a member, with roles per domain (node token only); audited',
    status: 201,
  },
  'DELETE /api/members/:name': {
    summary: 'Remove a member with their roles and tokens (node token only); audited',
  },
  'PUT /api/members/:name/roles/:domain': {
    summary: "Set a member's role in a domain: admin or member (node token only); audited",
  },
  'DELETE /api/members/:name/roles/:domain': {
    summary: "Take a member's role in a domain away (node token only); audited",
  },
  'POST /api/members/:name/tokens': {
    summary: 'A new API token for a member, shown in this answer only (node token only); audited',
    status: 201,
  },
  'DELETE /api/members/:name/tokens': {
    summary: 'Revoke every token of a member (node token only); audited',
  },
};

/**
 * The member routes: `GET /api/me` (anyone), and managing members, roles and tokens (the node
 * only: a member token gets 403).
 * @example
 * await buildApi({ token }, { node, logger, members, extraRoutes: [memberRoutes({ members })] });
 */
export function memberRoutes(deps: MemberRoutesDeps): (app: HttpApp) => void {
  const { members } = deps;
  return (app) => {
    for (const [key, doc] of Object.entries(MEMBER_ROUTE_DOCS)) ROUTE_DOCS[key] ??= doc;

    app.get('/api/me', async (req) => principalOf(req));

    app.get('/api/members', async (req) => {
      requireNode(req);
      return { items: members.list() };
    });
    app.post('/api/members', { schema: { body: AddBody } }, async (req, reply) => {
      requireNode(req);
      const b = req.body as { name: string; displayName?: string; roles?: Record<string, MemberRole> };
      const m = await members.add(b.name, {
        ...(b.displayName !== undefined ? { displayName: b.displayName } : {}),
        ...(b.roles ? { roles: b.roles } : {}),
      });
      reply.status(201);
      return m;
    });
    app.delete('/api/members/:name', { schema: { params: NameParams } }, async (req) => {
      requireNode(req);
      return members.remove((req.params as { name: string }).name);
    });
    app.put(
      '/api/members/:name/roles/:domain',
      { schema: { params: RoleParams, body: RoleBody } },
      async (req) => {
        requireNode(req);
        const { name, domain } = req.params as { name: string; domain: string };
        return members.grant(name, domain, (req.body as { role: MemberRole }).role);
      },
    );
    app.delete('/api/members/:name/roles/:domain', { schema: { params: RoleParams } }, async (req) => {
      requireNode(req);
      const { name, domain } = req.params as { name: string; domain: string };
      return members.revoke(name, domain);
    });
    app.post(
      '/api/members/:name/tokens',
      { schema: { params: NameParams, body: TokenBody } },
      async (req, reply) => {
        requireNode(req);
        const label = (req.body as { label?: string } | undefined)?.label;
        const t = await members.createToken((req.params as { name: string }).name, label);
        reply.status(201);
        // The one answer holding a secret: no cache may keep it.
        reply.header('cache-control', 'no-store');
        return t;
      },
    );
    app.delete('/api/members/:name/tokens', { schema: { params: NameParams } }, async (req) => {
      requireNode(req);
      return members.revokeTokens((req.params as { name: string }).name);
    });
  };
}
