/** The local log's retention over HTTP: `POST /api/events/prune` (weft events prune). */
import { Type } from '@sinclair/typebox';
import type { HttpApp } from './http.js';
import type { AuditLog } from '../audit/index.js';
import { FEDERATION_EVENTS } from '../catalog/index.js';
import { WeftError } from '../errors/index.js';
import type { WeftNode } from '../node/index.js';
import type { PruneResult } from '../store/index.js';
import { ROUTE_DOCS, type RouteDoc } from './routes.js';

export interface LogRoutesDeps {
  node: WeftNode;
  /** Records each prune (what was asked, what was removed). */
  audit?: AuditLog;
}

const PruneBody = Type.Object(
  {
    beforeSeq: Type.Optional(Type.Integer({ minimum: 1, description: 'remove the events below this log position' })),
    olderThan: Type.Optional(Type.String({ pattern: '^[0-9]{1,9}[smhdw]$', description: 'remove the events older than this: 90s, 45m, 12h, 30d, 8w' })),
    dryRun: Type.Optional(Type.Boolean({ description: 'say what would go, remove nothing' })),
  },
  { additionalProperties: false },
);

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** The longest `olderThan`: 100 years (36500d, 5214w). */
export const MAX_PRUNE_AGE_MS = 36_500 * 86_400_000;

/** `30d` → ms; at most 100 years (WEFT_VALIDATION past it, or for anything but a whole number and a unit). */
export function durationMs(text: string): number {
  const m = /^(\d{1,9})([smhdw])$/.exec(text);
  if (!m) throw new WeftError('WEFT_VALIDATION', `a duration is a whole number and a unit (s, m, h, d, w), like 30d; got '${text}'`);
  const ms = Number(m[1]) * (UNIT_MS[m[2] as string] as number);
  if (ms > MAX_PRUNE_AGE_MS) throw new WeftError('WEFT_VALIDATION', `a duration is at most 100 years (36500d, 5214w); got '${text}'`);
  return ms;
}

/** What a prune answers: the log's result, and the time bound when it was asked by age. */
export type PruneAnswer = PruneResult & { olderThan?: string; cutoff?: string };

export const LOG_ROUTE_DOCS: Readonly<Record<string, RouteDoc>> = {
  'POST /api/events/prune': {
    summary:
      'Remove old events from the local log ({beforeSeq} or {olderThan: "30d"}, dryRun): never the newest, nothing the pipeline or a domain lane still needs; raises system.log.pruned (mirrors behind it see a gap)',
  },
};

/**
 * `POST /api/events/prune`: removes the events below a position, or older than a duration,
 * within the log's own limits (EventLog.prune), audits it and raises `system.log.pruned`.
 * @example
 * await buildApi({ token }, { node, logger, extraRoutes: [logRoutes({ node, audit })] });
 */
export function logRoutes(deps: LogRoutesDeps): (app: HttpApp) => void {
  const { node } = deps;
  return (app) => {
    for (const [key, doc] of Object.entries(LOG_ROUTE_DOCS)) ROUTE_DOCS[key] ??= doc;
    app.post('/api/events/prune', { schema: { body: PruneBody } }, async (req): Promise<PruneAnswer> => {
      const b = (req.body ?? {}) as { beforeSeq?: number; olderThan?: string; dryRun?: boolean };
      if ((b.beforeSeq === undefined) === (b.olderThan === undefined)) {
        throw new WeftError('WEFT_VALIDATION', 'say what to prune: beforeSeq (a log position) or olderThan (like 30d), one of them');
      }
      let below = b.beforeSeq as number;
      let cutoff: string | undefined;
      if (b.olderThan !== undefined) {
        cutoff = new Date(node.clock.now() - durationMs(b.olderThan)).toISOString();
        below = node.ns.log.firstSeqSince(cutoff);
      }
      const r = await node.ns.log.prune(Math.max(1, below), { dryRun: b.dryRun === true });
      const answer: PruneAnswer = { ...r, ...(b.olderThan !== undefined ? { olderThan: b.olderThan, cutoff } : {}) };
      if (r.dryRun || r.belowSeq <= r.previous) return answer;
      await deps.audit?.record('log.pruned', null, { ...answer }, true).catch(() => undefined);
      await node.emit({ event: FEDERATION_EVENTS.logPruned, payload: { belowSeq: r.belowSeq, removed: r.removed } });
      return answer;
    });
  };
}
