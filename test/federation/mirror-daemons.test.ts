/**
 * Mirror between real daemons (child processes) over TLS and over Redis: a source logs
 * WEFT_MIRROR_EVENTS cluster-visible events (default 100,000: about 40 s per provider on two
 * cores) before it knows the mirror's node (so only a mirror can bring them), a mirror mount
 * is created through the HTTP API, the mirror's daemon is killed with SIGKILL part-way and
 * started again: every eligible event arrives exactly once, in source order, and the source's
 * local events never. Then the source is pruned under the stopped mirror (weft events prune):
 * on restart a mirror.gap notification names the missing positions.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';
import { weft } from '../helpers/cli.js';
import { TestRedis } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

const N = Number(process.env.WEFT_MIRROR_EVENTS ?? 100_000);
/** Every LOCAL_EVERY-th event is local: it must never reach the mirror. */
const LOCAL_EVERY = 100;
const KEY = 'source/mirror/main';

type Db = Database.Database;
const open = (n: ClusterNode): Db => new Database(join(n.dataDir, 'weft.db'), { readonly: true, fileMustExist: true });
const maxSeq = (db: Db) => db.prepare('SELECT COALESCE(MAX(seq), 0) FROM events').pluck().get() as number;

/** The pipeline consumed everything logged (embedded bus: its position is a log position; over Redis the log is written as it consumes). */
function consumed(db: Db): boolean {
  const pos = db.prepare("SELECT position FROM consumer_offsets WHERE name = 'pipeline'").pluck().get() as string | undefined;
  if (pos === undefined || !/^\d+$/.test(pos)) return true;
  return Number(pos) >= (db.prepare('SELECT COALESCE(MAX(seq), 0) FROM events WHERE direct = 0').pluck().get() as number);
}

interface MountView {
  resumeToken: number;
  state: string;
  live?: { lag?: number; active?: boolean; applied_count?: number; error?: string | null };
}

const ORIGINATED = new Set([0, 2, 3]);

/** The source's events a cluster peer may mirror, by the rules (not by the code under test): id and ping number, in log order, positions from..to. */
function eligible(db: Db, from = 1, to = Number.MAX_SAFE_INTEGER): Array<{ id: string; n: number | undefined }> {
  const raw = new Set(['telemetry.shell.command', 'terminal.command']);
  const out: Array<{ id: string; n: number | undefined }> = [];
  for (const r of db.prepare('SELECT id, event, direct, body FROM events WHERE seq >= ? AND seq <= ? ORDER BY seq').iterate(from, to) as Iterable<{ id: string; event: string; direct: number; body: string }>) {
    const b = JSON.parse(r.body) as { hops?: number; visibility: string; payload?: { n?: number } };
    // Originated here: a bus row (direct = 0), an emit applied at once (3) or a row restored from peers (2).
    if (!ORIGINATED.has(r.direct) || (b.hops ?? 0) > 0 || raw.has(r.event) || (b.visibility !== 'cluster' && b.visibility !== 'public')) continue;
    out.push({ id: r.id, n: r.event === 'mesh.test.ping' ? b.payload?.n : undefined });
  }
  return out;
}

/** What the mirror applied from the source: its rows stamped with the source's node id, in the mirror's log order. */
function mirrored(db: Db, sourceId: string): Array<{ id: string; event: string; n: number | undefined }> {
  return (db.prepare("SELECT id, event, body FROM events WHERE json_extract(body, '$.origin') = ? AND json_extract(body, '$.hops') >= 1 ORDER BY seq").all(sourceId) as Array<{ id: string; event: string; body: string }>).map((r) => ({
    id: r.id,
    event: r.event,
    n: r.event === 'mesh.test.ping' ? (JSON.parse(r.body) as { payload: { n: number } }).payload.n : undefined,
  }));
}

async function emit(s: ClusterNode, from: number, count: number): Promise<void> {
  const chunk = 5000;
  const inflight: Promise<unknown>[] = [];
  for (let i = from; i < from + count; i += chunk) {
    const events = [];
    for (let j = i; j < Math.min(from + count, i + chunk); j++) events.push({ event: 'mesh.test.ping', visibility: j % LOCAL_EVERY === 7 ? 'local' : 'cluster', payload: { n: j } });
    inflight.push(s.api.emitMany(events));
    if (inflight.length >= 2) await inflight.shift();
  }
  await Promise.all(inflight);
}

