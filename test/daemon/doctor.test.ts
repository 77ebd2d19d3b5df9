import assert from 'node:assert/strict';
import { closeSync, openSync, readdirSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createNode } from '../../src/daemon/index.js';
import { weft } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

test('a damaged database stops the start with a clear message; doctor --repair salvages and the node starts', async () => {
  const t = tempDir('weft-doctor-');
  const env = { HOME: t.dir, WEFT_DATA_DIR: t.dir, WEFT_API_PORT: '0' };
  try {
    const node = await createNode({ dataDir: t.dir, computer: 'doc' });
    await node.start();
    await node.emitMany(Array.from({ length: 2000 }, (_, i) => ({ event: 'system.worker.crashed', payload: { worker: `w${i}`, error: 'x'.repeat(200), restarts: 0 } })));
    await node.idle();
    await node.stop();
    const db = join(t.dir, 'weft.db');
    // scribble over pages in the middle of the file (not the header)
    const size = statSync(db).size;
    const fd = openSync(db, 'r+');
    const junk = Buffer.alloc(4096 * 3, 0xa5);
    writeSync(fd, junk, 0, junk.length, Math.floor(size / 2 / 4096) * 4096);
    closeSync(fd);

    const start = weft(['daemon'], env);
    assert.equal(start.code, 1);
    assert.match(start.stderr, /^weft: database .*weft\.db is damaged or unreadable .*run 'weft doctor --repair'/);
    assert.equal(start.stderr.trim().split('\n').length, 1, 'one line, no stack trace');

    const check = weft(['doctor'], env);
    assert.equal(check.code, 1);
    assert.match(check.stdout, /is damaged/);

    const repair = weft(['doctor', '--repair', '--json'], env);
    assert.equal(repair.code, 0, repair.stderr);
    const r = JSON.parse(repair.stdout) as { ok: boolean; movedTo: string; salvaged: Record<string, number> };
    assert.ok(r.ok);
    assert.ok(readdirSync(t.dir).some((f) => f.startsWith('weft.db.damaged-')), 'the damaged file is kept aside');
    assert.ok((r.salvaged.events ?? 0) > 0, 'some events were salvaged');
    assert.ok((r.salvaged.events ?? 0) < 2000, 'the damaged pages were skipped, not invented');

    const after = weft(['doctor'], env);
    assert.equal(after.code, 0);
    assert.match(after.stdout, /is healthy/);
  } finally {
    t.cleanup();
  }
});
