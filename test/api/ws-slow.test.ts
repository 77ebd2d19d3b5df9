import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { HttpApp } from '../../src/api/http.js';
import { WebSocket } from 'ws';
import { buildApi } from '../../src/api/server.js';
import { WeftClient } from '../../src/client/index.js';
import type { NotificationHub } from '../../src/api/hub.js';
import type { WeftNode } from '../../src/node/index.js';
import { silentLogger } from '../../src/util/logger.js';
import { startTestNode } from '../helpers/node.js';

const TOKEN = 'ws-test-token';
let app: HttpApp;
let hub: NotificationHub;
let node: WeftNode;
let close: () => Promise<void>;
let url: string;

before(async () => {
  const t = await startTestNode();
  node = t.node;
  close = t.close;
  // The shipped limit (1 MiB unsent per client), not a shrunk one.
  const api = await buildApi({ token: TOKEN }, { node, logger: silentLogger });
  app = api.app;
  hub = api.hub;
  node.onCommitted((b) => hub.publish(b.changes));
  const addr = await app.listen({ host: '127.0.0.1', port: 0 });
  url = addr.replace('http', 'ws');
});
after(async () => {
  await app.close();
  await close();
});

function connect(): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url}/ws`, { headers: { authorization: `Bearer ${TOKEN}` } });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

test('a subscriber that stops reading is cut off with a reason; the pipeline and a reading subscriber go on', async () => {
  const slow = await connect();
  const fast = await connect();
  let fastGot = 0;
  let slowClosed: { code: number; reason: string } | undefined;
  const fastOrder: string[] = [];
  fast.on('message', (d) => {
    const m = JSON.parse(String(d)) as { type: string; notification?: { payload: { eventId: string } } };
    if (m.type !== 'notification') return;
    fastGot++;
    fastOrder.push(m.notification?.payload.eventId ?? '?');
  });
  slow.on('close', (code, reason) => (slowClosed = { code, reason: String(reason) }));
  const subscribed = (ws: WebSocket) =>
    new Promise<void>((r) => {
      ws.once('message', () => r());
      ws.send(JSON.stringify({ type: 'subscribe', filter: {} }));
    });
  await subscribed(slow);
  await subscribed(fast);
  // the slow client's socket stops reading: the server's send buffer for it grows
  (slow as unknown as { _socket: { pause(): void } })._socket.pause();
  // 16 MB in all, more than the kernel's socket buffers and the 1 MiB limit together; at most
  // 800 KB per commit, so a client that reads keeps below the limit.
  const N = 2000;
  const big = 'x'.repeat(8000);
  for (let i = 0; i < N; i += 100) {
    if (hub.disconnectedSlow > 0) (slow as unknown as { _socket: { resume(): void } })._socket.resume();
    await node.emitMany(
      Array.from({ length: 100 }, (_, k) => ({ event: 'system.cartridge.failed', payload: { cartridge: 'c', eventId: `e${i + k}`, eventType: 't.t', error: big } })),
    );
  }
  // The slow client reads again as soon as it was cut off: it gets the close frame and its reason.
  (slow as unknown as { _socket: { resume(): void } })._socket.resume();
  for (let i = 0; i < 1200 && (fastGot < N || !slowClosed); i++) await new Promise((r) => setTimeout(r, 25));
  assert.equal(hub.disconnectedSlow, 1, 'the slow subscriber was disconnected, the reading one not');
  assert.equal(fastGot, N, 'the reading subscriber got every change');
  // A batch's pushes leave corked, flushed every 256 KiB (800 KB per commit here): in order.
  assert.deepEqual(fastOrder, Array.from({ length: N }, (_, i) => `e${i}`), 'the pushes arrived in commit order');
  assert.equal(node.ns.notifications.count(), N, 'the pipeline committed everything');
  assert.equal(slowClosed?.code, 4008);
  assert.match(slowClosed?.reason ?? '', /slow consumer/);
  fast.close();
});

test("the client's subscription: a filter the node refuses rejects ready, and a close it did not ask for throws after the changes received", async () => {
  const api = await buildApi({ token: TOKEN }, { node, logger: silentLogger });
  const off = node.onCommitted((b) => api.hub.publish(b.changes));
  const addr = await api.app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const client = new WeftClient({ url: addr, token: TOKEN });
    // `limit` is a list parameter, not a subscription filter: refused at once, not a silent wait.
    const bad = client.subscribe({ limit: 5 } as never);
    await assert.rejects(bad.ready, (err: Error & { code?: string }) => {
      assert.equal(err.code, 'WEFT_VALIDATION');
      assert.match(err.message, /^subscribe refused: /);
      return true;
    });

    const sub = client.subscribe({ eventType: 'system.worker.crashed' });
    await sub.ready;
    await node.emit({ event: 'system.worker.crashed', payload: { worker: 'before-stop', error: 'e', restarts: 1 } });
    const got: string[] = [];
    const reading = (async () => {
      for await (const p of sub) {
        got.push(String(p.notification.payload.worker));
        if (got.length === 1) api.hub.closeAll(); // the node stops under the subscriber (as the daemon stop does)
      }
    })();
    await assert.rejects(reading, (err: Error & { code?: string }) => {
      assert.equal(err.code, 'WEFT_STOPPED');
      assert.match(err.message, /subscription ended by the node: 1001 node shutting down/);
      return true;
    });
    assert.deepEqual(got, ['before-stop'], 'the change received before the stop came first');
    assert.match(sub.closedReason ?? '', /^1001 /);
  } finally {
    off?.();
    await api.app.close();
  }
});
