/**
 * The provider compliance suite: the same behaviour checks for every Provider. Each provider
 * test file calls `providerCompliance(name, setup)`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateIdentity, type NodeIdentity } from '../../src/identity/index.js';
import { decodeFrame, encodeFrame, type InboundFrame, type Provider, type TransportCap } from '../../src/transport/index.js';
import { systemClock } from '../../src/util/clock.js';

export interface Pair {
  a: Provider;
  b: Provider;
  /** Name by which A addresses B, and B addresses A. */
  aToB: string;
  bToA: string;
  idA: NodeIdentity;
  idB: NodeIdentity;
  /** A new B provider over the same inbox/port (after `b.stop()`), for restart tests. */
  restartB(): Promise<Provider>;
  cleanup(): Promise<void>;
}

export type PairSetup = () => Promise<Pair>;

/** Takes `n` frames from a provider (the iterator is released afterwards). */
/**
 * Takes `n` frames, acking each unless told not to. Fails within `timeoutMs` (default 20 s)
 * with a message naming what it waited for, never by the runner's timeout.
 */
export async function take(
  p: Provider,
  n: number,
  opts: { ack?: boolean; timeoutMs?: number; what?: string } = {},
): Promise<InboundFrame[]> {
  const out: InboundFrame[] = [];
  if (n === 0) return out;
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const it = p.frames()[Symbol.asyncIterator]();
  const deadline = Date.now() + timeoutMs;
  try {
    while (out.length < n) {
      let timer: NodeJS.Timeout | undefined;
      const r = await Promise.race([
        it.next(),
        new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now()));
        }),
      ]).finally(() => clearTimeout(timer));
      if (r === 'timeout') {
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${n} frame(s)${opts.what ? ` (${opts.what})` : ''} from ${p.name}: got ${out.length}`);
      }
      if (r.done) throw new Error(`${p.name} ended its frames after ${out.length} of ${n}${opts.what ? ` (${opts.what})` : ''}`);
      out.push(r.value);
      if (opts.ack !== false) await r.value.ack();
    }
  } finally {
    void it.return?.();
  }
  return out;
}

let seq = 0;
export function eventsFrame(id: NodeIdentity, label: string): Uint8Array {
  return encodeFrame(
    {
      type: 'events',
      sequence: ++seq,
      timestamp: systemClock.now(),
      body: { envelopes: [{ id: label, event: 'test', payload: { label } }] },
    },
    { identity: id, crc32c: true },
  );
}

function labelOf(f: InboundFrame, sender: NodeIdentity): string {
  const r = decodeFrame(f.bytes, { lookupKey: (s) => (s === sender.nodeId ? sender.publicKey : undefined) });
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  assert.equal(r.frame.type, 'events');
  return r.frame.type === 'events' ? String(r.frame.body.envelopes[0]?.id) : '';
}

export function providerCompliance(name: string, setup: PairSetup): void {
  /** A case; with `needs`, it is reported as skipped (with the reason) on a provider without that cap. */
  const t = (title: string, fn: (p: Pair) => Promise<void>, needs?: TransportCap) =>
    test(`${name}: ${title}`, { timeout: 30_000 }, async (tc) => {
      const pair = await setup();
      try {
        if (needs && !pair.a.caps.has(needs)) {
          tc.skip(`the ${name} provider is not ${needs}`);
          return;
        }
        await fn(pair);
      } finally {
        await pair.cleanup();
      }
    });

  t('frames flow both ways with their bytes intact', async (p) => {
    await p.a.waitForPeer(p.aToB, { timeoutMs: 10_000 });
    await p.b.waitForPeer(p.bToA, { timeoutMs: 10_000 });
    const ab = eventsFrame(p.idA, 'a->b');
    const ba = eventsFrame(p.idB, 'b->a');
    await p.a.send(p.aToB, ab);
    await p.b.send(p.bToA, ba);
    const [atB] = await take(p.b, 1);
    const [atA] = await take(p.a, 1);
    assert.deepEqual(Buffer.from(atB!.bytes), Buffer.from(ab));
    assert.deepEqual(Buffer.from(atA!.bytes), Buffer.from(ba));
    assert.equal(labelOf(atB!, p.idA), 'a->b');
    assert.equal(labelOf(atA!, p.idB), 'b->a');
  });

  t('frames from one sender arrive in the order sent', async (p) => {
    await p.a.waitForPeer(p.aToB, { timeoutMs: 10_000 });
    const labels = Array.from({ length: 50 }, (_, i) => `f${i}`);
    for (const l of labels) await p.a.send(p.aToB, eventsFrame(p.idA, l));
    const got = await take(p.b, labels.length);
    assert.deepEqual(
      got.map((f) => labelOf(f, p.idA)),
      labels,
    );
  }, 'ordered');

  t('counts frames and bytes per peer on both sides', async (p) => {
    await p.a.waitForPeer(p.aToB, { timeoutMs: 10_000 });
    const bytes = eventsFrame(p.idA, 'x');
    await p.a.send(p.aToB, bytes);
    await take(p.b, 1);
    const sent = p.a.telemetry().find((x) => x.peer === p.aToB);
    assert.ok(sent);
    assert.equal(sent.framesSent, 1);
    assert.equal(sent.bytesSent, bytes.length);
    const recv = p.b.telemetry().reduce((n, x) => n + x.framesReceived, 0);
    assert.equal(recv, 1);
  });

  t(
    'an unacknowledged frame comes back after the receiver restarts; an acknowledged one does not',
    async (p) => {
      await p.a.waitForPeer(p.aToB, { timeoutMs: 10_000 });
      await p.a.send(p.aToB, eventsFrame(p.idA, 'acked'));
      await p.a.send(p.aToB, eventsFrame(p.idA, 'unacked'));
      const [first] = await take(p.b, 1);
      const [second] = await take(p.b, 1, { ack: false });
      assert.equal(labelOf(first!, p.idA), 'acked');
      assert.equal(labelOf(second!, p.idA), 'unacked');
      await p.b.stop();
      const b2 = await p.restartB();
      await p.a.send(p.aToB, eventsFrame(p.idA, 'after'));
      const again = await take(b2, 2);
      assert.deepEqual(
        again.map((f) => labelOf(f, p.idA)),
        ['unacked', 'after'],
      );
      assert.ok(again[0]!.deliveryCount >= 2, 'a redelivery says so');
    },
    'durable',
  );

  t(
    'frames sent while the receiver is stopped wait for it',
    async (p) => {
      await p.b.stop();
      await p.a.send(p.aToB, eventsFrame(p.idA, 'queued'));
      const b2 = await p.restartB();
      const [f] = await take(b2, 1);
      assert.equal(labelOf(f!, p.idA), 'queued');
    },
    'durable',
  );

  t('start and stop are idempotent; send after stop is refused', async (p) => {
    await p.a.start();
    await Promise.all([p.a.stop(), p.a.stop()]);
    await p.a.stop();
    await assert.rejects(p.a.send(p.aToB, eventsFrame(p.idA, 'late')), { code: 'TRANSPORT_STOPPED' });
  });

  t('should not receive frames after stop, and iteration ends', async (p) => {
    const it = p.b.frames()[Symbol.asyncIterator]();
    const pending = it.next();
    await p.b.stop();
    const r = await pending;
    assert.equal(r.done, true);
  });

  t('breaking out of the iteration leaves later frames for the next one', async (p) => {
    await p.a.waitForPeer(p.aToB, { timeoutMs: 10_000 });
    await p.a.send(p.aToB, eventsFrame(p.idA, 'one'));
    await p.a.send(p.aToB, eventsFrame(p.idA, 'two'));
    const [one] = await take(p.b, 1);
    const [two] = await take(p.b, 1);
    assert.equal(labelOf(one!, p.idA), 'one');
    assert.equal(labelOf(two!, p.idA), 'two');
  });
}

export { generateIdentity };
