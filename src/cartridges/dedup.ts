import type { CartridgeFactory, CartridgeStores } from '../pipeline/index.js';

/**
 * Drops an event whose idempotency key was already processed. The key is recorded in the
 * batch transaction, so a crash before commit forgets it together with the effects.
 */
export function dedupCartridge(): CartridgeFactory<Pick<CartridgeStores, 'dedup'>> {
  return ({ dedup }) => ({
    name: 'dedup',
    process(event, ctx) {
      const key = event.idempotencyKey;
      if (key === undefined) return event;
      return dedup.claim(key, event.id, ctx.clock.now()) ? event : null;
    },
  });
}
