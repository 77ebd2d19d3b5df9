/**
 * Phoenix restore between real daemons (child processes), over TLS (issue 18's acceptance) and
 * over Redis with the peers found in the registry (a smaller count by default): a
 * node logs WEFT_PHOENIX_EVENTS events (default 100,000), half of them cluster-visible, and
 * three peers get those; some of its notifications are seen, claimed, started and resolved;
 * it has three cartridges installed (two active, one depending on the other; one pending).
 * Then its data dir is deleted, its key kept, and `weft recovery restore` on a fresh daemon
 * with the same peers rebuilds every cluster-visible event (none of the local ones), every
 * notification state and the same cartridges (by digest, in the same states); the restored log's digest equals what each peer holds of it; new emits
 * get fresh frame sequences that no peer refuses (no rejection anywhere) and arrive.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { writePackageDir } from '../../src/sovereignty/index.js';
import { CLI, CLI_NODE_ARGS, weft } from '../helpers/cli.js';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';
import { TestRedis } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

const N_TLS = Number(process.env.WEFT_PHOENIX_EVENTS ?? 100_000);
/** The Redis run covers the other provider and discovery through the registry; a tenth of the events keeps it short. */
const N_REDIS = Number(process.env.WEFT_PHOENIX_REDIS_EVENTS ?? 10_000);

type Db = Database.Database;
const open = (n: ClusterNode): Db => new Database(join(n.dataDir, 'weft.db'), { readonly: true, fileMustExist: true });

/** An event's content as the recovery digest defines it, computed here independently: canonical JSON without provenance and pipeline annotations. */
function content(body: string): string {
  const e = JSON.parse(body) as Record<string, unknown>;
  for (const k of ['origin', 'sourceComputer', 'hops', 'flags', 'context']) delete e[k];
  const canon = (v: unknown): string => {
    if (v === null || typeof v !== 'object') return JSON.stringify(v);
    if (Array.isArray(v)) return `[${v.map(canon).join(',')}]`;
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canon(o[k])}`)
      .join(',')}}`;
  };
  return canon(e);
}

/** The node's own cluster-visible events: id → content. */
function ownCluster(db: Db, nodeId: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of db.prepare("SELECT id, body FROM events WHERE json_extract(body, '$.origin') = ? AND COALESCE(json_extract(body, '$.hops'), 0) = 0 AND json_extract(body, '$.visibility') IN ('cluster', 'public')").iterate(nodeId) as Iterable<{ id: string; body: string }>) {
    out.set(r.id, content(r.body));
  }
  return out;
}

/** Cluster notifications by their event: every column but the row id. */
function notes(db: Db): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of db.prepare("SELECT * FROM notifications WHERE visibility IN ('cluster', 'public')").iterate() as Iterable<Record<string, unknown>>) {
    const { id: _id, ...rest } = r;
    out.set(String(r.event_id), JSON.stringify(rest));
  }
  return out;
}

interface Status {
  mode: string;
  journal: { pending: number };
  nodes: Array<{ self: boolean; computer: string; events: number; ranges: Array<{ copies: number; pending: boolean }>; warnings: string[] }>;
}

const t = tempDir('weft-phoenix-');
after(() => t.cleanup());

