/**
 * Every channel against endpoints that misbehave: plain node:http servers on 127.0.0.1 (the
 * remote end, not a mock of our code) that redirect, refuse every message, or echo the URL's
 * secrets back, in front of the real engine and a real node's SQLite file. Time is a
 * ManualClock that the injected sleep advances (or a sleep that never ends).
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import {
  type DeliveryChannel,
  type DeliveryDeps,
  DeliveryTable,
  deliveryProblems,
  discordDelivery,
  telegramDelivery,
  webhookDelivery,
} from '../../src/delivery/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { tempDir } from '../helpers/tmp.js';
import { crashed, heldSleep, rig, waitFor } from './rig.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

interface Endpoint {
  url: string;
  seen: Seen[];
  close(): Promise<void>;
}

/** A server on 127.0.0.1 that records each request and answers as `answer` says. */
async function endpoint(
  answer: (req: Seen) => { status: number; headers?: Record<string, string>; body?: string },
): Promise<Endpoint> {
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      body += d;
    });
    req.on('end', () => {
      const r = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      seen.push(r);
      const a = answer(r);
      res.writeHead(a.status, a.headers ?? {});
      res.end(a.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const OK_JSON = {
  status: 200,
  headers: { 'content-type': 'application/json' },
  body: '{"ok":true,"result":{}}',
};

test('webhook: should sign in with the user and password written in its URL', async () => {
  const hook = await endpoint(() => ({ status: 200 }));
  // The password as the user wrote it, percent-encoded in the URL.
  const r = await rig((deps) =>
    webhookDelivery({ url: `http://alice:p%40ss@${hook.url.slice(7)}/alerts-x7q`, minLevel: 2 }, deps),
  );
  try {
    await r.emit([crashed('basic', 2)]);
    await waitFor(() => r.delivery.stats().sent + r.delivery.stats().failed > 0, 'sent or given up');
    assert.equal(r.delivery.stats().sent, 1, String(r.delivery.stats().lastError));
    assert.equal(hook.seen.length, 1);
    assert.equal(hook.seen[0]?.url, '/alerts-x7q');
    assert.equal(
      hook.seen[0]?.headers.authorization,
      `Basic ${Buffer.from('alice:p@ss').toString('base64')}`,
    );
  } finally {
    await r.close();
    await hook.close();
  }
});

test('webhook: should keep the tokens of its URL out of errors, the table and the problem line', async () => {
  const path = '/hooks/T0001/B0002/xoxPathSecret77';
  const query = '?token=qQuerySecret99';
  // A server that echoes what was asked in its error, as many do.
  const hook = await endpoint((req) => ({
    status: 404,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      message: `no hook at ${req.url} (${hook.url}${req.url}); token xoxPathSecret77 or qQuerySecret99 unknown`,
    }),
  }));
  const r = await rig((deps) => webhookDelivery({ url: `${hook.url}${path}${query}`, minLevel: 2 }, deps));
  try {
    await r.emit([crashed('a', 2), crashed('b', 2), crashed('c', 2), crashed('d', 2), crashed('e', 2)]);
    await waitFor(() => r.delivery.stats().failed === 5, 'five refused');
    const stats = r.delivery.stats();
    const shown = [
      JSON.stringify(stats),
      ...deliveryProblems(stats, r.clock.now()),
      ...new DeliveryTable(r.node.ns.store, 'webhook').list().map((row) => String(row.lastError)),
    ];
    assert.match(shown[0] ?? '', /webhook refused: 404 no hook at <token>/);
    for (const text of shown) {
      for (const secret of ['xoxPathSecret77', 'qQuerySecret99']) {
        assert.ok(!text.includes(secret), `${secret} shown in ${text}`);
      }
    }
  } finally {
    await r.close();
    await hook.close();
  }
});

const redirecting: Array<{ name: string; make: (url: string, deps: DeliveryDeps) => DeliveryChannel }> = [
  {
    name: 'webhook',
    make: (url, deps) => webhookDelivery({ url: `${url}/alerts`, format: 'json', minLevel: 2 }, deps),
  },
  {
    name: 'telegram',
    make: (url, deps) =>
      telegramDelivery({ botToken: '42:botTok123', chatId: 1, baseUrl: url, minLevel: 2 }, deps),
  },
  {
    name: 'discord',
    make: (url, deps) =>
      discordDelivery({ webhookUrl: `${url}/api/webhooks/1/hookTok123`, minLevel: 2 }, deps),
  },
];

for (const status of [302, 307]) {
  for (const { name, make } of redirecting) {
    test(`${name}: should not follow a ${status} redirect to another host, and say where it pointed`, async () => {
      // The other host takes anything: a GET that a 302 makes of the POST, or the message itself.
      const other = await endpoint(() => OK_JSON);
      const api = await endpoint(() => ({ status, headers: { location: `${other.url}/elsewhere?sig=abc` } }));
      const r = await rig((deps) => make(api.url, deps));
      try {
        await r.emit([crashed('moved', 2)]);
        await waitFor(() => r.delivery.stats().sent + r.delivery.stats().failed > 0, 'sent or given up');
        assert.deepEqual(other.seen, [], 'nothing reaches the host redirected to');
        const stats = r.delivery.stats();
        assert.equal(stats.sent, 0);
        assert.equal(stats.failed, 1);
        assert.equal(api.seen.length, 1, 'a redirect is not retried');
        assert.equal(
          stats.lastError,
          `redirected (${status} to ${other.url}); redirects are not followed: set the URL the endpoint answers at`,
        );
      } finally {
        await r.close();
        await api.close();
        await other.close();
      }
    });
  }
}

test('webhook: should not spend its backlog in a burst when every message is refused', async () => {
  // A wrong token: every message is refused. The sleep never ends, so what goes out is what the
  // channel sends before it waits.
  const hook = await endpoint(() => ({
    status: 401,
    headers: { 'content-type': 'application/json' },
    body: '{"error":"unauthorized"}',
  }));
  const held = heldSleep();
  const r = await rig(
    (deps) => webhookDelivery({ url: `${hook.url}/alerts-x7q`, token: 'tk_wrong', minLevel: 2 }, deps),
    { sleep: held.sleep },
  );
  try {
    const backlog = Array.from({ length: 10 }, (_, i) => crashed(`w${i}`, 2));
    await r.emit(backlog);
    await waitFor(() => held.waits.length > 0 && r.delivery.stats().failed === 2, 'two refused, then a wait');
    // One refusal is about its message; the second in a row holds the channel for the backoff.
    assert.deepEqual(held.waits, [1000]);
    assert.equal(hook.seen.length, 2);
    assert.equal(r.delivery.stats().pending, 8, 'the rest of the backlog waits');
  } finally {
    await r.close();
    await hook.close();
  }
});

test('webhook: should keep at most max_pending notifications waiting while the endpoint is down, recording the rest as failed', async () => {
  let down = true;
  const hook = await endpoint(() => (down ? { status: 503, body: 'down for maintenance' } : { status: 200 }));
  const t = tempDir('weft-delivery-bounded-');
  const clock = new ManualClock();
  const make = (deps: DeliveryDeps) =>
    webhookDelivery({ url: `${hook.url}/alerts-x7q`, minLevel: 2, maxPending: 3 }, deps);
  try {
    const r = await rig(make, { dir: t.dir, clock, sleep: heldSleep().sleep });
    try {
      await r.emit(['a', 'b', 'c', 'd', 'e'].map((w) => crashed(w, 2)));
      const rows = new DeliveryTable(r.node.ns.store, 'webhook').list();
      assert.deepEqual(
        rows.map((row) => row.status),
        ['pending', 'pending', 'pending', 'failed', 'failed'],
      );
      assert.equal(rows[4]?.lastError, 'not queued: 3 notifications already wait on webhook');
      const stats = r.delivery.stats();
      assert.equal(stats.pending, 3);
      assert.equal(stats.failed, 2);
      // weft status says the backlog is full and where the rest went.
      await waitFor(() => r.delivery.stats().retries === 1, 'a failed try');
      r.clock.advance(61_000);
      assert.match(
        deliveryProblems(r.delivery.stats(), r.clock.now())[0] ?? '',
        /; 3 notifications wait \(the most that may: newer ones are recorded failed, weft deliveries list --status failed shows them\), the oldest for 61 s$/,
      );
    } finally {
      await r.close();
    }
    // The endpoint is back and the node restarts: the three that waited go, in order; the rest never.
    down = false;
    const again = await rig(make, { dir: t.dir, clock });
    try {
      await waitFor(() => again.delivery.stats().sent === 3, 'the three waiting sent');
      const sent = hook.seen
        .filter((s) => s.body.includes('worker: '))
        .map((s) => /worker: (\w)/.exec(s.body)?.[1]);
      assert.deepEqual([...new Set(sent)], ['a', 'b', 'c']);
    } finally {
      await again.close();
    }
  } finally {
    await hook.close();
    t.cleanup();
  }
});

test('webhook: should keep the newest finished deliveries, not every one ever sent', async () => {
  const hook = await endpoint(() => ({ status: 200 }));
  const r = await rig((deps) =>
    webhookDelivery({ url: `${hook.url}/alerts-x7q`, minLevel: 2, keepFinished: 10 }, deps),
  );
  try {
    await r.emit(Array.from({ length: 150 }, (_, i) => crashed(`w${i}`, 2)));
    await waitFor(() => r.delivery.stats().sent === 150, 'all sent');
    await waitFor(
      () => new DeliveryTable(r.node.ns.store, 'webhook').list(1000).length < 150,
      'old rows deleted',
    );
    const rows = new DeliveryTable(r.node.ns.store, 'webhook').list(1000);
    // Old rows go every hundred or so finished: at most that many past the 10 kept.
    assert.ok(rows.length <= 110, `${rows.length} rows kept`);
    const newest = Math.max(...rows.map((row) => row.id));
    assert.deepEqual(
      rows.slice(-10).map((row) => row.id),
      Array.from({ length: 10 }, (_, i) => newest - 9 + i),
    );
  } finally {
    await r.close();
    await hook.close();
  }
});

test('webhook: should send each change its own text when one recorded before comes again with a new one', async () => {
  const hook = await endpoint(() => ({ status: 200 }));
  const r = await rig((deps) =>
    webhookDelivery({ url: `${hook.url}/alerts-x7q`, format: 'json', minLevel: 2 }, deps),
  );
  try {
    await r.emit([crashed('first', 2), crashed('second', 2)]);
    await waitFor(() => r.delivery.stats().sent === 2, 'both sent');
    const idOf = (w: string) =>
      r.node.ns.notifications.list({ limit: 100 }).items.find((n) => n.payload.worker === w)?.id as number;
    // `first` again (recorded before: skipped) with a change of `second` not recorded yet.
    const added = await r.delivery.enqueue([
      { id: idOf('first'), kind: 'created', meaningful: true },
      { id: idOf('second'), kind: 'updated', meaningful: true },
    ]);
    assert.equal(added, 1);
    await waitFor(() => r.delivery.stats().sent === 3, 'the update sent');
    const last = JSON.parse(hook.seen[2]?.body ?? '{}') as { kind: string; notification: { id: number } };
    assert.deepEqual([last.kind, last.notification.id], ['updated', idOf('second')]);
  } finally {
    await r.close();
    await hook.close();
  }
});

test("discord: should show an event's markdown as written, never as a masked link, heading or spoiler", async () => {
  const hook = await endpoint(() => ({
    status: 200,
    headers: { 'content-type': 'application/json' },
    body: '{"id":"1"}',
  }));
  const r = await rig((deps) =>
    discordDelivery({ webhookUrl: `${hook.url}/api/webhooks/1/hookTok123`, minLevel: 2 }, deps),
  );
  const hostile =
    '[Verify your account](https://evil.example/login) **now** ||spoiler|| `code` <@123> @everyone';
  try {
    await r.emit([
      {
        event: 'system.worker.crashed',
        level: 2,
        description: hostile,
        payload: { worker: '# Heading', error: '> quoted\n- listed', restarts: 1 },
      },
    ]);
    await waitFor(() => r.delivery.stats().sent === 1, 'sent');
    const { content } = JSON.parse(hook.seen[0]?.body ?? '{}') as { content: string };
    // Each markup character carries a backslash (Discord then shows the character itself).
    assert.ok(content.includes('\\[Verify your account\\]\\(https\\://evil.example/login\\)'), content);
    assert.ok(content.includes('\\*\\*now\\*\\* \\|\\|spoiler\\|\\| \\`code\\` \\<@123\\>'), content);
    assert.ok(content.includes('worker: \\# Heading'), content);
    // Shown as written: taking the backslashes away gives the event's text back.
    assert.ok(content.replace(/\\(.)/g, '$1').includes(hostile), content);
  } finally {
    await r.close();
    await hook.close();
  }
});

test('webhook: should still be a problem after a restart while its notifications wait for a retry', async () => {
  const hook = await endpoint(() => ({
    status: 503,
    headers: { 'retry-after': '3600' },
    body: 'down for maintenance',
  }));
  const t = tempDir('weft-delivery-failing-restart-');
  const clock = new ManualClock();
  const make = (deps: DeliveryDeps) => webhookDelivery({ url: `${hook.url}/alerts-x7q`, minLevel: 2 }, deps);
  try {
    const r = await rig(make, { dir: t.dir, clock, sleep: heldSleep().sleep });
    try {
      await r.emit([crashed('a', 2), crashed('b', 2)]);
      await waitFor(() => r.delivery.stats().retries === 1, 'a failed try');
    } finally {
      await r.close();
    }
    // Restarted a minute later; the first row waits an hour for its retry, so no new try fails yet.
    clock.advance(61_000);
    const again = await rig(make, { dir: t.dir, clock, sleep: heldSleep().sleep });
    try {
      assert.deepEqual(deliveryProblems(again.delivery.stats(), clock.now()), [
        'delivery: webhook has failed for 61 s (1 failed try, last error: webhook error: 503); 2 notifications wait, the oldest for 61 s',
      ]);
    } finally {
      await again.close();
    }
  } finally {
    await hook.close();
    t.cleanup();
  }
});

test('webhook: should say in words why a connection failed, not only the code', async () => {
  // Accepts the request, then hangs up without an answer.
  const server = createServer((req) => req.socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts-x7q`;
  const r = await rig((deps) => webhookDelivery({ url, minLevel: 2 }, deps), { sleep: heldSleep().sleep });
  try {
    await r.emit([crashed('hung-up', 2)]);
    await waitFor(() => r.delivery.stats().retries === 1, 'a failed try');
    assert.equal(r.delivery.stats().lastError, 'fetch failed: UND_ERR_SOCKET (other side closed)');
  } finally {
    await r.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('telegram: should name the new chat id when a group was upgraded to a supergroup', async () => {
  const api = await endpoint(() => ({
    status: 400,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      ok: false,
      error_code: 400,
      description: 'Bad Request: group chat was upgraded to a supergroup chat',
      parameters: { migrate_to_chat_id: -1001234567890 },
    }),
  }));
  const r = await rig((deps) =>
    telegramDelivery({ botToken: '42:botTok123', chatId: -4242, baseUrl: api.url, minLevel: 2 }, deps),
  );
  try {
    await r.emit([crashed('moved', 2)]);
    await waitFor(() => r.delivery.stats().failed === 1, 'refused');
    assert.equal(
      r.delivery.stats().lastError,
      'Bot API refused: 400 Bad Request: group chat was upgraded to a supergroup chat (the chat moved: set telegram.chat_id = "-1001234567890")',
    );
  } finally {
    await r.close();
    await api.close();
  }
});

test('telegram: should keep a long message within 4096 characters and still name the notification at its end', async () => {
  const api = await endpoint(() => OK_JSON);
  const r = await rig((deps) =>
    telegramDelivery({ botToken: '42:botTok123', chatId: 1, baseUrl: api.url, minLevel: 2 }, deps),
  );
  try {
    const payload: Record<string, unknown> = { worker: 'long', error: '🔥'.repeat(1000), restarts: 1 };
    for (let i = 0; i < 5; i++) payload[`${'k'.repeat(2000)}${i}`] = 'v'.repeat(1000);
    await r.emit([{ event: 'system.worker.crashed', level: 2, description: 'd'.repeat(3000), payload }]);
    await waitFor(() => r.delivery.stats().sent === 1, 'sent');
    const { text } = JSON.parse(api.seen[0]?.body ?? '{}') as { text: string };
    assert.ok(text.length <= 4096, `text of ${text.length}`);
    const id = r.node.ns.notifications.list({ limit: 10 }).items.find((n) => n.payload.worker === 'long')?.id;
    assert.ok(text.endsWith(`\n#${id} · from test`), text.slice(-200));
  } finally {
    await r.close();
    await api.close();
  }
});

test('webhook (ntfy): should keep a message of many-byte characters within 4096 bytes and still name the notification', async () => {
  const hook = await endpoint(() => ({ status: 200 }));
  const r = await rig((deps) => webhookDelivery({ url: `${hook.url}/alerts-x7q`, minLevel: 2 }, deps));
  try {
    const payload: Record<string, unknown> = { worker: 'emoji', error: '🔥'.repeat(500), restarts: 1 };
    for (let i = 0; i < 5; i++) payload[`f${i}`] = '🎉'.repeat(500);
    await r.emit([{ event: 'system.worker.crashed', level: 2, description: '🚨'.repeat(1000), payload }]);
    await waitFor(() => r.delivery.stats().sent === 1, 'sent');
    const body = hook.seen[0]?.body ?? '';
    assert.ok(Buffer.byteLength(body) <= 4096, `body of ${Buffer.byteLength(body)} bytes`);
    const id = r.node.ns.notifications
      .list({ limit: 10 })
      .items.find((n) => n.payload.worker === 'emoji')?.id;
    assert.ok(body.endsWith(`…\n#${id} · from test`), body.slice(-100));
  } finally {
    await r.close();
    await hook.close();
  }
});
