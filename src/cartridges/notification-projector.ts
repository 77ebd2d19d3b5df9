import { type CartridgeFactory, type CartridgeStores, IDEMPOTENCY_FACT } from '../pipeline/index.js';
import { groupKeyOf } from '../store/index.js';

/** Fact key a classifier sets to keep an event out of notifications. */
export const TREATMENT_FACT = 'treatment';
export type Treatment = 'notify' | 'index' | 'signal';

/**
 * Projects events into notifications by their type's lifecycle: creates, updates the open
 * notification of the group (a meaningful change makes it unseen again), or resolves it.
 */
export function notificationProjector(): CartridgeFactory<Pick<CartridgeStores, 'notifications'>> {
  return (deps) => ({
    name: 'notification-projection',
    process(event, ctx) {
      const entry = ctx.catalog.get(event.event);
      const lc = entry?.lifecycle;
      if (!entry || !lc) return event;
      const treatment = ctx.facts.get(TREATMENT_FACT) as Treatment | undefined;
      if (treatment !== undefined && treatment !== 'notify') return event;
      const ns = deps.notifications;
      const group = groupKeyOf(entry, event.payload, event.domain);
      if (lc.resolves) {
        const open = group ? ns.findOpenByGroup(group) : undefined;
        if (open) ctx.notify(ns.resolveFromEvent(open.id, event, ctx.now));
        return event;
      }
      if (lc.resolvesUnless && group && !holdsAny(event.payload, lc.resolvesUnless)) {
        const open = ns.findOpenByGroup(group);
        if (open) {
          ctx.notify(ns.resolveFromEvent(open.id, event, ctx.now));
          return event;
        }
      }
      if (lc.updates && group) {
        const open = ns.findOpenByGroup(group);
        if (open) {
          ctx.notify(ns.updateFromEvent(open.id, open.payload, event, entry, ctx.now));
          return event;
        }
      }
      // A peer's event: the key the dedup stage judged it by, not the one it brought.
      const key = ctx.facts.has(IDEMPOTENCY_FACT) ? (ctx.facts.get(IDEMPOTENCY_FACT) as string | undefined) : event.idempotencyKey;
      if (lc.creates || lc.updates) ctx.notify(ns.createFromEvent(event, entry, ctx.now, key));
      return event;
    },
  });
}

/** Whether one of the named payload fields holds one of its listed values. */
function holdsAny(payload: Record<string, unknown>, unless: Readonly<Record<string, readonly unknown[]>>): boolean {
  for (const field in unless) if ((unless[field] as readonly unknown[]).includes(payload[field])) return true;
  return false;
}
