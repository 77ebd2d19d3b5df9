/**
 * The daemon wires every configured channel: a real `weft daemon` process, configured through
 * the environment to four fake APIs on loopback, delivers one notification to each exactly once
 * across a SIGTERM while every channel's retry is pending, and exports each channel's counters
 * in /metrics and /api/health; a node with one channel, not Telegram, reports that one.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { WeftClient } from '../../src/client/index.js';
import { readToken } from '../../src/config/index.js';
import { systemClock } from '../../src/util/clock.js';
import { startDaemonProcess, weft } from '../helpers/cli.js';
import { eventually } from '../helpers/cluster.js';
import { tempDir } from '../helpers/tmp.js';
import { type FakeApi, FakeDiscord, FakeNtfy, FakeTelegram, FakeWhatsApp } from './fake-apis.js';
import { waitFor } from './rig.js';

test('daemon: should deliver to every configured channel once across a restart with retries pending', async () => {
  const t = tempDir('weft-daemon-delivery-');
  const wa = { token: 'EAAG-daemon-token', phoneNumberId: '1055', to: '31612345678', version: 'v21.0' };
  const fakes = {
    telegram: new FakeTelegram(systemClock, '42:daemon-token', 4242),
    discord: new FakeDiscord(systemClock, { webhook: { id: '77', token: 'daemon-hook-token' } }),
    whatsapp: new FakeWhatsApp(systemClock, wa),
    webhook: new FakeNtfy(systemClock, 'weft-daemon', 'ntfy-daemon-token'),
  };
  const all: FakeApi[] = Object.values(fakes);
  for (const f of all) await f.start();
  const env = {
    HOME: t.dir,
    WEFT_DATA_DIR: join(t.dir, 'data'),
    WEFT_API_PORT: '0',
    WEFT_COMPUTER_NAME: 'deliverybox',
    WEFT_TELEGRAM_BOT_TOKEN: '42:daemon-token',
    WEFT_TELEGRAM_CHAT_ID: '4242',
    WEFT_TELEGRAM_BASE_URL: fakes.telegram.url,
    WEFT_DISCORD_WEBHOOK_URL: `${fakes.discord.url}/api/webhooks/77/daemon-hook-token`,
    WEFT_WHATSAPP_TOKEN: wa.token,
    WEFT_WHATSAPP_PHONE_NUMBER_ID: wa.phoneNumberId,
    WEFT_WHATSAPP_TO: wa.to,
    WEFT_WHATSAPP_BASE_URL: fakes.whatsapp.url,
    WEFT_WEBHOOK_URL: `${fakes.webhook.url}/weft-daemon`,
    WEFT_WEBHOOK_TOKEN: 'ntfy-daemon-token',
  };
  try {
    // Every API fails until the restart, so each channel has a retry pending when the daemon stops.
    for (const f of all) f.fallback = '500';
    const d = await startDaemonProcess(env);
    const token = readToken(env.WEFT_DATA_DIR) as string;
    const api = new WeftClient({ url: d.url, token });
    const idOf = async (client: WeftClient, worker: string): Promise<number> => {
      const n = (await client.notifications.list({ limit: 100 })).items.find(
        (x) => x.payload.worker === worker,
      );
      assert.ok(n, `notification for ${worker}`);
      return n.id;
    };
    let id: number;
    try {
      await api.emit({
        event: 'system.worker.crashed',
        level: 2,
        payload: { worker: 'mesh-link', error: 'down', restarts: 1 },
      });
      id = await idOf(api, 'mesh-link');
      await waitFor(() => all.every((f) => f.countFor(id) >= 1), 'a failed try on every channel');
      // Level 1 is below every channel's min_level 2: never sent anywhere.
      await api.emit({
        event: 'system.worker.crashed',
        level: 1,
        payload: { worker: 'quiet', error: 'x', restarts: 1 },
      });
    } finally {
      d.proc.kill('SIGTERM');
      await d.exited;
    }
    assert.equal(await d.exited, 0, d.output());
    for (const [name, f] of Object.entries(fakes))
      assert.equal(f.deliveredFor(id), 0, `${name}: nothing delivered yet`);

    for (const f of all) f.fallback = 'ok';
    const d2 = await startDaemonProcess(env);
    try {
      await waitFor(
        () => all.every((f) => f.deliveredFor(id) === 1),
        'delivered on every channel after the restart',
      );
      const api2 = new WeftClient({ url: d2.url, token });
      await api2.emit({
        event: 'system.worker.crashed',
        level: 3,
        payload: { worker: 'later', error: 'y', restarts: 1 },
      });
      const later = await idOf(api2, 'later');
      await waitFor(() => all.every((f) => f.deliveredFor(later) === 1), 'a later one delivered everywhere');
      const quiet = await idOf(api2, 'quiet');
      for (const [name, f] of Object.entries(fakes)) {
        assert.equal(f.deliveredFor(id), 1, `${name}: once, not twice`);
        assert.equal(f.countFor(quiet), 0, `${name}: nothing below min_level`);
        assert.deepEqual(f.violations, [], `${name}: every request well-formed`);
      }
      const metrics = await (
        await fetch(`${d2.url}/metrics`, { headers: { authorization: `Bearer ${token}` } })
      ).text();
      for (const channel of Object.keys(fakes)) {
        assert.match(
          metrics,
          new RegExp(`weft_delivery_sent_total\\{channel="${channel}"\\} [1-9]`),
          channel,
        );
      }
      const delivery = (await api2.health()).delivery as Record<string, { sent: number }>;
      assert.deepEqual(Object.keys(delivery).sort(), Object.keys(fakes).sort(), 'health names every channel');
      for (const [channel, stats] of Object.entries(delivery)) assert.ok(stats.sent >= 1, channel);
    } finally {
      d2.proc.kill('SIGTERM');
      await d2.exited;
    }
    assert.equal(await d2.exited, 0, d2.output());
  } finally {
    for (const f of all) await f.stop();
    t.cleanup();
  }
});

test("daemon: should report a webhook-only node's delivery in /api/health and weft status", async () => {
  const t = tempDir('weft-daemon-webhook-');
  const fake = new FakeNtfy(systemClock, 'weft-only-hook');
  await fake.start();
  const env = {
    HOME: t.dir,
    WEFT_DATA_DIR: join(t.dir, 'data'),
    WEFT_API_PORT: '0',
    WEFT_COMPUTER_NAME: 'hookbox',
    WEFT_WEBHOOK_URL: `${fake.url}/weft-only-hook`,
  };
  try {
    const d = await startDaemonProcess(env);
    try {
      const api = new WeftClient({ url: d.url, token: readToken(env.WEFT_DATA_DIR) as string });
      await api.emit({
        event: 'system.worker.crashed',
        level: 2,
        payload: { worker: 'hooked', error: 'x', restarts: 1 },
      });
      await waitFor(() => fake.received.some((r) => r.answer === 'ok'), 'delivered to the webhook');
      type Stats = { channel: string; sent: number; pending: number };
      let delivery: Record<string, Stats> = {};
      await eventually(
        async () => {
          delivery = (await api.health()).delivery as Record<string, Stats>;
          return delivery.webhook?.sent === 1 && delivery.webhook.pending === 0;
        },
        10_000,
        'health counts the webhook delivery',
      );
      assert.deepEqual(Object.keys(delivery), ['webhook'], 'only the configured channel, by name');
      assert.equal(delivery.webhook?.sent, 1);
      assert.equal(delivery.webhook?.pending, 0);

      const status = weft(['status'], env);
      assert.match(
        status.stdout,
        /^delivery: webhook \(1 sent, 0 failed since the start, 0 waiting\)$/m,
        status.stdout + status.stderr,
      );
      const json = JSON.parse(weft(['--json', 'status'], env).stdout) as { delivery: Record<string, Stats> };
      assert.equal(json.delivery.webhook?.sent, 1);
    } finally {
      d.proc.kill('SIGTERM');
      await d.exited;
    }
    assert.equal(await d.exited, 0, d.output());
  } finally {
    await fake.stop();
    t.cleanup();
  }
});

test('daemon: should list a webhook that keeps failing in /api/health problems and exit weft status with 3, until it delivers', async () => {
  const t = tempDir('weft-daemon-failing-');
  const fake = new FakeNtfy(systemClock, 'weft-failing-hook');
  await fake.start();
  const env = {
    HOME: t.dir,
    WEFT_DATA_DIR: join(t.dir, 'data'),
    WEFT_API_PORT: '0',
    WEFT_COMPUTER_NAME: 'failbox',
    WEFT_WEBHOOK_URL: `${fake.url}/weft-failing-hook`,
  };
  try {
    const d = await startDaemonProcess(env);
    try {
      const api = new WeftClient({ url: d.url, token: readToken(env.WEFT_DATA_DIR) as string });
      const problems = async () => (await api.health()).problems as string[];
      // The endpoint refuses every message (as it would a wrong token): five in a row.
      fake.fallback = '400';
      for (let i = 0; i < 5; i++)
        await api.emit({ event: 'system.worker.crashed', level: 2, payload: { worker: `refused-${i}`, error: 'x', restarts: 1 } });
      await waitFor(() => fake.received.length === 5, 'five refusals');
      let listed: string[] = [];
      await eventually(
        async () => {
          listed = (await problems()).filter((p) => p.startsWith('delivery: '));
          return listed.length > 0;
        },
        10_000,
        'the failing webhook among the problems',
      );
      assert.match(
        listed[0] ?? '',
        /^delivery: webhook has failed for \d+ s \(5 failed tries in a row, last error: webhook refused: 400 invalid request: topic invalid\); none waits/,
      );
      const status = weft(['status'], env);
      assert.equal(status.code, 3, status.stdout + status.stderr);
      assert.match(status.stdout, /^ {2}- delivery: webhook has failed for/m);

      fake.fallback = 'ok';
      await api.emit({ event: 'system.worker.crashed', level: 2, payload: { worker: 'fine', error: 'x', restarts: 1 } });
      await eventually(async () => (await problems()).length === 0, 10_000, 'no problem once one went through');
      assert.equal(weft(['status'], env).code, 0);
    } finally {
      d.proc.kill('SIGTERM');
      await d.exited;
    }
    assert.equal(await d.exited, 0, d.output());
  } finally {
    await fake.stop();
    t.cleanup();
  }
});
