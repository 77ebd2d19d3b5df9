/**
 * Several whole nodes (the daemon's own assembly, in this process) with the privacy layer on,
 * fully linked over a real transport (memory, a real Redis, or real TLS sockets on 127.0.0.1),
 * each with its own spool directory, its own API (for `inject`), and every frame its provider
 * sent recorded as handed to the transport (before TLS encrypts it). Spool records are
 * written in the hooks' exact format, as a shell would.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { HttpApp } from '../../src/api/http.js';
import { buildApi, nodeRoutes, privacyRoutes } from '../../src/api/index.js';
import { type AssembledNode, assembleNode } from '../../src/daemon/assemble.js';
import { loadOrCreateIdentity, type NodeIdentity } from '../../src/identity/index.js';
import type { KnownPeer, TrustLevel } from '../../src/mesh/index.js';
import { type PolicyInit, PrivacyPolicy } from '../../src/privacy/index.js';
import { MemoryNetwork, memoryProvider, type ProviderFactory, redisProvider, tlsProvider } from '../../src/transport/index.js';
import type { Clock } from '../../src/util/index.js';
import type { Transport } from './mesh-pair.js';
import { freePort, TestRedis } from './redis.js';
import { tempDir } from './tmp.js';

export interface PrivacyNodeHandle {
  name: string;
  dataDir: string;
  spoolDir: string;
  identity: NodeIdentity;
  node: AssembledNode;
  app: HttpApp;
  token: string;
  /** Frames this node's provider sent. */
  sent: Uint8Array[];
}

export interface PrivacyMesh {
  nodes: PrivacyNodeHandle[];
  /** The shared Redis, over the redis transport. */
  redisUrl?: string;
  byName(name: string): PrivacyNodeHandle;
  /** Stops a node (its peers then see it as unreachable). */
  stop(name: string): Promise<void>;
  cleanup(): Promise<void>;
}

export interface PrivacyMeshOptions {
  /** Policy per node (default: the default policy with share_summaries on). */
  policy?: (name: string) => PolicyInit;
  /** Trust each node gives each other node in `mesh.peers` (default peer). */
  trust?: (self: string, other: string) => TrustLevel;
  /** Queries one peer may send a node per minute (default the shipped 120). */
  queriesPerPeerPerMinute?: number;
  /** Milliseconds a minute a node spends answering peers' queries (default the shipped 15,000). */
  answerMsPerMinute?: number;
  /** A node's own clock (default the system clock): a computer whose clock is off. */
  clock?: (name: string) => Clock | undefined;
}

/** Writes spool records for `commands` as shell `shell` (pid) would, with ts in ms. */
export function writeSpool(
  spoolDir: string,
  file: string,
  records: Array<{ command: string; cwd?: string; exit?: number; durationMs?: number; ts?: number; shell?: string }>,
): void {
  mkdirSync(spoolDir, { recursive: true, mode: 0o700 });
  let out = '';
  for (const r of records) {
    const ts = ((r.ts ?? Date.now()) / 1000).toFixed(3);
    out += `1\x1f${ts}\x1f${r.shell ?? 'bash'}\x1f${r.exit ?? 0}\x1f${r.durationMs ?? 5}\x1f${r.cwd ?? '/home/me'}\x1f${r.command}\x1e\n`;
  }
  appendFileSync(join(spoolDir, file), out, { mode: 0o600 });
}

/** Starts the nodes; see the module comment. */
export async function privacyMesh(transport: Transport, names: readonly string[], opts: PrivacyMeshOptions = {}): Promise<PrivacyMesh> {
  const t = tempDir(`weft-privacy-${transport}-`);
  const ids: Record<string, NodeIdentity> = {};
  const ports: Record<string, number> = {};
  for (const n of names) {
    mkdirSync(join(t.dir, n), { recursive: true });
    ids[n] = loadOrCreateIdentity(join(t.dir, n, 'identity.key')).identity;
    ports[n] = await freePort();
  }
  const redis = transport === 'redis' ? await TestRedis.start() : undefined;
  const net = transport === 'memory' ? new MemoryNetwork() : undefined;
  const handles: PrivacyNodeHandle[] = [];
  for (const n of names) {
    const sent: Uint8Array[] = [];
    const others = names.filter((o) => o !== n);
    const base: ProviderFactory =
      transport === 'memory'
        ? memoryProvider({ network: net as MemoryNetwork, computer: n })
        : transport === 'redis'
          ? redisProvider({ url: (redis as TestRedis).url, computer: n })
          : tlsProvider({
              computer: n,
              host: '127.0.0.1',
              port: ports[n] as number,
              peers: others.map((o) => ({ computer: o, nodeId: (ids[o] as NodeIdentity).nodeId, host: '127.0.0.1', port: ports[o] as number })),
            });
    const tapped: ProviderFactory = (deps) => {
      const p = base(deps);
      const send = p.send.bind(p);
      p.send = (peer, bytes) => {
        sent.push(bytes);
        return send(peer, bytes);
      };
      return p;
    };
    const spoolDir = join(t.dir, n, 'spool');
    const peers: KnownPeer[] = others.map((o) => ({
      computer: o,
      cluster: 'team',
      nodeId: (ids[o] as NodeIdentity).nodeId,
      trustLevel: opts.trust?.(n, o) ?? 'peer',
      trustSet: true,
      origin: 'static',
      ...(transport === 'tls' ? { address: `127.0.0.1:${ports[o]}` } : {}),
    }));
    const node = await assembleNode({
      dataDir: join(t.dir, n),
      computer: n,
      cluster: 'team',
      system: { trust: { overrides: { 'weft-observe': { rate: false } } } },
      mesh: { provider: tapped, peers },
      privacy: {
        policy: new PrivacyPolicy(opts.policy?.(n) ?? { shareSummaries: true }),
        observe: { spoolDirs: [spoolDir], scanEveryMs: 200 },
        summarizeEveryMs: 0,
        queryTimeoutMs: 3000,
        ...(opts.queriesPerPeerPerMinute ? { queriesPerPeerPerMinute: opts.queriesPerPeerPerMinute } : {}),
        ...(opts.answerMsPerMinute !== undefined ? { answerMsPerMinute: opts.answerMsPerMinute } : {}),
      },
    }, { ...(opts.clock?.(n) ? { clock: opts.clock(n) as Clock } : {}) });
    await node.start();
    const token = `token-${n}`;
    const { app } = await buildApi(
      { token },
      {
        node: node.node,
        logger: node.node.logger,
        extraRoutes: [
          nodeRoutes({ node: node.node, identity: () => node.identity, audit: node.audit, peers: node.peers, mesh: node.mesh }),
          privacyRoutes({ privacy: node.privacy, now: () => Date.now() }),
        ],
      },
    );
    handles.push({ name: n, dataDir: join(t.dir, n), spoolDir, identity: ids[n] as NodeIdentity, node, app, token, sent });
  }
  const stopped = new Set<string>();
  const mesh: PrivacyMesh = {
    nodes: handles,
    ...(redis ? { redisUrl: redis.url } : {}),
    byName(name) {
      const h = handles.find((x) => x.name === name);
      if (!h) throw new Error(`no node ${name}`);
      return h;
    },
    async stop(name) {
      const h = mesh.byName(name);
      stopped.add(name);
      await h.app.close();
      await h.node.stop();
    },
    async cleanup() {
      for (const h of handles) {
        if (stopped.has(h.name)) continue;
        await h.app.close();
        await h.node.stop();
      }
      await redis?.stop();
      t.cleanup();
    },
  };
  return mesh;
}

/** Waits until `check` is true, or fails naming `what` after `ms`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
