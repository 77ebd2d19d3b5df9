import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { TestRedis } from './redis.js';

let redis: TestRedis;
before(async () => {
  redis = await TestRedis.start();
});
after(async () => {
  await redis.stop();
});

test('test redis restarts empty on the same port', async () => {
  const c = new Redis(redis.url, { maxRetriesPerRequest: null, lazyConnect: true });
  await c.connect();
  await c.set('k', 'v');
  assert.equal(await c.get('k'), 'v');
  c.disconnect();
  await redis.restart();
  const c2 = new Redis(redis.url, { lazyConnect: true });
  await c2.connect();
  assert.equal(await c2.get('k'), null);
  c2.disconnect();
});

test('a missing redis-server is named, with how to install it', async () => {
  const before = process.env.REDIS_SERVER;
  process.env.REDIS_SERVER = '/nonexistent/redis-server';
  try {
    await assert.rejects(TestRedis.start(), /\/nonexistent\/redis-server is not installed .*apt-get install redis-server/);
  } finally {
    if (before === undefined) delete process.env.REDIS_SERVER;
    else process.env.REDIS_SERVER = before;
  }
});
