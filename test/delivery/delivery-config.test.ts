/** The delivery config keys: read from TOML and the environment, shown masked, and turned into channels. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig, showConfig } from '../../src/config/index.js';
import { type DeliveryConfig, deliveryChannels } from '../../src/delivery/index.js';
import { ConfigError } from '../../src/errors/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { tempDir } from '../helpers/tmp.js';

const deps = { ns: {} as never, clock: new ManualClock(), logger: silentLogger };

test('config: should read the delivery keys from TOML and the environment, with defaults, secrets masked', () => {
  const t = tempDir('weft-delivery-config-');
  try {
    const path = join(t.dir, 'config.toml');
    writeFileSync(
      path,
      [
        '[discord]',
        'webhook_url = "https://discord.com/api/webhooks/1/hooktoken"',
        'min_level = 3',
        '[whatsapp]',
        'phone_number_id = "106540352242922"',
        'to = "31612345678"',
        '[webhook]',
        'url = "https://ntfy.sh/weft-alerts"',
        'format = "json"',
      ].join('\n'),
    );
    const cfg = loadConfig({
      path,
      env: { HOME: t.dir, WEFT_WHATSAPP_TOKEN: 'EAAG-token', WEFT_WEBHOOK_MIN_LEVEL: '1' },
    });
    assert.deepEqual(cfg.discord, {
      webhook_url: 'https://discord.com/api/webhooks/1/hooktoken',
      min_level: 3,
      base_url: 'https://discord.com',
    });
    assert.deepEqual(cfg.whatsapp, {
      token: 'EAAG-token',
      phone_number_id: '106540352242922',
      to: '31612345678',
      min_level: 2,
      base_url: 'https://graph.facebook.com',
      api_version: 'v21.0',
    });
    assert.deepEqual(cfg.webhook, { url: 'https://ntfy.sh/weft-alerts', format: 'json', min_level: 1 });
    const shown = showConfig(cfg);
    assert.equal(shown['whatsapp.token'], 'EA***en');
    assert.ok(!String(shown['discord.webhook_url']).includes('hooktoken'));
    assert.ok(!String(shown['webhook.url']).includes('weft-alerts'));
    assert.equal(shown['whatsapp.to'], '31612345678');
    assert.throws(() => loadConfig({ path, env: { HOME: t.dir, WEFT_WEBHOOK_FORMAT: 'xml' } }), ConfigError);
  } finally {
    t.cleanup();
  }
});

function config(
  over: Partial<{ [K in keyof DeliveryConfig]: Partial<DeliveryConfig[K]> }> = {},
): DeliveryConfig {
  return {
    telegram: { min_level: 2, base_url: 'https://api.telegram.org', ...over.telegram },
    discord: { min_level: 2, base_url: 'https://discord.com', ...over.discord },
    whatsapp: {
      min_level: 2,
      base_url: 'https://graph.facebook.com',
      api_version: 'v21.0',
      ...over.whatsapp,
    },
    webhook: { format: 'ntfy', min_level: 2, ...over.webhook },
  };
}

test('config: should turn on each channel whose keys are set, and none otherwise', () => {
  assert.deepEqual(deliveryChannels(config(), deps), []);
  const all = deliveryChannels(
    config({
      telegram: { bot_token: '1:a', chat_id: '42' },
      discord: { bot_token: 'b', channel_id: '7' },
      whatsapp: { token: 't', phone_number_id: '1055', to: '31612345678' },
      webhook: { url: 'https://ntfy.sh/x' },
    }),
    deps,
  );
  assert.deepEqual(
    all.map((c) => c.channel),
    ['telegram', 'discord', 'whatsapp', 'webhook'],
  );
  // Telegram keeps its old rule: without a chat id it is off, not an error.
  assert.deepEqual(deliveryChannels(config({ telegram: { bot_token: '1:a' } }), deps), []);
});

test('config: should refuse a half-configured channel, naming the missing key', () => {
  const named = (key: string) => (e: unknown) => e instanceof ConfigError && e.message.startsWith(`config key ${key}:`);
  assert.throws(
    () => deliveryChannels(config({ whatsapp: { token: 't', to: '31612345678' } }), deps),
    named('whatsapp.phone_number_id'),
  );
  assert.throws(
    () => deliveryChannels(config({ whatsapp: { phone_number_id: '1', to: '31612345678' } }), deps),
    named('whatsapp.token'),
  );
  assert.throws(() => deliveryChannels(config({ webhook: { token: 't' } }), deps), named('webhook.url'));
  assert.throws(
    () => deliveryChannels(config({ discord: { channel_id: '7' } }), deps),
    named('discord.bot_token'),
  );
  assert.throws(
    () =>
      deliveryChannels(
        config({
          discord: { webhook_url: 'https://discord.com/api/webhooks/1/a', bot_token: 'b', channel_id: '7' },
        }),
        deps,
      ),
    named('discord.webhook_url'),
  );
});
