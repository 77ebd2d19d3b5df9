/**
 * Every git run is bounded, with what git starts: a remote helper (ssh, git-remote-https) that
 * stalls keeps git's pipes open after git itself is killed. Here a stand-in for git starts a
 * child that holds the pipes and sleeps; the run must fail at its time limit (not when the
 * pipes close, which would be never), and nothing it started may be left running. The same for
 * a stop (`killAll`).
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Git } from '../../src/recovery/index.js';
import { tempDir } from '../helpers/tmp.js';

/** A "git" that starts a child holding its stdout and stderr, writes the child's pid, and waits. */
function stalledGit(dir: string): { binary: string; pidFile: string } {
  const pidFile = join(dir, 'helper.pid');
  const binary = join(dir, 'git');
  writeFileSync(binary, `#!/bin/sh\nsleep 300 &\necho $! > ${pidFile}\nwait\n`);
  chmodSync(binary, 0o755);
  return { binary, pidFile };
}

/** Running (a killed process nobody reaped yet, a zombie, is not). */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

async function helperPid(pidFile: string): Promise<number> {
  for (let i = 0; i < 100 && !existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 20));
  return Number(readFileSync(pidFile, 'utf8').trim());
}

test('a git run whose helper holds its pipes fails at its time limit, and the helper is killed with it', { skip: process.platform !== 'linux', timeout: 20_000 }, async () => {
  const t = tempDir('weft-git-run-');
  try {
    const { binary, pidFile } = stalledGit(t.dir);
    const git = new Git({ gitDir: join(t.dir, 'repo.git'), binary, timeoutMs: 800, author: { name: 'n', email: 'e@x' } });
    const t0 = Date.now();
    await assert.rejects(git.run(['fetch', 'origin']), /git fetch failed: timed out after 1 s/);
    assert.ok(Date.now() - t0 < 5000, `settled at the limit (${Date.now() - t0} ms), not when the pipes close`);
    const pid = await helperPid(pidFile);
    for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(alive(pid), false, 'the helper git started is gone too');
  } finally {
    t.cleanup();
  }
});

test('a stop kills the git runs in progress with what they started; each rejects at once', { skip: process.platform !== 'linux', timeout: 20_000 }, async () => {
  const t = tempDir('weft-git-stop-');
  try {
    const { binary, pidFile } = stalledGit(t.dir);
    const git = new Git({ gitDir: join(t.dir, 'repo.git'), binary, timeoutMs: 60_000, author: { name: 'n', email: 'e@x' } });
    const run = git.run(['push', 'origin']);
    const pid = await helperPid(pidFile);
    const t0 = Date.now();
    git.killAll();
    await assert.rejects(run, /stopped: the node is stopping/);
    assert.ok(Date.now() - t0 < 2000);
    for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(alive(pid), false, 'the helper is gone');
  } finally {
    t.cleanup();
  }
});
