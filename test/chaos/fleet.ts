/**
 * A fleet of real daemons (child processes) on loopback, in up to two sub-meshes: one over
 * Redis (a private redis-server) and one over TLS where every directed link goes through a
 * LinkProxy, so one link can be cut while both ends keep running. A node has exactly one mesh
 * provider, so a mixed fleet is two meshes side by side: events never cross between them.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { WeftClient } from '../../src/client/index.js';
import { readToken } from '../../src/config/index.js';
import { loadOrCreateIdentity } from '../../src/identity/index.js';
import { SKEWED_DAEMON, startDaemonProcess } from '../helpers/cli.js';
import { freePort, TestRedis } from '../helpers/redis.js';
import { LinkProxy } from './proxy.js';

export type SubMesh = 'redis' | 'tls';

export interface FleetNodeSpec {
  computer: string;
  cluster: string;
  mesh: SubMesh;
  /** Clock offset in ms (runs test/fixtures/skewed-daemon.ts); 0 for an honest node. */
  clockOffsetMs?: number;
  /** More entries for this node's mesh.peers (e.g. a test-process peer it must pin). */
  extraPeers?: string[];
}

export interface FleetNode extends FleetNodeSpec {
  dataDir: string;
  nodeId: string;
  tlsPort: number;
  env: NodeJS.ProcessEnv;
  api: WeftClient;
  pid: number | undefined;
  running: boolean;
  restarts: number;
  /** Exits nobody asked for (the daemon died by itself), with the tail of its output. */
  crashes: Array<{ code: number | null; signal: string | null; at: number; tail: string }>;
  start(): Promise<void>;
  stop(): Promise<number | null>;
  kill(): Promise<void>;
  output(): string;
}

export interface Fleet {
  nodes: FleetNode[];
  redis: TestRedis | undefined;
  /** Directed TLS links: `${from}->${to}` (empty with `directTls`). */
  proxies: Map<string, LinkProxy>;
  byName(computer: string): FleetNode;
  stop(): Promise<void>;
}

export async function startFleet(
  root: string,
  specs: FleetNodeSpec[],
  opts: {
    extraEnv?: NodeJS.ProcessEnv;
    /**
     * Also declare every Redis peer in mesh.peers with trust level `peer` (discovery alone
     * gives peers outside the own cluster `share_to`, which the trust evaluator penalises).
     */
    trustedRedisPeers?: boolean;
    /**
     * TLS peers dial each other's ports, without a LinkProxy between them. The proxies live in
     * the process that started the fleet, so every frame would wait for that process's event
     * loop: benchmarks that time the mesh, not the cutting of links, want the direct path.
     */
    directTls?: boolean;
  } = {},
): Promise<Fleet> {
  const redis = specs.some((s) => s.mesh === 'redis') ? await TestRedis.start() : undefined;
  const prepared = [];
  for (const s of specs) {
    const dataDir = join(root, s.computer);
    mkdirSync(dataDir, { recursive: true });
    const { identity } = loadOrCreateIdentity(join(dataDir, 'identity.key'));
    prepared.push({ ...s, dataDir, nodeId: identity.nodeId, tlsPort: await freePort() });
  }
  const proxies = new Map<string, LinkProxy>();
  for (const a of prepared) {
    if (a.mesh !== 'tls' || opts.directTls) continue;
    for (const b of prepared) {
      if (b.mesh !== 'tls' || b === a) continue;
      const p = new LinkProxy(b.tlsPort);
      await p.start();
      proxies.set(`${a.computer}->${b.computer}`, p);
    }
  }
  const nodes: FleetNode[] = [];
  for (const p of prepared) {
    const env: NodeJS.ProcessEnv = {
      HOME: p.dataDir,
      WEFT_DATA_DIR: p.dataDir,
      WEFT_API_PORT: '0', // the OS picks; each start reads the address the daemon prints
      WEFT_COMPUTER_NAME: p.computer,
      WEFT_COMPUTER_CLUSTER: p.cluster,
      WEFT_MESH_PROVIDER: p.mesh,
      WEFT_LOG_LEVEL: 'warn',
      ...opts.extraEnv,
      ...(p.clockOffsetMs ? { WEFT_TEST_CLOCK_OFFSET_MS: String(p.clockOffsetMs) } : {}),
    };
    if (p.mesh === 'redis') {
      env.WEFT_REDIS_URL = redis?.url;
      if (opts.trustedRedisPeers)
        env.WEFT_MESH_PEERS = prepared
          .filter((o) => o.mesh === 'redis' && o !== p)
          .map((o) => `${o.computer}/${o.cluster}#${o.nodeId}!peer`)
          .join(',');
    } else {
      env.WEFT_MESH_TLS_PORT = String(p.tlsPort);
      env.WEFT_MESH_PEERS = prepared
        .filter((o) => o.mesh === 'tls' && o !== p)
        .map((o) => `${o.computer}/${o.cluster}@127.0.0.1:${opts.directTls ? o.tlsPort : proxies.get(`${p.computer}->${o.computer}`)?.port}#${o.nodeId}`)
        .concat(p.extraPeers ?? [])
        .join(',');
    }
    let proc: Awaited<ReturnType<typeof startDaemonProcess>> | undefined;
    const node: FleetNode = {
      ...p,
      env,
      api: undefined as unknown as WeftClient,
      pid: undefined,
      running: false,
      restarts: -1,
      crashes: [],
      async start() {
        proc = await startDaemonProcess(env, p.clockOffsetMs ? [SKEWED_DAEMON] : undefined);
        const mine = proc;
        mine.proc.once('exit', (code, signal) => {
          if (!node.running || proc !== mine) return;
          node.running = false;
          node.crashes.push({ code, signal, at: Date.now(), tail: mine.output().slice(-4000) });
        });
        node.pid = proc.proc.pid;
        node.api = new WeftClient({ url: proc.url, token: readToken(p.dataDir) as string });
        node.running = true;
        node.restarts++;
      },
      async stop() {
        if (!proc || !node.running) return null;
        node.running = false;
        proc.proc.kill('SIGTERM');
        return proc.exited;
      },
      async kill() {
        if (!proc || !node.running) return;
        node.running = false;
        proc.proc.kill('SIGKILL');
        await proc.exited;
      },
      output: () => proc?.output() ?? '',
    };
    nodes.push(node);
  }
  await Promise.all(nodes.map((n) => n.start()));
  return {
    nodes,
    redis,
    proxies,
    byName(computer) {
      const n = nodes.find((x) => x.computer === computer);
      if (!n) throw new Error(`no node ${computer}`);
      return n;
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.stop().catch(() => null)));
      for (const p of proxies.values()) await p.stop();
      await redis?.stop();
    },
  };
}

/** Polls an async condition until it holds or the deadline passes (a liveness bound). */
export async function waitFor(fn: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if (await fn()) return true;
    } catch {
      // a node restarting: try again
    }
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 250));
  }
}
