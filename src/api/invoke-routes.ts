/** Invoke over HTTP: call a handler on a peer (`POST /api/invoke`) and list this node's handlers. */
import { Type } from '@sinclair/typebox';
import type { HttpApp } from './http.js';
import { isWeftError, WeftError } from '../errors/index.js';
import type { FederationService, InvokeCall } from '../federation/index.js';

export interface InvokeRoutesDeps {
  /** Undefined when the node has no mesh. */
  federation: FederationService | undefined;
}

/** The deadline a call gets when the request names none, ms. */
export const DEFAULT_INVOKE_DEADLINE_MS = 5000;

const meta = Type.String({ minLength: 1, maxLength: 200 });
const InvokeBody = Type.Object(
  {
    peer: Type.String({ minLength: 1, maxLength: 200 }),
    handler: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]*$' }),
    payload: Type.Optional(Type.Unknown()),
    deadlineMs: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 86_400_000, description: 'remaining milliseconds (default 5000)' })),
    budgets: Type.Optional(
      Type.Object(
        {
          hops: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
          bytes: Type.Optional(Type.Integer({ minimum: 0 })),
          cpuMs: Type.Optional(Type.Number({ minimum: 0 })),
          wallMs: Type.Optional(Type.Number({ minimum: 0 })),
        },
        { additionalProperties: false },
      ),
    ),
    pipeline: Type.Optional(
      Type.Object(
        { pipeline_id: meta, stage_id: Type.Optional(meta), dag_run_id: Type.Optional(meta), hop_index: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })) },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

/**
 * `POST /api/invoke` (`{peer, handler, payload?, deadlineMs?, budgets?, pipeline?}` → the
 * result, or `{error: {code, message, details}}` with 504 WEFT_INVOKE_TIMEOUT, 502
 * WEFT_INVOKE_REJECTED (`details.code` says why: NO_HANDLER, LIMIT, PIPELINE, EDGE, ...), 503
 * WEFT_PEER_UNAVAILABLE, 404 WEFT_NOT_FOUND) and `GET /api/invoke/handlers`. A client that
 * goes away cancels its call (the peer is told).
 */
export function invokeRoutes(deps: InvokeRoutesDeps): (app: HttpApp) => void {
  const federation = (): FederationService => {
    if (!deps.federation) throw new WeftError('WEFT_CONFIG', 'this node has no mesh: set mesh.provider (tls or redis) and restart the daemon to invoke peers');
    return deps.federation;
  };
  return (app) => {
    app.post('/api/invoke', { schema: { body: InvokeBody } }, async (req, reply) => {
      const body = req.body as Omit<InvokeCall, 'deadlineMs'> & { deadlineMs?: number };
      const ac = new AbortController();
      const gone = () => {
        if (!reply.raw.writableEnded) ac.abort(new WeftError('WEFT_STOPPED', 'the API client went away'));
      };
      reply.raw.once('close', gone);
      try {
        return await federation().invoke.call({ ...body, deadlineMs: body.deadlineMs ?? DEFAULT_INVOKE_DEADLINE_MS }, { signal: ac.signal });
      } catch (err) {
        // A peer's refusal is an answer, not a fault of this node: its details go back whole.
        if (isWeftError(err)) return reply.status(err.status).send({ error: err.toJSON() });
        throw err;
      } finally {
        reply.raw.off('close', gone);
      }
    });
    app.get('/api/invoke/handlers', async () => {
      if (!deps.federation) return { mesh: false, handlers: [], stats: null };
      const organ = deps.federation.invoke;
      return { mesh: true, handlers: organ.describeHandlers(), stats: organ.stats };
    });
  };
}
