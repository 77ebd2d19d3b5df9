/**
 * Discord delivery, through an incoming webhook and through a bot, against a local server that
 * answers like Discord (message objects, rate-limit headers, 429 with JSON retry_after and/or
 * Retry-After). Time is a ManualClock that the injected sleep advances.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeliveryTable, discordDelivery, discordSender, type DiscordInit } from '../../src/delivery/index.js';
import { ConfigError } from '../../src/errors/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { channelCompliance } from './channel-compliance.js';
import { FakeDiscord } from './fake-apis.js';
import { notificationId, rig, waitFor } from './rig.js';

const HOOK = { id: '112233445566778899', token: 'hook-SECRET_token-abc' };
const BOT = { token: 'MTIz.bot-SECRET.token', channelId: '998877665544332211' };

const hookUrl = (fake: FakeDiscord) => `${fake.url}/api/webhooks/${HOOK.id}/${HOOK.token}`;

channelCompliance({
  name: 'discord (webhook)',
  channel: 'discord',
  fake: (clock) => new FakeDiscord(clock, { webhook: HOOK }),
  create: (fake, init, deps) => discordDelivery({ ...init, webhookUrl: hookUrl(fake as FakeDiscord) }, deps),
  rateLimits: ['429', '429-json', '429-header'],
  secrets: [HOOK.token],
});

channelCompliance({
  name: 'discord (bot)',
  channel: 'discord',
  fake: (clock) => new FakeDiscord(clock, { bot: BOT }),
  create: (fake, init, deps) =>
    discordDelivery({ ...init, botToken: BOT.token, channelId: BOT.channelId, baseUrl: fake.url }, deps),
  rateLimits: ['429', '429-json', '429-header'],
  secrets: [BOT.token],
});

async function webhookRig(init: Partial<DiscordInit> = {}) {
  const clock = new ManualClock();
  const fake = new FakeDiscord(clock, { webhook: HOOK });
  await fake.start();
  const r = await rig((deps) => discordDelivery({ minLevel: 2, webhookUrl: hookUrl(fake), ...init }, deps), {
    clock,
  });
  return {
    r,
    fake,
    async close() {
      await r.close();
      await fake.stop();
      assert.deepEqual(fake.violations, []);
    },
  };
}

test('discord: should cut a message over 2000 characters with an ellipsis', async () => {
  const { r, fake, close } = await webhookRig();
  try {
    const long = 'x'.repeat(190);
    const payload = Object.fromEntries(
      Array.from({ length: 8 }, (_, i) => [`field${i}`, `${'🔥'.repeat(4)}${long}`]),
    );
    await r.emit([
      {
        event: 'system.worker.crashed',
        level: 3,
        description: 'd'.repeat(1500),
        payload: { worker: 'w', error: 'e'.repeat(1500), restarts: 1, ...payload },
      },
    ]);
    await waitFor(() => r.delivery.stats().sent === 1, 'sent');
    const [got] = fake.received;
    assert.ok(got);
    assert.ok(got.text.length <= 2000, `content of ${got.text.length}`);
    assert.ok(got.text.length >= 1990, `cut near the limit, not far below it: ${got.text.length}`);
    // Cut before the last line, which names the notification.
    assert.match(got.text, /…\n\\#\d+ · from test$/);
    assert.ok(!/[\ud800-\udbff]…\n/.test(got.text), 'no half emoji before the ellipsis');
  } finally {
    await close();
  }
});

test('discord: should post as the configured name and never ping anyone', async () => {
  const { r, fake, close } = await webhookRig({ username: 'Weft' });
  try {
    await r.emit([
      {
        event: 'system.worker.crashed',
        level: 2,
        payload: { worker: '@everyone', error: '<@123> look', restarts: 1 },
      },
    ]);
    await waitFor(() => r.delivery.stats().sent === 1, 'sent');
    const body = fake.received[0]?.json as { username?: string; allowed_mentions?: { parse?: unknown[] } };
    assert.equal(body.username, 'Weft');
    assert.deepEqual(body.allowed_mentions, { parse: [] });
    assert.equal(fake.received[0]?.path.includes('wait=true'), true);
  } finally {
    await close();
  }
});

test('discord: should hold the next request until an empty bucket resets', async () => {
  const { r, fake, close } = await webhookRig();
  try {
    fake.script = ['bucket-empty'];
    await r.emit([
      { event: 'system.worker.crashed', level: 2, payload: { worker: 'a', error: 'x', restarts: 1 } },
      { event: 'system.worker.crashed', level: 2, payload: { worker: 'b', error: 'x', restarts: 1 } },
    ]);
    await waitFor(() => r.delivery.stats().sent === 2, 'both sent');
    const [first, second] = fake.received;
    assert.ok(first?.retryAt !== undefined && second);
    assert.ok(
      second.at >= first.retryAt,
      `second request ${second.at - first.at} ms after the first; reset after 2000`,
    );
    assert.equal(r.delivery.stats().rateLimited, 0, 'pacing is not a 429');
    assert.equal(first.answer, 'bucket-empty');
    assert.match(first.text, new RegExp(`#${notificationId(r, 'a')}\\b`));
    assert.equal(fake.deliveredFor(notificationId(r, 'b')), 1);
  } finally {
    await close();
  }
});

test('discord: should keep the webhook token out of the table when the request fails', async () => {
  const clock = new ManualClock();
  const fake = new FakeDiscord(clock, { webhook: HOOK });
  await fake.start();
  const url = hookUrl(fake);
  await fake.stop(); // nothing listens: every try is a connection error
  const r = await rig((deps) => discordDelivery({ minLevel: 2, webhookUrl: url, maxAttempts: 2 }, deps), {
    clock,
  });
  try {
    await r.emit([
      { event: 'system.worker.crashed', level: 2, payload: { worker: 'w', error: 'x', restarts: 1 } },
    ]);
    await waitFor(() => r.delivery.stats().failed === 1, 'gave up');
    const [row] = new DeliveryTable(r.node.ns.store, 'discord').list();
    assert.match(row?.lastError ?? '', /fetch failed.*gave up after 2 attempts/);
    assert.ok(!(row?.lastError ?? '').includes(HOOK.token));
  } finally {
    await r.close();
  }
});

test('discord: should refuse options that cannot work, naming the key', () => {
  const named = (key: string) => (e: unknown) =>
    e instanceof ConfigError && e.message.startsWith(`config key discord.${key}:`);
  assert.throws(
    () =>
      discordSender({ webhookUrl: 'https://discord.com/api/webhooks/1/a', botToken: 't', channelId: '1' }),
    named('webhook_url'),
  );
  assert.throws(() => discordSender({ webhookUrl: 'not a url' }), named('webhook_url'));
  assert.throws(() => discordSender({ botToken: 't' }), named('channel_id'));
  assert.throws(() => discordSender({ channelId: '1' }), named('bot_token'));
  assert.throws(
    () => discordSender({ botToken: 't', channelId: '1', baseUrl: 'ftp://x' }),
    named('base_url'),
  );
  assert.throws(
    () =>
      discordDelivery(
        { webhookUrl: 'https://discord.com/api/webhooks/1/a', minLevel: 9 },
        {
          ns: {} as never,
          clock: new ManualClock(),
          logger: silentLogger,
        },
      ),
    named('min_level'),
  );
  const bot = discordSender({ botToken: 'abc', channelId: '42', baseUrl: 'http://127.0.0.1:1/' });
  assert.equal(bot.request('hi').url, 'http://127.0.0.1:1/api/v10/channels/42/messages');
  assert.equal(bot.request('hi').headers.authorization, 'Bot abc');
  const hook = discordSender({ webhookUrl: 'https://discord.com/api/webhooks/1/tok?thread_id=5' });
  assert.equal(hook.request('hi').url, 'https://discord.com/api/webhooks/1/tok?thread_id=5&wait=true');
  assert.deepEqual(hook.secrets, ['tok']);
});
