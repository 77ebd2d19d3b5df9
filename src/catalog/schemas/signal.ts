/**
 * signal.*: the signal pipeline's taxonomy, under TeleClaude's names and payload fields (its
 * producers and consumers work unchanged): an ingested feed item, a cluster of related items, a
 * synthesis of a cluster; and a source that was given up on, or that brings far more new items
 * than a feed does.
 */
import { Type } from '@sinclair/typebox';
import type { Catalog } from '../catalog.js';

/** Type names, so the signal service does not spell them twice. */
export const SIGNAL_EVENTS = {
  received: 'signal.ingest.received',
  clusterFormed: 'signal.cluster.formed',
  synthesisReady: 'signal.synthesis.ready',
  sourceDisabled: 'signal.source.disabled',
  sourceFlooding: 'signal.source.flooding',
} as const;

const text = (max: number) => Type.String({ maxLength: max });
const tags = Type.Array(Type.String({ maxLength: 100 }), { maxItems: 64 });
const ids = Type.Array(Type.String({ maxLength: 2000 }), { maxItems: 1000 });
/** TeleClaude's producers send more than we name (an embedding, AI fields): kept, not refused. */
const open = { additionalProperties: true } as const;

/** Registers the signal.* types. */
export function registerSignalTypes(catalog: Catalog): void {
  catalog.register({
    type: SIGNAL_EVENTS.received,
    description: 'A single feed item was ingested and normalised',
    domain: 'signal',
    defaultLevel: 'operational',
    defaultVisibility: 'local',
    payload: Type.Object(
      {
        source_id: Type.String({ minLength: 1, maxLength: 200 }),
        item_url: text(2000),
        raw_title: text(500),
        tags: Type.Optional(tags),
        published_at: Type.Optional(text(64)),
        fetched_at: Type.Optional(text(64)),
        summary: Type.Optional(text(1000)),
        dedup_key: Type.Optional(text(300)),
      },
      open,
    ),
    idempotencyFields: ['source_id', 'item_url'],
  });
  catalog.register({
    type: SIGNAL_EVENTS.clusterFormed,
    description: 'A group of related ingested signals formed a cluster',
    domain: 'signal',
    defaultLevel: 'operational',
    defaultVisibility: 'local',
    payload: Type.Object(
      {
        cluster_id: Type.String({ minLength: 1, maxLength: 100 }),
        item_count: Type.Optional(Type.Integer({ minimum: 0 })),
        event_ids: Type.Optional(ids),
        item_urls: Type.Optional(ids),
        source_ids: Type.Optional(ids),
        tags: Type.Optional(tags),
        title: Type.Optional(text(500)),
        burst: Type.Optional(Type.Boolean()),
        novelty: Type.Optional(Type.Boolean()),
        quality: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
        window_start: Type.Optional(text(64)),
        window_end: Type.Optional(text(64)),
      },
      open,
    ),
    idempotencyFields: ['cluster_id'],
  });
  catalog.register({
    type: SIGNAL_EVENTS.synthesisReady,
    description: 'A cluster has been synthesised into a structured artifact',
    domain: 'signal',
    defaultLevel: 'workflow',
    defaultVisibility: 'local',
    payload: Type.Object(
      {
        cluster_id: Type.String({ minLength: 1, maxLength: 100 }),
        title: Type.Optional(text(500)),
        synthesis: Type.Object(
          {
            summary: text(10_000),
            key_points: Type.Array(text(2000), { maxItems: 32 }),
            sources: Type.Array(
              Type.Object({ source_id: text(200), url: text(2000), title: Type.Optional(text(500)) }, open),
              { maxItems: 200 },
            ),
            confidence: Type.Number({ minimum: 0, maximum: 1 }),
          },
          open,
        ),
        summarizer: Type.Optional(text(300)),
        tags: Type.Optional(tags),
      },
      open,
    ),
    idempotencyFields: ['cluster_id'],
    lifecycle: { creates: true, meaningfulFields: ['synthesis'] },
    actionable: true,
  });
  catalog.register({
    type: SIGNAL_EVENTS.sourceDisabled,
    description: 'A signal source was given up on after repeated parse errors (fix the feed or its URL, then weft signals enable)',
    domain: 'signal',
    defaultLevel: 'operational',
    defaultVisibility: 'local',
    payload: Type.Object({
      source_id: Type.String({ minLength: 1, maxLength: 200 }),
      url: text(2000),
      reason: text(2000),
      parse_errors: Type.Integer({ minimum: 0 }),
      disabled_at: Type.Optional(
        Type.String({ maxLength: 64, description: 'when it was given up on: enabled and given up on again is a new notification' }),
      ),
    }),
    idempotencyFields: ['source_id', 'reason', 'disabled_at'],
    lifecycle: { creates: true },
  });
  catalog.register({
    type: SIGNAL_EVENTS.sourceFlooding,
    description:
      'A signal source brings far more new items than a feed does: every item new poll after poll (rotating GUIDs and links), or its day\'s budget of new items spent; it is polled less often and what is over the budget is skipped',
    domain: 'signal',
    defaultLevel: 'operational',
    defaultVisibility: 'local',
    payload: Type.Object({
      source_id: Type.String({ minLength: 1, maxLength: 200 }),
      url: text(2000),
      reason: Type.Union([Type.Literal('all_new'), Type.Literal('daily_budget')]),
      /** When this episode began (the poll that flagged it, the start of the day whose budget was spent): one notification per episode. */
      since: text(64),
      new_items: Type.Integer({ minimum: 0, description: 'new items admitted by the poll that raised it' }),
      skipped: Type.Integer({ minimum: 0, description: 'new items of that poll over the budget, not admitted' }),
      all_new_polls: Type.Integer({ minimum: 0, description: 'polls in a row on which every item was new' }),
      new_today: Type.Integer({ minimum: 0, description: 'new items admitted in the current day' }),
      next_poll_at: text(64),
    }),
    idempotencyFields: ['source_id', 'reason', 'since'],
    lifecycle: { creates: true },
  });
}
