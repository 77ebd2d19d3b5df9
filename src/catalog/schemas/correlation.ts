/**
 * Types the system cartridges synthesize: correlation's higher-order events (bursts, failure
 * cascades) and the trust evaluator's throttle notice. All are `system` domain, operational
 * level, local visibility: they describe this node's view of its traffic.
 */
import { Type } from '@sinclair/typebox';
import type { Catalog } from '../catalog.js';

/** Type names the correlation cartridge emits; it never counts them itself. */
export const BURST_DETECTED = 'system.burst.detected';
export const FAILURE_CASCADE = 'system.failure.cascade';
/** Emitted once per throttle episode of a flooding source. */
export const TRUST_THROTTLED = 'system.trust.throttled';

/** Registers the correlation and trust types. */
export function registerCorrelationTypes(catalog: Catalog): void {
  catalog.register({
    control: true,
    type: BURST_DETECTED,
    description: 'Many events of one type arrived within the burst window',
    domain: 'system',
    defaultLevel: 'operational',
    payload: Type.Object({
      eventType: Type.String({ maxLength: 200 }),
      count: Type.Integer({ minimum: 0 }),
      threshold: Type.Integer({ minimum: 1 }),
      windowMs: Type.Integer({ minimum: 1 }),
      windowStart: Type.String({ maxLength: 40 }),
      detectedAt: Type.String({ maxLength: 40 }),
    }),
    // One notification per type; a burst in a later window updates it and makes it unseen again.
    lifecycle: { creates: true, updates: true, groupKey: 'eventType', meaningfulFields: ['detectedAt'] },
  });
  catalog.register({
    control: true,
    type: FAILURE_CASCADE,
    description: 'Failures hit several entities or computers within the cascade window',
    domain: 'system',
    defaultLevel: 'operational',
    payload: Type.Object({
      failures: Type.Integer({ minimum: 0 }),
      entities: Type.Array(Type.String({ maxLength: 500 }), { maxItems: 50 }),
      computers: Type.Array(Type.String({ maxLength: 200 }), { maxItems: 50 }),
      entityCount: Type.Integer({ minimum: 0 }),
      computerCount: Type.Integer({ minimum: 0 }),
      windowMs: Type.Integer({ minimum: 1 }),
      windowStart: Type.String({ maxLength: 40 }),
      detectedAt: Type.String({ maxLength: 40 }),
      triggerEventType: Type.String({ maxLength: 200 }),
    }),
    lifecycle: { creates: true },
  });
  catalog.register({
    control: true,
    type: TRUST_THROTTLED,
    description: 'A source exceeded its event rate; its events are quarantined until it slows down',
    domain: 'system',
    defaultLevel: 'operational',
    payload: Type.Object({
      subject: Type.String({ maxLength: 300, description: 'peer node id, or the local source name' }),
      source: Type.String({ maxLength: 200 }),
      peer: Type.Optional(Type.String({ maxLength: 200 })),
      perSecond: Type.Number({ minimum: 0 }),
      burst: Type.Number({ minimum: 0 }),
      since: Type.String({ maxLength: 40 }),
    }),
    lifecycle: { creates: true, updates: true, groupKey: 'subject', meaningfulFields: ['since'] },
  });
}
