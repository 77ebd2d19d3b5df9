/**
 * The NATS JetStream provider against a real `nats-server -js` that this file starts on a free
 * loopback port with its own store dir (never the machine's own server on :4222).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { AckPolicy, connect, headers, type NatsConnection } from 'nats';
import { generateIdentity } from '../../src/identity/index.js';
import { NatsPeerRegistry, type PeerInfo } from '../../src/mesh/index.js';
import { decodeFrame, natsInbox, natsProvider, natsToken, type InboundFrame, type NatsProviderInit, type Provider, type ProviderEvent } from '../../src/transport/index.js';
import { systemClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { natsSkipReason, TestNats } from '../helpers/nats.js';
import { eventsFrame, providerCompliance, take } from './provider-compliance.js';

const deps = { logger: silentLogger, clock: systemClock };
const fast = { blockMs: 1000, backoff: { minMs: 20, maxMs: 200 }, trimEveryMs: 0 } as const;

let nats: TestNats;
before(async () => {
  if (natsSkipReason) return;
  nats = await TestNats.start();
});
after(async () => {
  await nats?.stop();
});

function provider(computer: string, extra: Partial<NatsProviderInit> = {}): Provider {
  return natsProvider({ url: nats.url, computer, ...fast, ...extra })(deps);
}

type Sweeping = Provider & { trim(): Promise<number> };

function labelOf(bytes: Uint8Array, id: ReturnType<typeof generateIdentity>): string {
  const r = decodeFrame(bytes, { lookupKey: () => id.publicKey });
  return r.ok && r.frame.type === 'events' ? String(r.frame.body.envelopes[0]?.id) : '?';
}

async function admin(): Promise<NatsConnection> {
  return connect({ servers: nats.url });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function eventually(fn: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** Every frame that arrives within `ms` (each acked). */
async function takeFor(p: Provider, ms: number): Promise<InboundFrame[]> {
  const out: InboundFrame[] = [];
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      out.push(...(await take(p, 1, { timeoutMs: Math.max(1, deadline - Date.now()) })));
    } catch (err) {
      if (!/timed out/.test((err as Error).message)) throw err;
    }
  }
  return out;
}

/** Sends until the provider takes the frame (the server may still be coming back). */
async function sendWhenUp(p: Provider, peer: string, bytes: Uint8Array, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      await p.send(peer, bytes);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(100);
    }
  }
}

