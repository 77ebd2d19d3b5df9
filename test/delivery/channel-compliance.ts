/**
 * The behaviour every durable delivery channel owes its user, run against each one with its
 * own fake API: the level filter, exactly-once across a restart in the middle of a retry, rate
 * limits honoured for the time the API named (and for the whole channel), and a permanent
 * refusal that fails one row without stopping the rest.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type DeliveryChannel,
  type DeliveryDeps,
  DeliveryTable,
  type DurableInit,
  deliveryProblems,
} from '../../src/delivery/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { tempDir } from '../helpers/tmp.js';
import type { FakeApi } from './fake-apis.js';
import { crashed, heldSleep, notificationId, type Rig, rig, waitFor } from './rig.js';

export interface ComplianceTarget {
  /** Test names start with it: 'discord (webhook)'. */
  name: string;
  /** The `deliveries.channel` of its rows. */
  channel: string;
  /** A fake API for it, not started yet. */
  fake(clock: ManualClock): FakeApi;
  /** The channel, pointed at the started `fake`, with these engine options. */
  create(fake: FakeApi, init: DurableInit, deps: DeliveryDeps): DeliveryChannel;
  /** Fake answers that rate-limit and name a time (each fake records it as `retryAt`). */
  rateLimits: readonly string[];
  /** Values that must never be written to the table. */
  secrets: readonly string[];
}

const BASE: DurableInit = { minLevel: 2, backoffBaseMs: 1000 };

