/**
 * The git fallback in this process, on two whole nodes over the in-memory network and a local
 * bare repository: the default wait (fallback.after = 5 min) before anything goes to git;
 * events that come both through git and over the link applied once; commits forged by someone
 * with write access to the remote (an unsigned manifest, a genuine manifest replayed on
 * another parent, a truncated file) refused and recorded; refs of unknown computers left
 * alone; an unreachable remote or a missing git binary reported, never thrown at the node.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { AssembledNode } from '../../src/daemon/assemble.js';
import { generateIdentity } from '../../src/identity/index.js';
import { GitFallback, splitFrames } from '../../src/recovery/index.js';
import { systemClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { eventually } from '../helpers/cluster.js';
import { type MeshPair, meshPair } from '../helpers/mesh-pair.js';
import { tempDir } from '../helpers/tmp.js';

const git = (args: string[], input?: string | Buffer): string => execFileSync('git', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] }).trim();
let hasGit = true;
try {
  git(['--version']);
} catch {
  hasGit = false;
}
const skip = hasGit ? false : 'git is not installed';

const t = tempDir('weft-git-fallback-unit-');
let pair: MeshPair;
let remote: string;
after(async () => {
  await pair?.cleanup();
  t.cleanup();
});
before(async () => {
  if (!hasGit) return;
  remote = join(t.dir, 'remote.git');
  git(['init', '--bare', '--quiet', remote]);
  pair = await meshPair('memory');
  await eventually(async () => pair.one.mesh?.linkKey('two') !== undefined && pair.two.mesh?.linkKey('one') !== undefined, 10_000, 'link keys exchanged');
});

/** A fallback with the shipped defaults but for its remote (the daemon builds it the same way). */
function fallbackOf(n: AssembledNode, name: string, over: { remote?: string; gitBinary?: string; dataDir?: string } = {}): GitFallback {
  return new GitFallback(
    { remote: over.remote ?? remote, dataDir: over.dataDir ?? join(t.dir, `${name}-${Math.random().toString(36).slice(2)}`), ...(over.gitBinary ? { gitBinary: over.gitBinary } : {}) },
    { node: n.node, mesh: n.mesh as NonNullable<AssembledNode['mesh']>, peers: n.peers, identity: () => n.identity, clock: systemClock, logger: silentLogger },
  );
}

const db = (n: AssembledNode) => n.node.ns.store.db;
const count = (n: AssembledNode, sql: string, ...args: unknown[]) => db(n).prepare(sql).pluck().get(...args) as number;
const refused = (n: AssembledNode, code: string) => count(n, 'SELECT COUNT(*) FROM rejected_entries WHERE code = ?', code);

test('nothing goes to git before an event has waited fallback.after (5 min by default); then one commit, imported once even when the link brings the same events', { skip }, async () => {
  const one = pair.one;
  await pair.two.stop();
  const f1 = fallbackOf(one, 'one');
  for (let n = 0; n < 3; n++) await one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n } });
  await eventually(async () => count(one, "SELECT COUNT(*) FROM mesh_outbox WHERE peer = 'two'") === 3, 10_000, 'three events waiting for two');
  // Waiting 4 min 59 s: not yet.
  db(one).prepare("UPDATE mesh_outbox SET created_at = created_at - 299000 WHERE peer = 'two'").run();
  assert.equal((await f1.round()).pushed.commit, null);
  assert.equal(f1.status().peers.find((p) => p.peer === 'two')?.due, false);
  // 5 min 1 s: the waiting events go in one commit on refs/weft/one.
  db(one).prepare("UPDATE mesh_outbox SET created_at = created_at - 2000 WHERE peer = 'two'").run();
  const r = await f1.round();
  assert.equal(r.pushed.events, 3);
  assert.deepEqual(r.pushed.peers, ['two']);
  assert.equal(git(['--git-dir', remote, 'rev-parse', 'refs/weft/one']), r.pushed.commit);
  // A second round has nothing new for two.
  assert.equal((await f1.round()).pushed.events, 0);
  await f1.stop();

  // two comes back: the link re-sends the three and its fallback imports them from git too.
  const two = await pair.restart('two');
  const f2 = fallbackOf(two, 'two');
  const imported = await f2.round();
  assert.equal(imported.imported.commits, 1);
  assert.equal(imported.imported.refused, 0);
  await eventually(async () => count(two, "SELECT COUNT(*) FROM notifications WHERE event_type = 'mesh.test.ping'") >= 3, 10_000, 'the three at two');
  assert.equal(count(two, "SELECT COUNT(*) FROM notifications WHERE event_type = 'mesh.test.ping'"), 3, 'each applied once');
  assert.equal(count(two, 'SELECT COUNT(*) FROM rejected_entries'), 0);
  await f2.stop();
});

