/**
 * The durable engine's own rules, with a minimal sender and an injected fetch (no API shape to
 * speak): secrets kept out of the table, rate limits that name no time backing off, a named
 * pause capped, and the lifecycle.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type DeliverySender,
  DeliveryTable,
  durableChannel,
  type SendOutcome,
} from '../../src/delivery/index.js';
import { WeftError } from '../../src/errors/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { crashed, rig, waitFor } from './rig.js';

const SECRET = 's3cr3t-value';

/** A sender whose answers are scripted outcomes; `fetch` is injected, so nothing leaves the process. */
function scripted(outcomes: SendOutcome[]): DeliverySender {
  return {
    channel: 'test',
    api: 'the test API',
    secrets: [SECRET],
    render: (n) => `#${n.id}`,
    request: (text) => ({ url: `http://127.0.0.1:9/${SECRET}`, method: 'POST', headers: {}, body: text }),
    classify: () => outcomes.shift() ?? { type: 'sent' },
  };
}

function fakeFetch(clock: ManualClock, calls: number[]): typeof fetch {
  return async () => {
    calls.push(clock.now());
    return new Response('{}', { status: 200 });
  };
}

test('engine: should never write a secret the sender names into the table', async () => {
  const clock = new ManualClock();
  const calls: number[] = [];
  const r = await rig(
    (deps) =>
      durableChannel(
        { minLevel: 2 },
        { ...deps, fetch: fakeFetch(clock, calls) },
        scripted([{ type: 'permanent', error: `refused token ${SECRET}` }]),
      ),
    { clock },
  );
  try {
    await r.emit([crashed('w', 2)]);
    await waitFor(() => r.delivery.stats().failed === 1, 'failed');
    const [row] = new DeliveryTable(r.node.ns.store, 'test').list();
    assert.equal(row?.lastError, 'refused token <token>');
    assert.equal(r.delivery.stats().lastError, 'refused token <token>');
  } finally {
    await r.close();
  }
});

test('engine: should back off longer on each rate limit in a row that names no time', async () => {
  const clock = new ManualClock();
  const calls: number[] = [];
  const limited: SendOutcome = { type: 'rateLimited', error: 'slow down' };
  const r = await rig(
    (deps) =>
      durableChannel(
        { minLevel: 2, backoffBaseMs: 1000 },
        { ...deps, fetch: fakeFetch(clock, calls) },
        scripted([limited, limited, limited]),
      ),
    { clock },
  );
  try {
    await r.emit([crashed('w', 2)]);
    await waitFor(() => r.delivery.stats().sent === 1, 'sent');
    const gaps = calls.slice(1).map((t, i) => t - (calls[i] as number));
    assert.deepEqual(gaps, [1000, 2000, 4000]);
    assert.equal(r.delivery.stats().rateLimited, 3);
  } finally {
    await r.close();
  }
});

test('engine: should cap a pause the API names at maxPauseMs', async () => {
  const clock = new ManualClock();
  const calls: number[] = [];
  const r = await rig(
    (deps) =>
      durableChannel(
        { minLevel: 2, maxPauseMs: 5000 },
        { ...deps, fetch: fakeFetch(clock, calls) },
        scripted([{ type: 'rateLimited', error: 'banned', retryAfterMs: 10 * 365 * 86_400_000 }]),
      ),
    { clock },
  );
  try {
    await r.emit([crashed('w', 2)]);
    await waitFor(() => r.delivery.stats().sent === 1, 'sent');
    assert.deepEqual(
      calls.slice(1).map((t, i) => t - (calls[i] as number)),
      [5000],
    );
  } finally {
    await r.close();
  }
});

test('engine: should stop idempotently and refuse a start after stop', async () => {
  const clock = new ManualClock();
  const r = await rig(
    (deps) => durableChannel({ minLevel: 2 }, { ...deps, fetch: fakeFetch(clock, []) }, scripted([])),
    {
      clock,
    },
  );
  try {
    const a = r.delivery.stop();
    assert.equal(r.delivery.stop(), a, 'a second stop returns the same promise');
    await a;
    assert.throws(
      () => r.delivery.start(),
      (e: unknown) => e instanceof WeftError && e.code === 'WEFT_STOPPED',
    );
  } finally {
    await r.close();
  }
});
