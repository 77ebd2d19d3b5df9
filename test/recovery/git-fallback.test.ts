/**
 * The git fallback between two real daemons (child processes) over TLS, each link through a
 * loopback proxy the test cuts, with a local bare git repository as the remote (issue 18's
 * acceptance): with the link cut, WEFT_FALLBACK_EVENTS (default 10,000) cluster events cross
 * through git, the sender's outbox drains by the acks that come back through git, and when the
 * link heals nothing is applied twice; a tampered commit is refused and recorded; the remote
 * holds one ref per node, whatever the traffic.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { LinkProxy } from '../chaos/proxy.js';
import { weft } from '../helpers/cli.js';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';
import { tempDir } from '../helpers/tmp.js';

const N = Number(process.env.WEFT_FALLBACK_EVENTS ?? 10_000);
const t = tempDir('weft-git-fallback-');
after(() => t.cleanup());

const git = (args: string[], input?: string | Buffer): string => execFileSync('git', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] }).trim();
const gitBuf = (args: string[]): Buffer => execFileSync('git', args, { stdio: ['pipe', 'pipe', 'pipe'] });
let hasGit = true;
try {
  git(['--version']);
} catch {
  hasGit = false;
}

type Db = Database.Database;
const open = (n: ClusterNode): Db => new Database(join(n.dataDir, 'weft.db'), { readonly: true, fileMustExist: true });

test('git fallback: 10,000 cluster events through git with the link cut, exactly once after it heals; a tampered commit is refused; one ref per node', { skip: hasGit ? false : 'git is not installed' }, async () => {
  const remote = join(t.dir, 'remote.git');
  git(['init', '--bare', '--quiet', remote]);
  const { nodes, stopAll } = await startCluster(
    join(t.dir, 'fleet'),
    [
      { computer: 'laptop', cluster: 'home' },
      { computer: 'desk', cluster: 'home' },
    ],
    {
      provider: 'tls',
      start: false,
      // Only what the fallback needs set: its remote, and times short enough for a test.
      extraEnv: { WEFT_FALLBACK_GIT_REMOTE: remote, WEFT_FALLBACK_AFTER: '2', WEFT_FALLBACK_INTERVAL: '1', WEFT_TRUST_RATE_PER_SECOND: '1000000', WEFT_TRUST_RATE_BURST: '10000000' },
    },
  );
  const laptop = nodes.laptop as ClusterNode;
  const desk = nodes.desk as ClusterNode;
  // Each node reaches the other through a proxy: cutting both proxies cuts the link.
  const toLaptop = new LinkProxy(Number(laptop.env.WEFT_MESH_TLS_PORT));
  const toDesk = new LinkProxy(Number(desk.env.WEFT_MESH_TLS_PORT));
  await toLaptop.start();
  await toDesk.start();
  laptop.env.WEFT_MESH_PEERS = `desk/home@127.0.0.1:${toDesk.port}#${desk.nodeId}`;
  desk.env.WEFT_MESH_PEERS = `laptop/home@127.0.0.1:${toLaptop.port}#${laptop.nodeId}`;
  const dbs: Db[] = [];
  try {
    await Promise.all([laptop.start(), desk.start()]);
    const ddb = open(desk);
    const ldb = open(laptop);
    dbs.push(ddb, ldb);
    const fromLaptop = () => ddb.prepare("SELECT COUNT(*) FROM events WHERE json_extract(body, '$.origin') = ? AND json_extract(body, '$.event') = 'mesh.test.ping'").pluck().get(laptop.nodeId) as number;
    const distinctFromLaptop = () => ddb.prepare("SELECT COUNT(DISTINCT id) FROM events WHERE json_extract(body, '$.origin') = ? AND json_extract(body, '$.event') = 'mesh.test.ping'").pluck().get(laptop.nodeId) as number;
    // Each applied event made one notification on the desk (its pipeline ran once per event).
    const notes = () => ddb.prepare("SELECT COUNT(*) AS n, COUNT(DISTINCT event_id) AS d FROM notifications WHERE event_type = 'mesh.test.ping'").get() as { n: number; d: number };
    const outboxToDesk = () => ldb.prepare("SELECT COUNT(*) FROM mesh_outbox WHERE peer = 'desk'").pluck().get() as number;
    const rejections = (code?: string) => ddb.prepare(`SELECT COUNT(*) FROM rejected_entries${code ? ' WHERE code = ?' : ''}`).pluck().get(...(code ? [code] : [])) as number;

    // 1. The link works: a first event crosses it (and the hellos exchange the link keys).
    await laptop.api.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: -1 } });
    await eventually(async () => fromLaptop() === 1, 60_000, 'the first event over the link');
    // Frames in git are sealed with the link key, learnt from the peer's hello: an event can
    // cross the TLS link before the hellos do, so wait for both keys before the cut.
    const keyKnown = async (n: ClusterNode, peer: string) =>
      (await n.api.request<{ peers: Array<{ computer: string; linkKey: string | null }> }>('GET', '/api/mesh/status')).peers.find((p) => p.computer === peer)?.linkKey === 'known';
    await eventually(async () => (await keyKnown(laptop, 'desk')) && (await keyKnown(desk, 'laptop')), 60_000, 'both link keys');

    // 2. Cut the link; the laptop logs N cluster events. They wait, then go through git.
    toLaptop.cutLink();
    toDesk.cutLink();
    const t0 = Date.now();
    for (let i = 0; i < N; i += 5000) {
      await laptop.api.emitMany(Array.from({ length: Math.min(5000, N - i) }, (_, j) => ({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: i + j } })));
    }
    await eventually(async () => fromLaptop() === N + 1, 180_000, `${N} events through git`);
    const crossedS = (Date.now() - t0) / 1000;
    // The desk's acks came back through git: the laptop's outbox drained without the link.
    await eventually(async () => outboxToDesk() === 0, 120_000, "the laptop's outbox to drain by acks through git");
    assert.equal(toDesk.cut && toLaptop.cut, true, 'the link stayed cut the whole time');
    const status = await laptop.api.request<{ peers: Array<{ peer: string; sentEvents: number }>; refName: string }>('GET', '/api/recovery/fallback');
    assert.equal(status.refName, 'refs/weft/laptop');
    assert.ok((status.peers.find((p) => p.peer === 'desk')?.sentEvents ?? 0) >= N, 'the laptop wrote the events for the desk to git');
    const deskStatus = JSON.parse(weft(['recovery', 'fallback', '--json'], desk.env).stdout) as { refs: Array<{ ref: string; frames: number; refused: number }> };
    assert.ok((deskStatus.refs.find((r) => r.ref === 'refs/weft/laptop')?.frames ?? 0) > 0, 'the desk imported frames from the laptop ref');
    assert.equal(rejections(), 0, 'nothing was refused on the way');

    // 3. Heal: the link carries new events; nothing that came through git is applied again.
    toLaptop.heal();
    toDesk.heal();
    await laptop.api.emitMany(Array.from({ length: 10 }, (_, j) => ({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: N + j } })));
    await eventually(async () => fromLaptop() === N + 11, 120_000, 'the events after the heal over the link');
    await eventually(async () => outboxToDesk() === 0, 60_000, 'the outbox to drain over the link');
    assert.equal(distinctFromLaptop(), N + 11);
    assert.equal(fromLaptop(), N + 11, 'every event logged once');
    await eventually(async () => notes().n >= N + 11, 60_000, 'every notification');
    assert.deepEqual(notes(), { n: N + 11, d: N + 11 }, 'every event applied exactly once');

    // 4. A tampered commit: the desk is down, the laptop pushes a commit for it, and someone
    // with write access to the remote flips a byte in it (same manifest, same parent).
    await desk.stop();
    const tipBefore = git(['--git-dir', remote, 'rev-parse', 'refs/weft/laptop']);
    await laptop.api.emitMany(Array.from({ length: 5 }, (_, j) => ({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: N + 100 + j } })));
    await eventually(async () => git(['--git-dir', remote, 'rev-parse', 'refs/weft/laptop']) !== tipBefore, 60_000, 'a new commit for the stopped desk');
    const tip = git(['--git-dir', remote, 'rev-parse', 'refs/weft/laptop']);
    const [blobLine] = git(['--git-dir', remote, 'ls-tree', tip, '--', 'desk']).split('\n');
    const blobId = (blobLine as string).split(/\s+/)[2] as string;
    const blob = gitBuf(['--git-dir', remote, 'cat-file', 'blob', blobId]);
    blob[blob.length - 10] = (blob[blob.length - 10] as number) ^ 0x01;
    const forgedBlob = git(['--git-dir', remote, 'hash-object', '-w', '--stdin'], blob);
    const forgedTree = git(['--git-dir', remote, 'mktree'], `100644 blob ${forgedBlob}\tdesk\n`);
    const message = git(['--git-dir', remote, 'log', '-1', '--format=%B', tip]);
    const parent = git(['--git-dir', remote, 'rev-parse', `${tip}^`]);
    const forged = git(['--git-dir', remote, '-c', 'user.name=mallory', '-c', 'user.email=m@example.invalid', 'commit-tree', forgedTree, '-p', parent, '-F', '-'], `${message}\n`);
    git(['--git-dir', remote, 'update-ref', 'refs/weft/laptop', forged]);
    await desk.start();
    await eventually(async () => rejections('FALLBACK_COMMIT_FORGED') === 1, 60_000, 'the tampered commit to be refused and recorded');
    const why = ddb.prepare("SELECT reason FROM rejected_entries WHERE code = 'FALLBACK_COMMIT_FORGED'").pluck().get() as string;
    assert.match(why, /SHA-256/);
    // The events of the refused commit were not acked through git: the link (healed) brings them, once.
    await eventually(async () => fromLaptop() === N + 16, 120_000, 'the refused commit\'s events over the link');
    assert.equal(distinctFromLaptop(), N + 16);
    await eventually(async () => notes().n >= N + 16, 60_000, 'every notification');
    assert.deepEqual(notes(), { n: N + 16, d: N + 16 });

    // 5. One ref per node on the remote, whatever the traffic.
    const refs = git(['--git-dir', remote, 'for-each-ref', '--format=%(refname)']).split('\n').filter(Boolean).sort();
    assert.deepEqual(refs, ['refs/weft/desk', 'refs/weft/laptop']);
    const commits = Number(git(['--git-dir', remote, 'rev-list', '--count', 'refs/weft/laptop']));
    assert.ok(commits < N / 100, `commits of batched frames, not one per event (${commits})`);
    console.log(`# git-fallback ${JSON.stringify({ events: N, crossedS, laptopCommits: commits })}`);
  } finally {
    for (const d of dbs) d.close();
    await stopAll();
    await toLaptop.stop();
    await toDesk.stop();
  }
});
