/**
 * The generic webhook channel against a local ntfy-compatible server (text body with Title,
 * Priority and Tags headers, bearer auth, Retry-After in seconds or as an HTTP date) and a plain
 * JSON receiver. Time is a ManualClock that the injected sleep advances.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  deliveryProblems,
  webhookDelivery,
  webhookSender,
  type WebhookDocument,
} from '../../src/delivery/index.js';
import { ConfigError } from '../../src/errors/index.js';
import { ManualClock, systemClock } from '../../src/util/clock.js';
import { channelCompliance } from './channel-compliance.js';
import { FakeJsonHook, FakeNtfy } from './fake-apis.js';
import { crashed, heldSleep, notificationId, rig, waitFor } from './rig.js';

const TOKEN = 'tk_SECRETntfytoken';
const TOPIC = 'weft-alerts-x7q';

channelCompliance({
  name: 'webhook (ntfy)',
  channel: 'webhook',
  fake: (clock) => new FakeNtfy(clock, TOPIC, TOKEN),
  create: (fake, init, deps) => webhookDelivery({ ...init, url: `${fake.url}/${TOPIC}`, token: TOKEN }, deps),
  rateLimits: ['429', '429-date'],
  secrets: [TOKEN],
});

channelCompliance({
  name: 'webhook (json)',
  channel: 'webhook',
  fake: (clock) => new FakeJsonHook(clock),
  create: (fake, init, deps) =>
    webhookDelivery({ ...init, url: `${fake.url}/hooks/weft`, format: 'json' }, deps),
  rateLimits: ['429'],
  secrets: [],
});

test('webhook: should send ntfy headers: a title, a priority from the level and tags', async () => {
  const clock = new ManualClock();
  const fake = new FakeNtfy(clock, TOPIC, TOKEN);
  await fake.start();
  const r = await rig(
    (deps) => webhookDelivery({ url: `${fake.url}/${TOPIC}`, token: TOKEN, minLevel: 0 }, deps),
    {
      clock,
    },
  );
  try {
    await r.emit([crashed('l0', 0), crashed('l1', 1), crashed('l2', 2), crashed('l3', 3)]);
    await waitFor(() => r.delivery.stats().sent === 4, 'four sent');
    const got = fake.received.map((x) => [x.headers.title, x.headers.priority, x.headers.tags]);
    assert.deepEqual(got, [
      ['infrastructure: new system.worker.crashed', '1', 'information_source,infrastructure,created'],
      ['operational: new system.worker.crashed', '3', 'large_blue_circle,operational,created'],
      ['workflow: new system.worker.crashed', '4', 'warning,workflow,created'],
      ['business: new system.worker.crashed', '5', 'rotating_light,business,created'],
    ]);
    const first = fake.received[0];
    assert.equal(first?.headers.authorization, `Bearer ${TOKEN}`);
    assert.match(String(first?.headers['content-type']), /^text\/plain/);
    // The headline is the title; the body starts with the description and names the notification.
    assert.ok(
      !/system\.worker\.crashed/.test(first?.raw.split('\n')[0] ?? ''),
      'headline not repeated in the body',
    );
    assert.match(first?.raw ?? '', new RegExp(`worker: l0[\\s\\S]*#${notificationId(r, 'l0')}\\b`));
  } finally {
    await r.close();
    await fake.stop();
    assert.deepEqual(fake.violations, []);
  }
});

test('webhook: should post the notification as JSON with format json', async () => {
  const clock = new ManualClock();
  const fake = new FakeJsonHook(clock);
  await fake.start();
  const r = await rig(
    (deps) =>
      webhookDelivery({ url: `${fake.url}/hooks/weft`, token: TOKEN, format: 'json', minLevel: 2 }, deps),
    { clock },
  );
  try {
    await r.emit([crashed('j', 3, 'disk full')]);
    await waitFor(() => r.delivery.stats().sent === 1, 'sent');
    const [got] = fake.received;
    assert.equal(got?.headers.authorization, `Bearer ${TOKEN}`);
    const doc = got?.json as WebhookDocument;
    assert.equal(doc.level, 3);
    assert.equal(doc.levelName, 'business');
    assert.equal(doc.kind, 'created');
    assert.equal(doc.priority, 5);
    assert.equal(doc.title, 'business: new system.worker.crashed');
    assert.equal(doc.notification.id, notificationId(r, 'j'));
    assert.equal(doc.notification.eventType, 'system.worker.crashed');
    assert.deepEqual(doc.notification.payload, { worker: 'j', error: 'disk full', restarts: 1 });
  } finally {
    await r.close();
    await fake.stop();
    assert.deepEqual(fake.violations, []);
  }
});

test('webhook: should make a handful of requests, not thousands, in 3 s of 429s with Retry-After: 0', async () => {
  // Real time: the channel's own clock and sleep, so a tight loop would show as a request count.
  const fake = new FakeNtfy(systemClock, TOPIC, TOKEN);
  await fake.start();
  const r = await rig((deps) =>
    webhookDelivery(
      { url: `${fake.url}/${TOPIC}`, token: TOKEN, minLevel: 2 },
      { ...deps, clock: systemClock, sleep: undefined },
    ),
  );
  try {
    fake.fallback = '429-zero';
    await r.emit([crashed('limited', 2)]);
    await waitFor(() => fake.received.length >= 1, 'the first try');
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const tries = fake.received.length;
    // The backoff of 1 s, 2 s (±20 %) allows 3 tries in those 3 s; a tight loop made thousands.
    assert.ok(tries < 20, `${tries} requests in 3 s`);
    assert.equal(r.delivery.stats().sent, 0);
  } finally {
    await r.close();
    await fake.stop();
    assert.deepEqual(fake.violations, []);
  }
});

test('webhook: should cut an absurd Retry-After to one hour and ask again then', async () => {
  const clock = new ManualClock();
  const fake = new FakeNtfy(clock, TOPIC, TOKEN);
  await fake.start();
  const r = await rig((deps) => webhookDelivery({ url: `${fake.url}/${TOPIC}`, token: TOKEN, minLevel: 2 }, deps), {
    clock,
  });
  try {
    fake.script = ['429-years'];
    await r.emit([crashed('banned', 2)]);
    await waitFor(() => r.delivery.stats().sent === 1, 'sent on the try an hour later');
    const [limited, retried] = fake.received;
    assert.ok(limited && retried);
    assert.equal(retried.at - limited.at, 3_600_000);
  } finally {
    await r.close();
    await fake.stop();
    assert.deepEqual(fake.violations, []);
  }
});

test('webhook: should be a problem while a long rate limit holds the channel, saying for how long', async () => {
  const clock = new ManualClock();
  const held = heldSleep();
  const fake = new FakeNtfy(clock, TOPIC, TOKEN);
  await fake.start();
  const r = await rig((deps) => webhookDelivery({ url: `${fake.url}/${TOPIC}`, token: TOKEN, minLevel: 2 }, deps), {
    clock,
    sleep: held.sleep,
  });
  try {
    fake.script = ['429-years'];
    await r.emit([crashed('banned', 2)]);
    await waitFor(() => r.delivery.stats().rateLimited === 1 && held.waits.length > 0, 'paused');
    clock.advance(61_000);
    assert.deepEqual(deliveryProblems(r.delivery.stats(), clock.now()), [
      'delivery: webhook has failed for 61 s (1 failed try, last error: rate limited: 429 limit reached: too many requests, please be nice); 1 notification waits, the oldest for 61 s; paused by a rate limit for another 3539 s',
    ]);
  } finally {
    await r.close();
    await fake.stop();
  }
});

test('webhook: should refuse options that cannot work, naming the key', () => {
  const named = (key: string) => (e: unknown) =>
    e instanceof ConfigError && e.message.startsWith(`config key webhook.${key}:`);
  assert.throws(() => webhookSender({ url: 'ntfy.sh/alerts' }), named('url'));
  assert.throws(() => webhookSender({ url: 'https://ntfy.sh/a', token: 'two words' }), named('token'));
  assert.throws(() => webhookSender({ url: 'https://ntfy.sh/a', format: 'xml' as never }), named('format'));
  assert.throws(() => webhookSender({ url: 'https://u:p@ntfy.sh/a', token: 'tk_x' }), named('token'));
  const { secrets } = webhookSender({ url: 'https://u:p%40ss@example.com/h' });
  for (const s of ['p%40ss', 'p@ss']) assert.ok(secrets.includes(s), `${s} is a secret`);
});
