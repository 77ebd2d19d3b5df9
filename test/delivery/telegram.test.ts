/**
 * Telegram delivery against a real local HTTP server that answers like the Bot API
 * (ok, 429 with retry_after, 500, or never), fed by a real node's committed batches.
 * Time is a ManualClock that the injected sleep advances: no real waiting, no timing assertions.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DeliveryTable,
  formatNotification,
  type TelegramInit,
  telegramDelivery,
} from '../../src/delivery/index.js';
import { ConfigError } from '../../src/errors/index.js';
import type { Notification } from '../../src/store/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { FakeBotApi } from '../helpers/fake-bot-api.js';
import { tempDir } from '../helpers/tmp.js';
import { type Rig as BaseRig, rig as baseRig, waitFor } from './rig.js';

const TOKEN = '123456:TEST-token';

interface Rig extends BaseRig {
  api: FakeBotApi;
}

/** The shared delivery rig (rig.ts) with a Telegram channel pointed at a fake Bot API. */
async function rig(
  opts: {
    init?: Partial<TelegramInit>;
    dir?: string;
    api?: FakeBotApi;
    clock?: ManualClock;
    realSleep?: boolean;
    start?: boolean;
  } = {},
): Promise<Rig> {
  const clock = opts.clock ?? new ManualClock();
  const api = opts.api ?? new FakeBotApi(clock);
  if (!opts.api) await api.start();
  const base = await baseRig(
    // realSleep: the channel's own sleep on the clock, not the rig's clock-advancing one.
    (deps) => telegramDelivery({ botToken: TOKEN, chatId: 4242, minLevel: 'workflow', baseUrl: api.url, ...opts.init }, opts.realSleep ? { ...deps, sleep: undefined } : deps),
    { clock, ...(opts.dir ? { dir: opts.dir } : {}), ...(opts.start === false ? { start: false } : {}) },
  );
  return {
    ...base,
    api,
    async close() {
      await base.close();
      if (!opts.api) await api.stop();
    },
  };
}

function crashed(worker: string, level: number, error = 'boom'): Record<string, unknown> {
  return { event: 'system.worker.crashed', level, payload: { worker, error, restarts: 1 } };
}

function notificationId(r: Rig, worker: string): number {
  const n = r.node.ns.notifications.list({ limit: 1000 }).items.find((x) => x.payload.worker === worker);
  assert.ok(n, `notification for ${worker}`);
  return n.id;
}

test('should send a notification at or above min level and not one below', async () => {
  const r = await rig();
  try {
    await r.emit([crashed('low', 1), crashed('high', 2), crashed('top', 3)]);
    await waitFor(() => r.api.received.length >= 2, 'two messages');
    const high = notificationId(r, 'high');
    const top = notificationId(r, 'top');
    const low = notificationId(r, 'low');
    await waitFor(() => r.delivery.stats().sent === 2, 'two sent');
    assert.equal(r.api.received.length, 2);
    assert.equal(r.api.countFor(high), 1);
    assert.equal(r.api.countFor(top), 1);
    assert.equal(r.api.countFor(low), 0);

    const first = r.api.received[0];
    assert.ok(first);
    assert.equal(first.path, `/bot${TOKEN}/sendMessage`);
    assert.equal(first.body.chat_id, 4242);
    assert.equal(first.body.parse_mode, undefined);
    assert.match(first.body.text, /workflow · new · system\.worker\.crashed/);
    assert.match(first.body.text, /worker: high/);
    assert.match(first.body.text, /error: boom/);

    const rows = new DeliveryTable(r.node.ns.store, 'telegram').list();
    assert.deepEqual(
      rows.map((x) => [x.notificationId, x.changeKind, x.status, x.attempts]),
      [
        [high, 'created', 'sent', 1],
        [top, 'created', 'sent', 1],
      ],
    );
    assert.ok(rows.every((x) => x.sentAt !== null && x.lastError === null));
  } finally {
    await r.close();
  }
});

test('should send a meaningful update and skip one that is not', async () => {
  const r = await rig();
  try {
    await r.emit([crashed('w', 2, 'first')]);
    await waitFor(() => r.delivery.stats().sent === 1, 'created sent');
    // Same error: not meaningful (meaningfulFields: ['error']). New error: meaningful.
    await r.emit([
      { event: 'system.worker.crashed', level: 2, payload: { worker: 'w', error: 'first', restarts: 2 } },
    ]);
    await r.emit([crashed('w', 2, 'second')]);
    await waitFor(() => r.delivery.stats().sent === 2, 'update sent');
    const id = notificationId(r, 'w');
    assert.equal(r.api.countFor(id), 2);
    assert.match(r.api.texts[1] ?? '', /workflow · updated · .*\n[\s\S]*error: second/);
  } finally {
    await r.close();
  }
});

