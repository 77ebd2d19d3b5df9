/**
 * Starting against a Redis that is not what redis.url says: one line saying what is wrong and
 * a non-zero exit, never a start that hangs or goes on in another database.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { startDaemonProcess, weft } from '../helpers/cli.js';
import { eventually } from '../helpers/cluster.js';
import { freePort, TestRedis } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

test('a server that takes the connection and never answers ends the start within its limit, saying so', async () => {
  const t = tempDir('weft-redis-mute-');
  const port = await freePort();
  const mute = createServer(() => undefined).listen(port, '127.0.0.1');
  await new Promise((r) => mute.once('listening', r));
  try {
    const r = weft(['daemon'], {
      HOME: t.dir,
      WEFT_DATA_DIR: join(t.dir, 'data'),
      WEFT_API_PORT: '0',
      WEFT_REDIS_URL: `redis://127.0.0.1:${port}`,
    });
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /^weft: cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+: it took the connection but did not answer within 10 s/,
    );
  } finally {
    mute.close();
    t.cleanup();
  }
});

test('a password Redis wants, a wrong one, and a database it does not have are each one line naming redis.url', async () => {
  const redis = await TestRedis.start();
  const t = tempDir('weft-redis-auth-');
  const admin = new Redis(redis.url);
  await admin.config('SET', 'requirepass', 's3cret');
  admin.disconnect();
  const start = (url: string) =>
    weft(['daemon'], {
      HOME: t.dir,
      WEFT_DATA_DIR: join(t.dir, 'data'),
      WEFT_API_PORT: '0',
      WEFT_REDIS_URL: url,
    });
  const at = `127.0.0.1:${redis.port}`;
  try {
    let r = start(`redis://${at}`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /Redis asks for a password and redis\.url gives none \(NOAUTH/);
    r = start(`redis://:wrong@${at}`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /^weft: cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+: Redis refused the user or password \(WRONGPASS/,
    );
    assert.doesNotMatch(r.stderr, /wrong/, 'the password is not printed');
    r = start(`redis://:s3cret@${at}/99`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /Redis has no database 99 \(ERR DB index is out of range\): fix the number after the port in redis\.url/,
    );
  } finally {
    await redis.stop();
    t.cleanup();
  }
});

test('a password Redis starts asking for while the node runs shows up in weft status with Redis\'s own reason', async () => {
  const redis = await TestRedis.start();
  const t = tempDir('weft-redis-pw-');
  const env = { HOME: t.dir, WEFT_DATA_DIR: join(t.dir, 'data'), WEFT_API_PORT: '0', WEFT_REDIS_URL: redis.url };
  const d = await startDaemonProcess(env);
  try {
    assert.equal(weft(['status'], env).code, 0);
    const admin = new Redis(redis.url);
    await admin.config('SET', 'requirepass', 's3cret');
    // Connections already in are authenticated: drop them, as a Redis restart would.
    await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    admin.disconnect();
    await eventually(
      async () => {
        const r = weft(['status'], env);
        return r.code === 3 && /bus: the connection to Redis is \w+ \((NOAUTH|WRONGPASS)/.test(r.stdout);
      },
      30_000,
      'weft status names the refused password',
    );
  } finally {
    d.proc.kill('SIGTERM');
    await d.exited;
    await redis.stop();
    t.cleanup();
  }
});
