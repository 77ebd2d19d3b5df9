import { type CartridgeFactory, type CartridgeStores, IDEMPOTENCY_FACT, INGRESS_FACT, type IngressFact } from '../pipeline/index.js';

/**
 * Drops an event whose idempotency key was already processed. The key is recorded in the
 * batch transaction, so a crash before commit forgets it together with the effects.
 *
 * A peer's event is judged by a key the node derives itself, never by the one it brings: the
 * type's own key (its idempotency fields, as emit derives it), or for a type without one the
 * key it brings within its origin's namespace. Otherwise a peer could send any event under the
 * key of another's (`…todo.created:ship`) and have that one dropped here as a duplicate. The
 * envelope itself is left as it came (its copies on other nodes stay byte for byte the same);
 * the key judged by is a fact (IDEMPOTENCY_FACT) its notification takes.
 */
export function dedupCartridge(): CartridgeFactory<Pick<CartridgeStores, 'dedup'>> {
  return ({ dedup }) => ({
    name: 'dedup',
    process(event, ctx) {
      let key = event.idempotencyKey;
      const ingress = ctx.facts.get(INGRESS_FACT) as IngressFact | undefined;
      if (ingress) {
        const own = ctx.catalog.has(event.event) ? ctx.catalog.idempotencyKey(event.event, event.payload) : undefined;
        key = own ?? (key === undefined ? undefined : `${event.origin ?? ingress.peerNodeId}|${key}`);
        ctx.facts.set(IDEMPOTENCY_FACT, key);
      }
      if (key === undefined) return event;
      return dedup.claim(key, event.id, ctx.clock.now()) ? event : null;
    },
  });
}