test('should honour 429 retry_after before the next attempt', async () => {
  const r = await rig({ start: false });
  try {
    r.api.script = ['429'];
    await r.emit([crashed('rl', 2)]);
    r.delivery.start();
    await waitFor(() => r.delivery.stats().sent === 1, 'sent after rate limit');
    const [a, b] = r.api.received;
    assert.ok(a && b);
    assert.equal(r.api.received.length, 2);
    assert.ok(b.at - a.at >= 1000, `second attempt ${b.at - a.at} ms after the first, retry_after is 1 s`);
    const stats = r.delivery.stats();
    assert.equal(stats.rateLimited, 1);
    assert.equal(stats.failed, 0);
    const [row] = new DeliveryTable(r.node.ns.store, 'telegram').list();
    assert.equal(row?.status, 'sent');
    assert.equal(row?.attempts, 1, 'a rate-limited try is not counted as an attempt');
  } finally {
    await r.close();
  }
});

test('should retry a 500 with exponential backoff, then succeed', async () => {
  const r = await rig({ init: { backoffBaseMs: 1000 } });
  try {
    r.api.script = ['500', '500', 'ok'];
    await r.emit([crashed('flaky', 2)]);
    await waitFor(() => r.delivery.stats().sent === 1, 'sent after two 500s');
    const times = r.api.received.map((x) => x.at);
    assert.equal(times.length, 3);
    const [t0, t1, t2] = times as [number, number, number];
    assert.ok(t1 - t0 >= 1000, `first backoff ${t1 - t0} ms`);
    assert.ok(t2 - t1 >= 2000, `second backoff ${t2 - t1} ms doubles`);
    const [row] = new DeliveryTable(r.node.ns.store, 'telegram').list();
    assert.equal(row?.status, 'sent');
    assert.equal(row?.attempts, 3);
    assert.equal(r.delivery.stats().retries, 2);
  } finally {
    await r.close();
  }
});

test('should mark a delivery failed on a 4xx refusal, and after max attempts of 500s', async () => {
  const r = await rig({ init: { maxAttempts: 3 } });
  try {
    r.api.script = ['400'];
    await r.emit([crashed('refused', 2)]);
    await waitFor(() => r.delivery.stats().failed === 1, 'refused is failed');
    r.api.fallback = '500';
    await r.emit([crashed('broken', 2)]);
    await waitFor(() => r.delivery.stats().failed === 2, 'gave up');
    const rows = new DeliveryTable(r.node.ns.store, 'telegram').list();
    assert.deepEqual(
      rows.map((x) => [x.status, x.attempts]),
      [
        ['failed', 1],
        ['failed', 3],
      ],
    );
    assert.match(rows[0]?.lastError ?? '', /400 Bad Request: chat not found/);
    assert.match(rows[1]?.lastError ?? '', /gave up after 3 attempts/);
    assert.equal(r.api.received.length, 4);
    for (const row of rows) assert.ok(!(row.lastError ?? '').includes(TOKEN), 'token never recorded');
  } finally {
    await r.close();
  }
});

test('should not resend what was delivered and should send what was pending after a restart', async () => {
  const t = tempDir('weft-telegram-restart-');
  const clock = new ManualClock();
  const api = new FakeBotApi(clock);
  await api.start();
  try {
    const first = await rig({ dir: t.dir, api, clock });
    await first.emit([crashed('delivered', 2)]);
    await waitFor(() => first.delivery.stats().sent === 1, 'first sent');
    const delivered = notificationId(first, 'delivered');
    // The Bot API goes silent: the next one stays pending while the node shuts down.
    api.fallback = 'hang';
    await first.emit([crashed('pending', 2)]);
    await waitFor(() => api.received.length === 2, 'second request in flight');
    const pending = notificationId(first, 'pending');
    await first.close();

    api.fallback = 'ok';
    const before = api.received.length;
    const second = await rig({ dir: t.dir, api, clock });
    try {
      await waitFor(() => second.delivery.stats().sent === 1, 'pending sent after restart');
      // Commit something new and let it be delivered, so nothing else is still on its way.
      await second.emit([crashed('after', 3)]);
      await waitFor(() => second.delivery.stats().sent === 2, 'new one sent');
      const after = api.received.slice(before).map((x) => x.body.text);
      assert.equal(after.filter((x) => x.includes(`#${delivered}`)).length, 0, 'delivered one not resent');
      assert.equal(after.filter((x) => x.includes(`#${pending}`)).length, 1, 'pending one sent once');
      const rows = new DeliveryTable(second.node.ns.store, 'telegram').list();
      assert.deepEqual(
        rows.map((x) => x.status),
        ['sent', 'sent', 'sent'],
      );
    } finally {
      await second.close();
    }
  } finally {
    await api.stop();
    t.cleanup();
  }
});