test('forged commits on a node\'s ref are refused and recorded; the ref\'s later genuine commits still import', { skip }, async () => {
  const { one, two } = pair;
  const f2 = fallbackOf(two, 'two-forged');
  await f2.round();
  const tip = git(['--git-dir', remote, 'rev-parse', 'refs/weft/one']);
  const commitOn = (parent: string, message: string, files: Record<string, Buffer>) => {
    const lines = Object.entries(files).map(([name, b]) => `100644 blob ${git(['--git-dir', remote, 'hash-object', '-w', '--stdin'], b)}\t${name}`);
    const tree = git(['--git-dir', remote, 'mktree'], `${lines.join('\n')}\n`);
    const c = git(['--git-dir', remote, '-c', 'user.name=mallory', '-c', 'user.email=m@example.invalid', 'commit-tree', tree, '-p', parent, '-F', '-'], message);
    git(['--git-dir', remote, 'update-ref', 'refs/weft/one', c]);
    return c;
  };
  const file = Buffer.from([0, 0, 0, 3, 1, 2, 3]);
  const sha = createHash('sha256').update(file).digest('hex');
  // 1. A manifest in one's name signed by another key.
  const mallory = generateIdentity();
  const manifest = `weft-fallback 1\nnode ${one.identity.nodeId}\ncomputer one\nparent ${tip}\nat ${Date.now()}\nfile two ${sha} ${file.length} 1\n`;
  const sig = Buffer.from(mallory.sign(Buffer.from(manifest))).toString('base64');
  const c1 = commitOn(tip, `forged\n\n${manifest}sig ${sig}\n`, { two: file });
  // 2. One's genuine manifest (from its last commit) on another parent.
  const genuine = git(['--git-dir', remote, 'log', '-1', '--format=%B', tip]);
  const c2 = commitOn(c1, `${genuine}\n`, { two: Buffer.alloc(0) });
  const r = await f2.round();
  assert.equal(r.imported.commits, 2);
  assert.equal(r.imported.refused, 2);
  assert.equal(refused(two, 'FALLBACK_COMMIT_FORGED'), 2);
  const reasons = db(two).prepare("SELECT reason FROM rejected_entries WHERE code = 'FALLBACK_COMMIT_FORGED' ORDER BY id").pluck().all() as string[];
  assert.match(reasons[0] as string, new RegExp(`commit ${c1.slice(0, 12)} .*signature`));
  assert.match(reasons[1] as string, new RegExp(`commit ${c2.slice(0, 12)} .*parent`));
  const status = f2.status();
  assert.equal(status.refs.find((x) => x.ref === 'refs/weft/one')?.refused, 2);

  // 3. one's fallback builds on the remote's tip (the forged commits stay in the history) and its next commit imports.
  await pair.two.mesh?.stop();
  const f1 = fallbackOf(one, 'one-after');
  await one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 99 } });
  await eventually(async () => count(one, "SELECT COUNT(*) FROM mesh_outbox WHERE peer = 'two'") >= 1, 10_000, 'an event waiting');
  db(one).prepare("UPDATE mesh_outbox SET created_at = created_at - 400000 WHERE peer = 'two'").run();
  const w = await f1.round();
  assert.ok(w.pushed.events >= 1);
  assert.equal(git(['--git-dir', remote, 'rev-parse', `${w.pushed.commit}^`]), c2, 'built on the remote tip');
  const r2 = await f2.round();
  assert.equal(r2.imported.refused, 0);
  await eventually(async () => count(two, "SELECT COUNT(*) FROM notifications WHERE event_type = 'mesh.test.ping' AND json_extract(payload, '$.n') = 99") === 1, 10_000, 'the genuine commit imported');
  await f1.stop();
  await f2.stop();
});

test('refs of computers this node does not know are left alone, their objects never fetched', { skip }, async () => {
  const { two } = pair;
  // Whoever can write the remote pushes a big file under a name no node has: fetching every
  // refs/weft/* brought it to each node's disk.
  const blob = git(['--git-dir', remote, 'hash-object', '-w', '--stdin'], Buffer.alloc(256 * 1024, 'stranger'));
  const tree = git(['--git-dir', remote, 'mktree'], `100644 blob ${blob}\tjunk\n`);
  const junk = git(['--git-dir', remote, '-c', 'user.name=mallory', '-c', 'user.email=m@example.invalid', 'commit-tree', tree, '-m', 'junk']);
  git(['--git-dir', remote, 'update-ref', 'refs/weft/stranger', junk]);
  const dataDir = join(t.dir, 'two-stranger');
  const f2 = fallbackOf(two, 'two-stranger', { dataDir });
  const before = count(two, 'SELECT COUNT(*) FROM rejected_entries');
  const r = await f2.round();
  assert.equal(r.imported.refused, 0);
  assert.deepEqual(f2.status().unknownRefs, ['stranger']);
  assert.equal(f2.status().refs.some((r) => r.ref === 'refs/weft/stranger'), false);
  assert.equal(count(two, 'SELECT COUNT(*) FROM rejected_entries'), before);
  const local = join(dataDir, 'fallback.git');
  const has = (oid: string) => {
    try {
      git(['--git-dir', local, 'cat-file', '-e', oid]);
      return true;
    } catch {
      return false;
    }
  };
  assert.equal(has(git(['--git-dir', remote, 'rev-parse', 'refs/weft/one'])), true, "a known peer's ref is fetched");
  assert.equal(has(junk), false, "the stranger's commit is not fetched");
  assert.equal(has(blob), false, "nor its file");
  // Gone from the remote: gone from the status at the next round.
  git(['--git-dir', remote, 'update-ref', '-d', 'refs/weft/stranger']);
  await f2.round();
  assert.deepEqual(f2.status().unknownRefs, []);
  await f2.stop();
});

