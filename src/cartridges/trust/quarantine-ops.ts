/**
 * Library side of `weft quarantine list|show|release|drop`. A release re-enters the pipeline
 * after trust: the processor runs the event with the `released` fact, and the trust evaluator
 * marks the row released in that same transaction, so a crash either releases and processes
 * the event or does neither.
 */
import type { BusEntry } from '../../bus/index.js';
import { IllegalTransitionError } from '../../errors/index.js';
import { RELEASED_FACT } from '../../pipeline/index.js';
import type { NodeStore, QuarantinedEvent, QuarantineFilter, QuarantineStatus } from '../../store/index.js';
import { QUARANTINE_ID_FACT } from './trust-evaluator.js';

/** Runs entries through the pipeline in one transaction: `node.processor.processBatch`. */
export type ProcessBatchFn = (
  entries: readonly BusEntry[],
  batchFacts?: Readonly<Record<string, unknown>>,
) => Promise<unknown>;

/** What release needs from the node. */
export interface QuarantineOpsDeps {
  ns: NodeStore;
  processBatch: ProcessBatchFn;
}

/**
 * Held (default) or decided quarantined events, newest first.
 * @example
 * for (const q of listQuarantined(node.ns)) console.log(q.id, q.eventType, q.source, q.reason);
 */
export function listQuarantined(
  ns: NodeStore,
  opts: { status?: QuarantineStatus | 'all'; limit?: number; before?: number; source?: string; eventType?: string } = {},
): QuarantinedEvent[] {
  const { status = 'held', ...rest } = opts;
  return ns.quarantine.list({ ...rest, ...(status === 'all' ? {} : { status }), limit: opts.limit ?? 50 });
}

/**
 * One quarantined event with its envelope; throws NotFoundError (WEFT_NOT_FOUND) for an unknown id.
 * @example
 * const q = showQuarantined(node.ns, 12); q.envelope.payload;
 */
export function showQuarantined(ns: NodeStore, id: number): QuarantinedEvent {
  return ns.quarantine.get(id);
}

/**
 * Releases a held event: it runs through every stage after trust (dedup, enrichment, ...),
 * flagged `trust:released`. Throws IllegalTransitionError when it is not held.
 * @example
 * await releaseQuarantined({ ns: node.ns, processBatch: (e, f) => node.processor.processBatch(e, f) }, 12);
 */
export async function releaseQuarantined(deps: QuarantineOpsDeps, id: number): Promise<QuarantinedEvent> {
  const row = deps.ns.quarantine.get(id);
  if (row.status !== 'held') {
    throw new IllegalTransitionError(`quarantined event ${id} is already ${row.status}`, {
      id,
      from: row.status,
    });
  }
  // The event is already in the local log (it was appended before trust held it), so the
  // entry is `logged: true`; `logged: false` would make the processor skip it as a duplicate.
  await deps.processBatch([{ position: `quarantine:${id}`, envelope: row.envelope, logged: true }], {
    [RELEASED_FACT]: true,
    [QUARANTINE_ID_FACT]: id,
  });
  const after = deps.ns.quarantine.get(id);
  if (after.status !== 'released') {
    throw new IllegalTransitionError(`quarantined event ${id} was not released (now ${after.status})`, {
      id,
      from: after.status,
    });
  }
  return after;
}

/**
 * Drops a held event for good. Throws IllegalTransitionError when it is not held.
 * @example
 * await dropQuarantined(node.ns, 12);
 */
export async function dropQuarantined(ns: NodeStore, id: number): Promise<QuarantinedEvent> {
  return ns.store.write(() => ns.quarantine.decide(id, 'dropped'));
}

/**
 * Drops every held event matching the filter (e.g. one source's, after a flood); returns how many.
 * @example
 * await dropQuarantinedWhere(node.ns, { source: 'noisy-bot' });
 */
export async function dropQuarantinedWhere(ns: NodeStore, filter: Omit<QuarantineFilter, 'status'>): Promise<number> {
  return ns.store.write(() => ns.quarantine.dropHeld(filter));
}

/** Held events released per transaction by {@link releaseQuarantinedWhere}. */
const RELEASE_CHUNK = 500;

/**
 * Releases every held event matching the filter, oldest first, in transactions of 500 (each
 * as one release: the events go on after trust, flagged `trust:released`). `onProgress` is
 * called after each; returns how many were released.
 * @example
 * await releaseQuarantinedWhere({ ns: node.ns, processBatch: (e, f) => node.processor.processBatch(e, f) }, { source: 'importer' });
 */
export async function releaseQuarantinedWhere(
  deps: QuarantineOpsDeps,
  filter: Omit<QuarantineFilter, 'status'>,
  onProgress?: (released: number) => void,
): Promise<number> {
  let after = 0;
  let released = 0;
  for (;;) {
    const ids = deps.ns.quarantine.heldIds(filter, after, RELEASE_CHUNK);
    if (ids.length === 0) return released;
    const entries: BusEntry[] = ids.map((id) => ({ position: `quarantine:${id}`, envelope: deps.ns.quarantine.get(id).envelope, logged: true, facts: { [QUARANTINE_ID_FACT]: id } }));
    await deps.processBatch(entries, { [RELEASED_FACT]: true });
    released += ids.length;
    after = ids[ids.length - 1] as number;
    onProgress?.(released);
  }
}
