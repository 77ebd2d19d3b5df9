import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { startDaemonProcess } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { busy, TODO, writeCartridge, writeDomain } from './fixtures.js';

const N = 1500;

async function post(url: string, token: string, body: unknown): Promise<number> {
  const r = await fetch(`${url}/api/events`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  await r.arrayBuffer();
  return r.status;
}

function counts(dataDir: string): { outputs: number; sources: number; routed: number } {
  const db = new Database(join(dataDir, 'weft.db'), { readonly: true });
  try {
    // What passed the pipeline (a replayed output is logged, then dropped by dedup): its notifications.
    const o = db
      .prepare("SELECT COUNT(*) AS n, COUNT(DISTINCT e.causation_id) AS d FROM notifications n JOIN events e ON e.id = n.event_id WHERE n.source = 'domain:ops/echo'")
      .get() as { n: number; d: number };
    const routed = db.prepare('SELECT COUNT(*) FROM events WHERE event = ?').pluck().get(TODO) as number;
    return { outputs: o.n, sources: o.d, routed };
  } finally {
    db.close();
  }
}

describe('a domain lane across kill -9', () => {
  const t = tempDir('weft-domains-crash-');
  const env = { HOME: t.dir, WEFT_DATA_DIR: join(t.dir, 'data'), WEFT_API_PORT: '0', WEFT_TOKEN: '', WEFT_URL: '' };
  after(() => t.cleanup());

  it('resumes where it stopped: every event through the domain exactly once', async () => {
    const d = writeDomain(env.WEFT_DATA_DIR, 'ops', `[subscribe]\ndomains = []\nevents = ["${TODO}"]\n`);
    // 2 ms per event: the kill lands while the lane is behind.
    writeCartridge(d, 'echo', busy('echo', 2), { consumes: [TODO] });
    let daemon = await startDaemonProcess(env);
    const token = readFileSync(join(env.WEFT_DATA_DIR, 'api-token'), 'utf8').trim();
    for (let i = 0; i < N; i += 250) {
      const events = Array.from({ length: 250 }, (_, k) => ({ event: TODO, payload: { slug: `c${i + k}`, title: 'crash' } }));
      assert.equal(await post(daemon.url, token, { events }), 201);
    }
    // Kill once the lane has done some but not all of it.
    for (let i = 0; i < 400; i++) {
      const c = counts(env.WEFT_DATA_DIR);
      if (c.outputs > 50) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    daemon.proc.kill('SIGKILL');
    await daemon.exited;
    const before = counts(env.WEFT_DATA_DIR);
    assert.equal(before.routed, N, 'every emitted event was committed before the kill');
    assert.ok(before.outputs < N, `the kill landed mid-way (${before.outputs} of ${N} done)`);

    daemon = await startDaemonProcess(env);
    let now = counts(env.WEFT_DATA_DIR);
    for (let i = 0; i < 1200 && now.sources < N; i++) {
      await new Promise((r) => setTimeout(r, 50));
      now = counts(env.WEFT_DATA_DIR);
    }
    // Let a replayed batch land, if one would.
    await new Promise((r) => setTimeout(r, 500));
    daemon.proc.kill('SIGTERM');
    assert.equal(await daemon.exited, 0);
    const end = counts(env.WEFT_DATA_DIR);
    console.log(`# killed with ${before.outputs}/${N} done; after the restart ${end.outputs} outputs for ${end.sources} events`);
    assert.equal(end.sources, N, 'no event was lost');
    assert.equal(end.outputs, N, 'no event went through the domain twice');
  });
});
