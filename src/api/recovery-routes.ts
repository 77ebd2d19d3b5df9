/**
 * Recovery over HTTP (docs/recovery.md): the copies of each node's ranges, a beacon now, the
 * digest of a node's events held here, and the Phoenix restore (started here, its progress
 * polled; `weft recovery restore` draws it).
 */
import { Type } from '@sinclair/typebox';
import type { HttpApp } from './http.js';
import { WeftError } from '../errors/index.js';
import type { CartridgePort, GitFallback, RecoveryService } from '../recovery/index.js';

export interface RecoveryRoutesDeps {
  /** Undefined when the node has no mesh. */
  recovery: RecoveryService | undefined;
  /** Undefined without a mesh or without fallback.git_remote. */
  fallback?: GitFallback | undefined;
  /** The cartridge runtime a restore re-installs cartridges into. */
  cartridges?: CartridgePort;
}

const RestoreBody = Type.Object(
  {
    queryTimeoutMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 600_000 })),
    perPeer: Type.Optional(Type.Integer({ minimum: 1, maximum: 8 })),
  },
  { additionalProperties: false },
);
const DigestQuery = Type.Object({ node: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) });

/**
 * `GET /api/recovery/status`, `POST /api/recovery/beacon`, `GET /api/recovery/digest?node=`,
 * `POST /api/recovery/restore` (202, its progress), `GET /api/recovery/restore`,
 * `POST /api/recovery/dismiss`, `GET /api/recovery/fallback` (the git fallback's state),
 * `POST /api/recovery/fallback/round` (a round now; its report).
 */
export function recoveryRoutes(deps: RecoveryRoutesDeps): (app: HttpApp) => void {
  const recovery = (): RecoveryService => {
    if (!deps.recovery) throw new WeftError('WEFT_CONFIG', 'this node has no mesh: set mesh.provider (tls or redis) and its peers, and restart the daemon; recovery works through the peers');
    return deps.recovery;
  };
  return (app) => {
    app.get('/api/recovery/status', async () => recovery().status());
    app.post('/api/recovery/beacon', async () => {
      const r = recovery();
      const payload = await r.beaconNow();
      return { sent: payload !== undefined, mode: r.mode(), ...(payload ? { beacon: payload } : {}) };
    });
    app.get('/api/recovery/digest', { schema: { querystring: DigestQuery } }, async (req) => recovery().digest((req.query as { node?: string }).node));
    app.post('/api/recovery/restore', { schema: { body: Type.Optional(RestoreBody) } }, async (req, reply) => {
      const body = (req.body ?? {}) as { queryTimeoutMs?: number; perPeer?: number };
      const p = recovery().restore({ ...body, ...(deps.cartridges ? { cartridges: deps.cartridges } : {}) });
      return reply.code(202).send(p);
    });
    app.get('/api/recovery/restore', async () => {
      const p = recovery().restoreProgress();
      if (!p) throw new WeftError('WEFT_NOT_FOUND', "no restore has run since the daemon started ('weft recovery restore' starts one)");
      return p;
    });
    app.post('/api/recovery/dismiss', async () => ({ mode: await recovery().dismiss() }));
    const fallback = (): GitFallback => {
      if (!deps.fallback) {
        throw new WeftError('WEFT_CONFIG', deps.recovery ? 'no git fallback: set fallback.git_remote (a path or URL your git can reach) and restart the daemon' : 'this node has no mesh: the git fallback carries mesh traffic; set mesh.provider and its peers first');
      }
      return deps.fallback;
    };
    app.get('/api/recovery/fallback', async () => fallback().status());
    app.post('/api/recovery/fallback/round', async () => fallback().round());
  };
}