describe('nats provider', { skip: natsSkipReason }, () => {
  providerCompliance('nats', async () => {
    const run = randomUUID().slice(0, 8);
    const a = provider(`a-${run}`);
    let b = provider(`b-${run}`);
    await a.start();
    await b.start();
    return {
      a,
      get b() {
        return b;
      },
      aToB: `b-${run}`,
      bToA: `a-${run}`,
      idA: generateIdentity(),
      idB: generateIdentity(),
      restartB: async () => {
        b = provider(`b-${run}`);
        await b.start();
        return b;
      },
      cleanup: async () => {
        await a.stop();
        await b.stop();
      },
    };
  });

  test('nats: messages carry the Weft headers and a Nats-Msg-Id; a frame is acked only on ack(), then leaves the inbox', async () => {
    const run = randomUUID().slice(0, 8);
    const a = provider(`a-${run}`);
    const b = provider(`b-${run}`);
    await a.start();
    await b.start();
    const nc = await admin();
    try {
      const jsm = await nc.jetstreamManager();
      const inbox = natsInbox(`b-${run}`);
      assert.equal(inbox.stream, `weft_inbox_b-${run}`, 'the inbox stream is under the default prefix');
      assert.equal(inbox.subject, `weft.inbox.b-${run}`);
      const si = await jsm.streams.info(inbox.stream);
      assert.equal(si.config.discard, 'new', 'a full inbox refuses, it never drops the oldest');
      assert.equal(si.config.retention, 'limits');
      assert.ok(si.config.max_msgs > 0 && si.config.max_bytes > 0 && si.config.max_age > 0, 'the inbox is bounded by default');
      const ci = await jsm.consumers.info(inbox.stream, inbox.consumer);
      assert.equal(ci.config.ack_policy, AckPolicy.Explicit);
      assert.equal(ci.config.durable_name, 'weft_mesh');

      const id = generateIdentity();
      const bytes = eventsFrame(id, 'x');
      await a.send(`b-${run}`, bytes);
      const m = await jsm.streams.getMessage(inbox.stream, { last_by_subj: inbox.subject });
      assert.equal(m.header.get('Weft-From'), `a-${run}`);
      assert.equal(m.header.get('Weft-Type'), 'mesh_event');
      assert.match(m.header.get('Nats-Msg-Id'), /^[0-9a-f]{64}$/);
      assert.deepEqual(Buffer.from(m.data), Buffer.from(bytes));

      const [f] = await take(b, 1, { ack: false });
      assert.equal(f!.from, `a-${run}`);
      assert.equal(f!.deliveryCount, 1);
      assert.equal((await jsm.consumers.info(inbox.stream, inbox.consumer)).num_ack_pending, 1, 'read but not acked: still pending');
      await f!.ack();
      assert.equal((await jsm.consumers.info(inbox.stream, inbox.consumer)).num_ack_pending, 0);
      await eventually(async () => (await jsm.streams.info(inbox.stream)).state.messages === 0, 5000, 'the acked frame to leave the inbox');
    } finally {
      await nc.close();
      await a.stop();
      await b.stop();
    }
  });

  test('nats: a frame delivered to a reader that died without acking comes back to the next one, with its delivery count', async () => {
    const run = randomUUID().slice(0, 8);
    const a = provider(`a-${run}`);
    const crashed = provider(`b-${run}`, { ackWaitMs: 1500 });
    await a.start();
    await crashed.start();
    const id = generateIdentity();
    await a.send(`b-${run}`, eventsFrame(id, 'stuck'));
    await take(crashed, 1, { ack: false });
    // A crash: the connection goes away without a clean stop (no nak).
    await (crashed as unknown as { nc: NatsConnection }).nc.close();
    const next = provider(`b-${run}`, { ackWaitMs: 1500 });
    await next.start();
    try {
      const [f] = await take(next, 1, { what: 'the frame the crashed reader held' });
      assert.equal(labelOf(f!.bytes, id), 'stuck');
      assert.equal(f!.deliveryCount, 2);
    } finally {
      await a.stop();
      await crashed.stop();
      await next.stop();
    }
  });

  test('nats: frames that reach a reader while its event loop is busy are read, not held by the server until the ack wait', async () => {
    // A fetch per pull ended on a client timer just after the pull's expiry; when the loop was
    // busy past it, frames the server had already sent that pull were dropped unread, and came
    // back only after the ack wait (a sender re-sent them after 5 s: a stalled link).
    const run = randomUUID().slice(0, 8);
    const a = provider(`a-${run}`);
    const b = provider(`b-${run}`, { ackWaitMs: 120_000 });
    await a.start();
    await b.start();
    try {
      await a.waitForPeer(`b-${run}`, { timeoutMs: 10_000 });
      const id = generateIdentity();
      const n = 400;
      const sends: Promise<void>[] = [];
      const reading = take(b, n, { timeoutMs: 20_000, what: 'every frame, well before the 120 s ack wait' });
      // Busy spells of 50-300 ms with short gaps for 4.5 s: several pulls expire inside one.
      const until = Date.now() + 4500;
      let i = 0;
      while (Date.now() < until) {
        for (let k = 0; k < 5 && i < n; k++) sends.push(a.send(`b-${run}`, eventsFrame(id, `f${i++}`)));
        // The frames leave now, so the server sends them on while this loop is held below.
        await new Promise((r) => setTimeout(r, 1));
        const busyUntil = Date.now() + 50 + Math.random() * 250;
        while (Date.now() < busyUntil) {
          // the event loop is held, as a node's is while it commits a large batch
        }
        await new Promise((r) => setTimeout(() => setImmediate(r), Math.random() * 40));
      }
      while (i < n) sends.push(a.send(`b-${run}`, eventsFrame(id, `f${i++}`)));
      await Promise.all(sends);
      const got = await reading;
      assert.equal(new Set(got.map((f) => labelOf(f.bytes, id))).size, n);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  test('nats: frames on their way when a reader stops go to the next reader at once, not after the ack wait', async () => {
    const run = randomUUID().slice(0, 8);
    const a = provider(`a-${run}`);
    const b = provider(`b-${run}`, { ackWaitMs: 120_000 });
    await a.start();
    await b.start();
    const id = generateIdentity();
    const n = 600;
    const seen = new Set<string>();
    let next: Provider | undefined;
    try {
      await a.waitForPeer(`b-${run}`, { timeoutMs: 10_000 });
      // A sender that keeps publishing while the reader stops.
      const sending = (async () => {
        for (let i = 0; i < n; i++) await a.send(`b-${run}`, eventsFrame(id, `f${i}`));
      })();
      const it = b.frames()[Symbol.asyncIterator]();
      while (seen.size < 100) {
        const r = await it.next();
        if (r.done) break;
        seen.add(labelOf(r.value.bytes, id));
        await r.value.ack();
      }
      await b.stop();
      next = provider(`b-${run}`, { ackWaitMs: 120_000 });
      await next.start();
      await sending;
      for (const f of await take(next, n - seen.size, { timeoutMs: 20_000, what: 'the rest, well before the 120 s ack wait' })) seen.add(labelOf(f.bytes, id));
      assert.equal(seen.size, n);
    } finally {
      await a.stop();
      await b.stop();
      await next?.stop();
    }
  });

  test('nats: the same frame published twice within the window is stored once (Nats-Msg-Id)', async () => {
    const run = randomUUID().slice(0, 8);
    const a = provider(`a-${run}`);
    const b = provider(`b-${run}`);
    await a.start();
    await b.start();
    const nc = await admin();
    try {
      const id = generateIdentity();
      const bytes = eventsFrame(id, 'once');
      await a.send(`b-${run}`, bytes);
      await a.send(`b-${run}`, bytes); // a re-publish after a lost PubAck looks like this
      await a.send(`b-${run}`, eventsFrame(id, 'next'));
      const got = await take(b, 2);
      assert.deepEqual(
        got.map((f) => labelOf(f.bytes, id)),
        ['once', 'next'],
      );
      const jsm = await nc.jetstreamManager();
      assert.equal((await jsm.streams.info(natsInbox(`b-${run}`).stream)).state.last_seq, 2, 'the server stored two messages, not three');
    } finally {
      await nc.close();
      await a.stop();
      await b.stop();
    }
  });

  test('nats: a full inbox refuses with a clear error and backpressure, and takes frames again once the reader acks', async () => {
    const run = randomUUID().slice(0, 8);
    const a = provider(`a-${run}`);
    const b = provider(`b-${run}`, { inbox: { maxMsgs: 3 } });
    const events: ProviderEvent[] = [];
    a.on((e) => events.push(e));
    await b.start(); // its inbox (3 messages at most) exists before anyone sends
    await a.start();
    try {
      const id = generateIdentity();
      for (let i = 0; i < 3; i++) await a.send(`b-${run}`, eventsFrame(id, `f${i}`));
      await assert.rejects(a.send(`b-${run}`, eventsFrame(id, 'f3')), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'TRANSPORT_PEER_UNAVAILABLE');
        assert.match(err.message, /inbox .* is full/);
        return true;
      });
      assert.deepEqual(
        events.filter((e) => e.type === 'backpressure'),
        [{ type: 'backpressure', peer: `b-${run}`, active: true }],
      );
      assert.equal(a.telemetry().find((t) => t.peer === `b-${run}`)?.bpFlag, true);
      const got = await take(b, 3);
      assert.deepEqual(
        got.map((f) => labelOf(f.bytes, id)),
        ['f0', 'f1', 'f2'],
        'nothing was dropped to make room',
      );
      await sendWhenUp(a, `b-${run}`, eventsFrame(id, 'f3'), 5000);
      const [f3] = await take(b, 1);
      assert.equal(labelOf(f3!.bytes, id), 'f3');
      assert.deepEqual(events.filter((e) => e.type === 'backpressure').at(-1), { type: 'backpressure', peer: `b-${run}`, active: false });
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  test('nats: a frame over the server max_payload is refused with TRANSPORT_FRAME_TOO_LARGE', async () => {
    const run = randomUUID().slice(0, 8);
    const a = provider(`a-${run}`, { maxFrameSize: 4 * 1024 * 1024 });
    const dflt = provider(`c-${run}`);
    const b = provider(`b-${run}`);
    await Promise.all([a.start(), b.start(), dflt.start()]);
    try {
      const big = new Uint8Array(1024 * 1024 + 1);
      await assert.rejects(a.send(`b-${run}`, big), { code: 'TRANSPORT_FRAME_TOO_LARGE' });
      await assert.rejects(dflt.send(`b-${run}`, big), { code: 'TRANSPORT_FRAME_TOO_LARGE' });
    } finally {
      await Promise.all([a.stop(), b.stop(), dflt.stop()]);
    }
  });

  test('nats: messages another program put on the inbox are never delivered, acknowledged or deleted; marked garbage goes to the ingress', async () => {
    const run = randomUUID().slice(0, 8);
    const a = provider(`a-${run}`);
    const b = provider(`b-${run}`) as Sweeping;
    await a.start();
    await b.start();
    const nc = await admin();
    try {
      const js = nc.jetstream();
      const inbox = natsInbox(`b-${run}`);
      const h = headers();
      h.set('type', 'system');
      const foreign = [
        (await js.publish(inbox.subject, new TextEncoder().encode('{"command":"health_check"}'), { headers: h })).seq,
        (await js.publish(inbox.subject, new TextEncoder().encode('plain'))).seq,
      ];
      const id = generateIdentity();
      await a.send(`b-${run}`, eventsFrame(id, 'ours'));
      // Marked as Weft's but not a frame: delivered, for the ingress to refuse (and record) like any bad frame.
      const marked = headers();
      marked.set('Weft-From', 'mallory');
      await js.publish(inbox.subject, new TextEncoder().encode('not a frame'), { headers: marked });
      const [f, bad] = await take(b, 2, { what: 'the Weft frame and the marked garbage' });
      assert.equal(labelOf(f!.bytes, id), 'ours');
      assert.equal(Buffer.from(bad!.bytes).toString(), 'not a frame');
      assert.equal(bad!.from, 'mallory');
      await sleep(300);
      assert.equal(b.foreignEntries, 2);
      const jsm = await nc.jetstreamManager();
      await eventually(async () => (await jsm.streams.info(inbox.stream)).state.messages === 2, 5000, 'only the acked messages to leave the inbox');
      assert.equal(await b.trim(), 0, 'the sweep leaves them alone too');
      for (const seq of foreign) {
        const m = await jsm.streams.getMessage(inbox.stream, { seq });
        assert.equal(m.seq, seq, 'the foreign message is still there');
      }
    } finally {
      await nc.close();
      await a.stop();
      await b.stop();
    }
  });

  test('nats: an inbox filled by another program is a problem on its own node, naming the foreign messages; it goes once they are gone', async () => {
    const run = randomUUID().slice(0, 8);
    const a = provider(`a-${run}`);
    const b = provider(`b-${run}`, { inbox: { maxMsgs: 20 } }) as Sweeping & { problems(): string[] };
    await a.start();
    await b.start();
    const nc = await admin();
    try {
      const js = nc.jetstream();
      const inbox = natsInbox(`b-${run}`);
      for (let i = 0; i < 20; i++) await js.publish(inbox.subject, new TextEncoder().encode(`junk ${i}`));
      await eventually(() => b.foreignEntries === 20, 5000, 'the reader to see the foreign messages');
      // The peer's sender learns it as a refusal; the inbox's own node said nothing ("problems: none").
      await assert.rejects(a.send(`b-${run}`, eventsFrame(generateIdentity(), 'refused')), /is full/);
      await b.trim();
      const [line, ...rest] = b.problems();
      assert.deepEqual(rest, []);
      assert.match(line ?? '', new RegExp(`^mesh: inbox ${inbox.stream} on NATS is full \\(20 of 20 messages, .*\\): peers' frames are refused and wait in their outboxes; 20 messages on it came from another program \\(no Weft-From header\\) and are never deleted by Weft: remove them, or stop what publishes on ${inbox.subject.replace(/\./g, '\\.')}$`));
      await (await nc.jetstreamManager()).streams.purge(inbox.stream);
      await b.trim();
      assert.deepEqual(b.problems(), [], 'no problem once the inbox has room');
    } finally {
      await nc.close();
      await a.stop();
      await b.stop();
    }
  });

  test('nats: the sweep deletes Weft frames that were acked but left in the inbox (a crash between ack and delete)', async () => {
    const run = randomUUID().slice(0, 8);
    const a = provider(`a-${run}`);
    const first = provider(`b-${run}`);
    await a.start();
    await first.start(); // makes the inbox and its consumer
    await first.stop();
    const nc = await admin();
    try {
      const id = generateIdentity();
      for (let i = 0; i < 3; i++) await a.send(`b-${run}`, eventsFrame(id, `old${i}`));
      const inbox = natsInbox(`b-${run}`);
      // What a node that died right after its acks leaves: acked, not deleted.
      const c = await nc.jetstream().consumers.get(inbox.stream, inbox.consumer);
      const iter = await c.fetch({ max_messages: 3, expires: 2000 });
      for await (const m of iter) {
        await m.ackAck();
        if (m.info.pending === 0) break;
      }
      const b = provider(`b-${run}`) as Sweeping;
      await b.start();
      try {
        assert.equal(await b.trim(), 3);
        const jsm = await nc.jetstreamManager();
        assert.equal((await jsm.streams.info(inbox.stream)).state.messages, 0);
        await a.send(`b-${run}`, eventsFrame(id, 'new'));
        const [f] = await take(b, 1);
        assert.equal(labelOf(f!.bytes, id), 'new', 'acked frames do not come back');
      } finally {
        await b.stop();
      }
    } finally {
      await nc.close();
      await a.stop();
    }
  });

  test('nats: two nodes on one server with the default prefix never read each other\'s inbox, even with look-alike names', async () => {
    const run = randomUUID().slice(0, 8);
    assert.notEqual(natsToken(`x.${run}`), natsToken(`x_2e${run}`), 'names map to tokens one to one');
    const a = provider(`a-${run}`);
    const x = provider(`x.${run}`);
    const y = provider(`x_2e${run}`);
    await Promise.all([a.start(), x.start(), y.start()]);
    try {
      assert.notEqual(natsInbox(`x.${run}`).stream, natsInbox(`x_2e${run}`).stream);
      const id = generateIdentity();
      await a.send(`x.${run}`, eventsFrame(id, 'for-x'));
      const [f] = await take(x, 1);
      assert.equal(labelOf(f!.bytes, id), 'for-x');
      await assert.rejects(take(y, 1, { timeoutMs: 1500 }), /timed out/, 'the other node got nothing');
    } finally {
      await Promise.all([a.stop(), x.stop(), y.stop()]);
    }
  });

  test('nats: after a kill -9 of nats-server, nothing stored is lost, acked frames stay acked, and the provider reconnects', async () => {
    const run = randomUUID().slice(0, 8);
    const a = provider(`a-${run}`);
    const b = provider(`b-${run}`);
    const events: ProviderEvent[] = [];
    b.on((e) => events.push(e));
    await a.start();
    await b.start();
    try {
      const id = generateIdentity();
      await a.send(`b-${run}`, eventsFrame(id, 'acked'));
      const [acked] = await take(b, 1);
      // An acked frame leaves the inbox right after its ack (the provider deletes it); only
      // then is it beyond a kill -9, which can lose the consumer's recent acks with its state.
      const nc = await admin();
      try {
        const jsm = await nc.jetstreamManager();
        const stream = natsInbox(`b-${run}`).stream;
        await eventually(
          () => jsm.streams.getMessage(stream, { seq: Number(acked!.deliveryId) }).then(() => false, () => true),
          10_000,
          'the acked frame to leave the inbox',
        );
      } finally {
        await nc.close();
      }
      // Stored while the reader holds them unacked, and while it is not reading at all.
      await a.send(`b-${run}`, eventsFrame(id, 'held'));
      const [held] = await take(b, 1, { ack: false });
      assert.equal(labelOf(held!.bytes, id), 'held');
      await a.send(`b-${run}`, eventsFrame(id, 'queued'));
      await nats.restart();
      await sendWhenUp(a, `b-${run}`, eventsFrame(id, 'after'));
      // At least once: 'queued' may come twice when the server redelivers it (its delivery state
      // was lost with the kill) before our ack of the first copy is confirmed, or when that ack
      // went out before the reconnect. A repeat must say so (delivery count ≥ 2) for the
      // ingress, and it is only ever that frame: nothing acked before the kill comes back.
      const got: InboundFrame[] = [];
      while (!got.some((f) => labelOf(f.bytes, id) === 'after')) {
        got.push(...(await take(b, 1, { what: 'the frames stored before and sent after the restart' })));
        assert.ok(got.length <= 4, `too many frames: ${got.map((f) => labelOf(f.bytes, id)).join(', ')}`);
      }
      await held!.ack(); // its delivery is still known to the server
      assert.equal(events.filter((e) => e.type === 'inbox.recreated').length, 0, 'the store survived: nothing recreated');
      got.push(...(await takeFor(b, 1500)));
      const labels = got.map((f) => labelOf(f.bytes, id));
      assert.deepEqual([...new Set(labels)], ['queued', 'after'], `nothing acked came back: ${labels.join(', ')}`);
      const repeats = got.filter((f, i) => labels.indexOf(labelOf(f.bytes, id)) !== i);
      for (const f of repeats) {
        assert.equal(labelOf(f.bytes, id), 'queued', 'only the frame in flight across the restart may come twice');
        assert.ok(f.deliveryCount >= 2, `a repeat says it is a redelivery (delivery count ${f.deliveryCount})`);
      }
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  test('nats: after the server comes back without its store, the inbox and consumer are made again once and frames flow', async () => {
    const run = randomUUID().slice(0, 8);
    const a = provider(`a-${run}`);
    const b = provider(`b-${run}`);
    const events: ProviderEvent[] = [];
    b.on((e) => events.push(e));
    await a.start();
    await b.start();
    try {
      const id = generateIdentity();
      await a.send(`b-${run}`, eventsFrame(id, 'before'));
      await take(b, 1);
      await nats.wipe();
      await eventually(() => events.some((e) => e.type === 'inbox.recreated'), 20_000, 'the reader to recreate its inbox');
      await sendWhenUp(a, `b-${run}`, eventsFrame(id, 'after'));
      const [f] = await take(b, 1, { what: 'the frame sent after the server lost its store' });
      assert.equal(labelOf(f!.bytes, id), 'after');
      assert.equal(f!.deliveryCount, 1);
      await sleep(500);
      assert.equal(events.filter((e) => e.type === 'inbox.recreated').length, 1, 'recreated once, no error loop');
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  describe('nats peer registry (KV)', () => {
    const self = (computer: string): PeerInfo => ({ computer, nodeId: generateIdentity().nodeId, addresses: [], caps: ['crc32c', 'aead'] });

    test('nats registry: a node finds a peer, forgets it after its TTL when it stops heartbeating, and at once when it stops', async () => {
      const run = randomUUID().slice(0, 8);
      const prefix = `t${run}`; // its own bucket: the TTL is the bucket's
      const ra = new NatsPeerRegistry({ url: nats.url, self: self(`a-${run}`), ttlMs: 1000, prefix }, deps);
      const rb = new NatsPeerRegistry({ url: nats.url, self: self(`b.${run}`), ttlMs: 1000, prefix }, deps);
      const rc = new NatsPeerRegistry({ url: nats.url, self: self(`c-${run}`), ttlMs: 1000, prefix }, deps);
      await Promise.all([ra.start(), rb.start(), rc.start()]);
      const nc = await admin();
      try {
        assert.deepEqual(
          (await ra.discoverPeers()).map((p) => p.computer),
          [`b.${run}`, `c-${run}`],
        );
        // Entries that fail validation are skipped: garbage, and an entry under another name's key.
        const kv = await nc.jetstream().views.kv(`${prefix}_peers`);
        await kv.put('garbage', new TextEncoder().encode('{not json'));
        await kv.put('mallory', new TextEncoder().encode(JSON.stringify(self(`c-${run}`))));
        assert.deepEqual(
          (await ra.discoverPeers()).map((p) => p.computer),
          [`b.${run}`, `c-${run}`],
        );
        await rc.stop(); // a clean stop deletes its entry
        assert.deepEqual(
          (await ra.discoverPeers()).map((p) => p.computer),
          [`b.${run}`],
        );
        // A crash: no more heartbeats, no delete.
        (rb as unknown as { stopBeating: () => void }).stopBeating();
        await (rb as unknown as { nc: NatsConnection }).nc.close();
        await eventually(async () => (await ra.discoverPeers()).length === 0, 5000, 'the silent peer to expire');
      } finally {
        await nc.close();
        await Promise.all([ra.stop(), rb.stop(), rc.stop()]);
      }
    });

    test('nats registry: a discovery while entries expire returns, every time (the key iterator waited forever for an entry that expired under it)', async () => {
      const run = randomUUID().slice(0, 8);
      const prefix = `x${run}`;
      const ra = new NatsPeerRegistry({ url: nats.url, self: self(`a-${run}`), ttlMs: 1000, prefix }, deps);
      await ra.start();
      const nc = await admin();
      try {
        const kv = await nc.jetstream().views.kv(`${prefix}_peers`);
        // Forty peers that announced once and went silent: their entries expire within a second.
        await Promise.all(
          Array.from({ length: 40 }, (_, i) => kv.put(`p${i}-${run}`, new TextEncoder().encode(JSON.stringify(self(`p${i}-${run}`))))),
        );
        const until = Date.now() + 2500;
        let rounds = 0;
        const seen = new Set<string>();
        while (Date.now() < until) {
          let timer: NodeJS.Timeout | undefined;
          const found = await Promise.race([
            ra.discoverPeers(),
            new Promise<'hung'>((r) => {
              timer = setTimeout(() => r('hung'), 5000);
            }),
          ]);
          clearTimeout(timer);
          assert.notEqual(found, 'hung', `discovery round ${rounds + 1} did not return within 5 s`);
          for (const p of found as PeerInfo[]) seen.add(p.computer);
          rounds++;
        }
        assert.equal(seen.size, 40, 'every announced peer was seen before it expired');
        assert.deepEqual(await ra.discoverPeers(), [], 'and none once they all expired');
        assert.ok(rounds > 5, `many rounds across the expiry (${rounds})`);
      } finally {
        await nc.close();
        await ra.stop();
      }
    });

    test('nats registry: a second live node with the same computer name is refused with WEFT_CONFLICT', async () => {
      const run = randomUUID().slice(0, 8);
      const first = new NatsPeerRegistry({ url: nats.url, self: self(`a-${run}`), ttlMs: 5000 }, deps);
      await first.start();
      const again = new NatsPeerRegistry({ url: nats.url, self: { ...self(`a-${run}`) }, ttlMs: 5000 }, deps);
      try {
        await assert.rejects(again.start(), (err: Error & { code?: string }) => {
          assert.equal(err.code, 'WEFT_CONFLICT');
          assert.match(err.message, /computer name 'a-.*' is in use on this NATS by another live node/);
          return true;
        });
        // The same node restarting (same id) is fine.
        const restarted = new NatsPeerRegistry({ url: nats.url, self: (first as unknown as { init: { self: PeerInfo } }).init.self, ttlMs: 5000 }, deps);
        await restarted.start();
        await restarted.stop();
      } finally {
        await again.stop();
        await first.stop();
      }
    });
  });
});