test('should enqueue without waiting while the Bot API hangs', async () => {
  const r = await rig({ init: { requestTimeoutMs: 600_000 } });
  try {
    r.api.fallback = 'hang';
    await r.emit([crashed('stuck', 2)]);
    await waitFor(() => r.api.received.length === 1, 'request in flight');
    // Many batches while the only request never returns: each enqueue still completes.
    for (let i = 0; i < 20; i++) await r.emit([crashed(`w${i}`, 2), crashed(`x${i}`, 2)]);
    const stats = r.delivery.stats();
    assert.equal(stats.enqueued, 41);
    assert.equal(stats.pending, 41);
    assert.equal(stats.sent, 0);
    assert.equal(r.api.received.length, 1);
  } finally {
    await r.close();
  }
});

test('should enqueue without waiting while the Bot API is down, and keep the rows pending', async () => {
  const clock = new ManualClock();
  const down = new FakeBotApi(clock);
  await down.start();
  const url = down.url;
  await down.stop(); // nothing listens on the port any more
  down.url = url;
  const r = await rig({ api: down, clock, realSleep: true, init: { backoffBaseMs: 60_000 } });
  try {
    for (let i = 0; i < 10; i++) await r.emit([crashed(`d${i}`, 3)]);
    const stats = r.delivery.stats();
    assert.equal(stats.enqueued, 10);
    assert.equal(stats.pending, 10);
    assert.equal(stats.sent, 0);
    await waitFor(() => r.delivery.stats().retries >= 1, 'a refused connection is retried');
    const rows = new DeliveryTable(r.node.ns.store, 'telegram').list();
    assert.ok(rows.every((x) => x.status === 'pending'));
    assert.ok(rows.some((x) => /fetch failed/.test(x.lastError ?? '')));
  } finally {
    await r.close();
  }
});

test('should refuse bad options with an error that names the key', () => {
  const deps = { ns: {} as never, clock: new ManualClock(), logger: silentLogger };
  assert.throws(
    () => telegramDelivery({ botToken: TOKEN, chatId: 1, minLevel: 7 }, deps),
    (e: unknown) => e instanceof ConfigError && /telegram\.min_level/.test(e.message),
  );
  assert.throws(
    () => telegramDelivery({ botToken: '', chatId: 1, minLevel: 1 }, deps),
    (e: unknown) => e instanceof ConfigError && /telegram\.bot_token/.test(e.message),
  );
  assert.throws(
    () => telegramDelivery({ botToken: TOKEN, chatId: 1, minLevel: 1, baseUrl: 'ftp://x' }, deps),
    (e: unknown) => e instanceof ConfigError && /telegram\.base_url/.test(e.message),
  );
});

test('should render a readable message, escaped in HTML mode', () => {
  const n: Notification = {
    id: 7,
    eventId: 'e1',
    eventType: 'ci.build.failed',
    level: 3,
    domain: 'ci',
    visibility: 'local',
    entity: 'repo/weft',
    source: 'ci',
    sourceComputer: 'laptop',
    description: 'Build <42> failed & stopped',
    payload: { branch: 'main', details: { step: 'test' }, skipped: null },
    idempotencyKey: null,
    groupKey: null,
    actionable: true,
    humanStatus: 'unseen',
    agentStatus: 'none',
    agentId: null,
    resolution: null,
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    seenAt: null,
    claimedAt: null,
    resolvedAt: null,
  };
  assert.equal(
    formatNotification(n, 'created'),
    [
      '🔴 business · new · ci.build.failed',
      'Build <42> failed & stopped',
      'branch: main',
      'details: {"step":"test"}',
      '#7 · entity repo/weft · from laptop',
    ].join('\n'),
  );
  const html = formatNotification(n, 'created', { parseMode: 'HTML' });
  assert.match(html, /^<b>🔴 business · new · ci\.build\.failed<\/b>\n/);
  assert.match(html, /Build &lt;42&gt; failed &amp; stopped/);
  assert.ok(formatNotification({ ...n, description: 'x'.repeat(10_000) }, 'created').length <= 4096);
});
