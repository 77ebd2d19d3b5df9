/**
 * The git fallback when the remote misbehaves, on two whole nodes over the in-memory network
 * (their link stopped) and a local bare repository: a push the remote refuses keeps the acks
 * it carried for the next round, so the sender's outbox still drains through git.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { AssembledNode } from '../../src/daemon/assemble.js';
import { GitFallback } from '../../src/recovery/index.js';
import { type Clock, ManualClock, systemClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { eventually } from '../helpers/cluster.js';
import { type MeshPair, meshPair } from '../helpers/mesh-pair.js';
import { tempDir } from '../helpers/tmp.js';

const git = (args: string[], input?: string | Buffer): string =>
  execFileSync('git', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] }).trim();
let hasGit = true;
try {
  git(['--version']);
} catch {
  hasGit = false;
}
const skip = hasGit ? false : 'git is not installed';

const t = tempDir('weft-git-fallback-hostile-');
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
  await eventually(
    async () => pair.one.mesh?.linkKey('two') !== undefined && pair.two.mesh?.linkKey('one') !== undefined,
    10_000,
    'link keys exchanged',
  );
});

function fallbackOf(
  n: AssembledNode,
  name: string,
  over: { gitMaxOutputBytes?: number; maxFileBytes?: number; maxListBytes?: number; remote?: string; clock?: Clock } = {},
): GitFallback {
  const { clock, ...init } = over;
  return new GitFallback(
    { remote, dataDir: join(t.dir, `${name}-${Math.random().toString(36).slice(2)}`), ...init },
    {
      node: n.node,
      mesh: n.mesh as NonNullable<AssembledNode['mesh']>,
      peers: n.peers,
      identity: () => n.identity,
      clock: clock ?? systemClock,
      logger: silentLogger,
    },
  );
}

const db = (n: AssembledNode) => n.node.ns.store.db;
const count = (n: AssembledNode, sql: string, ...args: unknown[]) =>
  db(n)
    .prepare(sql)
    .pluck()
    .get(...args) as number;

test("acks in a push the remote refuses are written in the next round: the sender's outbox drains through git", {
  skip,
}, async () => {
  const { one, two } = pair;
  // The link is down both ways; each node still runs its pipeline.
  await one.mesh?.stop();
  await two.mesh?.stop();
  const f1 = fallbackOf(one, 'one');
  const f2 = fallbackOf(two, 'two');
  for (let n = 0; n < 3; n++)
    await one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n } });
  await eventually(
    async () => count(one, "SELECT COUNT(*) FROM mesh_outbox WHERE peer = 'two'") === 3,
    10_000,
    'three events waiting for two',
  );
  db(one).prepare("UPDATE mesh_outbox SET created_at = created_at - 400000 WHERE peer = 'two'").run();
  assert.equal((await f1.round()).pushed.events, 3);

  // The remote refuses every push for a while (a hook, a full disk, a permission taken away).
  const hook = join(remote, 'hooks', 'pre-receive');
  writeFileSync(hook, '#!/bin/sh\necho "remote: refused for now" >&2\nexit 1\n');
  chmodSync(hook, 0o755);
  await assert.rejects(f2.round(), /git push failed/);
  await eventually(
    async () => count(two, "SELECT COUNT(*) FROM notifications WHERE event_type = 'mesh.test.ping'") === 3,
    10_000,
    'the three imported at two',
  );
  assert.match(f2.status().lastError ?? '', /^push: /);

  // The remote takes pushes again: the acks two owed one go in the next commit.
  rmSync(hook);
  const r = await f2.round();
  assert.equal(r.pushed.acks, 1, 'the ack of the imported frame, kept across the failed push');
  await f1.round();
  await eventually(
    async () => count(one, "SELECT COUNT(*) FROM mesh_outbox WHERE peer = 'two'") === 0,
    10_000,
    "one's outbox to drain by the ack through git",
  );
  await f1.stop();
  await f2.stop();
});

test("a node's ref on the remote overwritten with something that is no commit: the node writes it again and its events still cross", {
  skip,
}, async () => {
  const { one, two } = pair;
  await one.mesh?.stop();
  await two.mesh?.stop();
  const f1 = fallbackOf(one, 'one-garbage');
  const f2 = fallbackOf(two, 'two-garbage');
  // Someone with write access to the remote points refs/weft/one at a blob.
  const blob = git(['--git-dir', remote, 'hash-object', '-w', '--stdin'], 'not a commit');
  git(['--git-dir', remote, 'update-ref', 'refs/weft/one', blob]);
  await one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 700 } });
  await eventually(
    async () => count(one, "SELECT COUNT(*) FROM mesh_outbox WHERE peer = 'two' AND created_at > 0") >= 1,
    10_000,
    'an event waiting',
  );
  db(one).prepare("UPDATE mesh_outbox SET created_at = created_at - 400000 WHERE peer = 'two'").run();
  const w = await f1.round();
  assert.ok(w.pushed.events >= 1, 'written despite the blob in its place');
  assert.equal(git(['--git-dir', remote, 'cat-file', '-t', 'refs/weft/one']), 'commit');
  assert.equal(git(['--git-dir', remote, 'rev-parse', 'refs/weft/one']), w.pushed.commit);
  const r = await f2.round();
  assert.equal(r.imported.refused, 0);
  await eventually(
    async () =>
      count(
        two,
        "SELECT COUNT(*) FROM notifications WHERE event_type = 'mesh.test.ping' AND json_extract(payload, '$.n') = 700",
      ) === 1,
    10_000,
    'the event through git',
  );
  // The next round builds on it as usual.
  await one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 701 } });
  await eventually(
    async () => count(one, "SELECT COUNT(*) FROM mesh_outbox WHERE peer = 'two'") >= 1,
    10_000,
    'another event waiting',
  );
  db(one).prepare("UPDATE mesh_outbox SET created_at = created_at - 400000 WHERE peer = 'two'").run();
  const w2 = await f1.round();
  assert.equal(git(['--git-dir', remote, 'rev-parse', `${w2.pushed.commit}^`]), w.pushed.commit);
  await f2.round();
  await eventually(
    async () =>
      count(
        two,
        "SELECT COUNT(*) FROM notifications WHERE event_type = 'mesh.test.ping' AND json_extract(payload, '$.n') = 701",
      ) === 1,
    10_000,
    'the next event through git',
  );
  assert.equal(count(two, "SELECT COUNT(*) FROM rejected_entries WHERE code LIKE 'FALLBACK%'"), 0);
  await f1.stop();
  await f2.stop();
});

test("a node's ref deleted on the remote before its peer imported it: what still waits for the peer is written again", {
  skip,
}, async () => {
  const { one, two } = pair;
  await one.mesh?.stop();
  await two.mesh?.stop();
  const f1 = fallbackOf(one, 'one-deleted');
  const f2 = fallbackOf(two, 'two-deleted');
  await f2.round();
  await one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 800 } });
  await eventually(
    async () => count(one, "SELECT COUNT(*) FROM mesh_outbox WHERE peer = 'two'") >= 1,
    10_000,
    'an event waiting',
  );
  db(one).prepare("UPDATE mesh_outbox SET created_at = created_at - 400000 WHERE peer = 'two'").run();
  const w = await f1.round();
  assert.ok(w.pushed.events >= 1);
  // Before two fetches, an operator deletes one's ref (or someone rewrites it without that commit).
  git(['--git-dir', remote, 'update-ref', '-d', 'refs/weft/one']);
  assert.equal((await f2.round()).imported.frames, 0, 'nothing for two on the remote');
  const again = await f1.round();
  assert.ok(again.pushed.events >= 1, 'the unacked events written again');
  await f2.round();
  await eventually(
    async () =>
      count(
        two,
        "SELECT COUNT(*) FROM notifications WHERE event_type = 'mesh.test.ping' AND json_extract(payload, '$.n') = 800",
      ) === 1,
    10_000,
    'the event through git',
  );
  // Acked through git, they are not written a third time.
  await f2.round();
  await f1.round();
  await eventually(
    async () => count(one, "SELECT COUNT(*) FROM mesh_outbox WHERE peer = 'two'") === 0,
    10_000,
    "one's outbox drained",
  );
  assert.equal((await f1.round()).pushed.events, 0);
  await f1.stop();
  await f2.stop();
});

/** One node's next event for the other, written to git by its fallback. */
async function writeOne(from: AssembledNode, f: GitFallback, n: number): Promise<string> {
  await from.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n } });
  await eventually(
    async () => count(from, "SELECT COUNT(*) FROM mesh_outbox WHERE peer = 'two'") >= 1,
    10_000,
    'an event waiting',
  );
  db(from).prepare("UPDATE mesh_outbox SET created_at = created_at - 400000 WHERE peer = 'two'").run();
  const w = await f.round();
  assert.ok(w.pushed.events >= 1 && w.pushed.commit);
  return w.pushed.commit as string;
}
const pings = (n: AssembledNode, v: number) =>
  count(
    n,
    "SELECT COUNT(*) FROM notifications WHERE event_type = 'mesh.test.ping' AND json_extract(payload, '$.n') = ?",
    v,
  );

