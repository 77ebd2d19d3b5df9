/**
 * TeleClaude's producers feed Weft unchanged: entries are built exactly as TeleClaude's
 * `EventEnvelope.to_stream_dict()` lays them out (all 14 fields, '' for absent ones, string
 * version and level, `+00:00` timestamps, actions with snake_case `outcome_shape` and JSON
 * `null`s) and XADDed to `teleclaude:events` the way its `EventProducer` does, with
 * `MAXLEN ~ 10000`. A node configured with `redis.stream = "teleclaude:events"` turns them
 * into the notifications a Weft producer's events would be.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { startTestNode, waitFor } from '../helpers/node.js';
import { TestRedis } from '../helpers/redis.js';

/** TeleClaude's `to_stream_dict()`: every key, in its order, every value a string. */
function toStreamDict(e: {
  event: string;
  source: string;
  level: number;
  timestamp?: string;
  domain?: string;
  entity?: string | null;
  description?: string;
  visibility?: 'local' | 'cluster' | 'public';
  payload?: Record<string, unknown>;
  actions?: Record<string, { description: string; produces: string; outcome_shape: Record<string, string> | null }> | null;
}): string[] {
  // Python's json.dumps: ", " and ": " separators.
  const dumps = (v: unknown) => JSON.stringify(v).replace(/","/g, '", "').replace(/":/g, '": ').replace(/,"/g, ', "');
  const d: Array<[string, string]> = [
    ['event', e.event],
    ['version', '1'],
    ['source', e.source],
    ['timestamp', e.timestamp ?? '2026-11-30T09:15:02.123456+00:00'],
    ['idempotency_key', ''],
    ['level', String(e.level)],
    ['domain', e.domain ?? ''],
    ['entity', e.entity ?? ''],
    ['description', e.description ?? ''],
    ['visibility', e.visibility ?? 'local'],
    ['payload', dumps(e.payload ?? {})],
    ['actions', e.actions ? dumps(e.actions) : ''],
    ['terminal_when', ''],
    ['resolution_shape', ''],
  ];
  return d.flat();
}

let redis: TestRedis;
before(async () => {
  redis = await TestRedis.start();
});
after(async () => {
  await redis.stop();
});

test('TeleClaude fixtures on teleclaude:events become notifications with the right descriptions', async () => {
  const { node, close } = await startTestNode({ redis: { url: redis.url, stream: 'teleclaude:events' } });
  const r = new Redis(redis.url);
  const xadd = (fields: string[]) => r.xadd('teleclaude:events', 'MAXLEN', '~', '10000', '*', ...fields);
  try {
    await xadd(
      toStreamDict({
        event: 'domain.software-development.planning.dor_assessed',
        source: 'prepare-quality-runner',
        level: 2,
        domain: 'software-development',
        entity: 'login-page',
        description: 'DOR assessed for login-page: pass (score 9/10)',
        payload: { slug: 'login-page', score: 9, verdict: 'pass', assessed_commit: 'abc1234' },
      }),
    );
    await xadd(
      toStreamDict({
        event: 'domain.software-development.planning.todo_created',
        source: 'prepare-worker',
        level: 2,
        domain: 'software-development',
        payload: { slug: 'signup', title: 'Sign-up form' },
      }),
    );
    await xadd(
      toStreamDict({
        event: 'system.worker.crashed',
        source: 'daemon',
        level: 1,
        domain: 'system',
        entity: 'telec://worker/my-worker',
        payload: { worker_name: 'my-worker', timestamp: '2026-11-30T10:00:00' },
      }),
    );
    await xadd(
      toStreamDict({
        event: 'system.daemon.restarted',
        source: 'daemon',
        level: 0,
        domain: 'system',
        visibility: 'cluster',
        description: 'Daemon restarted on mozart',
        payload: { computer: 'mozart', pid: 12345 },
      }),
    );
    await xadd(
      toStreamDict({
        event: 'domain.software-development.planning.dor_assessed',
        source: 'prepare-quality-runner',
        level: 2,
        domain: 'software-development',
        description: '   '.trim(), // blank: the catalog's description stands
        payload: { slug: 'checkout', score: 5, verdict: 'needs_decision', assessed_commit: 'unknown' },
        actions: {
          decide: { description: 'Decide how to proceed', produces: 'domain.software-development.planning.todo.ready', outcome_shape: null },
          refine: { description: 'Refine it', produces: 'domain.software-development.planning.todo.dor_assessed', outcome_shape: { decision: 'str' } },
        },
      }),
    );

    const byType = (t: string) => node.ns.notifications.list({ eventType: t }).items;
    await waitFor(
      () =>
        byType('domain.software-development.planning.todo.dor_assessed').length === 2 &&
        byType('domain.software-development.planning.todo.created').length === 1 &&
        byType('system.worker.crashed').length === 1 &&
        byType('system.daemon.restarted').some((n) => n.payload.computer === 'mozart'),
      15_000,
      'the five TeleClaude events as notifications',
    );
    assert.equal(node.ns.rejections.count(), 0, JSON.stringify(node.ns.rejections.list()));
    assert.equal(node.ns.quarantine.count(), 0, JSON.stringify(node.ns.quarantine.list()));

    const dor = byType('domain.software-development.planning.todo.dor_assessed');
    const login = dor.find((n) => n.payload.slug === 'login-page');
    assert.equal(login?.description, 'DOR assessed for login-page: pass (score 9/10)', 'their description is kept');
    assert.equal(login?.payload.verdict, 'ready', 'pass is our ready');
    assert.equal(login?.payload.assessed_commit, 'abc1234');
    const checkout = dor.find((n) => n.payload.slug === 'checkout');
    assert.equal(checkout?.description, 'Definition of Ready was assessed for a todo', "a blank description falls back to the catalog's");
    assert.equal(checkout?.payload.verdict, 'blocked', 'needs_decision is our blocked');
    const ev = node.ns.log.get(checkout?.eventId as string);
    assert.deepEqual(ev?.envelope.actions, {
      decide: { description: 'Decide how to proceed', produces: 'domain.software-development.planning.todo.ready' },
      refine: { description: 'Refine it', produces: 'domain.software-development.planning.todo.dor_assessed', outcomeShape: { decision: 'str' } },
    });

    const todo = byType('domain.software-development.planning.todo.created')[0];
    assert.equal(todo?.description, 'A new work item (todo) was created');
    assert.equal(todo?.payload.title, 'Sign-up form');

    const crash = byType('system.worker.crashed')[0];
    assert.equal(crash?.payload.worker, 'my-worker');
    assert.equal(crash?.payload.crashedAt, '2026-11-30T10:00:00');
    assert.equal(crash?.description, 'A background worker of the node crashed and is being restarted');

    const restart = byType('system.daemon.restarted').find((n) => n.payload.computer === 'mozart');
    assert.equal(restart?.description, 'Daemon restarted on mozart');
    assert.equal(restart?.payload.pid, 12345);
    assert.equal(restart?.payload.startedAt, '2026-11-30T09:15:02.123456+00:00');

    // TeleClaude writes no idempotency key: the same event again is a duplicate all the same
    // (the type's key, as emit derives it), not a second notification or delivery.
    assert.equal(login?.idempotencyKey, 'domain.software-development.planning.todo.dor_assessed:login-page:9:ready');
    const again = toStreamDict({
      event: 'domain.software-development.planning.dor_assessed',
      source: 'prepare-quality-runner',
      level: 2,
      domain: 'software-development',
      entity: 'login-page',
      description: 'DOR assessed for login-page: pass (score 9/10)',
      payload: { slug: 'login-page', score: 9, verdict: 'pass', assessed_commit: 'abc1234' },
    });
    await xadd(again);
    await xadd(again);
    await xadd(toStreamDict({ event: 'system.daemon.restarted', source: 'daemon', level: 0, domain: 'system', payload: { computer: 'after-the-repeats', pid: 1 } }));
    await waitFor(() => byType('system.daemon.restarted').some((n) => n.payload.computer === 'after-the-repeats'), 15_000, 'the entry after the repeats');
    assert.equal(byType('domain.software-development.planning.todo.dor_assessed').length, 2, 'the repeats made no notification');

    // TeleClaude's own consumer group is not Weft's business; Weft's entries carry the mark and
    // this stream (outside the weft: prefix) is never trimmed by Weft.
    const groups = (await r.call('XINFO', 'GROUPS', 'teleclaude:events')) as unknown[][];
    assert.deepEqual(groups.map((g) => g[1]), ['weft:pipeline:test']);
  } finally {
    r.disconnect();
    await close();
  }
});
