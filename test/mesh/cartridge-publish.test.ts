/**
 * `weft cartridges publish` across two real daemons on one Redis: each different package is a
 * publication of its own, and a publication the node's pipeline drops is reported, not "published".
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { writePackageDir } from '../../src/sovereignty/index.js';
import { weft } from '../helpers/cli.js';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';
import { TestRedis } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

const PING = 'mesh.test.ping';
const t = tempDir('weft-publish-');
let redis: TestRedis;
let nodes: Record<string, ClusterNode>;
let stopAll: () => Promise<void>;

const node = (name: string) => nodes[name] as ClusterNode;
const pkg = (name: string, source: string) =>
  writePackageDir(join(t.dir, 'pkg', name), {
    manifest: {
      name,
      version: '1.0.0',
      author: 'ada',
      description: name,
      entryPoint: 'process',
      dependencies: [],
      consumes: [PING],
      emits: [],
    },
    source,
  });
const installed = async (name: string) =>
  (
    await node('peer').api.request<{ items: Array<{ name: string; sha256: string }> }>(
      'GET',
      '/api/cartridges',
    )
  ).items.find((c) => c.name === name);
const failures = async () =>
  (
    await node('peer').api.request<{ items: Array<{ payload: { error?: string } }> }>(
      'GET',
      '/api/notifications?type=system.cartridge.failed&limit=50',
    )
  ).items;

before(async () => {
  redis = await TestRedis.start();
  const c = await startCluster(
    t.dir,
    [
      { computer: 'pub', cluster: 'home' },
      { computer: 'peer', cluster: 'home', env: { WEFT_AUTONOMY_CARTRIDGE_INSTALL: 'L3' } },
    ],
    { provider: 'redis', redisUrl: redis.url },
  );
  nodes = c.nodes;
  stopAll = c.stopAll;
  await eventually(
    async () => (await node('pub').api.request<unknown[]>('GET', '/api/peers')).length === 1,
    30_000,
    'discovery',
  );
});

after(async () => {
  await stopAll?.();
  await redis?.stop();
  t.cleanup();
});

test('two different cartridges of one author consuming the same type are two publications; a repeat is reported and exits 1', async () => {
  await pkg('first', 'function process(e) { return e; }');
  await pkg('second', 'function process(e) { e.payload.note = "second"; return e; }');
  const one = weft(['cartridges', 'publish', join(t.dir, 'pkg', 'first')], node('pub').env);
  assert.equal(one.code, 0, one.stderr);
  const id = /as event (\S+)/.exec(one.stdout)?.[1];
  assert.ok(id, one.stdout);
  const two = weft(['cartridges', 'publish', join(t.dir, 'pkg', 'second')], node('pub').env);
  assert.equal(two.code, 0, two.stderr);
  assert.match(two.stdout, /published second 1\.0\.0 \(public\) as event \S+/);
  await eventually(
    async () => (await installed('first')) !== undefined && (await installed('second')) !== undefined,
    30_000,
    'both installed on the peer',
  );

  // the same package again: nothing goes out, and the CLI says so
  const again = weft(['cartridges', 'publish', join(t.dir, 'pkg', 'first')], node('pub').env);
  assert.equal(again.code, 1, again.stdout);
  assert.match(
    again.stderr,
    new RegExp(
      `first 1\\.0\\.0 was not published \\(event \\S+\\): this exact package \\(name, version and source SHA-256\\) was published before as event ${id}, so the dedup stage dropped it`,
    ),
  );

  // a corrected source under the same version is a publication of its own: the peer gets it
  // (and, having installed the first source of 1.0.0, refuses it as a conflict, saying so)
  await pkg('first', 'function process(e) { e.payload.fixed = true; return e; }');
  const fixed = weft(['cartridges', 'publish', join(t.dir, 'pkg', 'first')], node('pub').env);
  assert.equal(fixed.code, 0, fixed.stderr);
  await eventually(
    async () =>
      (await failures()).some((n) =>
        /first 1\.0\.0 from pub: cannot install: .*different source/.test(String(n.payload.error)),
      ),
    30_000,
    'the corrected publication reached the peer',
  );
});

test('a source too large to publish is refused before anything is emitted, with the size it may have', async () => {
  await pkg('huge', `function process(e) { return e; }\n// ${'y'.repeat(60 * 1024)}`);
  const r = weft(['cartridges', 'publish', join(t.dir, 'pkg', 'huge')], node('pub').env);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stderr, /cartridge source too large to publish: 60 KiB, at most ~4\d(\.\d)? KiB/);
  const logged = await node('pub').api.request<{
    items: Array<{ envelope: { payload: { name?: string } } }>;
  }>('GET', '/api/events?type=cartridge.published&limit=50');
  assert.ok(logged.items.length > 0, 'the earlier publications are listed');
  assert.equal(logged.items.filter((e) => e.envelope.payload.name === 'huge').length, 0);
});
