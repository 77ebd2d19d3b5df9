/**
 * The sovereignty gate across real daemons (child processes), once linked over TLS and once
 * over Redis. One publisher and four receivers, each with its own autonomy level.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { WeftClient } from '../../src/client/index.js';
import { writePackageDir } from '../../src/sovereignty/index.js';
import { weft } from '../helpers/cli.js';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';
import { TestRedis } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

const PING = 'mesh.test.ping';

interface Listed {
  items: Array<{ name: string; version: string; status: string; origin: string; invocationCount: number }>;
}

async function notes(
  api: WeftClient,
  type: string,
): Promise<Array<{ id: number; actionable: boolean; payload: Record<string, unknown> }>> {
  const page = await api.notifications.list({ type, limit: 100 });
  return page.items as Array<{ id: number; actionable: boolean; payload: Record<string, unknown> }>;
}

for (const provider of ['tls', 'redis'] as const)
  describe(`sovereignty gate across daemons over ${provider}`, () => {
    const t = tempDir(`weft-sovereignty-${provider}-`);
    let redis: TestRedis | undefined;
    let nodes: Record<string, ClusterNode>;
    let stopAll: () => Promise<void>;
    const cli = (node: string, args: string[]) => {
      const r = weft(args, (nodes[node] as ClusterNode).env);
      assert.equal(r.code, 0, `weft ${args.join(' ')} on ${node}: ${r.stderr}`);
      return r.stdout;
    };
    const list = (node: string): Listed => JSON.parse(cli(node, ['cartridges', 'list', '--json'])) as Listed;
    const find = (node: string, name: string) => list(node).items.find((c) => c.name === name);
    const api = (node: string) => (nodes[node] as ClusterNode).api;

    before(async () => {
      const guardian = (name: string, answer: string) => {
        const path = join(t.dir, name);
        writeFileSync(
          path,
          `let s = ''; process.stdin.on('data', (d) => (s += d)); process.stdin.on('end', () => { JSON.parse(s); console.log(${JSON.stringify(answer)}); });`,
        );
        return `"${process.execPath}" "${path}"`;
      };
      // greeter answers each ping with another; other is a second publication to refuse at L1
      await writePackageDir(join(t.dir, 'pkg', 'greeter'), {
        manifest: {
          name: 'greeter',
          version: '1.0.0',
          author: 'pub',
          description: 'greets pings',
          entryPoint: 'process',
          dependencies: [],
          consumes: [PING],
          emits: [PING],
        },
        source:
          "function process(event, ctx) { ctx.emit('mesh.test.ping', { n: event.payload.n + 1000, note: 'hi ' + event.payload.note }); return event; }",
      });
      await writePackageDir(join(t.dir, 'pkg', 'other'), {
        manifest: {
          name: 'other',
          version: '1.0.0',
          author: 'pub',
          description: 'another',
          entryPoint: 'process',
          dependencies: [],
          consumes: ['nothing.here'],
          emits: [],
        },
        source: 'function process(event) { return event; }',
      });
      if (provider === 'redis') redis = await TestRedis.start();
    const c = await startCluster(
        t.dir,
        [
          { computer: 'pub', cluster: 'home' },
          { computer: 'l1', cluster: 'home', env: { WEFT_AUTONOMY_CARTRIDGE_INSTALL: 'L1' } },
          {
            computer: 'l2ok',
            cluster: 'work',
            env: {
              WEFT_AUTONOMY_CARTRIDGE_INSTALL: 'L2',
              WEFT_AUTONOMY_GUARDIAN_COMMAND: guardian(
                'ok.cjs',
                '{"approve": true, "reason": "reviewed: harmless"}',
              ),
            },
          },
          {
            computer: 'l2no',
            cluster: 'work',
            env: {
              WEFT_AUTONOMY_CARTRIDGE_INSTALL: 'L2',
              WEFT_AUTONOMY_GUARDIAN_COMMAND: guardian(
                'no.cjs',
                '{"approve": false, "reason": "not reviewed"}',
              ),
            },
          },
          {
            computer: 'l3',
            env: { WEFT_AUTONOMY_CARTRIDGE_INSTALL: 'L3', WEFT_AUTONOMY_PROMOTION_THRESHOLD: '3' },
          },
        ],
        provider === 'redis' ? { provider, redisUrl: (redis as TestRedis).url } : { provider },
      );
      nodes = c.nodes;
      stopAll = c.stopAll;
      if (provider === 'redis') {
        // public events go to the peers known when they are published: wait for discovery
        await eventually(
          async () => (await api('pub').request<unknown[]>('GET', '/api/peers')).length === 4,
          30_000,
          'discovery',
        );
      }
      // publishing twice is one publication (idempotency: name + version + source SHA-256); the repeat says so and exits 1
      assert.match(
        cli('pub', ['cartridges', 'publish', join(t.dir, 'pkg', 'greeter')]),
        /published greeter 1\.0\.0 \(public\) as event \S+/,
      );
      const repeat = weft(['cartridges', 'publish', join(t.dir, 'pkg', 'greeter')], (nodes.pub as ClusterNode).env);
      assert.equal(repeat.code, 1, repeat.stdout);
      assert.match(repeat.stderr, /greeter 1\.0\.0 was not published .*published before as event/);
      cli('pub', ['cartridges', 'publish', join(t.dir, 'pkg', 'other')]);
    });
    after(async () => {
      await stopAll?.();
      await redis?.stop();
      t.cleanup();
    });

    test("L3 installs a peer's publication at once, without a human, as pending_activation in incoming/", async () => {
      await eventually(async () => find('l3', 'greeter') !== undefined, 30_000, 'l3 to install greeter');
      const g = find('l3', 'greeter');
      assert.equal(g?.status, 'pending_activation');
      assert.equal(g?.origin, (nodes.pub as ClusterNode).nodeId, 'origin is the publishing peer');
      assert.ok(existsSync(join((nodes.l3 as ClusterNode).dataDir, 'cartridges', 'incoming', 'greeter.js')));
      await eventually(
        async () => (await notes(api('l3'), 'cartridge.installed')).length === 2,
        30_000,
        'cartridge.installed on l3',
      );
      assert.equal((await notes(api('l3'), 'cartridge.install_pending')).length, 0, 'no human was asked');
    });

    test('L1 holds the publication as one actionable install_pending and installs only after approval; a reject installs nothing', async () => {
      await eventually(
        async () => (await notes(api('l1'), 'cartridge.install_pending')).length === 2,
        30_000,
        'two install_pending on l1',
      );
      const pending = await notes(api('l1'), 'cartridge.install_pending');
      const greeter = pending.filter((n) => n.payload.name === 'greeter');
      assert.equal(greeter.length, 1, 'the repeated publication made one notification');
      assert.equal(greeter[0]?.actionable, true);
      assert.equal(greeter[0]?.payload.sourceComputer, 'pub');
      assert.equal(list('l1').items.length, 0, 'nothing installed before a human answers');

      const other = pending.find((n) => n.payload.name === 'other');
      assert.match(cli('l1', ['notifications', 'resolve', String(other?.id), '--reject']), /is resolved/);
      assert.equal(find('l1', 'other'), undefined, 'a rejected cartridge is not installed');

      cli('l1', ['notifications', 'resolve', String(greeter[0]?.id), '--approve']);
      const g = find('l1', 'greeter');
      assert.equal(g?.status, 'pending_activation', 'installed when the approval returns');
      assert.ok(existsSync(join((nodes.l1 as ClusterNode).dataDir, 'cartridges', 'incoming', 'greeter.js')));
      await eventually(
        async () => (await notes(api('l1'), 'cartridge.installed')).length === 1,
        30_000,
        'cartridge.installed on l1',
      );
      assert.equal(find('l1', 'other'), undefined);
    });

    test('L2 installs what the guardian command approves and tells the human; a refusal installs nothing and says why', async () => {
      await eventually(async () => find('l2ok', 'greeter') !== undefined, 30_000, 'l2ok to install greeter');
      assert.equal(find('l2ok', 'greeter')?.status, 'pending_activation');
      await eventually(
        async () => (await notes(api('l2ok'), 'cartridge.install_notified')).length === 2,
        30_000,
        'install_notified on l2ok',
      );
      const told = (await notes(api('l2ok'), 'cartridge.install_notified')).find(
        (n) => n.payload.name === 'greeter',
      );
      assert.equal(told?.payload.guardian, 'rules+command');
      assert.match(String(told?.payload.reason), /reviewed: harmless/);
      assert.equal((await notes(api('l2ok'), 'cartridge.installed')).length, 2);

      await eventually(
        async () => (await notes(api('l2no'), 'cartridge.install_pending')).length === 2,
        30_000,
        'refusals on l2no',
      );
      const refused = (await notes(api('l2no'), 'cartridge.install_pending')).find(
        (n) => n.payload.name === 'greeter',
      );
      assert.match(
        String(refused?.payload.reason),
        /guardian \(command\) refused: not reviewed; nothing was installed/,
      );
      assert.equal(list('l2no').items.length, 0);
    });

    test('activate moves the cartridge into the pipeline; list shows its invocation count; promotion is suggested exactly once', async () => {
      await eventually(async () => find('l3', 'greeter') !== undefined, 30_000, 'l3 to install greeter');
      assert.match(cli('l3', ['cartridges', 'activate', 'greeter']), /cartridge greeter 1\.0\.0 is active/);
      const pipeline = await api('l3').request<{ order: string[] }>('GET', '/api/pipeline');
      assert.ok(pipeline.order.includes('cartridge:greeter'), pipeline.order.join(' → '));
      const order = pipeline.order;
      assert.ok(
        order.indexOf('mesh-publisher') < order.indexOf('promotion-tracker') ||
          !order.includes('mesh-publisher'),
      );
      assert.ok(order.indexOf('promotion-tracker') < order.indexOf('cartridge:greeter'));
      for (let i = 1; i <= 5; i++)
        cli('l3', ['emit', PING, '--payload', JSON.stringify({ n: i, note: `p${i}` })]);
      await eventually(async () => (find('l3', 'greeter')?.invocationCount ?? 0) === 5, 30_000, 'five runs');
      await eventually(
        async () =>
          (await notes(api('l3'), PING)).filter((n) => String(n.payload.note).startsWith('hi p')).length ===
          5,
        30_000,
        'greetings',
      );
      const table = cli('l3', ['cartridges', 'list']);
      assert.match(table, /greeter/);
      assert.match(table, /active/);
      const promo = await notes(api('l3'), 'cartridge.promotion_suggested');
      assert.equal(promo.length, 1, 'one suggestion although the count went past the threshold');
      assert.equal(promo[0]?.actionable, true);
      assert.equal(promo[0]?.payload.cartridge, 'greeter');
      assert.equal(promo[0]?.payload.threshold, 3);
      const invoked = await api('l3').request<{ items: unknown[] }>(
        'GET',
        '/api/events?type=cartridge.invoked&limit=50',
      );
      assert.equal(invoked.items.length, 5, 'one cartridge.invoked per successful run');
    });
  });