/** Registers the compliance tests for one channel. */
export function channelCompliance(target: ComplianceTarget): void {
  const name = target.name;

  /** A started fake and a rig on it; `done` stops both and checks the API saw no malformed request. */
  async function setup(
    opts: {
      dir?: string;
      clock?: ManualClock;
      fake?: FakeApi;
      sleep?: (ms: number, s: AbortSignal) => Promise<void>;
      start?: boolean;
    } = {},
  ) {
    const clock = opts.clock ?? new ManualClock();
    const fake = opts.fake ?? target.fake(clock);
    if (!opts.fake) await fake.start();
    const r = await rig((deps) => target.create(fake, BASE, deps), {
      clock,
      ...(opts.dir ? { dir: opts.dir } : {}),
      ...(opts.sleep ? { sleep: opts.sleep } : {}),
      ...(opts.start === false ? { start: false } : {}),
    });
    return {
      r,
      fake,
      table: () => new DeliveryTable(r.node.ns.store, target.channel).list(),
      async done() {
        await r.close();
        if (!opts.fake) await fake.stop();
        assert.deepEqual(fake.violations, [], 'every request had the shape the real API takes');
      },
    };
  }

  test(`${name}: should send a level-2 notification once and not a level-1 one below min_level 2`, async () => {
    const { r, fake, table, done } = await setup();
    try {
      await r.emit([crashed('low', 1), crashed('high', 2)]);
      await waitFor(() => r.delivery.stats().sent === 1, 'the level-2 one sent');
      // Something later goes through too, so the level-1 one had every chance to be sent first.
      await r.emit([crashed('later', 3)]);
      await waitFor(() => r.delivery.stats().sent === 2, 'the later one sent');
      const [low, high, later] = ['low', 'high', 'later'].map((w) => notificationId(r, w)) as [
        number,
        number,
        number,
      ];
      assert.equal(fake.received.length, 2);
      assert.equal(fake.deliveredFor(high), 1);
      assert.equal(fake.deliveredFor(later), 1);
      assert.equal(fake.countFor(low), 0);
      assert.match(fake.texts[0] ?? '', /worker: high/);
      assert.deepEqual(
        table().map((x) => [x.notificationId, x.status, x.attempts]),
        [
          [high, 'sent', 1],
          [later, 'sent', 1],
        ],
      );
    } finally {
      await done();
    }
  });

  test(`${name}: should deliver once, not twice, when the node restarts while a retry is pending`, async () => {
    const t = tempDir('weft-delivery-restart-');
    const clock = new ManualClock();
    const fake = target.fake(clock);
    await fake.start();
    try {
      fake.script = ['500', '500'];
      const held = heldSleep();
      const first = await setup({ dir: t.dir, clock, fake, sleep: held.sleep });
      let id: number;
      let dueAt: number;
      try {
        await first.r.emit([crashed('flaky', 2)]);
        id = notificationId(first.r, 'flaky');
        // The first try got a 500 and the loop waits for the retry's time: stop right there.
        await waitFor(
          () => fake.received.length === 1 && held.waits.some((ms) => ms >= 1000),
          'a retry pending',
        );
        const [row] = first.table();
        assert.equal(row?.status, 'pending');
        assert.equal(row?.attempts, 1);
        dueAt = row?.nextAttemptAt ?? 0;
        assert.ok(dueAt >= fake.received[0]!.at + 1000, 'the retry waits for the backoff');
      } finally {
        await first.done();
      }

      const second = await setup({ dir: t.dir, clock, fake });
      try {
        await waitFor(() => second.r.delivery.stats().sent === 1, 'sent after the restart');
        await second.r.emit([crashed('after', 2)]);
        await waitFor(
          () => second.r.delivery.stats().sent === 2,
          'a later one sent, so nothing else is on its way',
        );
        assert.equal(fake.countFor(id), 3, 'a 500 before the stop, a 500 and an ok after it');
        assert.equal(fake.deliveredFor(id), 1, 'delivered exactly once');
        assert.ok(fake.received[1]!.at >= dueAt, 'the retry after the restart still waited for its time');
        const rows = second.table();
        assert.deepEqual(
          rows.map((x) => [x.notificationId, x.status, x.attempts]),
          [
            [id, 'sent', 3],
            [notificationId(second.r, 'after'), 'sent', 1],
          ],
        );
      } finally {
        await second.done();
      }
    } finally {
      await fake.stop();
      t.cleanup();
    }
  });

  for (const answer of target.rateLimits) {
    test(`${name}: should not try again before the time a rate limit (${answer}) named, for the whole channel`, async () => {
      const { r, fake, table, done } = await setup({ start: false });
      try {
        fake.script = [answer];
        await r.emit([crashed('first', 2), crashed('second', 2)]);
        r.delivery.start();
        await waitFor(() => r.delivery.stats().sent === 2, 'both sent after the rate limit');
        const [limited, retried, next] = fake.received;
        assert.ok(limited && retried && next);
        assert.equal(fake.received.length, 3);
        assert.equal(limited.answer, answer);
        assert.ok(limited.retryAt !== undefined && limited.retryAt > limited.at, 'the fake named a time');
        assert.ok(
          retried.at >= limited.retryAt,
          `retried ${retried.at - limited.at} ms after, named ${limited.retryAt - limited.at}`,
        );
        assert.ok(next.at >= limited.retryAt, 'the next row waited too: the whole channel paused');
        const [a, b] = ['first', 'second'].map((w) => notificationId(r, w)) as [number, number];
        // Order kept: the limited row goes first once the pause ends.
        assert.match(retried.text, new RegExp(`#${a}\\b`));
        assert.match(next.text, new RegExp(`#${b}\\b`));
        assert.equal(
          [retried, next].every((x) => x.answer === 'ok'),
          true,
        );
        assert.equal(fake.deliveredFor(b), 1);
        const stats = r.delivery.stats();
        assert.equal(stats.rateLimited, 1);
        assert.equal(stats.failed, 0);
        assert.deepEqual(
          table().map((x) => [x.status, x.attempts]),
          [
            ['sent', 1],
            ['sent', 1],
          ],
          'a rate-limited try is not counted as an attempt',
        );
      } finally {
        await done();
      }
    });
  }

  test(`${name}: should back off, not ask again at once, while the API rate-limits naming a wait of 0`, async () => {
    const { r, fake, table, done } = await setup({ start: false });
    try {
      fake.fallback = '429-zero';
      await r.emit([crashed('zero', 2)]);
      r.delivery.start();
      await waitFor(() => fake.received.length >= 5, 'five tries');
      fake.fallback = 'ok';
      await waitFor(() => r.delivery.stats().sent === 1, 'sent once the limits stop');
      const at = fake.received.slice(0, 5).map((x) => x.at);
      // The rig's jitter is 0: the backoff for 1, 2, 3, 4 limits in a row (base 1 s), on the ManualClock.
      assert.deepEqual(
        at.slice(1).map((t, i) => t - (at[i] as number)),
        [1000, 2000, 4000, 8000],
        'each rate limit waited the backoff, growing, although the API named 0',
      );
      assert.ok(r.delivery.stats().rateLimited >= 5);
      assert.deepEqual(
        table().map((x) => [x.status, x.attempts]),
        [['sent', 1]],
        'rate-limited tries are not counted as attempts',
      );
    } finally {
      await done();
    }
  });

  test(`${name}: should read at most 64 KiB of an answer that never ends, hang up and go on`, async () => {
    const { r, fake, done } = await setup();
    try {
      fake.script = ['endless'];
      await r.emit([crashed('endless', 2), crashed('next', 2)]);
      // Whatever the cut answer means to this API (sent, or retried), the channel goes on.
      await waitFor(() => r.delivery.stats().sent === 2, 'both sent, the endless answer left behind');
      const [seen] = fake.endless;
      assert.ok(seen);
      await waitFor(() => seen.closedByClient, 'the channel closed the connection');
      assert.ok(seen.bytes < 1024 * 1024, `${seen.bytes} bytes written before the channel hung up`);
      assert.equal(fake.deliveredFor(notificationId(r, 'next')), 1);
    } finally {
      await done();
    }
  });

  test(`${name}: should be a problem after 5 failed tries in a row, naming the channel and the last error, until a try goes through`, async () => {
    const { r, fake, done } = await setup();
    try {
      fake.fallback = '500';
      await r.emit([crashed('down', 2), crashed('also', 2)]);
      await waitFor(() => r.delivery.stats().failuresInARow >= 5, 'five failed tries');
      const problems = deliveryProblems(r.delivery.stats(), r.clock.now());
      assert.equal(problems.length, 1, problems.join('\n'));
      assert.match(
        problems[0] ?? '',
        new RegExp(
          `^delivery: ${target.channel} has failed for \\d+ s \\(\\d+ failed tries in a row, last error: .*\\b5\\d\\d\\b.*\\); 2 notifications wait, the oldest for \\d+ s$`,
        ),
      );
      for (const secret of target.secrets) assert.ok(!(problems[0] ?? '').includes(secret), 'no secret shown');
      fake.fallback = 'ok';
      await waitFor(() => r.delivery.stats().sent === 2, 'both sent');
      assert.deepEqual(deliveryProblems(r.delivery.stats(), r.clock.now()), [], 'no problem once a try went through');
    } finally {
      await done();
    }
  });

  test(`${name}: should be a problem when a failing channel's oldest notification has waited over 60 s`, async () => {
    const held = heldSleep();
    const { r, fake, done } = await setup({ sleep: held.sleep });
    try {
      fake.fallback = '500';
      await r.emit([crashed('slow', 2)]);
      await waitFor(
        () => r.delivery.stats().failuresInARow === 1 && held.waits.length > 0,
        'one failed try, its retry pending',
      );
      assert.deepEqual(
        deliveryProblems(r.delivery.stats(), r.clock.now()),
        [],
        'one failed try a moment ago is not a problem yet',
      );
      r.clock.advance(61_000);
      const problems = deliveryProblems(r.delivery.stats(), r.clock.now());
      assert.equal(problems.length, 1);
      assert.match(
        problems[0] ?? '',
        new RegExp(
          `^delivery: ${target.channel} has failed for 61 s \\(1 failed try, last error: .+\\); 1 notification waits, the oldest for 61 s$`,
        ),
      );
    } finally {
      await done();
    }
  });

  /** Which of `workers` each request carried, by index (-1: none of them). */
  function order(r: Rig, fake: FakeApi, workers: string[]): number[] {
    const ids = workers.map((w) => notificationId(r, w));
    return fake.received.map((x) => ids.findIndex((id) => new RegExp(`#${id}\\b`).test(x.text)));
  }

  test(`${name}: should deliver in order: a row that fails is retried before any later one is sent`, async () => {
    const { r, fake, table, done } = await setup();
    try {
      fake.script = ['500', '500', '500'];
      const workers = ['one', 'two', 'three', 'four'];
      await r.emit(workers.map((w) => crashed(w, 2)));
      await waitFor(() => r.delivery.stats().sent === 4, 'all four sent');
      assert.deepEqual(order(r, fake, workers), [0, 0, 0, 0, 1, 2, 3], 'none overtook the one that failed');
      assert.deepEqual(
        table().map((x) => [x.status, x.attempts]),
        [
          ['sent', 4],
          ['sent', 1],
          ['sent', 1],
          ['sent', 1],
        ],
      );
    } finally {
      await done();
    }
  });

  test(`${name}: should give up on a row that keeps failing after its 20 tries, then send the next`, async () => {
    const { r, fake, table, done } = await setup();
    try {
      fake.script = Array.from({ length: 20 }, () => '500');
      await r.emit([crashed('doomed', 2), crashed('behind', 2)]);
      await waitFor(
        () => r.delivery.stats().failed === 1 && r.delivery.stats().sent === 1,
        'one given up, one sent',
      );
      assert.deepEqual(order(r, fake, ['doomed', 'behind']), [...Array.from({ length: 20 }, () => 0), 1]);
      const rows = table();
      assert.deepEqual(
        rows.map((x) => [x.status, x.attempts]),
        [
          ['failed', 20],
          ['sent', 1],
        ],
      );
      assert.match(rows[0]?.lastError ?? '', /gave up after 20 attempts/);
    } finally {
      await done();
    }
  });

  test(`${name}: should keep the order across a restart while the first row waits for its retry`, async () => {
    const t = tempDir('weft-delivery-order-');
    const clock = new ManualClock();
    const fake = target.fake(clock);
    await fake.start();
    try {
      fake.script = ['500'];
      const held = heldSleep();
      const first = await setup({ dir: t.dir, clock, fake, sleep: held.sleep });
      try {
        await first.r.emit([crashed('first', 2), crashed('second', 2)]);
        await waitFor(
          () => fake.received.length === 1 && held.waits.some((ms) => ms >= 1000),
          'the first row waits for its retry',
        );
      } finally {
        await first.done();
      }
      const second = await setup({ dir: t.dir, clock, fake });
      try {
        await waitFor(() => second.r.delivery.stats().sent === 2, 'both sent after the restart');
        assert.deepEqual(order(second.r, fake, ['first', 'second']), [0, 0, 1]);
      } finally {
        await second.done();
      }
    } finally {
      await fake.stop();
      t.cleanup();
    }
  });

  test(`${name}: should mark a row failed on a permanent 4xx and go on with the next one`, async () => {
    const { r, fake, table, done } = await setup();
    try {
      fake.script = ['400'];
      await r.emit([crashed('refused', 2), crashed('fine', 2)]);
      await waitFor(
        () => r.delivery.stats().failed === 1 && r.delivery.stats().sent === 1,
        'one failed, one sent',
      );
      const refused = notificationId(r, 'refused');
      const fine = notificationId(r, 'fine');
      assert.equal(fake.countFor(refused), 1, 'a permanent refusal is not retried');
      assert.equal(fake.deliveredFor(fine), 1);
      const rows = table();
      assert.deepEqual(
        rows.map((x) => [x.notificationId, x.status, x.attempts]),
        [
          [refused, 'failed', 1],
          [fine, 'sent', 1],
        ],
      );
      assert.match(rows[0]?.lastError ?? '', /\b4\d\d\b/);
      for (const row of rows)
        for (const s of target.secrets) assert.ok(!(row.lastError ?? '').includes(s), 'no secret recorded');
      assert.equal(r.delivery.stats().retries, 0);
    } finally {
      await done();
    }
  });
}
