/** Candidates over HTTP: nodes discovery found (mDNS), and the pin and ignore that decide about them. */
import { Type } from '@sinclair/typebox';
import type { HttpApp } from './http.js';
import { WeftError } from '../errors/index.js';
import { type CandidateState, type PeerCandidates, TRUST_LEVELS, type TrustLevel } from '../mesh/index.js';

export interface PeerCandidateRoutesDeps {
  /** Undefined when the node has no mesh. */
  candidates: PeerCandidates | undefined;
  /** Whether this node announces and browses mDNS (`mesh.enable_mdns`). */
  mdns: boolean;
}

const Fingerprint = Type.String({ pattern: '^[0-9A-Fa-f]{16}$', description: "16 hex digits, as 'weft peers candidates' shows" });
const State = Type.Union([Type.Literal('candidate'), Type.Literal('pinned'), Type.Literal('admitted'), Type.Literal('ignored')]);
const ListQuery = Type.Object({ state: Type.Optional(State), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) });
const PinBody = Type.Object(
  {
    fingerprint: Fingerprint,
    trust: Type.Optional(Type.Union(TRUST_LEVELS.map((t) => Type.Literal(t)), { description: 'default share_to' })),
    cluster: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9._-]{1,63}$',
        description: 'the cluster to put it in (its cluster events then go to it); never taken from what it announced',
      }),
    ),
  },
  { additionalProperties: false },
);
const IgnoreBody = Type.Object({ fingerprint: Fingerprint }, { additionalProperties: false });

/** `GET /api/peers/candidates`, `POST /api/peers/pin`, `POST /api/peers/ignore`. */
export function peerCandidateRoutes(deps: PeerCandidateRoutesDeps): (app: HttpApp) => void {
  const book = (): PeerCandidates => {
    if (!deps.candidates) throw new WeftError('WEFT_CONFIG', 'the mesh is off on this node: set mesh.provider = "tls" and mesh.enable_mdns = true');
    return deps.candidates;
  };
  return (app) => {
    app.get('/api/peers/candidates', { schema: { querystring: ListQuery } }, async (req) => {
      const q = req.query as { state?: CandidateState; limit?: number };
      return { mdns: deps.mdns, candidates: deps.candidates ? deps.candidates.list(q) : [] };
    });
    app.post('/api/peers/pin', { schema: { body: PinBody } }, async (req) => {
      const b = req.body as { fingerprint: string; trust?: TrustLevel; cluster?: string };
      return book().pin(b.fingerprint, { ...(b.trust ? { trust: b.trust } : {}), ...(b.cluster ? { cluster: b.cluster } : {}) });
    });
    app.post('/api/peers/ignore', { schema: { body: IgnoreBody } }, async (req) => ({
      candidate: await book().ignore((req.body as { fingerprint: string }).fingerprint),
    }));
  };
}
