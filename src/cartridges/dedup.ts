import type { Cartridge } from '../pipeline/index.js';

/**
 * Drops an event whose idempotency key was already processed. The key is recorded in the
 * batch transaction, so a crash before commit forgets it together with the effects.
 */
export function dedupCartridge(): Cartridge {
  return {
    name: 'dedup',
    process(event, ctx) {
      const key = event.idempotencyKey;
      if (key === undefined) return event;
      return ctx.store.dedup.claim(key, event.id, ctx.clock.now()) ? event : null;
    },
  };
}
