/**
 * A private Redis Cluster per test file: 3 masters and 3 replicas (six `redis-server
 * --cluster-enabled yes` processes on free loopback ports), joined by `redis-cli --cluster
 * create`. A test can kill -9 a master and wait until its replica took over its slots.
 *
 * The node timeout is short (1 s) so a fail-over takes a couple of seconds, not the default 15.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './redis.js';

const run = promisify(execFile);

/** Whether a program can be run: an absolute path that exists, or a name found on PATH. */
function onPath(bin: string): boolean {
  if (bin.includes('/')) return existsSync(bin);
  return (process.env.PATH ?? '').split(delimiter).some((d) => d !== '' && existsSync(join(d, bin)));
}

const SERVER = process.env.REDIS_SERVER ?? 'redis-server';
const CLI = process.env.REDIS_CLI ?? 'redis-cli';

/**
 * Why the cluster tests cannot run here (undefined: they can). For `test(name, { skip })`.
 */
export function clusterSkipReason(): string | undefined {
  const missing = [SERVER, CLI].filter((b) => !onPath(b));
  if (missing.length === 0) return undefined;
  return `${missing.join(' and ')} not installed (the Redis Cluster tests start their own six servers): install them with 'sudo apt-get install redis-server redis-tools' (Debian/Ubuntu) or 'brew install redis' (macOS), or set REDIS_SERVER / REDIS_CLI`;
}

/** One server's view of the cluster, from `CLUSTER NODES`. */
export interface ClusterNodeInfo {
  id: string;
  port: number;
  role: 'master' | 'replica';
  /** The master's id, for a replica. */
  masterId?: string;
  /** Slot ranges it serves (masters). */
  slots: Array<[number, number]>;
  failed: boolean;
}

export class TestRedisCluster {
  readonly ports: number[];
  private readonly dir: string;
  private readonly procs = new Map<number, ChildProcess>();

  private constructor(ports: number[]) {
    this.ports = ports;
    this.dir = mkdtempSync(join(tmpdir(), 'weft-redis-cluster-'));
  }

  /** The password every server asks for (`requirepass`, also used between them), if any. */
  private password: string | undefined;

  /**
   * Starts six servers and makes a 3-master, 1-replica-each cluster of them; waits for state
   * ok. `replicas: 0` makes three masters only; `password` makes every server ask for it.
   */
  static async start(opts: { nodeTimeoutMs?: number; replicas?: 0 | 1; password?: string } = {}): Promise<TestRedisCluster> {
    const why = clusterSkipReason();
    if (why) throw new Error(why);
    const replicas = opts.replicas ?? 1;
    const ports: number[] = [];
    while (ports.length < 3 * (1 + replicas)) {
      const p = await freePort();
      // The cluster bus listens on port + 10000: both must be free and below 65536.
      if (p + 10_000 < 65_536 && !ports.includes(p) && (await portFree(p + 10_000))) ports.push(p);
    }
    const c = new TestRedisCluster(ports);
    c.password = opts.password;
    try {
      for (const p of ports) c.spawnServer(p, opts.nodeTimeoutMs ?? 1000);
      await Promise.all(ports.map((p) => c.waitPing(p, 10_000)));
      await run(
        CLI,
        [
          '--cluster',
          'create',
          ...ports.map((p) => `127.0.0.1:${p}`),
          '--cluster-replicas',
          String(replicas),
          '--cluster-yes',
          ...(c.password !== undefined ? ['-a', c.password, '--no-auth-warning'] : []),
        ],
        { timeout: 30_000 },
      );
      await c.waitOk(30_000);
      // Every replica has finished its first sync, so a kill right away still has a replica to promote.
      if (replicas > 0) await c.waitReplicasInSync(30_000);
    } catch (err) {
      await c.stop();
      throw err;
    }
    return c;
  }

  /** The seed list as WEFT_REDIS_URL takes it. */
  get url(): string {
    return this.ports.map((p) => `redis://127.0.0.1:${p}`).join(',');
  }

  private nodeTimeoutMs = 1000;

