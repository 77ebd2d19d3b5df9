/**
 * WhatsApp delivery against a local server that answers like the Cloud API (Graph error
 * envelope, rate-limit codes 130429 and 131056, the 24-hour window's 131047, transient errors).
 * Time is a ManualClock that the injected sleep advances.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeliveryTable, whatsappDelivery, whatsappSender } from '../../src/delivery/index.js';
import { ConfigError } from '../../src/errors/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { channelCompliance } from './channel-compliance.js';
import { FakeWhatsApp } from './fake-apis.js';
import { crashed, notificationId, rig, waitFor } from './rig.js';

const CFG = {
  token: 'EAAG-SECRET-token',
  phoneNumberId: '106540352242922',
  to: '31612345678',
  version: 'v21.0',
};

channelCompliance({
  name: 'whatsapp',
  channel: 'whatsapp',
  fake: (clock) => new FakeWhatsApp(clock, CFG),
  create: (fake, init, deps) =>
    whatsappDelivery(
      { ...init, token: CFG.token, phoneNumberId: CFG.phoneNumberId, to: CFG.to, baseUrl: fake.url },
      deps,
    ),
  rateLimits: ['429'],
  secrets: [CFG.token],
});

async function whatsappRig() {
  const clock = new ManualClock();
  const fake = new FakeWhatsApp(clock, CFG);
  await fake.start();
  const r = await rig(
    (deps) =>
      whatsappDelivery(
        { token: CFG.token, phoneNumberId: CFG.phoneNumberId, to: CFG.to, baseUrl: fake.url, minLevel: 2 },
        deps,
      ),
    { clock },
  );
  return {
    r,
    fake,
    rows: () => new DeliveryTable(r.node.ns.store, 'whatsapp').list(),
    async close() {
      await r.close();
      await fake.stop();
      assert.deepEqual(fake.violations, []);
    },
  };
}

test('whatsapp: should send the Cloud API text shape with the bearer token', async () => {
  const { r, fake, close } = await whatsappRig();
  try {
    await r.emit([crashed('w', 2)]);
    await waitFor(() => r.delivery.stats().sent === 1, 'sent');
    const [got] = fake.received;
    assert.equal(got?.path, `/v21.0/${CFG.phoneNumberId}/messages`);
    assert.equal(got?.headers.authorization, `Bearer ${CFG.token}`);
    assert.deepEqual(
      { ...(got?.json as Record<string, unknown>), text: undefined },
      {
        messaging_product: 'whatsapp',
        recipient_type: 'individual',
        to: CFG.to,
        type: 'text',
        text: undefined,
      },
    );
    assert.match(got?.text ?? '', /workflow · new · system\.worker\.crashed/);
  } finally {
    await close();
  }
});

test('whatsapp: should treat the pair rate limit (131056, HTTP 400) as a pause of 6 s, not a failure', async () => {
  const { r, fake, rows, close } = await whatsappRig();
  try {
    fake.script = ['131056'];
    await r.emit([crashed('pair', 2)]);
    await waitFor(() => r.delivery.stats().sent === 1, 'sent after the pause');
    const [limited, retried] = fake.received;
    assert.ok(limited && retried);
    assert.ok(retried.at - limited.at >= 6000, `retried after ${retried.at - limited.at} ms`);
    assert.equal(r.delivery.stats().rateLimited, 1);
    assert.deepEqual(
      rows().map((x) => [x.status, x.attempts]),
      [['sent', 1]],
    );
  } finally {
    await close();
  }
});

test('whatsapp: should fail a message outside the 24-hour window and retry a transient error', async () => {
  const { r, fake, rows, close } = await whatsappRig();
  try {
    fake.script = ['131047', 'transient', 'ok'];
    await r.emit([crashed('outside', 2), crashed('transient', 2)]);
    await waitFor(
      () => r.delivery.stats().failed === 1 && r.delivery.stats().sent === 1,
      'one failed, one sent',
    );
    const [outside, transient] = rows();
    assert.equal(outside?.notificationId, notificationId(r, 'outside'));
    assert.equal(outside?.status, 'failed');
    assert.match(outside?.lastError ?? '', /WhatsApp refused: 400 \(#131047\) Re-engagement message/);
    assert.equal(transient?.status, 'sent');
    assert.equal(transient?.attempts, 2, 'is_transient was retried');
    assert.equal(fake.received.length, 3);
  } finally {
    await close();
  }
});

test('whatsapp: should refuse options that cannot work, naming the key', () => {
  const named = (key: string) => (e: unknown) =>
    e instanceof ConfigError && e.message.startsWith(`config key whatsapp.${key}:`);
  const ok = { token: 't', phoneNumberId: '1055', to: '+31 6 1234 5678' };
  assert.throws(() => whatsappSender({ ...ok, token: '' }), named('token'));
  assert.throws(() => whatsappSender({ ...ok, phoneNumberId: '+31612345678' }), named('phone_number_id'));
  assert.throws(() => whatsappSender({ ...ok, to: 'me' }), named('to'));
  assert.throws(() => whatsappSender({ ...ok, apiVersion: 'latest' }), named('api_version'));
  assert.throws(() => whatsappSender({ ...ok, baseUrl: 'graph.facebook.com' }), named('base_url'));
  const s = whatsappSender({ ...ok, apiVersion: '19.0' });
  const req = s.request('hi');
  assert.equal(req.url, 'https://graph.facebook.com/v19.0/1055/messages');
  assert.equal((JSON.parse(req.body) as { to: string }).to, '+31612345678');
});
