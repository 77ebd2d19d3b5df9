/**
 * Phoenix restore and session lineage, between two real daemons over TLS: a node's cluster
 * events carry sessions (a chain it spawned, one parent on the peer); its data dir is wiped,
 * its key kept, and after `weft recovery restore` its `weft sessions tree` shows the same
 * tree as before the wipe (the restored events skip the pipeline, whose last stage indexes
 * sessions).
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { SessionTree } from '../../src/store/index.js';
import { weft } from '../helpers/cli.js';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';
import { tempDir } from '../helpers/tmp.js';

const t = tempDir('weft-phoenix-sessions-');
after(() => t.cleanup());

interface Status {
  mode: string;
  journal: { pending: number };
  nodes: Array<{ self: boolean; ranges: Array<{ copies: number }>; warnings: string[] }>;
}

/** The tree as `session[computer,events](child,...)`: what a user compares. */
function shape(n: SessionTree['root']): string {
  const me = `${n.session}[${n.computer ?? '-'},${n.events}]`;
  return n.children.length === 0 ? me : `${me}(${n.children.map(shape).join(',')})`;
}

test('after a Phoenix restore, the restored node shows the session tree its events make, as before the wipe', async () => {
  const { nodes, stopAll } = await startCluster(
    join(t.dir, 'fleet'),
    [
      { computer: 'laptop', cluster: 'home' },
      { computer: 'desk', cluster: 'home' },
    ],
    {
      provider: 'tls',
      extraEnv: {
        WEFT_RECOVERY_ENABLED: 'true',
        WEFT_RECOVERY_BEACON_INTERVAL: '3600',
        WEFT_RECOVERY_MIN_COPIES: '1',
      },
    },
  );
  const laptop = nodes.laptop as ClusterNode;
  const desk = nodes.desk as ClusterNode;
  try {
    const status = (n: ClusterNode) => n.api.request<Status>('GET', '/api/recovery/status');
    const digest = (n: ClusterNode, node?: string) =>
      n.api.request<{ count: number }>(
        'GET',
        `/api/recovery/digest${node ? `?node=${encodeURIComponent(node)}` : ''}`,
      );
    const tree = (n: ClusterNode, id: string): SessionTree => {
      const r = weft(['sessions', 'tree', id, '--json'], n.env);
      assert.equal(r.code, 0, `weft sessions tree ${id} at ${n.computer}: ${r.stderr}`);
      return JSON.parse(r.stdout) as SessionTree;
    };
    for (const n of [laptop, desk])
      await eventually(
        async () => (await status(n)).mode === 'normal',
        60_000,
        `${n.computer} to start beaconing`,
      );

    // The desk's planning session spawned the laptop's build, which spawned two more.
    await desk.api.emit({
      event: 'mesh.test.ping',
      visibility: 'cluster',
      payload: { n: 0 },
      session: 'plan',
    });
    const spawned: Array<[string, string]> = [
      ['build', 'plan'],
      ['build.lint', 'build'],
      ['build.test', 'build'],
      ['build.test', 'build'],
    ];
    for (const [i, [session, parentSession]] of spawned.entries()) {
      await laptop.api.emit({
        event: 'mesh.test.ping',
        visibility: 'cluster',
        payload: { n: i + 1 },
        session,
        parentSession,
      });
    }
    await eventually(
      async () =>
        weft(['sessions', 'tree', 'build.test', '--json'], laptop.env).stdout.includes('build.lint') &&
        tree(laptop, 'build.test').sessions === 4,
      30_000,
      'the tree at the laptop',
    );
    const before = shape(tree(laptop, 'build.test').root);
    assert.equal(before, 'plan[desk,1](build[laptop,1](build.lint[laptop,1],build.test[laptop,2]))');

    // Everything at the desk and in a beacon.
    await eventually(
      async () => (await status(laptop)).journal.pending === 0,
      60_000,
      'the notification journal',
    );
    const own = await digest(laptop);
    await eventually(
      async () => (await digest(desk, laptop.nodeId)).count >= own.count,
      60_000,
      "the desk to hold the laptop's events",
    );
    await laptop.api.request('POST', '/api/recovery/beacon');
    await eventually(
      async () => {
        const me = (await status(laptop)).nodes.find((n) => n.self);
        return me !== undefined && me.ranges.length > 0 && me.ranges.every((r) => r.copies === 1);
      },
      60_000,
      'the desk to report every range whole',
    );

    // The laptop's data dir goes, its key is kept; it is restored from the desk.
    assert.equal(await laptop.stop(), 0);
    const key = join(t.dir, 'laptop.identity.key');
    copyFileSync(join(laptop.dataDir, 'identity.key'), key);
    rmSync(laptop.dataDir, { recursive: true, force: true });
    mkdirSync(laptop.dataDir, { recursive: true, mode: 0o700 });
    copyFileSync(key, join(laptop.dataDir, 'identity.key'));
    await laptop.start();
    await eventually(
      async () => (await status(laptop)).mode === 'needs-restore',
      60_000,
      'the fresh laptop to see the desk holds its history',
    );
    const restored = weft(['recovery', 'restore'], laptop.env);
    assert.equal(restored.code, 0, restored.stdout + restored.stderr);

    // The laptop's own sessions are back, with their events and parents; the desk's session is
    // known as their parent (its events were the desk's, not restored as the laptop's).
    const after = tree(laptop, 'build.test');
    assert.equal(shape(after.root), 'plan[-,0](build[laptop,1](build.lint[laptop,1],build.test[laptop,2]))');
  } finally {
    await stopAll();
  }
});
