/**
 * Whether an event reports a failure or a success, from its type name. Enrichment counts
 * both per entity; correlation looks for failure cascades. One definition so both agree.
 */
import type { Envelope } from '../envelope/index.js';

/** What an event says about its entity's health. */
export type EventKind = 'failure' | 'success' | 'other';

/** Decides an event's kind; pass your own to enrichment and correlation to override. */
export type EventKindOf = (event: Envelope) => EventKind;

// The last segment of the type name decides: `system.worker.crashed`, `ci.build.failed`,
// `deploy.rollout.succeeded`. Segments are matched whole to avoid `errors_cleared` surprises.
const FAILURE = new Set([
  'failed',
  'failure',
  'crashed',
  'crash',
  'error',
  'errored',
  'timeout',
  'timed_out',
  'down',
  'aborted',
]);
const SUCCESS = new Set([
  'succeeded',
  'success',
  'passed',
  'completed',
  'recovered',
  'healthy',
  'up',
  'ok',
  'delivered',
  'restored',
]);

const cache = new Map<string, EventKind>();

/**
 * The default kind: by the last segment of the type name.
 * @example
 * defaultEventKind({ event: 'system.worker.crashed' } as Envelope); // 'failure'
 */
export const defaultEventKind: EventKindOf = (event) => {
  const type = event.event;
  let k = cache.get(type);
  if (k === undefined) {
    const last = type.slice(type.lastIndexOf('.') + 1).replace(/-/g, '_');
    k = FAILURE.has(last) ? 'failure' : SUCCESS.has(last) ? 'success' : 'other';
    if (cache.size < 10_000) cache.set(type, k);
  }
  return k;
};
