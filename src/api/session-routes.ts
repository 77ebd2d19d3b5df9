/** Session lineage over HTTP: the sessions this node indexed and the trees they form. */
import { Type } from '@sinclair/typebox';
import type { HttpApp } from './http.js';
import { SessionId } from '../envelope/index.js';
import { SESSION_TREE_LIMITS, SessionLineage, type Store } from '../store/index.js';
import { ROUTE_DOCS, type RouteDoc } from './routes.js';

/** Collaborators of the session routes: the node's store, whose index the lineage stage writes. */
export interface SessionRoutesDeps {
  store: Store;
}

const ListQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000_000, description: 'nextOffset of the previous page' })),
    computer: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'only sessions first seen on this computer' })),
  },
  { additionalProperties: false },
);
const TreeQuery = Type.Object(
  {
    depth: Type.Optional(Type.Integer({ minimum: 0, maximum: SESSION_TREE_LIMITS.maxDepth, description: `levels below the root (default ${SESSION_TREE_LIMITS.depth})` })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: SESSION_TREE_LIMITS.maxLimit, description: `sessions in the answer at most (default ${SESSION_TREE_LIMITS.limit})` })),
    roots: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, description: `forest: trees at most, most recently active first (default ${SESSION_TREE_LIMITS.roots})` })),
  },
  { additionalProperties: false },
);
const SessionParams = Type.Object({ id: SessionId });

/** Summaries of the session routes for /openapi.json. */
export const SESSION_ROUTE_DOCS: Readonly<Record<string, RouteDoc>> = {
  'GET /api/sessions': { summary: 'Sessions this node indexed from the events that reached it, most recently active first, with the index counters' },
  'GET /api/sessions/tree': { summary: 'Every session tree (which session spawned which, across nodes), most recently active root first' },
  'GET /api/sessions/:id/tree': { summary: 'The tree holding one session: its root and descendants, with computer, node, event counts and refused parent claims' },
};

/**
 * `GET /api/sessions`, `GET /api/sessions/tree`, `GET /api/sessions/:id/tree` (node token only).
 * @example
 * await buildApi({ token }, { node, logger, extraRoutes: [sessionRoutes({ store: node.ns.store })] });
 */
export function sessionRoutes(deps: SessionRoutesDeps): (app: HttpApp) => void {
  let lineage: SessionLineage | undefined;
  const index = (): SessionLineage => {
    lineage ??= new SessionLineage(deps.store);
    return lineage;
  };
  return (app) => {
    for (const [key, doc] of Object.entries(SESSION_ROUTE_DOCS)) ROUTE_DOCS[key] ??= doc;

    app.get('/api/sessions', { schema: { querystring: ListQuery } }, async (req) => {
      const q = req.query as { limit?: number; offset?: number; computer?: string };
      return { ...index().list(q), stats: index().stats() };
    });
    app.get('/api/sessions/tree', { schema: { querystring: TreeQuery } }, async (req) => index().forest(req.query as { depth?: number; limit?: number; roots?: number }));
    app.get('/api/sessions/:id/tree', { schema: { params: SessionParams, querystring: TreeQuery } }, async (req) =>
      index().tree((req.params as { id: string }).id, req.query as { depth?: number; limit?: number }),
    );
  };
}
