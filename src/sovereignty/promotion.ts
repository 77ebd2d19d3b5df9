import { CARTRIDGE_EVENTS } from '../catalog/index.js';
import type { Envelope } from '../envelope/index.js';
import type { CartridgeContext, CartridgeFactory, CartridgeStores } from '../pipeline/index.js';
import type { NodeStore } from '../store/index.js';
import type { CartridgeRuntime } from './runtime.js';

/** Pipeline stage name of the promotion tracker. */
export const PROMOTION_STAGE = 'promotion-tracker';

/** User options of the promotion tracker. */
export interface PromotionTrackerInit {
  /** `autonomy.promotion_threshold`: invocations before a promotion is suggested. Default 10. */
  threshold?: number;
}

/** Creates the table that remembers which cartridge versions were already suggested. */
export function ensurePromotionSchema(db: NodeStore['store']['db']): void {
  db.exec(`CREATE TABLE IF NOT EXISTS cartridge_promotions (
    cartridge_name TEXT NOT NULL,
    version TEXT NOT NULL,
    invocations INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    suggested_at TEXT NOT NULL,
    PRIMARY KEY (cartridge_name, version)
  )`);
}

/**
 * The promotion tracker stage (after the mesh publisher). It observes `cartridge.invoked` and
 * reads `cartridge_stats[<name>]`, which the cartridge runtime already increments once per
 * successful run (so nothing is counted twice). When the count reaches the threshold it emits
 * one actionable `cartridge.promotion_suggested` for that cartridge version; the suggestion is
 * recorded in the batch's transaction, so it is emitted exactly once, however late or
 * repeated the invocation events are.
 * @example
 * ensurePromotionSchema(node.ns.store.db);
 * node.pipeline.replace([...node.pipeline.cartridges, promotionTracker({ threshold: 10 })(node.ns)]);
 */
export function promotionTracker(init: PromotionTrackerInit = {}): CartridgeFactory<Pick<CartridgeStores, 'store'>> {
  const threshold = Math.max(1, init.threshold ?? 10);
  return ({ store }) => ({
    name: PROMOTION_STAGE,
    process(event: Envelope, ctx: CartridgeContext): Envelope {
      if (event.event !== CARTRIDGE_EVENTS.invoked) return event;
      const p = event.payload as { cartridge?: unknown; version?: unknown };
      if (typeof p.cartridge !== 'string' || typeof p.version !== 'string') return event;
      const db = store.db;
      const count =
        (db.prepare('SELECT invocation_count FROM cartridge_stats WHERE cartridge_name = ?').pluck().get(p.cartridge) as
          | number
          | undefined) ?? 0;
      if (count < threshold) return event;
      const done = db
        .prepare('SELECT 1 FROM cartridge_promotions WHERE cartridge_name = ? AND version = ?')
        .get(p.cartridge, p.version);
      if (done) return event;
      const status = db.prepare('SELECT status FROM cartridges WHERE name = ?').pluck().get(p.cartridge) as string | undefined;
      const suggestion = ctx.emit({
        event: CARTRIDGE_EVENTS.promotionSuggested,
        source: PROMOTION_STAGE,
        visibility: 'local',
        description: `cartridge ${p.cartridge} ${p.version} ran ${count} times (threshold ${threshold})${status === 'alpha' ? ': promote it to the approved pipeline?' : ''}`,
        payload: { cartridge: p.cartridge, version: p.version, invocations: count, threshold, ...(status ? { status } : {}) },
      });
      db.prepare(
        `INSERT INTO cartridge_promotions (cartridge_name, version, invocations, event_id, suggested_at)
         VALUES (?, ?, ?, ?, ?)`,
      ).run(p.cartridge, p.version, count, suggestion.id, ctx.now);
      return event;
    },
  });
}

/**
 * The human's answer to a `cartridge.promotion_suggested` notification: approving it for an
 * alpha cartridge promotes it into the approved pipeline; otherwise nothing changes. Answers
 * what it did, or undefined for notifications of other types.
 * @example
 * await resolvePromotion({ ns: node.ns, runtime }, notificationId, true); // 'promoted'
 */
export async function resolvePromotion(
  deps: { ns: NodeStore; runtime: Pick<CartridgeRuntime, 'promote' | 'registry'> },
  notificationId: number,
  approve: boolean,
): Promise<'promoted' | 'acknowledged' | undefined> {
  const n = deps.ns.notifications.get(notificationId);
  if (n.eventType !== CARTRIDGE_EVENTS.promotionSuggested) return undefined;
  const name = String(n.payload.cartridge ?? '');
  if (approve && deps.runtime.registry.find(name)?.status === 'alpha') {
    await deps.runtime.promote(name);
    return 'promoted';
  }
  return 'acknowledged';
}
