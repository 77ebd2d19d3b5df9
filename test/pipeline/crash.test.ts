import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { TestRedis } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

const CHILD = fileURLToPath(new URL('../fixtures/crash-child.js', import.meta.url));
const TOTAL = 10_000;

function run(dataDir: string, redisUrl?: string): { proc: ChildProcess; exited: Promise<number | null>; out: () => string } {
  const proc = spawn(process.execPath, [CHILD, dataDir, String(TOTAL), ...(redisUrl ? [redisUrl] : [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (d) => (out += d));
  proc.stderr?.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, exited, out: () => out };
}

function countNotifications(dbPath: string): number {
  if (!existsSync(dbPath)) return 0;
  try {
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    try {
      return db.prepare('SELECT COUNT(*) FROM notifications').pluck().get() as number;
    } finally {
      db.close();
    }
  } catch {
    return 0; // not created yet
  }
}

async function killMidStreamThenRestart(redisUrl?: string): Promise<void> {
  const t = tempDir('weft-crash-');
  const dbPath = join(t.dir, 'weft.db');
  try {
    const first = run(t.dir, redisUrl);
    const deadline = Date.now() + 60_000;
    let atKill = 0;
    for (;;) {
      atKill = countNotifications(dbPath);
      if (atKill >= 1500) break;
      if (Date.now() > deadline) assert.fail(`child made no progress: ${first.out()}`);
      await new Promise((r) => setTimeout(r, 2));
    }
    first.proc.kill('SIGKILL');
    await first.exited;
    assert.ok(atKill < TOTAL, `killed mid-stream (had ${atKill} of ${TOTAL})`);

    const second = run(t.dir, redisUrl);
    const code = await second.exited;
    assert.equal(code, 0, second.out());
    assert.match(second.out(), /done/);

    const db = new Database(dbPath, { readonly: true });
    try {
      const total = db.prepare('SELECT COUNT(*) FROM notifications').pluck().get();
      const distinct = db.prepare(`SELECT COUNT(DISTINCT json_extract(payload, '$.i')) FROM notifications`).pluck().get();
      assert.equal(total, TOTAL, 'no loss, no duplicates');
      assert.equal(distinct, TOTAL, 'every item exactly once');
    } finally {
      db.close();
    }
  } finally {
    t.cleanup();
  }
}

test('kill -9 mid-stream of 10,000 events then restart: exactly 10,000 notifications (embedded)', async () => {
  await killMidStreamThenRestart();
});

let redis: TestRedis;
before(async () => {
  redis = await TestRedis.start();
});
after(async () => {
  await redis.stop();
});

test('kill -9 mid-stream of 10,000 events then restart: exactly 10,000 notifications (Redis)', async () => {
  await killMidStreamThenRestart(redis.url);
});