async function phoenix(provider: 'tls' | 'redis', N: number, redisUrl?: string): Promise<void> {
  const t0 = Date.now();
  const { nodes, stopAll } = await startCluster(
    join(t.dir, provider),
    [
      { computer: 'laptop', cluster: 'home' },
      { computer: 'desk', cluster: 'home' },
      { computer: 'nas', cluster: 'home' },
      { computer: 'pi', cluster: 'home' },
    ],
    {
      provider,
      ...(redisUrl ? { redisUrl } : {}),
      // One producer as fast as the test can emit is no flood; beacons on demand (and after the restore).
      extraEnv: { WEFT_RECOVERY_ENABLED: 'true', WEFT_TRUST_RATE_PER_SECOND: '10000000', WEFT_TRUST_RATE_BURST: '100000000', WEFT_RECOVERY_BEACON_INTERVAL: '3600', WEFT_RECOVERY_MIN_COPIES: '3' },
    },
  );
  const laptop = nodes.laptop as ClusterNode;
  const peers = [nodes.desk, nodes.nas, nodes.pi] as ClusterNode[];
  const dbs: Db[] = [];
  try {
    const status = (n: ClusterNode) => n.api.request<Status>('GET', '/api/recovery/status');
    const digest = (n: ClusterNode, node?: string) => n.api.request<{ count: number; digest: string }>('GET', `/api/recovery/digest${node ? `?node=${encodeURIComponent(node)}` : ''}`);
    // Every node asked its peers at start (their keys were made before their databases) and found nothing to restore.
    for (const n of Object.values(nodes)) await eventually(async () => (await status(n)).mode === 'normal', 60_000, `${n.computer} to start beaconing`);

    // 1. Cartridges: tagger and echoer (which needs tagger) active, spare pending.
    const TODO = 'domain.software-development.planning.todo.created';
    const base = { version: '1.0.0', author: 'ada', entryPoint: 'process', consumes: [TODO] };
    await writePackageDir(join(t.dir, provider, 'pkg', 'tagger'), { manifest: { ...base, name: 'tagger', description: 'tags todos', dependencies: [], emits: [] }, source: "function process(e) { e.payload.tag = 'tagged'; return e; }" });
    await writePackageDir(join(t.dir, provider, 'pkg', 'echoer'), { manifest: { ...base, name: 'echoer', description: 'echoes todos', dependencies: ['tagger'], emits: [] }, source: 'function process(e) { return e; }' });
    await writePackageDir(join(t.dir, provider, 'pkg', 'spare'), { manifest: { ...base, name: 'spare', description: 'not yet', dependencies: [], emits: [] }, source: `function process(e) { return e; } // ${'x'.repeat(70_000)}` });
    for (const name of ['tagger', 'echoer', 'spare']) assert.equal(weft(['cartridges', 'install', join(t.dir, provider, 'pkg', name)], laptop.env).code, 0);
    for (const name of ['tagger', 'echoer']) assert.equal(weft(['cartridges', 'activate', name], laptop.env).code, 0);
    const cartridges = () => (JSON.parse(weft(['cartridges', 'list', '--json'], laptop.env).stdout) as { items: Array<{ name: string; status: string; sha256: string }> }).items.map((c) => `${c.name} ${c.status} ${c.sha256}`).sort();
    const cartridgesBefore = cartridges();
    assert.equal(cartridgesBefore.length, 3);

    // 2. The history: N events, the even ones cluster-visible.
    for (let i = 0; i < N; i += 5000) {
      const events = [];
      for (let j = i; j < Math.min(N, i + 5000); j++) events.push({ event: 'mesh.test.ping', visibility: j % 2 === 0 ? 'cluster' : 'local', payload: { n: j } });
      await laptop.api.emitMany(events);
    }
    const ldb = open(laptop);
    dbs.push(ldb);
    await eventually(async () => (ldb.prepare("SELECT COUNT(*) FROM notifications WHERE event_type = 'mesh.test.ping'").pluck().get() as number) >= N, 600_000, 'every event projected');
    // Human and agent states on some of the cluster notifications.
    const ids = ldb.prepare("SELECT id FROM notifications WHERE visibility = 'cluster' ORDER BY id LIMIT 700").pluck().all() as number[];
    for (const id of ids.slice(0, 300)) await laptop.api.request('POST', `/api/notifications/${id}/seen`);
    for (const id of ids.slice(300, 700)) await laptop.api.request('POST', `/api/notifications/${id}/claim`, { agentId: `agent-${id % 3}` });
    for (const id of ids.slice(450, 600)) await laptop.api.request('POST', `/api/notifications/${id}/in_progress`, { agentId: `agent-${id % 3}` });
    for (const id of ids.slice(500, 700)) await laptop.api.request('POST', `/api/notifications/${id}/resolve`, { agentId: `agent-${id % 3}`, resolution: { done: true, note: `fixed ${id}` } });
    // A message to each peer (whichever serves the restore): a peer's record of it is the peer's
    // own, never given back as the laptop's.
    for (const p of peers) {
      const sent = weft(['mesh', 'send', p.computer, 'before the wipe'], laptop.env);
      assert.equal(sent.code, 0, sent.stderr);
      await eventually(async () => (await p.api.notifications.list({ type: 'mesh.message.received' })).items.length === 1, 60_000, `the message at ${p.computer}`);
    }
    const emittedAt = Date.now();

    // 3. Everything journaled, at every peer, and a beacon whose ranges each peer holds whole.
    await eventually(async () => (await status(laptop)).journal.pending === 0, 600_000, 'the notification journal');
    const own = await digest(laptop);
    for (const p of peers) await eventually(async () => (await digest(p, laptop.nodeId)).count >= own.count, 600_000, `${p.computer} to hold the laptop's events`);
    await laptop.api.request('POST', '/api/recovery/beacon');
    const wholeEverywhere = async () => {
      const s = await status(laptop);
      const me = s.nodes.find((n) => n.self);
      return me !== undefined && me.ranges.length > 0 && me.ranges.every((r) => r.copies === 3) && me.warnings.length === 0;
    };
    await eventually(wholeEverywhere, 120_000, 'the peers to report every range whole');
    const before = { events: ownCluster(ldb, laptop.nodeId), notes: notes(ldb) };
    const localBefore = ldb.prepare("SELECT COUNT(*) FROM events WHERE json_extract(body, '$.visibility') = 'local'").pluck().get() as number;
    assert.ok(before.events.size >= N / 2, `the laptop holds ${before.events.size} cluster events`);
    assert.ok(localBefore >= N / 2);
    const marked = [...before.notes.values()].filter((n) => !n.includes('"human_status":"unseen","agent_status":"none"')).length;
    assert.ok(marked >= 600, `${marked} notifications carry a human or agent state`);
    const hwmBefore = peers.map((p) => {
      const d = open(p);
      try {
        return d.prepare('SELECT high_water FROM replay_senders WHERE sender = ?').pluck().get(laptop.nodeId) as number;
      } finally {
        d.close();
      }
    });
    ldb.close();
    dbs.splice(dbs.indexOf(ldb), 1);
    const preparedAt = Date.now();

    // 4. The laptop dies: the data dir goes, the key is kept.
    assert.equal(await laptop.stop(), 0);
    const key = join(t.dir, `laptop-${provider}.identity.key`);
    copyFileSync(join(laptop.dataDir, 'identity.key'), key);
    rmSync(laptop.dataDir, { recursive: true, force: true });
    mkdirSync(laptop.dataDir, { recursive: true, mode: 0o700 });
    copyFileSync(key, join(laptop.dataDir, 'identity.key'));
    await laptop.start();
    await eventually(async () => (await status(laptop)).mode === 'needs-restore', 60_000, 'the fresh laptop to see its peers hold its history');
    const waiting = weft(['status'], laptop.env);
    assert.equal(waiting.code, 3, 'weft status says the node waits for a restore');
    assert.match(waiting.stdout, /recovery: peers hold more of this node's events than it has .*weft recovery restore/);
    const needed = async () => (await laptop.api.notifications.list({ type: 'mesh.recovery.needed' })).items;
    await eventually(async () => (await needed()).length === 1, 20_000, 'the mesh.recovery.needed notification');
    assert.equal((await needed())[0]?.agentStatus, 'none');
    // Life goes on before the restore: a new notification takes an id an old one had, and is journaled.
    const [early] = await laptop.api.emitMany([{ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: -1, note: 'before the restore' } }]);
    await eventually(async () => (await laptop.api.notifications.list({ type: 'mesh.test.ping' })).items.length === 1 && (await status(laptop)).journal.pending === 0, 60_000, 'the new notification journaled');

    // 5. weft recovery restore --json, as a user runs it.
    const restoreStart = Date.now();
    const lines = await new Promise<string[]>((resolve, reject) => {
      const proc = spawn(process.execPath, [...CLI_NODE_ARGS, CLI, '--json', 'recovery', 'restore'], { env: { ...process.env, ...laptop.env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      proc.stdout.on('data', (d) => (out += d));
      proc.stderr.on('data', (d) => (err += d));
      proc.on('exit', (code) => (code === 0 ? resolve(out.trim().split('\n')) : reject(new Error(`weft recovery restore exited ${code}: ${err}\n${out}`))));
    });
    const restoreMs = Date.now() - restoreStart;
    const final = JSON.parse(lines[lines.length - 1] as string) as { state: string; written: number; ranges: { total: number; verified: number; failed: number }; notifications: number; cartridges: { restored: string[]; missing: string[] }; frameSequence: { past: number; next: number }; elapsedMs: number; timings: Record<string, number>; peers: Array<{ computer: string; answered: boolean; supplied: number }> };
    assert.ok(lines.length >= 2, 'progress lines before the result');
    assert.equal(final.state, 'done');
    // The notification that asked for the restore is answered by it.
    await eventually(async () => (await needed())[0]?.agentStatus === 'resolved', 20_000, 'mesh.recovery.needed resolved by the restore');
    assert.equal(final.peers.filter((p) => p.answered).length, 3);
    // Each peer's share of what was written: what the summary names (not every peer that answered).
    assert.equal(final.peers.reduce((n, p) => n + p.supplied, 0), final.written, JSON.stringify(final.peers));
    assert.equal(final.ranges.failed, 0);
    const messages = await laptop.api.request<{ items: unknown[] }>('GET', '/api/events?type=mesh.message.received');
    assert.equal(messages.items.length, 0, "desk's record of the laptop's message is desk's, not restored as the laptop's");
    assert.equal(final.ranges.verified, final.ranges.total, 'every range verified against the beacon');

    // 6. Every cluster event back, as it was; no local one.
    const rdb = open(laptop);
    dbs.push(rdb);
    const restored = ownCluster(rdb, laptop.nodeId);
    const missing = [...before.events.keys()].filter((id) => !restored.has(id));
    assert.equal(missing.length, 0, `every cluster event restored (missing ${missing.length})`);
    const changed = [...before.events].filter(([id, c]) => restored.get(id) !== c);
    assert.equal(changed.length, 0, `restored as they were (${changed.length} differ)`);
    const localIds = rdb.prepare("SELECT COUNT(*) FROM events WHERE json_extract(body, '$.visibility') = 'local' AND json_extract(body, '$.event') = 'mesh.test.ping'").pluck().get() as number;
    assert.equal(localIds, 0, 'no local event came back (they never left)');

    // 7. Every notification state back, and the same cartridges in the same states.
    const after = notes(rdb);
    const wrong = [...before.notes].filter(([e, n]) => after.get(e) !== n);
    assert.equal(wrong.length, 0, `every cluster notification as it was (${wrong.length} differ, e.g. ${wrong.slice(0, 1).map(([e, n]) => `${e}: was ${n}, now ${after.get(e)}`)})`);
    // A second run changes nothing the first one did.
    await laptop.api.request('POST', '/api/recovery/restore', {});
    await eventually(async () => (await laptop.api.request<{ state: string }>('GET', '/api/recovery/restore')).state !== 'running', 120_000, 'the second restore');
    const second = await laptop.api.request<{ state: string; written: number; notifications: number }>('GET', '/api/recovery/restore');
    assert.equal(second.state, 'done');
    assert.equal(second.written, 0, 'nothing written twice');
    const again = notes(rdb);
    assert.equal([...before.notes].filter(([e, n]) => again.get(e) !== n).length, 0, 'the notifications as the first run left them');
    assert.equal(again.size, after.size, 'no notification twice');
    const kept = after.get(early as string);
    assert.ok(kept?.includes('before the restore'), 'the notification made before the restore is still there');
    assert.deepEqual(cartridges(), cartridgesBefore, 'the same cartridges, by digest, in the same states');
    assert.deepEqual(final.cartridges.missing, []);

    // 8. The restored log's digest is what each peer holds of the laptop.
    await eventually(
      async () => {
        const mine = await digest(laptop);
        const theirs = await Promise.all(peers.map((p) => digest(p, laptop.nodeId)));
        return theirs.every((d) => d.count === mine.count && d.digest === mine.digest);
      },
      120_000,
      "the laptop's digest to equal the peers'",
    );

    // 9. New emits: fresh sequences, accepted by every peer, arriving.
    const fresh = await laptop.api.emitMany(Array.from({ length: 200 }, (_, i) => ({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: N + i } })));
    for (const p of peers) {
      const d = open(p);
      dbs.push(d);
      await eventually(async () => (d.prepare('SELECT COUNT(*) FROM events WHERE id IN (SELECT value FROM json_each(?))').pluck().get(JSON.stringify(fresh)) as number) === fresh.length, 120_000, `the new events at ${p.computer}`);
      const hwm = d.prepare('SELECT high_water FROM replay_senders WHERE sender = ?').pluck().get(laptop.nodeId) as number;
      assert.ok(hwm > (hwmBefore[peers.indexOf(p)] as number), `${p.computer} accepted sequences past the old ones`);
      const rejections = await p.api.request<{ total: number; items: Array<{ code: string; reason: string }> }>('GET', '/api/rejections');
      assert.equal(rejections.total, 0, `${p.computer} refused nothing: ${JSON.stringify(rejections.items.slice(0, 3))}`);
    }
    assert.ok(final.frameSequence.next > Math.max(...hwmBefore), 'the sequence resumed past every peer');
    console.log(
      `# phoenix ${JSON.stringify({ provider, events: N, clusterEvents: before.events.size, notifications: before.notes.size, emitAndSpreadS: (preparedAt - t0) / 1000, emitS: (emittedAt - t0) / 1000, restoreS: restoreMs / 1000, restoreJobS: final.elapsedMs / 1000, phasesMs: final.timings, written: final.written, totalS: (Date.now() - t0) / 1000 })}`,
    );
  } finally {
    for (const d of dbs) d.close();
    await stopAll();
    for (const n of Object.values(nodes)) if (n.running) await n.kill();
  }
}

test(`phoenix over TLS: a wiped node with ${N_TLS.toLocaleString('en-US')} events is rebuilt from 3 peers: every cluster event, notification state and cartridge, the peers' digest, fresh sequences`, { timeout: 30 * 60_000 }, async () => {
  await phoenix('tls', N_TLS);
});

test(`phoenix over Redis (peers from the registry, sealed frames): a wiped node with ${N_REDIS.toLocaleString('en-US')} events is rebuilt the same way`, { timeout: 30 * 60_000 }, async () => {
  const redis = await TestRedis.start();
  try {
    await phoenix('redis', N_REDIS, redis.url);
  } finally {
    await redis.stop();
  }
});
