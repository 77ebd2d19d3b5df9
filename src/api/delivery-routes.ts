import { Type } from '@sinclair/typebox';
import type { HttpApp } from './http.js';
import { countDeliveries, type DeliveryStatus, listDeliveries } from '../delivery/index.js';
import type { Store } from '../store/index.js';

const DeliveriesQuery = Type.Object({
  channel: Type.Optional(
    Type.String({ minLength: 1, maxLength: 40, description: 'telegram, discord, whatsapp or webhook' }),
  ),
  status: Type.Optional(Type.Union([Type.Literal('pending'), Type.Literal('sent'), Type.Literal('failed')])),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  cursor: Type.Optional(Type.Integer({ minimum: 1, description: 'nextCursor of the previous page' })),
});

/**
 * Routes for the delivery rows: what each channel sent, what waits and what it gave up on and
 * why (the error is stored without secrets).
 * @example
 * buildApi(opts, { ..., extraRoutes: [deliveryRoutes({ store: node.ns.store })] });
 * // GET /api/deliveries?status=failed → { items: [...], nextCursor, counts: { webhook: { pending, sent, failed } } }
 */
export function deliveryRoutes({ store }: { store: Store }): (app: HttpApp) => void {
  return (app) => {
    app.get('/api/deliveries', { schema: { querystring: DeliveriesQuery } }, async (req) => {
      const q = req.query as { channel?: string; status?: DeliveryStatus; limit?: number; cursor?: number };
      const limit = q.limit ?? 50;
      const items = listDeliveries(store, {
        limit,
        ...(q.channel !== undefined ? { channel: q.channel } : {}),
        ...(q.status !== undefined ? { status: q.status } : {}),
        ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
      });
      const last = items[items.length - 1];
      return {
        items,
        nextCursor: items.length === limit && last ? last.id : null,
        counts: countDeliveries(store),
      };
    });
  };
}