test("a commit too big to read, pushed onto a peer's ref, is refused unread; the commits after it still import", {
  skip,
}, async () => {
  const { one, two } = pair;
  await one.mesh?.stop();
  await two.mesh?.stop();
  const f1 = fallbackOf(one, 'one-big');
  // The importer reads at most 2 MiB per git run (256 MiB by default): the hostile commit is 3 MiB.
  const f2 = fallbackOf(two, 'two-big', { gitMaxOutputBytes: 2 * 1024 * 1024 });
  await f2.round();
  const c1 = await writeOne(one, f1, 900);
  const tree = git(['--git-dir', remote, 'rev-parse', `${c1}^{tree}`]);
  const big = git(
    [
      '--git-dir',
      remote,
      '-c',
      'user.name=mallory',
      '-c',
      'user.email=m@example.invalid',
      'commit-tree',
      tree,
      '-p',
      c1,
      '-F',
      '-',
    ],
    `${'x'.repeat(3 * 1024 * 1024)}\n`,
  );
  git(['--git-dir', remote, 'update-ref', 'refs/weft/one', big]);
  await writeOne(one, f1, 901);
  const r = await f2.round();
  assert.equal(r.imported.refused, 1);
  const why = db(two)
    .prepare(
      "SELECT reason FROM rejected_entries WHERE code = 'FALLBACK_COMMIT_FORGED' ORDER BY id DESC LIMIT 1",
    )
    .pluck()
    .get() as string;
  assert.match(why, new RegExp(`commit ${big.slice(0, 12)} .*a commit of \\d+ bytes`));
  await eventually(
    async () => pings(two, 900) === 1 && pings(two, 901) === 1,
    10_000,
    'the genuine commits on both sides of it',
  );
  await f1.stop();
  await f2.stop();
});

