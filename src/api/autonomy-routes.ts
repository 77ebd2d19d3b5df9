import { Type } from '@sinclair/typebox';
import type { HttpApp } from './http.js';
import { type AutonomyKey, type AutonomyLevel, type AutonomyMatrix, INSTALL_DECISION, installDecision } from '../domains/index.js';
import { compile } from '../envelope/index.js';

/** Collaborators of the autonomy routes. */
export interface AutonomyRoutesDeps {
  matrix: AutonomyMatrix;
  /** `autonomy.cartridge_install`: the level of an install no rule names. */
  installDefault?: AutonomyLevel;
}

// Names and event types are checked by the matrix, whose errors say what a valid one looks like;
// the schemas bound the sizes and document the fields.
const Level = Type.Union([Type.Literal('L1'), Type.Literal('L2'), Type.Literal('L3')], {
  description: 'L1 held for a human, L2 done and the domain admins told, L3 done',
});
const keyFields = {
  domain: Type.Optional(Type.String({ maxLength: 64, description: 'a domain name; left out: any domain' })),
  cartridge: Type.Optional(
    Type.String({ maxLength: 64, description: 'a cartridge name; left out: any cartridge' }),
  ),
  eventType: Type.Optional(
    Type.String({
      maxLength: 128,
      description: 'an event type or pattern such as "build.*"; left out: any event type',
    }),
  ),
};
const KeyBody = Type.Object(keyFields, { additionalProperties: false });
// DELETE may come without a body, which a body schema would refuse: the body is checked here.
const keyBody = compile<AutonomyKey>(KeyBody);
const SetBody = Type.Object(
  {
    ...keyFields,
    level: Level,
    setBy: Type.Optional(Type.String({ maxLength: 200, description: 'who set it (shown by explain)' })),
  },
  { additionalProperties: false },
);
const ExplainQuery = Type.Object({
  eventType: Type.String({ minLength: 1, maxLength: 128 }),
  cartridge: Type.String({ minLength: 1, maxLength: 64 }),
  domain: Type.Optional(Type.String({ maxLength: 64, description: 'left out: a cartridge in no domain' })),
});

/** An empty query-string value (`?domain=`) means the field was not given. */
function given(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

function keyOf(o: AutonomyKey): AutonomyKey {
  const domain = given(o.domain);
  const cartridge = given(o.cartridge);
  const eventType = given(o.eventType);
  return {
    ...(domain !== undefined ? { domain } : {}),
    ...(cartridge !== undefined ? { cartridge } : {}),
    ...(eventType !== undefined ? { eventType } : {}),
  };
}

/**
 * The autonomy matrix over HTTP (the server's bearer-token hook covers it):
 * - `GET /api/autonomy`: `{globalDefault, rules}`, every rule with its source;
 * - `PUT /api/autonomy` `{domain?, cartridge?, eventType?, level, setBy?}`: stores a rule, answers `{rule}`;
 * - `DELETE /api/autonomy` with the key in the body or the query string: answers `{removed}`;
 * - `GET /api/autonomy/explain?eventType=&cartridge=&domain=`: the decision, the rule that made it and every other
 *   matching rule, best first.
 * @example
 * const api = await buildApi({ token }, { node, logger, extraRoutes: [autonomyRoutes({ matrix })] });
 */
export function autonomyRoutes(deps: AutonomyRoutesDeps): (app: HttpApp) => void {
  const { matrix, installDefault } = deps;
  return (app) => {
    app.get('/api/autonomy', async () => ({ globalDefault: matrix.globalDefault, rules: matrix.list() }));
    app.put('/api/autonomy', { schema: { body: SetBody } }, async (req) => {
      const b = req.body as AutonomyKey & { level: AutonomyLevel; setBy?: string };
      const rule = await matrix.set({
        ...keyOf(b),
        level: b.level,
        ...(b.setBy !== undefined ? { setBy: b.setBy } : {}),
      });
      return { rule };
    });
    app.delete('/api/autonomy', { schema: { querystring: KeyBody } }, async (req) => {
      const body = req.body === undefined || req.body === null ? {} : keyBody.assert(req.body, 'body');
      const q = req.query as AutonomyKey;
      // The key comes from one place: a body that names a field wins over the query string.
      const fromBody = keyOf(body);
      const key = Object.keys(fromBody).length > 0 ? fromBody : keyOf(q);
      return { removed: await matrix.unset(key) };
    });
    app.get('/api/autonomy/explain', { schema: { querystring: ExplainQuery } }, async (req) => {
      const q = req.query as { eventType: string; cartridge: string; domain?: string };
      const domain = given(q.domain);
      const query = {
        eventType: q.eventType,
        cartridge: q.cartridge,
        ...(domain !== undefined ? { domain } : {}),
      };
      const decision = matrix.explain(query);
      // An install into a domain is decided by its own rule (domains/lifecycle.ts), as the install does.
      const shown = q.eventType === INSTALL_DECISION && domain !== undefined && installDefault !== undefined ? installDecision(decision, installDefault) : decision;
      return { query, globalDefault: matrix.globalDefault, ...shown };
    });
  };
}
