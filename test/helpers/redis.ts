/**
 * A private redis-server per test file, on a free loopback port, that a test can kill and
 * restart. It keeps nothing on disk, like the machines' own Redis: a restart comes back empty.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
} from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/**
 * A loopback port nothing holds, for a server a test starts later (a daemon, a redis-server).
 * The kernel's own choice (`listen(0)`) comes from the ephemeral range, where every outgoing
 * connection of every test process takes its local port too, so the port could be taken
 * before the server binds it ("mesh.tls_port … is already in use"). Ports here come from
 * below that range, and each is claimed by a file in the temp dir that other test processes
 * respect (claims older than an hour are stale and reused).
 */
export async function freePort(): Promise<number> {
  const [low, high] = portRange();
  const span = high - low;
  const start = Math.floor(Math.random() * span);
  for (let i = 0; i < span; i++) {
    const port = low + ((start + i) % span);
    if (!claimPort(port)) continue;
    if (await bindable(port)) return port;
  }
  throw new Error(`freePort: no free port in ${low}–${high}`);
}

const CLAIMS = join(tmpdir(), 'weft-test-ports');
const CLAIM_STALE_MS = 60 * 60_000;

/** Ports below the kernel's ephemeral range (ip_local_port_range), or 20000–32000. */
function portRange(): [number, number] {
  let ephemeralLow = 32768;
  try {
    const [lowText] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    const n = Number(lowText);
    if (Number.isInteger(n) && n > 12000) ephemeralLow = n;
  } catch {
    // not Linux: the usual split
  }
  return [Math.max(10000, ephemeralLow - 12000), ephemeralLow];
}

function claimPort(port: number): boolean {
  mkdirSync(CLAIMS, { recursive: true });
  const file = join(CLAIMS, String(port));
  try {
    closeSync(openSync(file, 'wx'));
    return true;
  } catch {
    try {
      if (Date.now() - statSync(file).mtimeMs < CLAIM_STALE_MS) return false;
      utimesSync(file, new Date(), new Date());
      return true;
    } catch {
      return false;
    }
  }
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** Waits until a Redis answers PING on the port (not just anything listening there). */
async function waitForRedis(port: number, timeoutMs: number, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!alive()) throw new Error(`redis-server on ${port} exited (port taken by another process?)`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      let buf = '';
      s.setTimeout(1000, () => {
        s.destroy();
        resolve(false);
      });
      s.once('connect', () => s.write('PING\r\n'));
      s.on('data', (d) => {
        buf += d.toString();
        if (buf.includes('\r\n')) {
          s.end();
          resolve(buf.startsWith('+PONG'));
        }
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server did not listen on ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Whether a program can be run: an absolute path that exists, or a name found on PATH. */
function onPath(bin: string): boolean {
  if (bin.includes('/')) return existsSync(bin);
  return (process.env.PATH ?? '').split(delimiter).some((d) => d !== '' && existsSync(join(d, bin)));
}

export class TestRedis {
  readonly port: number;
  private readonly dir: string;
  private proc: ChildProcess | undefined;

  private constructor(port: number) {
    this.port = port;
    this.dir = mkdtempSync(join(tmpdir(), 'weft-redis-'));
  }

  /** Starts a redis-server on a free port. */
  static async start(): Promise<TestRedis> {
    const r = new TestRedis(await freePort());
    await r.restart();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Starts (again) on the same port, empty. */
  async restart(): Promise<void> {
    if (this.running) await this.kill();
    const bin = process.env.REDIS_SERVER ?? 'redis-server';
    if (!onPath(bin)) {
      throw new Error(
        `${bin} is not installed (the tests start their own Redis): install it with 'sudo apt-get install redis-server' (Debian/Ubuntu) or 'brew install redis' (macOS), or set REDIS_SERVER to its path`,
      );
    }
    this.proc = spawn(
      bin,
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir],
      { stdio: 'ignore' },
    );
    this.proc.once('error', () => undefined);
    await waitForRedis(this.port, 10_000, () => this.running);
  }

  /** kill -9: Redis disappears at once and loses everything. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p || !this.running) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