test("a peer's ref that cannot be read stops neither the other refs nor this node's own writing", {
  skip,
}, async () => {
  const { one, two } = pair;
  await one.mesh?.stop();
  await two.mesh?.stop();
  const f1 = fallbackOf(one, 'one-long');
  // 60,000 commits: listing them prints more than the importer's 2 MiB per git run.
  const tip = git(['--git-dir', remote, 'rev-parse', 'refs/weft/one']);
  let stream = '';
  for (let i = 0; i < 60_000; i++)
    stream += `commit refs/weft/one\ncommitter m <m@example.invalid> ${1_700_000_000 + i} +0000\ndata 1\nx\n${i === 0 ? `from ${tip}\n` : ''}\n`;
  git(['--git-dir', remote, 'fast-import', '--quiet'], stream);
  const f2 = fallbackOf(two, 'two-long', { gitMaxOutputBytes: 2 * 1024 * 1024 });
  // two owes one an event: its round still writes it.
  await two.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 950 } });
  await eventually(
    async () => count(two, "SELECT COUNT(*) FROM mesh_outbox WHERE peer = 'one'") >= 1,
    10_000,
    'an event waiting at two',
  );
  db(two).prepare("UPDATE mesh_outbox SET created_at = created_at - 400000 WHERE peer = 'one'").run();
  const r = await f2.round();
  assert.ok(r.pushed.events >= 1, 'two wrote its own commit');
  assert.match(
    f2.status().lastError ?? '',
    /^import of refs\/weft\/one: git rev-list failed: printed more than/,
  );
  await f1.round();
  await eventually(async () => pings(one, 950) === 1, 10_000, "two's event at one");
  git(['--git-dir', remote, 'update-ref', 'refs/weft/one', tip]);
  await f1.stop();
  await f2.stop();
});

