/**
 * The observer on a node of the daemon's own assembly: an unsafe spool directory is reported
 * and left alone without stopping the node; malformed and oversized records are refused and
 * recorded while the good ones around them are read; a backlog larger than one emit is read
 * whole; a file is removed once read and its shell has exited, never while the shell lives.
 */
import assert from 'node:assert/strict';
import { appendFileSync, chmodSync, existsSync, mkdirSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { type AssembledNode, assembleNode } from '../../src/daemon/assemble.js';
import { PrivacyPolicy } from '../../src/privacy/index.js';
import { writeSpool } from '../helpers/privacy-mesh.js';
import { tempDir } from '../helpers/tmp.js';

async function node(dir: string, spool: string): Promise<AssembledNode> {
  const n = await assembleNode({
    dataDir: dir,
    computer: 'obs',
    system: { trust: { overrides: { 'weft-observe': { rate: false } } } },
    privacy: { policy: new PrivacyPolicy(), observe: { spoolDirs: [spool], scanEveryMs: 60_000 }, summarizeEveryMs: 0 },
  });
  await n.start();
  return n;
}

const commands = (n: AssembledNode) => (n.node.ns.store.reader.prepare('SELECT COUNT(*) AS n FROM terminal_commands').get() as { n: number }).n;

test('a spool directory open to other users is reported and not read; the node runs on, and reads it once it is fixed', async () => {
  const t = tempDir('weft-observer-');
  const spool = join(t.dir, 'spool');
  mkdirSync(spool, { mode: 0o700 });
  chmodSync(spool, 0o755);
  writeSpool(spool, 'bash-1-1.spool', [{ command: 'git status' }]);
  chmodSync(spool, 0o755);
  const n = await node(join(t.dir, 'data'), spool);
  try {
    await n.privacy.observer?.scan();
    assert.match(n.privacy.observerStats?.problems[0] ?? '', /is open to other users \(mode 755\): chmod 700 it/);
    assert.equal(commands(n), 0, 'nothing is read from it');
    chmodSync(spool, 0o700);
    await n.privacy.observer?.scan();
    assert.ok(await n.node.idle());
    assert.equal(commands(n), 1);
  } finally {
    await n.stop();
    t.cleanup();
  }
});

test('malformed and oversized records are refused and recorded; the records around them are read', async () => {
  const t = tempDir('weft-observer-');
  const spool = join(t.dir, 'spool');
  const n = await node(join(t.dir, 'data'), spool);
  try {
    const file = join(spool, 'bash-2-1.spool');
    writeSpool(spool, 'bash-2-1.spool', [{ command: 'echo one' }]);
    appendFileSync(file, '1\x1fnot-a-time\x1fbash\x1f0\x1f1\x1f/\x1fecho bad\x1e\n');
    appendFileSync(file, `1\x1f1733333333\x1fbash\x1f0\x1f1\x1f/\x1f${'x'.repeat(300 * 1024)}`);
    appendFileSync(file, '\x1e\n');
    writeSpool(spool, 'bash-2-1.spool', [{ command: 'echo two' }]);
    await n.privacy.observer?.scan();
    assert.ok(await n.node.idle());
    assert.equal(commands(n), 2, 'the good records on both sides');
    const refused = n.node.ns.rejections.list({ origin: 'observe', limit: 10 });
    assert.equal(refused.length, 2);
    assert.ok(refused.some((r) => /ts 'not-a-time' is not seconds since the epoch/.test(r.reason)));
    assert.ok(refused.some((r) => /longer than 262144 bytes/.test(r.reason)));
    assert.ok(refused.every((r) => r.code === 'SPOOL_RECORD_INVALID'));
  } finally {
    await n.stop();
    t.cleanup();
  }
});

test('a backlog larger than one emit is read whole, and a read file is removed once its shell has exited, never before', async () => {
  const t = tempDir('weft-observer-');
  const spool = join(t.dir, 'spool');
  const n = await node(join(t.dir, 'data'), spool);
  try {
    const now = Date.now();
    // pid 2^22+1 cannot be a live process (above Linux's pid_max); this test process is alive.
    writeSpool(spool, 'zsh-4194305-1.spool', Array.from({ length: 5000 }, (_, i) => ({ command: `make target${i}`, ts: now - 5000 + i, shell: 'zsh' })));
    writeSpool(spool, `bash-${process.pid}-1.spool`, [{ command: 'still typing' }]);
    await n.privacy.observer?.scan();
    assert.ok(await n.node.idle(30_000));
    assert.equal(commands(n), 5001);
    assert.equal(existsSync(join(spool, 'zsh-4194305-1.spool')), true, 'a file written just now stays, even with its shell gone (its last write may still be landing)');
    const old = new Date(Date.now() - 2 * 60_000);
    utimesSync(join(spool, 'zsh-4194305-1.spool'), old, old);
    utimesSync(join(spool, `bash-${process.pid}-1.spool`), old, old);
    await n.privacy.observer?.scan();
    assert.equal(existsSync(join(spool, 'zsh-4194305-1.spool')), false, "a finished shell's file is removed");
    assert.equal(existsSync(join(spool, `bash-${process.pid}-1.spool`)), true, "a live shell's file stays");
    writeSpool(spool, `bash-${process.pid}-1.spool`, [{ command: 'typed later' }]);
    await n.privacy.observer?.scan();
    assert.ok(await n.node.idle());
    assert.equal(commands(n), 5002, 'and is read on from where it was');
  } finally {
    await n.stop();
    t.cleanup();
  }
});

test('a peer cannot grow the table of shared summaries without end: the newest 2,000 per peer are kept', async () => {
  const { MAX_PEER_SUMMARIES, PrivacyStore } = await import('../../src/privacy/index.js');
  const t = tempDir('weft-observer-');
  const n = await node(join(t.dir, 'data'), join(t.dir, 'spool'));
  try {
    const ps = new PrivacyStore(n.node.ns.store);
    const base = Date.parse('2026-01-01T00:00:00Z');
    await n.node.ns.store.write(() => {
      for (let i = 0; i < MAX_PEER_SUMMARIES + 10; i++) {
        const start = new Date(base + i * 3_600_000).toISOString();
        ps.addPeerSummary('mallory', { id: `s${i}`, node_id: 'x', period: { start, end: start, granularity: 'hourly' } } as never, 0);
      }
      ps.addPeerSummary('alice', { id: 'a0', node_id: 'y', period: { start: new Date(base).toISOString(), end: '', granularity: 'hourly' } } as never, 0);
    });
    const kept = ps.peerSummaries({ peer: 'mallory', limit: 5000 });
    assert.equal(kept.length, MAX_PEER_SUMMARIES);
    assert.equal(kept.at(-1)?.summary.id, 's10', 'the oldest periods went');
    assert.equal(ps.peerSummaries({ peer: 'alice', limit: 10 }).length, 1, 'other peers are untouched');
  } finally {
    await n.stop();
    t.cleanup();
  }
});
