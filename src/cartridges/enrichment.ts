/**
 * Enrichment: adds what this node remembers about an event's entity to `envelope.context`
 * (how many times it failed before, when it last succeeded, ...). The memory is one row of
 * running counters per entity, read and updated by primary key: never a scan of the log.
 */
import type { Envelope } from '../envelope/index.js';
import type { Cartridge, CartridgeContext } from '../pipeline/index.js';
import { groupKeyOf, type Db } from '../store/index.js';
import type { Statement } from 'better-sqlite3';
import { defaultEventKind, type EventKindOf } from './event-kind.js';

/** What enrichment adds under `context.entity`. Counts are of the events before this one. */
export interface EntityContext {
  key: string;
  eventsBefore: number;
  failuresBefore: number;
  successesBefore: number;
  /** Failures since the last success (the current streak, before this event). */
  consecutiveFailures: number;
  firstSeenAt: string | null;
  lastEventAt: string | null;
  lastEventType: string | null;
  lastFailureAt: string | null;
  lastSuccessAt: string | null;
}

/** Options of the enrichment cartridge. */
export interface EnrichmentInit {
  /**
   * The entity an event is about. Default: `envelope.entity`, else its notification group key
   * (e.g. `system:worker=indexer`), else none (the event is passed on untouched).
   */
  entityOf?: (event: Envelope, ctx: CartridgeContext) => string | undefined;
  /** Failure or success, from the event. Default: by the last segment of the type name. */
  kindOf?: EventKindOf;
  /** Entities untouched for this long are forgotten (default 30 days). */
  retentionMs?: number;
  /** How often (in enriched events) to prune forgotten entities (default every 1,000). */
  pruneEvery?: number;
}

interface Row {
  events: number;
  failures: number;
  successes: number;
  streak: number;
  first_seen_at: string;
  last_event_at: string;
  last_event_type: string;
  last_failure_at: string | null;
  last_success_at: string | null;
}

interface Statements {
  get: Statement;
  put: Statement;
  prune: Statement;
}
const prepared = new WeakMap<Db, Statements>();

function statements(db: Db): Statements {
  let s = prepared.get(db);
  if (!s) {
    s = {
      get: db.prepare(
        `SELECT events, failures, successes, streak, first_seen_at, last_event_at, last_event_type, last_failure_at,
           last_success_at FROM entity_history WHERE entity = ?`,
      ),
      put: db.prepare(
        `INSERT INTO entity_history (entity, events, failures, successes, streak, first_seen_at, last_event_at,
           last_event_type, last_failure_at, last_success_at, touched)
         VALUES (@entity, 1, @f, @s, @f, @at, @at, @type, @failAt, @okAt, @touched)
         ON CONFLICT(entity) DO UPDATE SET events = events + 1, failures = failures + @f, successes = successes + @s,
           streak = CASE WHEN @s = 1 THEN 0 ELSE streak + @f END,
           last_event_at = @at, last_event_type = @type,
           last_failure_at = COALESCE(@failAt, last_failure_at), last_success_at = COALESCE(@okAt, last_success_at),
           touched = @touched`,
      ),
      prune: db.prepare(
        'DELETE FROM entity_history WHERE entity IN (SELECT entity FROM entity_history WHERE touched < ? ORDER BY touched LIMIT 1000)',
      ),
    };
    prepared.set(db, s);
  }
  return s;
}

/**
 * Builds the enrichment cartridge.
 * @example
 * const enrich = enrichment({ entityOf: (e) => e.entity ?? (e.payload.host as string | undefined) });
 */
export function enrichment(init: EnrichmentInit = {}): Cartridge {
  const kindOf = init.kindOf ?? defaultEventKind;
  const retention = init.retentionMs ?? 30 * 86_400_000;
  const pruneEvery = init.pruneEvery ?? 1000;
  const entityOf =
    init.entityOf ??
    ((event: Envelope, ctx: CartridgeContext) => {
      if (event.entity !== undefined && event.entity !== '') return event.entity;
      const entry = ctx.catalog.get(event.event);
      return entry ? (groupKeyOf(entry, event.payload) ?? undefined) : undefined;
    });
  let sincePrune = 0;

  return {
    name: 'enrichment',
    process(event, ctx) {
      const key = entityOf(event, ctx);
      if (key === undefined) return event;
      const s = statements(ctx.store.store.db);
      const row = s.get.get(key) as Row | undefined;
      const kind = kindOf(event);
      const at = event.timestamp;
      s.put.run({
        entity: key,
        f: kind === 'failure' ? 1 : 0,
        s: kind === 'success' ? 1 : 0,
        at,
        type: event.event,
        failAt: kind === 'failure' ? at : null,
        okAt: kind === 'success' ? at : null,
        touched: ctx.clock.now(),
      });
      if (++sincePrune >= pruneEvery) {
        sincePrune = 0;
        s.prune.run(ctx.clock.now() - retention);
      }
      const context: EntityContext = {
        key,
        eventsBefore: row?.events ?? 0,
        failuresBefore: row?.failures ?? 0,
        successesBefore: row?.successes ?? 0,
        consecutiveFailures: row?.streak ?? 0,
        firstSeenAt: row?.first_seen_at ?? null,
        lastEventAt: row?.last_event_at ?? null,
        lastEventType: row?.last_event_type ?? null,
        lastFailureAt: row?.last_failure_at ?? null,
        lastSuccessAt: row?.last_success_at ?? null,
      };
      return { ...event, context: { ...event.context, entity: context } };
    },
  };
}
