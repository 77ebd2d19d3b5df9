import { Type } from '@sinclair/typebox';
import type { HttpApp } from './http.js';
import { FILTER_OPERATORS, GRANULARITIES, type Granularity, QUERY_TYPES, type QueryFilter, type QueryType, TRUST_LEVEL_VALUES } from '../catalog/index.js';
import { WeftError } from '../errors/index.js';
import type { TrustLevel } from '../mesh/index.js';
import { checkFilter, parseFilter, type PrivacyService } from '../privacy/index.js';

export interface PrivacyRoutesDeps {
  privacy: PrivacyService;
  now: () => number;
}

const PERIOD_OF: Record<string, Granularity> = { hour: 'hourly', day: 'daily', week: 'weekly', hourly: 'hourly', daily: 'daily', weekly: 'weekly' };
const Period = Type.Union(['hour', 'day', 'week', ...GRANULARITIES].map((p) => Type.Literal(p)));
const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * A relative range such as `7d` (also m, h, w) ending now.
 * @example
 * parseRange('24h', Date.now())
 */
export function parseRange(text: string, now: number): { start: string; end: string } {
  const m = /^(\d{1,6})([mhdw])$/.exec(text.trim());
  if (!m) throw new WeftError('WEFT_VALIDATION', `range '${text}' is not a duration such as 30m, 24h, 7d or 2w`);
  const ms = Number(m[1]) * (UNIT_MS[m[2] as string] as number);
  return { start: new Date(now - ms).toISOString(), end: new Date(now).toISOString() };
}

const QueryBody = Type.Object(
  {
    type: Type.Union([...QUERY_TYPES, ...QUERY_TYPES.map((q) => q.replace('_', '-'))].map((q) => Type.Literal(q))),
    range: Type.Optional(Type.String({ maxLength: 20, description: 'a duration ending now: 30m, 24h, 7d, 2w (default 7d)' })),
    start: Type.Optional(Type.String({ maxLength: 40 })),
    end: Type.Optional(Type.String({ maxLength: 40 })),
    filters: Type.Optional(
      Type.Array(
        Type.Union([
          Type.String({ maxLength: 1100, description: '"field op value", e.g. "category = git"' }),
          Type.Object({ field: Type.String({ maxLength: 64 }), operator: Type.Union(FILTER_OPERATORS.map((o) => Type.Literal(o))), value: Type.String({ maxLength: 1000 }) }),
        ]),
        { maxItems: 16 },
      ),
    ),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 600_000 })),
  },
  { additionalProperties: false },
);

const TrustBody = Type.Object(
  {
    peer: Type.String({ minLength: 1, maxLength: 200 }),
    level: Type.Union([...TRUST_LEVEL_VALUES.map((l) => Type.Literal(l)), Type.Null()], { description: 'null: back to what the config says' }),
    reason: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);

/** Routes for observation, trust, summaries and aggregate queries. */
export function privacyRoutes(deps: PrivacyRoutesDeps): (app: HttpApp) => void {
  const { privacy } = deps;
  return (app) => {
    app.get('/api/privacy/policy', async () => ({
      policy: privacy.describePolicy(),
      share_summaries: privacy.policy.shareSummaries,
      min_contributors: privacy.policy.minContributors,
    }));
    app.get('/api/privacy/trust', async () => ({ peers: privacy.trustList() }));
    app.post('/api/privacy/trust', { schema: { body: TrustBody } }, async (req) => {
      const b = req.body as { peer: string; level: TrustLevel | null; reason?: string };
      return privacy.setTrust(b.peer, b.level ?? undefined, b.reason);
    });

    app.get('/api/privacy/observe', async () => ({ enabled: privacy.observer !== undefined, stats: privacy.observerStats ?? null }));
    app.post('/api/privacy/observe/scan', async () => {
      if (!privacy.observer) throw new WeftError('WEFT_CONFIG', 'observation is off on this node (observe.enabled = false)');
      return { ingested: await privacy.observer.scan(), stats: privacy.observerStats };
    });

    app.get('/api/privacy/summaries', { schema: { querystring: Type.Object({ period: Type.Optional(Period), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) }) } }, async (req) => {
      const q = req.query as { period?: string; limit?: number };
      return { items: privacy.store.summaries({ ...(q.period ? { granularity: PERIOD_OF[q.period] } : {}), limit: q.limit ?? 50 }) };
    });
    app.get('/api/privacy/summaries/preview', { schema: { querystring: Type.Object({ period: Type.Optional(Period), at: Type.Optional(Type.String({ maxLength: 40 })) }) } }, async (req) => {
      const q = req.query as { period?: string; at?: string };
      const at = q.at ? Date.parse(q.at) : undefined;
      if (at !== undefined && !Number.isFinite(at)) throw new WeftError('WEFT_VALIDATION', `at '${q.at}' is not an ISO-8601 time`);
      return privacy.preview(PERIOD_OF[q.period ?? 'day'] as Granularity, at);
    });
    app.post('/api/privacy/summaries/generate', { schema: { body: Type.Object({ period: Period, at: Type.Optional(Type.String({ maxLength: 40 })) }, { additionalProperties: false }) } }, async (req) => {
      const b = req.body as { period: string; at?: string };
      const at = b.at ? Date.parse(b.at) : deps.now();
      if (!Number.isFinite(at)) throw new WeftError('WEFT_VALIDATION', `at '${b.at}' is not an ISO-8601 time`);
      return (await privacy.generate(PERIOD_OF[b.period] as Granularity, at)) ?? null;
    });
    app.get('/api/privacy/peer-summaries', { schema: { querystring: Type.Object({ peer: Type.Optional(Type.String({ maxLength: 200 })), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) }) } }, async (req) => {
      const q = req.query as { peer?: string; limit?: number };
      return { items: privacy.store.peerSummaries({ ...(q.peer ? { peer: q.peer } : {}), limit: q.limit ?? 50 }) };
    });

    app.post('/api/privacy/query', { schema: { body: QueryBody } }, async (req) => {
      const b = req.body as { type: string; range?: string; start?: string; end?: string; filters?: Array<string | QueryFilter>; timeoutMs?: number };
      if (b.type.replace('-', '_') === 'node_health' && (b.filters?.length || b.range || b.start || b.end)) {
        throw new WeftError('WEFT_VALIDATION', `node_health takes no ${b.filters?.length ? 'filters' : 'range'}: it reports each node's state now and its command count of the last 24 hours`);
      }
      const range = b.start || b.end ? { start: b.start ?? new Date(0).toISOString(), end: b.end ?? new Date(deps.now()).toISOString() } : parseRange(b.range ?? '7d', deps.now());
      const filters = (b.filters ?? []).map((f) => (typeof f === 'string' ? parseFilter(f) : checkFilter(f)));
      return privacy.query({ type: b.type.replace('-', '_') as QueryType, range, filters, ...(b.timeoutMs ? { timeoutMs: b.timeoutMs } : {}) });
    });
  };
}
