/** Mounts over HTTP: list, show, create (or reopen) and close; the records behind link, mirror and invoke. */
import { Type } from '@sinclair/typebox';
import type { HttpApp } from './http.js';
import { WeftError } from '../errors/index.js';
import type { FederationService, MountSpec } from '../federation/index.js';

export interface MountRoutesDeps {
  /** Undefined when the node has no mesh. */
  federation: FederationService | undefined;
}

const Cap = Type.Union([Type.Literal('crc32c'), Type.Literal('deflate'), Type.Literal('aead')]);
const Mode = Type.Union([Type.Literal('link'), Type.Literal('mirror'), Type.Literal('invoke')]);
const MountBody = Type.Object(
  {
    peer: Type.String({ minLength: 1, maxLength: 64 }),
    mode: Mode,
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    required: Type.Optional(Type.Array(Cap, { maxItems: 3 })),
    preferred: Type.Optional(Type.Array(Cap, { maxItems: 3 })),
    updLatest: Type.Optional(Type.Boolean()),
    warnDown: Type.Optional(Type.Boolean()),
    cmpMaxVer: Type.Optional(Type.Integer({ minimum: 0, maximum: 255 })),
    options: Type.Optional(
      Type.Object(
        {
          stream: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
          beat_window: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
          max_in_flight: Type.Optional(Type.Integer({ minimum: 1, maximum: 4 })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
const KeyParams = Type.Object({ peer: Type.String({ minLength: 1, maxLength: 64 }), mode: Mode, name: Type.String({ minLength: 1, maxLength: 64 }) });
const ListQuery = Type.Object({
  mode: Type.Optional(Mode),
  peer: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  all: Type.Optional(Type.Boolean({ description: 'closed mounts too' })),
});
const CloseBody = Type.Object({ reason: Type.Optional(Type.String({ maxLength: 500 })) }, { additionalProperties: false });

/** `GET /api/mounts`, `GET /api/mounts/:peer/:mode/:name`, `POST /api/mounts`, `POST /api/mounts/:peer/:mode/:name/close`. */
export function mountRoutes(deps: MountRoutesDeps): (app: HttpApp) => void {
  const federation = (): FederationService => {
    if (!deps.federation) throw new WeftError('WEFT_CONFIG', 'this node has no mesh: set mesh.provider (tls or redis) and restart the daemon to mount peers');
    return deps.federation;
  };
  const key = (p: { peer: string; mode: string; name: string }) => `${p.peer}/${p.mode}/${p.name}`;
  return (app) => {
    app.get('/api/mounts', { schema: { querystring: ListQuery } }, async (req) => {
      if (!deps.federation) return { mesh: false, transports: [], mounts: [] };
      const q = req.query as { mode?: MountSpec['mode']; peer?: string; all?: boolean };
      return { mesh: true, transports: deps.federation.transports(), mounts: deps.federation.listMounts({ ...(q.mode ? { mode: q.mode } : {}), ...(q.peer ? { peer: q.peer } : {}), includeClosed: q.all === true }) };
    });
    app.get('/api/mounts/:peer/:mode/:name', { schema: { params: KeyParams } }, async (req) => federation().showMount(key(req.params as { peer: string; mode: string; name: string })));
    app.post('/api/mounts', { schema: { body: MountBody } }, async (req, reply) => {
      const rec = await federation().openMount(req.body as MountSpec);
      return reply.code(201).send(rec);
    });
    app.post('/api/mounts/:peer/:mode/:name/close', { schema: { params: KeyParams, body: CloseBody } }, async (req) => {
      const reason = (req.body as { reason?: string } | undefined)?.reason;
      return federation().closeMount(key(req.params as { peer: string; mode: string; name: string }), reason);
    });
  };
}