const mount = (m: ClusterNode) => m.api.request<MountView>('GET', `/api/mounts/${KEY}`);

let redis: TestRedis;
const t = tempDir('weft-mirror-daemons-');
before(async () => {
  redis = await TestRedis.start();
});
after(async () => {
  await redis.stop();
  t.cleanup();
});

for (const provider of ['tls', 'redis'] as const) {
  describe(`mirror between daemons over ${provider}`, () => {
    test(`${N.toLocaleString('en-US')} events: kill -9 of the mirror part-way, each applied exactly once in source order; a prune under the stopped mirror raises mirror.gap`, { timeout: 30 * 60_000 }, async () => {
      const t0 = Date.now();
      const { nodes, stopAll } = await startCluster(
        join(t.dir, provider),
        [
          { computer: 'source', cluster: 'c' },
          { computer: 'mirror', cluster: 'c' },
        ],
        {
          provider,
          redisUrl: redis.url,
          start: false,
          // One producer emitting as fast as the test can is no flood; a short heartbeat keeps polls quick.
          extraEnv: { WEFT_TRUST_RATE_PER_SECOND: '10000000', WEFT_TRUST_RATE_BURST: '100000000', WEFT_FEDERATION_MIRROR_BEAT: '250' },
        },
      );
      const s = nodes.source as ClusterNode;
      const m = nodes.mirror as ClusterNode;
      let sdb: Db | undefined;
      let mdb: Db | undefined;
      try {
        // 1. The source logs everything while it knows no peer: nothing is pushed, only a mirror brings it.
        const peers = s.env.WEFT_MESH_PEERS;
        s.env.WEFT_MESH_PEERS = '';
        await s.start();
        await emit(s, 0, N);
        sdb = open(s);
        const db = sdb;
        await eventually(async () => (db.prepare("SELECT COUNT(*) FROM events WHERE event = 'mesh.test.ping'").pluck().get() as number) >= N, 300_000, 'the source to log every event');
        await eventually(async () => consumed(db), 300_000, 'the source pipeline to catch up');
        const emitted = Date.now();
        await s.stop();
        if (peers !== undefined) s.env.WEFT_MESH_PEERS = peers;
        await s.start();
        await m.start();
        await eventually(async () => (await m.api.request<Array<{ computer: string }>>('GET', '/api/peers')).some((p) => p.computer === 'source'), 30_000, 'the mirror node to know the source');
        await eventually(async () => (await s.api.request<Array<{ computer: string }>>('GET', '/api/peers')).some((p) => p.computer === 'mirror'), 30_000, 'the source to know the mirror node');

        // 2. A mirror mount through the API; kill -9 part-way.
        // Small counts (a quick run) get small windows, so the kill still lands part-way.
        const options = N < 20_000 ? { options: { beat_window: 16, max_in_flight: 1 } } : {};
        const created = await m.api.request<MountView & { key: string }>('POST', '/api/mounts', { peer: 'source', mode: 'mirror', ...options });
        assert.equal(created.key, KEY);
        assert.equal(created.state, 'open');
        const mounted = Date.now();
        const high = maxSeq(db);
        await eventually(async () => (await mount(m)).resumeToken >= high * 0.3, 300_000, 'the mirror to apply 30%');
        await m.kill();
        const killedAt = open(m);
        const atKill = killedAt.prepare("SELECT resume_token FROM mounts WHERE peer = 'source' AND mode = 'mirror'").pluck().get() as number;
        killedAt.close();
        assert.ok(atKill < maxSeq(db), `killed before the end (token ${atKill} of ${maxSeq(db)})`);
        await m.start();
        await eventually(
          async () => {
            const v = await mount(m);
            return v.live?.active === true && v.live.lag === 0 && v.resumeToken >= high;
          },
          600_000,
          'the mirror to catch up after the restart',
        );
        const caughtUp = Date.now();

        // 3. Exactly once, in source order; no local event. Up to the position the mirror applied:
        // the source keeps logging cluster events of its own (its recovery beacons and journals, with the defaults).
        const applied = (await mount(m)).resumeToken;
        mdb = open(m);
        const want = eligible(db, 1, applied);
        const got = mirrored(mdb, s.nodeId);
        const gotIds = new Set(got.map((r) => r.id));
        assert.equal(gotIds.size, got.length, 'no event twice');
        const missing = want.filter((w) => !gotIds.has(w.id));
        assert.equal(missing.length, 0, `every eligible source event arrived (missing ${missing.length}, e.g. ${JSON.stringify(missing.slice(0, 3))})`);
        const wantPings = want.filter((w) => w.n !== undefined).map((w) => w.id);
        const gotPings = got.filter((r) => r.event === 'mesh.test.ping').map((r) => r.id);
        assert.equal(wantPings.length, N - Math.ceil((N - 7) / LOCAL_EVERY));
        assert.deepEqual(gotPings, wantPings, 'the pings in source order');
        assert.equal(got.some((r) => r.n !== undefined && r.n % LOCAL_EVERY === 7), false, 'no local event');
        const notes = mdb.prepare("SELECT COUNT(*) AS n, COUNT(DISTINCT event_id) AS ids FROM notifications WHERE event_type = 'mesh.test.ping'").get() as { n: number; ids: number };
        assert.deepEqual([notes.n, notes.ids], [wantPings.length, wantPings.length], 'one notification per event: applied exactly once');
        const view = await mount(m);
        assert.equal(view.live?.error ?? null, null);

        // 4. The mirror stops; the source logs more and is pruned below most of it; the mirror comes back to a gap.
        await m.stop();
        const token = (() => {
          const d = open(m);
          try {
            return d.prepare("SELECT resume_token FROM mounts WHERE peer = 'source' AND mode = 'mirror'").pluck().get() as number;
          } finally {
            d.close();
          }
        })();
        await emit(s, N, 2000);
        await eventually(async () => (db.prepare("SELECT COUNT(*) FROM events WHERE event = 'mesh.test.ping'").pluck().get() as number) >= N + 2000, 120_000, 'the source to log the new events');
        await eventually(async () => consumed(db), 120_000, 'the source pipeline to catch up');
        const cut = maxSeq(db) - 100;
        const pruned = weft(['events', 'prune', '--before-seq', String(cut), '--json'], s.env);
        assert.equal(pruned.code, 0, pruned.stderr);
        const r = JSON.parse(pruned.stdout) as { belowSeq: number; removed: number; limitedBy: string };
        assert.equal(r.belowSeq, cut, `pruned below ${cut} (limited by ${r.limitedBy})`);
        assert.ok(r.removed >= cut - 1 - 10, `removed ${r.removed}`);
        await eventually(async () => (await s.api.request<{ items: unknown[] }>('GET', '/api/events?type=system.log.pruned')).items.length === 1, 10_000, 'system.log.pruned');
        await m.start();
        await eventually(async () => (await m.api.notifications.list({ type: 'mirror.gap' })).items.length > 0, 60_000, 'a mirror.gap notification');
        const gaps = (await m.api.notifications.list({ type: 'mirror.gap' })).items;
        assert.equal(gaps.length, 1);
        const gap = gaps[0]!.payload as { mount: string; peer: string; from: number; to: number; message: string };
        assert.deepEqual([gap.mount, gap.peer, gap.from, gap.to], [KEY, 'source', token + 1, cut - 1]);
        await eventually(
          async () => {
            const v = await mount(m);
            return v.live?.lag === 0 && v.resumeToken >= maxSeq(db);
          },
          120_000,
          'the mirror to continue after the gap',
        );
        const timing = {
          provider,
          events: N,
          emitS: (emitted - t0) / 1000,
          mirrorS: (caughtUp - mounted) / 1000,
          totalS: (Date.now() - t0) / 1000,
        };
        console.log(`# mirror-daemons ${JSON.stringify(timing)}`);
      } finally {
        sdb?.close();
        mdb?.close();
        await stopAll();
        for (const n of [s, m]) if (n.running) await n.kill();
      }
    });
  });
}