test('a round holds no more for a peer than the peer reads in one file: the rest goes in the next round', {
  skip,
}, async () => {
  const { one, two } = pair;
  await one.mesh?.stop();
  await two.mesh?.stop();
  // Both sides read and write files of at most 6 MiB (128 MiB by default); frames are at most 4 MiB.
  const f1 = fallbackOf(one, 'one-huge', { maxFileBytes: 6 * 1024 * 1024 });
  const f2 = fallbackOf(two, 'two-huge', { maxFileBytes: 6 * 1024 * 1024 });
  await f2.round();
  const before = count(two, "SELECT COUNT(*) FROM rejected_entries WHERE code LIKE 'FALLBACK%'");
  // 150 events of 60 KB that do not compress much: about 7 MB of frames for two.
  for (let i = 0; i < 150; i++)
    await one.node.emit({
      event: 'mesh.test.ping',
      visibility: 'cluster',
      payload: { n: 2000 + i, blob: randomBytes(45_000).toString('base64') },
    });
  await eventually(
    async () => count(one, "SELECT COUNT(*) FROM mesh_outbox WHERE peer = 'two'") >= 150,
    10_000,
    'the events waiting',
  );
  db(one).prepare("UPDATE mesh_outbox SET created_at = created_at - 400000 WHERE peer = 'two'").run();
  const first = await f1.round();
  assert.ok(
    first.pushed.events > 0 && first.pushed.events < 150,
    `part of them in the first round (${first.pushed.events})`,
  );
  for (
    let r = 0;
    r < 5 &&
    count(
      two,
      "SELECT COUNT(*) FROM notifications WHERE event_type = 'mesh.test.ping' AND json_extract(payload, '$.n') >= 2000",
    ) < 150;
    r++
  ) {
    await f2.round();
    await f1.round();
  }
  await eventually(
    async () =>
      count(
        two,
        "SELECT COUNT(*) FROM notifications WHERE event_type = 'mesh.test.ping' AND json_extract(payload, '$.n') >= 2000",
      ) === 150,
    10_000,
    'all 150 through git',
  );
  assert.equal(
    count(two, "SELECT COUNT(*) FROM rejected_entries WHERE code LIKE 'FALLBACK%'"),
    before,
    'no file refused as too large',
  );
  await f1.stop();
  await f2.stop();
});

test('each run of failed rounds raises its own mesh.fallback.failed notification, not only the first run the node ever had', {
  skip,
}, async () => {
  const { one } = pair;
  const clock = new ManualClock(Date.now());
  const elsewhere = join(t.dir, 'flaky-remote.git');
  const f = fallbackOf(one, 'one-flaky', { remote: elsewhere, clock });
  const notes = () =>
    count(one, "SELECT COUNT(*) FROM notifications WHERE event_type = 'mesh.fallback.failed'");
  const before = notes();
  // 1. The remote is not there: a notification.
  await assert.rejects(f.round(), /git ls-remote failed/);
  await eventually(async () => notes() === before + 1, 10_000, 'the first notification');
  // Still failing 11 minutes later: the same run, no second notification.
  clock.advance(11 * 60_000);
  await assert.rejects(f.round());
  // 2. The remote comes back: a round succeeds.
  git(['init', '--bare', '--quiet', elsewhere]);
  await f.round();
  assert.equal(f.status().lastError, null);
  // 3. It goes away again, later: a new run of failures, a new notification.
  rmSync(elsewhere, { recursive: true });
  clock.advance(11 * 60_000);
  await assert.rejects(f.round(), /git ls-remote failed/);
  await eventually(async () => notes() === before + 2, 10_000, 'a notification for the second run');
  assert.equal(
    count(
      one,
      "SELECT COUNT(*) FROM events WHERE event = 'mesh.fallback.failed' AND json_extract(body, '$.payload.step') = 'fetch'",
    ),
    3,
    'three notices logged',
  );
  await f.stop();
});

