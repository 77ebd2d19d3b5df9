/**
 * Enrichment: adds what this node remembers about an event's entity to `envelope.context`
 * (how many times it failed before, when it last succeeded, ...). The memory is one row of
 * running counters per entity, read and updated by primary key: never a scan of the log.
 */
import { type Envelope, envelopeWith } from '../envelope/index.js';
import type { CartridgeContext, CartridgeFactory, CartridgeStores } from '../pipeline/index.js';
import { groupKeyOf, type Db } from '../store/index.js';
import { defaultEventKind, type EventKindOf } from './event-kind.js';

/**
 * What enrichment adds under `context.entity`. Counts are of the tracked events before this one
 * (failures and successes by default). Present on every failure or success, and on any other
 * event whose entity has a history.
 */
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
  /**
   * Which events update the history: 'health' (default) only failures and successes, so a
   * stream of routine events about ever-new entities costs one index lookup each; 'all' every
   * event with an entity (then `eventsBefore` counts every event).
   */
  track?: 'health' | 'all';
  /** Keep the set of entities with a history in memory up to this many (default 100,000). */
  maxKnownEntities?: number;
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

type Statements = ReturnType<typeof statements>;

/** The cartridge's statements, prepared once when it is given its store. */
function statements(db: Db) {
  return {
    get: db.prepare(
      `SELECT events, failures, successes, streak, first_seen_at, last_event_at, last_event_type, last_failure_at,
         last_success_at FROM entity_history WHERE entity = ?`,
    ),
    put: db.prepare(
      `INSERT INTO entity_history (entity, events, failures, successes, streak, first_seen_at, last_event_at,
         last_event_type, last_failure_at, last_success_at, touched)
       VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(entity) DO UPDATE SET events = events + 1, failures = failures + excluded.failures,
         successes = successes + excluded.successes,
         streak = CASE WHEN excluded.successes = 1 THEN 0 ELSE streak + excluded.failures END,
         last_event_at = excluded.last_event_at, last_event_type = excluded.last_event_type,
         last_failure_at = COALESCE(excluded.last_failure_at, last_failure_at),
         last_success_at = COALESCE(excluded.last_success_at, last_success_at),
         touched = excluded.touched`,
    ),
    keys: db.prepare('SELECT entity FROM entity_history').pluck(),
    count: db.prepare('SELECT COUNT(*) FROM entity_history').pluck(),
    prune: db.prepare(
      'DELETE FROM entity_history WHERE entity IN (SELECT entity FROM entity_history WHERE touched < ? ORDER BY touched LIMIT 1000)',
    ),
  };
}

/**
 * Builds the enrichment cartridge.
 * @example
 * const enrich = enrichment({ entityOf: (e) => e.entity ?? (e.payload.host as string | undefined) });
 */
export function enrichment(init: EnrichmentInit = {}): CartridgeFactory<Pick<CartridgeStores, 'store'>> {
  const kindOf = init.kindOf ?? defaultEventKind;
  const retention = init.retentionMs ?? 30 * 86_400_000;
  const pruneEvery = init.pruneEvery ?? 1000;
  const entityOf =
    init.entityOf ??
    ((event: Envelope, ctx: CartridgeContext) => {
      if (event.entity !== undefined && event.entity !== '') return event.entity;
      const entry = ctx.catalog.get(event.event);
      return entry ? (groupKeyOf(entry, event.payload, event.domain) ?? undefined) : undefined;
    });
  const trackAll = init.track === 'all';
  const maxKnown = init.maxKnownEntities ?? 100_000;
  let sincePrune = 0;
  // Which entities may have a history: a superset (a rolled-back or pruned key only costs a
  // lookup), loaded once per database, so routine events about new entities cost no SQL at all.
  let known: Set<string> | undefined;
  let knownDb: Db | undefined;
  const mayHaveHistory = (db: Db, s: Statements, key: string): boolean => {
    if (knownDb !== db) {
      knownDb = db;
      known = (s.count.get() as number) <= maxKnown ? new Set(s.keys.all() as string[]) : undefined;
    }
    return known === undefined || known.has(key);
  };
  const remember = (key: string) => {
    if (!known) return;
    if (known.size >= maxKnown) known = undefined;
    else known.add(key);
  };

  return ({ store }) => {
    const db = store.db;
    const s = statements(db);
    return {
      name: 'enrichment',
      process(event, ctx) {
        const key = entityOf(event, ctx);
        if (key === undefined) return event;
        const kind = kindOf(event);
        const track = kind !== 'other' || trackAll;
        if (!track && !mayHaveHistory(db, s, key)) return event;
        const row = s.get.get(key) as Row | undefined;
        if (track) {
          remember(key);
          const at = event.timestamp;
          const f = kind === 'failure' ? 1 : 0;
          const ok = kind === 'success' ? 1 : 0;
          s.put.run(key, f, ok, f, at, at, event.event, f ? at : null, ok ? at : null, ctx.clock.now());
          if (++sincePrune >= pruneEvery) {
            sincePrune = 0;
            s.prune.run(ctx.clock.now() - retention);
          }
        } else if (!row) {
          // Nothing remembered and nothing to remember: pass the event on untouched.
          return event;
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
        return envelopeWith(event, { context: { ...event.context, entity: context } });
      },
    };
  };
}