  /**
   * Starts a killed server again with its own cluster config: it rejoins as a replica of the
   * master that took its slots. Waits until the cluster is ok.
   */
  async restart(port: number, ms = 30_000): Promise<void> {
    if (this.alivePorts.includes(port)) return;
    this.spawnServer(port, this.nodeTimeoutMs);
    await this.waitPing(port, 10_000);
    await this.waitOk(ms);
  }

  private spawnServer(port: number, nodeTimeoutMs: number): void {
    this.nodeTimeoutMs = nodeTimeoutMs;
    const dir = join(this.dir, String(port));
    mkdirSync(dir, { recursive: true });
    const args = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      `nodes-${port}.conf`,
      '--cluster-node-timeout',
      String(nodeTimeoutMs),
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--save',
      '',
      // A replica whose master is gone is promoted however long it was cut off.
      '--cluster-replica-validity-factor',
      '0',
      ...(this.password !== undefined ? ['--requirepass', this.password, '--masterauth', this.password] : []),
    ];
    const proc = spawn(SERVER, args, { stdio: 'ignore' });
    proc.once('error', () => undefined);
    this.procs.set(port, proc);
  }

  /** redis-cli against one server; its stdout. */
  async cli(port: number, ...args: string[]): Promise<string> {
    const auth = this.password !== undefined ? ['-a', this.password, '--no-auth-warning'] : [];
    const { stdout } = await run(CLI, ['-h', '127.0.0.1', '-p', String(port), ...auth, ...args], { timeout: 5000 });
    return stdout;
  }

  private async waitPing(port: number, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      const p = this.procs.get(port);
      if (!p || p.exitCode !== null || p.signalCode !== null)
        throw new Error(`redis-server on ${port} exited (port taken?)`);
      try {
        if ((await this.cli(port, 'PING')).trim() === 'PONG') return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not answer within ${ms} ms`);
      await sleep(50);
    }
  }

  /** The live servers. */
  get alivePorts(): number[] {
    return this.ports.filter((p) => {
      const proc = this.procs.get(p);
      return proc !== undefined && proc.exitCode === null && proc.signalCode === null;
    });
  }

  /** Waits until every live server says `cluster_state:ok` and they agree on who serves every slot. */
  async waitOk(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      let ok = true;
      for (const p of this.alivePorts) {
        try {
          const info = await this.cli(p, 'CLUSTER', 'INFO');
          if (!/cluster_state:ok/.test(info) || !/cluster_slots_ok:16384/.test(info)) ok = false;
        } catch {
          ok = false;
        }
        if (!ok) break;
      }
      if (ok) {
        const views = await Promise.all(
          this.alivePorts.map(async (p) => JSON.stringify(masterSlots(await this.nodes(p)))),
        );
        if (new Set(views).size === 1) return;
      }
      if (Date.now() > deadline) throw new Error(`redis cluster not ok within ${ms} ms`);
      await sleep(100);
    }
  }

  private async waitReplicasInSync(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      const nodes = await this.nodes(this.alivePorts[0] as number);
      const replicas = nodes.filter((n) => n.role === 'replica' && !n.failed);
      let synced = 0;
      for (const r of replicas) {
        const info = await this.cli(r.port, 'INFO', 'replication').catch(() => '');
        if (/master_link_status:up/.test(info) && /master_sync_in_progress:0/.test(info)) synced++;
      }
      if (replicas.length === 3 && synced === 3) return;
      if (Date.now() > deadline) throw new Error(`replicas not in sync within ${ms} ms`);
      await sleep(100);
    }
  }

  /** `CLUSTER NODES` as seen by one server. */
  async nodes(port = this.alivePorts[0] as number): Promise<ClusterNodeInfo[]> {
    const text = await this.cli(port, 'CLUSTER', 'NODES');
    return text
      .trim()
      .split('\n')
      .map((line) => {
        const f = line.trim().split(' ');
        const flags = (f[2] ?? '').split(',');
        const slots: Array<[number, number]> = [];
        for (const s of f.slice(8)) {
          if (s.startsWith('[')) continue; // a slot being migrated
          const [a, b] = s.split('-').map(Number) as [number, number?];
          slots.push([a, b ?? a]);
        }
        return {
          id: f[0] as string,
          port: Number((f[1] ?? '').split('@')[0]?.split(':').pop()),
          role: flags.includes('master') ? ('master' as const) : ('replica' as const),
          ...(f[3] && f[3] !== '-' ? { masterId: f[3] } : {}),
          slots,
          failed: flags.includes('fail') || flags.includes('fail?'),
        };
      });
  }

  /** The port of the master serving a key (by `CLUSTER KEYSLOT` and `CLUSTER NODES`). */
  async masterOf(key: string): Promise<number> {
    const port = this.alivePorts[0] as number;
    const slot = Number((await this.cli(port, 'CLUSTER', 'KEYSLOT', key)).trim());
    const m = (await this.nodes(port)).find(
      (n) => n.role === 'master' && !n.failed && n.slots.some(([a, b]) => slot >= a && slot <= b),
    );
    if (!m) throw new Error(`no master serves slot ${slot}`);
    return m.port;
  }

  /** `CLUSTER KEYSLOT key`. */
  async keyslot(key: string): Promise<number> {
    return Number((await this.cli(this.alivePorts[0] as number, 'CLUSTER', 'KEYSLOT', key)).trim());
  }

  /** kill -9 of one server. */
  async kill(port: number): Promise<void> {
    const p = this.procs.get(port);
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  }

  /**
   * kill -9 of a master, then waits until one of its replicas serves its slots and the
   * cluster is ok again. Returns the promoted replica's port. With `loseWritesMs`, the writes
   * the master acknowledged in its last `loseWritesMs` are lost (asynchronous replication at
   * its worst), so a test sees what a client does about acknowledged writes that vanish.
   */
  async killMasterAndWaitFailover(
    port: number,
    opts: { loseWritesMs?: number; ms?: number } = {},
  ): Promise<number> {
    const ms = opts.ms ?? 30_000;
    const before = await this.nodes(this.alivePorts.find((p) => p !== port) as number);
    const master = before.find((n) => n.port === port);
    if (master?.role !== 'master') throw new Error(`127.0.0.1:${port} is not a master`);
    const replicas = before.filter((n) => n.masterId === master.id).map((n) => n.port);
    if (opts.loseWritesMs) {
      // The replicas stop (SIGSTOP) and the master drops its replication links (what was
      // already in a replica's socket still arrives; the rest does not), goes on
      // acknowledging writes, then dies: what it acknowledged meanwhile never reaches the
      // replica that takes over.
      for (const r of replicas) this.signal(r, 'SIGSTOP');
      await this.cli(port, 'CLIENT', 'KILL', 'TYPE', 'replica');
      await sleep(opts.loseWritesMs);
      await this.kill(port);
      for (const r of replicas) this.signal(r, 'SIGCONT');
    } else {
      await this.kill(port);
    }
    const deadline = Date.now() + ms;
    for (;;) {
      const live = this.alivePorts;
      const now = await this.nodes(live[0] as number).catch(() => []);
      const promoted = now.find(
        (n) => replicas.includes(n.port) && n.role === 'master' && n.slots.length > 0,
      );
      if (promoted) {
        await this.waitOk(Math.max(1000, deadline - Date.now()));
        return promoted.port;
      }
      if (Date.now() > deadline)
        throw new Error(`no replica of 127.0.0.1:${port} was promoted within ${ms} ms`);
      await sleep(100);
    }
  }

  private signal(port: number, sig: NodeJS.Signals): void {
    const p = this.procs.get(port);
    if (p && p.exitCode === null && p.signalCode === null) p.kill(sig);
  }

  async stop(): Promise<void> {
    for (const p of this.ports) this.signal(p, 'SIGCONT');
    await Promise.all([...this.procs.keys()].map((p) => this.kill(p)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function masterSlots(nodes: ClusterNodeInfo[]): Array<[number, Array<[number, number]>]> {
  return nodes
    .filter((n) => n.role === 'master' && !n.failed && n.slots.length > 0)
    .map((n) => [n.port, n.slots] as [number, Array<[number, number]>])
    .sort((a, b) => a[0] - b[0]);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function portFree(port: number): Promise<boolean> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}
