import assert from 'node:assert/strict';
import { test } from 'node:test';
import { goalRows } from '../../bench/goals.js';

const phase = (eventsPerSec: number, p99: number, delivered = 5000) => ({ eventsPerSec, p50: 1, p99, delivered, expected: 5000 });

test('the goals table holds each figure against its peer or ceiling of the same run and says met or not met', () => {
  const rows = goalRows({
    pipeline: { embeddedEventsPerSec: 40_500, ceilingRowsPerSec: 100_000 },
    transport: { eventsPerSecond: { rawRedisCeiling: 900_000, redis: 90_000, tls: 100_000, memory: 110_000 } },
    mesh: { fanOutDeliveriesPerSec: { 1: 10_000, 4: 10_500, 16: 9_000 } },
    startup: { bareNodeMs: 50, versionMs: 60, emitMs: 151, notificationsListMs: 110, bareIdleRssMb: 40, daemonIdleRssMb: 78, meshIdleRssMb: [69, 80, 81, 82], meshLinked: true },
    volume: { ratio: { list: 1.1, events: 0.9, filtered: 1.2, emit: 1.6 } },
    compare: {
      systems: [
        { system: 'NATS JetStream (file, Nats-Msg-Id, durable explicit ack)', burst: phase(10_000, 1), paced: phase(1000, 2, 5000) },
        { system: 'Weft mesh over TLS', burst: phase(11_000, 4), paced: phase(1000, 4.5) },
        // Fast enough, but not everything arrived: not a result.
        { system: 'Weft mesh over Redis', burst: phase(12_000, 4, 4999), paced: phase(1000, 9) },
      ],
    },
  });
  const v = Object.fromEntries(rows.map((r) => [r.goal, r]));
  const get = (prefix: string) => {
    const row = rows.find((r) => r.goal.startsWith(prefix));
    assert.ok(row, `a row for ${prefix}`);
    return row;
  };
  assert.equal(get('pipeline').verdict, 'met');
  assert.equal(get('pipeline').ratio, '40.5%');
  assert.equal(get('signed frames').verdict, 'not met');
  assert.equal(get('signed frames').ratio, '10.0%');
  assert.equal(get('fan-out').verdict, 'met');
  assert.equal(get('CLI: `weft --version`').verdict, 'met');
  assert.equal(get('CLI: `weft emit`').verdict, 'not met', '151 ms is over 150');
  assert.equal(get('CLI: `weft notifications list`').ratio, '2.20×');
  assert.equal(get('idle embedded').verdict, 'not met');
  assert.equal(get('idle daemon with the mesh on').verdict, 'met', 'the first node, linked, at 69 MB');
  assert.equal(get('flat in stored volume').verdict, 'not met');
  assert.match(get('flat in stored volume').figure, /emit 1\.60×/);
  assert.equal(get('compare: Weft over TLS burst').verdict, 'met');
  assert.equal(get('compare: Weft over TLS burst').ratio, '1.10×');
  assert.equal(get('compare: Weft over TLS p99').verdict, 'met');
  assert.equal(get('compare: Weft over Redis burst').verdict, 'not met', 'an incomplete delivery is never met');
  assert.equal(get('compare: Weft over Redis p99').verdict, 'not met');
  assert.ok(Object.keys(v).length === rows.length);
});

test('a goal whose section did not run is left out; links not up make the mesh-on memory not met', () => {
  assert.deepEqual(goalRows({ date: 'x' }), []);
  const rows = goalRows({ startup: { bareIdleRssMb: 40, meshIdleRssMb: [60], meshLinked: false } });
  assert.equal(rows.length, 1);
  assert.equal(rows[0]?.verdict, 'not met');
});
