/** The bus compliance suite on every bus: the embedded SQLite bus and the Redis bus (a real redis-server). */
import { after, before } from 'node:test';
import { RedisBus, SqliteBus } from '../../src/bus/index.js';
import { systemClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { TestRedis } from '../helpers/redis.js';
import { busCompliance } from './bus-compliance.js';

let redis: TestRedis;
before(async () => {
  redis = await TestRedis.start();
});
after(async () => {
  await redis.stop();
});

busCompliance('sqlite', (ns) => new SqliteBus(ns, { consumer: 'pipeline' }));
// The daemon's default names for a computer called after the test's scope.
busCompliance(
  'redis',
  (ns, scope) =>
    new RedisBus(
      { url: redis.url, stream: `weft:events:${scope}`, group: `weft:pipeline:${scope}`, consumer: scope },
      { store: ns.store, journal: ns.emitJournal, clock: systemClock, logger: silentLogger },
    ),
);
