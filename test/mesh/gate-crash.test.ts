/**
 * The sovereignty gate through a real crash: a receiver at L1 is killed (-9) right after a
 * human approved an install, whatever the gate had done by then. After the restart the
 * cartridge is installed exactly once, and a repeated publication changes nothing.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { writePackageDir } from '../../src/sovereignty/index.js';
import { weft } from '../helpers/cli.js';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';
import { tempDir } from '../helpers/tmp.js';

test('an install approved just before a kill -9 is installed exactly once after the restart', async () => {
  const t = tempDir('weft-gate-crash-');
  const dir = join(t.dir, 'pkg', 'tagger');
  await writePackageDir(dir, {
    manifest: {
      name: 'tagger',
      version: '1.0.0',
      author: 'pub',
      description: 'tags',
      entryPoint: 'process',
      dependencies: [],
      consumes: ['mesh.test.ping'],
      emits: [],
    },
    source: 'function process(event) { return event; }',
  });
  const c = await startCluster(
    t.dir,
    [
      { computer: 'pub', cluster: 'home' },
      { computer: 'rx', cluster: 'home', env: { WEFT_AUTONOMY_CARTRIDGE_INSTALL: 'L1' } },
    ],
    { provider: 'tls' },
  );
  const pub = c.nodes.pub as ClusterNode;
  const rx = c.nodes.rx as ClusterNode;
  const pending = async () => (await rx.api.notifications.list({ type: 'cartridge.install_pending' })).items;
  const listed = () =>
    (
      JSON.parse(weft(['--json', 'cartridges', 'list'], rx.env).stdout) as {
        items: Array<{ name: string; status: string }>;
      }
    ).items;
  try {
    assert.equal(weft(['cartridges', 'publish', dir], pub.env).code, 0);
    await eventually(async () => (await pending()).length === 1, 30_000, 'install_pending on rx');
    const n = (await pending())[0] as { id: number };
    await rx.api.request('POST', `/api/notifications/${n.id}/resolve`, {
      approve: true,
      resolution: { approved: true },
    });
    await rx.kill(); // at once: the gate may or may not have installed it yet
    await rx.start();
    await eventually(
      async () => listed().some((x) => x.name === 'tagger'),
      30_000,
      'tagger installed after the restart',
    );
    assert.deepEqual(
      listed().map((x) => [x.name, x.status]),
      [['tagger', 'pending_activation']],
    );
    await eventually(
      async () => (await rx.api.notifications.list({ type: 'cartridge.installed' })).items.length === 1,
      20_000,
      'one cartridge.installed',
    );
    // The same publication again: the publisher's dedup drops it and says so; nothing new anywhere.
    const again = weft(['cartridges', 'publish', dir], pub.env);
    assert.equal(again.code, 1, again.stdout);
    assert.match(again.stderr, /tagger 1\.0\.0 was not published .*published before as event/);
    await pub.api.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 1, note: 'after' } });
    await eventually(
      async () => (await rx.api.notifications.list({ type: 'mesh.test.ping' })).items.length === 1,
      20_000,
      'a later event on rx',
    );
    assert.equal((await pending()).length, 1);
    assert.equal((await rx.api.notifications.list({ type: 'cartridge.installed' })).items.length, 1);
    assert.equal(listed().length, 1);
  } finally {
    await c.stopAll();
    t.cleanup();
  }
});