test("a remote holding more refs than the listing may print: the node's known peers are asked by name and still import", {
  skip,
}, async () => {
  const { one, two } = pair;
  await one.mesh?.stop();
  await one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 424242 } });
  await eventually(async () => count(one, "SELECT COUNT(*) FROM mesh_outbox WHERE peer = 'two'") >= 1, 10_000, 'waiting for two');
  db(one).prepare("UPDATE mesh_outbox SET created_at = created_at - 400000 WHERE peer = 'two'").run();
  const f1 = fallbackOf(one, 'one-many');
  await f1.round();
  // 2,000 refs of strangers (~130 KB of listing) against a 64 KiB listing limit (1 MiB, some
  // 16,000 refs, by default).
  const tip = git(['--git-dir', remote, 'rev-parse', 'refs/weft/one']);
  const lines = Array.from({ length: 2_000 }, (_, i) => `create refs/weft/stranger-${String(i).padStart(5, '0')} ${tip}\n`).join('');
  git(['--git-dir', remote, 'update-ref', '--stdin'], lines);
  git(['--git-dir', remote, 'pack-refs', '--all']);
  try {
    const f2 = fallbackOf(two, 'two-many', { maxListBytes: 64 * 1024 });
    const r = await f2.round();
    assert.ok(r.imported.commits >= 1, 'one\'s ref imported');
    await eventually(
      async () => count(two, "SELECT COUNT(*) FROM notifications WHERE event_type = 'mesh.test.ping' AND json_extract(payload, '$.n') = 424242") === 1,
      10_000,
      'the event through git',
    );
    assert.equal(f2.status().lastError, null);
    await f2.stop();
  } finally {
    const del = Array.from({ length: 2_000 }, (_, i) => `delete refs/weft/stranger-${String(i).padStart(5, '0')}\n`).join('');
    git(['--git-dir', remote, 'update-ref', '--stdin'], del);
    await f1.stop();
  }
});

test("acks owed through git survive a restart of the node that owes them: the sender's outbox still drains through git", {
  skip,
}, async () => {
  const { one } = pair;
  await one.mesh?.stop();
  await pair.two.mesh?.stop();
  const f1 = fallbackOf(one, 'one-acks-restart');
  await one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 777 } });
  await eventually(async () => count(one, "SELECT COUNT(*) FROM mesh_outbox WHERE peer = 'two'") >= 1, 10_000, 'waiting for two');
  db(one).prepare("UPDATE mesh_outbox SET created_at = created_at - 400000 WHERE peer = 'two'").run();
  assert.ok((await f1.round()).pushed.events >= 1);
  // two imports it while its pushes are refused: the ack waits.
  const hook = join(remote, 'hooks', 'pre-receive');
  writeFileSync(hook, '#!/bin/sh\nexit 1\n');
  chmodSync(hook, 0o755);
  const f2 = fallbackOf(pair.two, 'two-acks-restart');
  await assert.rejects(f2.round(), /git push failed/);
  await eventually(
    async () => count(pair.two, "SELECT COUNT(*) FROM notifications WHERE event_type = 'mesh.test.ping' AND json_extract(payload, '$.n') = 777") === 1,
    10_000,
    'imported at two',
  );
  await f2.stop();
  rmSync(hook);
  // two restarts (its link to one stays down: one's mesh is stopped) and its next round writes the ack it owed.
  const two = await pair.restart('two');
  await two.mesh?.stop();
  const f2b = fallbackOf(two, 'two-acks-restart-b');
  const r = await f2b.round();
  assert.ok(r.pushed.acks >= 1, 'the ack owed before the restart is written');
  assert.equal(count(two, 'SELECT COUNT(*) FROM fallback_acks'), 0, 'and no longer kept once pushed');
  await f1.round();
  await eventually(async () => count(one, "SELECT COUNT(*) FROM mesh_outbox WHERE peer = 'two'") === 0, 10_000, "one's outbox drained by the ack through git");
  await f1.stop();
  await f2b.stop();
});
