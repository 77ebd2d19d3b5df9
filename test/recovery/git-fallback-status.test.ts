/**
 * `weft status` of a real daemon whose git fallback fails every round (its remote is a
 * directory that is no git repository): the failure is listed as a problem (exit code 3), and
 * goes away once a round succeeds.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { weft } from '../helpers/cli.js';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';
import { freePort } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

let hasGit = true;
try {
  execFileSync('git', ['--version'], { stdio: 'ignore' });
} catch {
  hasGit = false;
}
const t = tempDir('weft-git-fallback-status-');
after(() => t.cleanup());

test('a git fallback that fails every round shows in weft status (exit 3) until a round succeeds', {
  skip: hasGit ? false : 'git is not installed',
}, async () => {
  const remote = join(t.dir, 'remote');
  mkdirSync(remote);
  const { nodes, stopAll } = await startCluster(
    join(t.dir, 'fleet'),
    [{ computer: 'laptop', cluster: 'home' }],
    {
      provider: 'tls',
      extraEnv: { WEFT_FALLBACK_GIT_REMOTE: remote, WEFT_FALLBACK_INTERVAL: '1' },
    },
  );
  const laptop = nodes.laptop as ClusterNode;
  try {
    await eventually(
      async () =>
        weft(['recovery', 'fallback', '--json'], laptop.env).stdout.includes(
          'does not appear to be a git repository',
        ),
      30_000,
      'a failed round',
    );
    const bad = weft(['status'], laptop.env);
    assert.equal(bad.code, 3, bad.stdout + bad.stderr);
    assert.match(
      bad.stdout,
      /fallback: the git fallback's last (round|\d+ rounds) failed \(fetch: git ls-remote failed .*does not appear to be a git repository\)/,
    );
    const json = JSON.parse(weft(['status', '--json'], laptop.env).stdout) as { problems: string[] };
    assert.ok(json.problems.some((p) => p.startsWith('fallback: ')));

    // The remote becomes a repository: the next round succeeds and the problem is gone.
    rmSync(remote, { recursive: true });
    execFileSync('git', ['init', '--bare', '--quiet', remote]);
    await eventually(
      async () => weft(['status'], laptop.env).code === 0,
      30_000,
      'status clean after a good round',
    );
  } finally {
    await stopAll();
  }
});

test('weft recovery fallback says a round is running while a stalled remote holds it', {
  skip: hasGit ? false : 'git is not installed',
}, async () => {
  // A git:// remote that accepts the connection and never answers.
  const held: Socket[] = [];
  const server = createServer((s) => {
    held.push(s);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const { nodes, stopAll } = await startCluster(
    join(t.dir, 'stalled'),
    [{ computer: 'laptop', cluster: 'home' }],
    {
      provider: 'tls',
      extraEnv: { WEFT_FALLBACK_GIT_REMOTE: `git://127.0.0.1:${port}/weft.git`, WEFT_FALLBACK_INTERVAL: '1' },
    },
  );
  const laptop = nodes.laptop as ClusterNode;
  try {
    await eventually(async () => held.length > 0, 30_000, 'the first fetch to reach the stalled remote');
    const shown = weft(['recovery', 'fallback'], laptop.env);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(
      shown.stdout,
      /no round finished yet\na round is running \(started \d+ s ago; a git run that stalls is stopped after 120 s\)/,
    );
    const json = JSON.parse(weft(['recovery', 'fallback', '--json'], laptop.env).stdout) as {
      running: boolean;
      runningSince: number | null;
    };
    assert.equal(json.running, true);
    assert.equal(typeof json.runningSince, 'number');
  } finally {
    await stopAll();
    for (const s of held) s.destroy();
    server.close();
  }
});
