/**
 * Several real daemons as child processes on loopback, linked over Redis, NATS or TLS.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { WeftClient } from '../../src/client/index.js';
import { readToken } from '../../src/config/index.js';
import { loadOrCreateIdentity } from '../../src/identity/index.js';
import { startDaemonProcess } from './cli.js';
import { freePort } from './redis.js';

export interface NodeSpec {
  computer: string;
  cluster?: string;
  /** Environment of this node only (after `extraEnv`), e.g. its autonomy level. */
  env?: NodeJS.ProcessEnv;
}

export interface ClusterNode {
  computer: string;
  cluster?: string;
  dataDir: string;
  nodeId: string;
  env: NodeJS.ProcessEnv;
  api: WeftClient;
  running: boolean;
  /** Starts (or restarts) the daemon. */
  start(): Promise<void>;
  /** SIGTERM and wait for exit 0. */
  stop(): Promise<number | null>;
  /** SIGKILL. */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT: the process freezes (a long GC pause, a suspended laptop) and thaws. */
  pause(): void;
  resume(): void;
  output(): string;
}

export async function startCluster(
  root: string,
  specs: NodeSpec[],
  opts: {
    provider: 'redis' | 'tls' | 'nats';
    redisUrl?: string;
    /** With provider 'nats': the server (WEFT_NATS_URL). */
    natsUrl?: string;
    extraEnv?: NodeJS.ProcessEnv;
    /** Start every node now (default); false leaves each to its own `start()`. */
    start?: boolean;
  },
): Promise<{ nodes: Record<string, ClusterNode>; stopAll(): Promise<void> }> {
  const prepared = await Promise.all(
    specs.map(async (s) => {
      const dataDir = join(root, s.computer);
      mkdirSync(dataDir, { recursive: true });
      const { identity } = loadOrCreateIdentity(join(dataDir, 'identity.key'));
      return { ...s, dataDir, nodeId: identity.nodeId, tlsPort: await freePort() };
    }),
  );
  const nodes: Record<string, ClusterNode> = {};
  for (const p of prepared) {
    const env: NodeJS.ProcessEnv = {
      HOME: p.dataDir,
      WEFT_DATA_DIR: p.dataDir,
      WEFT_API_PORT: '0', // the OS picks; each start reads the address the daemon prints
      WEFT_COMPUTER_NAME: p.computer,
      WEFT_MESH_PROVIDER: opts.provider,
      WEFT_LOG_LEVEL: 'warn',
      ...(p.cluster ? { WEFT_COMPUTER_CLUSTER: p.cluster } : {}),
      ...opts.extraEnv,
      ...p.env,
    };
    if (opts.provider === 'redis') {
      env.WEFT_REDIS_URL = opts.redisUrl;
    } else if (opts.provider === 'nats') {
      env.WEFT_NATS_URL = opts.natsUrl;
    } else {
      env.WEFT_MESH_TLS_PORT = String(p.tlsPort);
      env.WEFT_MESH_PEERS = prepared
        .filter((o) => o.computer !== p.computer)
        .map((o) => `${o.computer}${o.cluster ? `/${o.cluster}` : ''}@127.0.0.1:${o.tlsPort}#${o.nodeId}`)
        .join(',');
    }
    let proc: Awaited<ReturnType<typeof startDaemonProcess>> | undefined;
    const node: ClusterNode = {
      computer: p.computer,
      ...(p.cluster ? { cluster: p.cluster } : {}),
      dataDir: p.dataDir,
      nodeId: p.nodeId,
      env,
      api: undefined as unknown as WeftClient,
      running: false,
      async start() {
        proc = await startDaemonProcess(env);
        node.api = new WeftClient({ url: proc.url, token: readToken(p.dataDir) as string });
        node.running = true;
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
      pause() {
        if (proc && node.running) proc.proc.kill('SIGSTOP');
      },
      resume() {
        if (proc && node.running) proc.proc.kill('SIGCONT');
      },
      output: () => proc?.output() ?? '',
    };
    nodes[p.computer] = node;
  }
  if (opts.start !== false) await Promise.all(Object.values(nodes).map((n) => n.start()));
  return {
    nodes,
    async stopAll() {
      await Promise.all(Object.values(nodes).map((n) => n.stop()));
    },
  };
}

/** Polls an async condition (a liveness bound, not a timing assertion). */
export async function eventually(fn: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
