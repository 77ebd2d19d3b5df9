/**
 * Classification: decides each event's treatment from its type's schema and its level.
 * `notify`: it drives a notification (its type declares a lifecycle); `index`: it is kept and
 * searchable but notifies nobody; `signal`: low-level telemetry for aggregation only. The
 * decision goes into `ctx.facts` (TREATMENT_FACT); the notification projection honours it.
 */
import type { Envelope } from '../envelope/index.js';
import type { CartridgeContext, CartridgeFactory } from '../pipeline/index.js';
import { TREATMENT_FACT, type Treatment } from './notification-projector.js';

/** Options of the classification cartridge. */
export interface ClassificationInit {
  /**
   * Lifecycle events below this level are indexed instead of notifying (default 0: every
   * level). Events that resolve a notification always notify, so nothing stays open forever.
   */
  minNotifyLevel?: number;
  /** Events without a lifecycle at or above this level are indexed, below it signals (default 1, operational). */
  minIndexLevel?: number;
  /** Fixed treatments by type; keys may end in `*` to match a prefix. */
  overrides?: Readonly<Record<string, Treatment>>;
  /** Treatment of types the catalog does not know (default 'index': kept, never notifying). */
  unknownType?: Treatment;
}

/**
 * Builds the classification cartridge.
 * @example
 * const classify = classification({ minNotifyLevel: 1, overrides: { 'metrics.*': 'signal' } });
 */
export function classification(init: ClassificationInit = {}): CartridgeFactory<object> {
  const minNotify = init.minNotifyLevel ?? 0;
  const minIndex = init.minIndexLevel ?? 1;
  const unknown = init.unknownType ?? 'index';
  const overrides = Object.entries(init.overrides ?? {});
  // Treatment depends only on (type, level): cache it.
  const cache = new Map<string, Treatment>();

  const classify = (event: Envelope, ctx: CartridgeContext): Treatment => {
    const hit = overrides.find(([k]) =>
      k.endsWith('*') ? event.event.startsWith(k.slice(0, -1)) : k === event.event,
    );
    if (hit) return hit[1];
    const entry = ctx.catalog.get(event.event);
    if (!entry) return unknown;
    const lc = entry.lifecycle;
    if (lc && (lc.resolves || ((lc.creates || lc.updates) && event.level >= minNotify))) return 'notify';
    return event.level >= minIndex ? 'index' : 'signal';
  };

  return () => ({
    name: 'classification',
    process(event, ctx) {
      const key = `${event.level}|${event.event}`;
      let t = cache.get(key);
      if (t === undefined) {
        t = classify(event, ctx);
        if (cache.size < 10_000) cache.set(key, t);
      }
      ctx.facts.set(TREATMENT_FACT, t);
      return event;
    },
  });
}