test('a ref deleted and written anew, then its old history put back: read again without refusing or applying anything twice', { skip }, async () => {
  const { one, two } = pair;
  const f2 = fallbackOf(two, 'two-rewrite');
  await f2.round();
  const oldTip = git(['--git-dir', remote, 'rev-parse', 'refs/weft/one']);
  const refusedBefore = count(two, 'SELECT COUNT(*) FROM rejected_entries');
  // An operator deletes one's ref; one's fallback (a fresh copy of the repository) starts it again.
  git(['--git-dir', remote, 'update-ref', '-d', 'refs/weft/one']);
  await pair.two.mesh?.stop();
  const f1 = fallbackOf(one, 'one-rewrite');
  await one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 500 } });
  await eventually(async () => count(one, "SELECT COUNT(*) FROM mesh_outbox WHERE peer = 'two'") >= 1, 10_000, 'an event waiting');
  db(one).prepare("UPDATE mesh_outbox SET created_at = created_at - 400000 WHERE peer = 'two'").run();
  const w = await f1.round();
  assert.equal(git(['--git-dir', remote, 'rev-list', '--count', 'refs/weft/one']), '1', 'a new history of one commit');
  assert.ok(w.pushed.events >= 1);
  const r = await f2.round();
  assert.equal(r.imported.refused, 0);
  await eventually(async () => count(two, "SELECT COUNT(*) FROM notifications WHERE event_type = 'mesh.test.ping' AND json_extract(payload, '$.n') = 500") === 1, 10_000, 'the new history imported');
  // The old history is put back: read again, its frames recognised (no refusal but the two forged commits again), nothing applied twice.
  const notesBefore = count(two, "SELECT COUNT(*) FROM notifications WHERE event_type = 'mesh.test.ping'");
  git(['--git-dir', remote, 'update-ref', 'refs/weft/one', oldTip]);
  const again = await f2.round();
  assert.ok(again.imported.commits >= 3);
  assert.equal(count(two, "SELECT COUNT(*) FROM rejected_entries WHERE code LIKE 'REPLAY%'"), 0, 'frames read again are deliveries again, not replays to record');
  assert.equal(again.imported.refused, 2, 'only the two forged commits, refused again');
  assert.equal(count(two, 'SELECT COUNT(*) FROM rejected_entries'), refusedBefore, 'their rejections were recorded the first time (one row per commit)');
  assert.equal(count(two, "SELECT COUNT(*) FROM notifications WHERE event_type = 'mesh.test.ping'"), notesBefore);
  await f1.stop();
  await f2.stop();
});

test('an unreachable remote and a missing git are reported (status, mesh.fallback.failed), never thrown at the node', { skip }, async () => {
  const { one } = pair;
  const f = fallbackOf(one, 'one-unreachable', { remote: join(t.dir, 'no-such-remote.git') });
  await assert.rejects(f.round(), /git ls-remote failed/);
  assert.match(f.status().lastError ?? '', /^fetch: git ls-remote failed/);
  assert.equal(f.status().failures, 1);
  await eventually(async () => count(one, "SELECT COUNT(*) FROM events WHERE event = 'mesh.fallback.failed'") === 1, 10_000, 'mesh.fallback.failed');
  // A second failure within 10 minutes is counted, not raised again.
  await assert.rejects(f.round());
  assert.equal(f.status().failures, 2);
  assert.equal(count(one, "SELECT COUNT(*) FROM events WHERE event = 'mesh.fallback.failed'"), 1);
  await f.stop();
  const g = fallbackOf(one, 'one-nogit', { gitBinary: 'weft-test-no-such-git' });
  await assert.rejects(g.round(), /git is not installed/);
  await g.stop();
  // A remote URL's credentials never show.
  const h = fallbackOf(one, 'one-secret', { remote: 'https://user:hunter2@127.0.0.1:1/repo.git' });
  await assert.rejects(h.round());
  assert.doesNotMatch(JSON.stringify(h.status()), /hunter2/);
  await h.stop();
});

test('a file of frames that does not parse whole is refused', () => {
  assert.match(String(splitFrames(new Uint8Array([0, 0, 0]), 100)), /truncated length/);
  assert.match(String(splitFrames(new Uint8Array([0, 0, 0, 5, 1]), 100)), /truncated frame/);
  assert.match(String(splitFrames(new Uint8Array([0, 0, 1, 0, 1]), 100)), /256 bytes/);
  assert.match(String(splitFrames(new Uint8Array([0, 0, 0, 0]), 100)), /0 bytes/);
  assert.deepEqual(splitFrames(new Uint8Array([0, 0, 0, 1, 7, 0, 0, 0, 2, 8, 9]), 100), [new Uint8Array([7]), new Uint8Array([8, 9])]);
});
