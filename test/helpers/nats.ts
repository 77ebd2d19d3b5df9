/**
 * A private `nats-server -js` per test file, on a free loopback port with its own store dir,
 * that a test can kill -9 and start again on the same port and store (JetStream keeps its
 * streams, consumers and KV across that, as a real restart does). Never the machine's own
 * server on :4222.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from './redis.js';

const BIN = process.env.NATS_SERVER ?? 'nats-server';

/** Whether a program can be run: an absolute path that exists, or a name found on PATH. */
function onPath(bin: string): boolean {
  if (bin.includes('/')) return existsSync(bin);
  return (process.env.PATH ?? '').split(delimiter).some((d) => d !== '' && existsSync(join(d, bin)));
}

/**
 * Why NATS tests cannot run here, or undefined when they can. Pass it as `{ skip }` to test():
 * the runner then says what to install instead of failing on a missing binary.
 */
export const natsSkipReason: string | undefined = onPath(BIN)
  ? undefined
  : `${BIN} is not installed (the NATS tests start their own server): install it with 'apt-get install nats-server' (Debian/Ubuntu) or 'brew install nats-server' (macOS), or set NATS_SERVER to its path`;

/** Waits until a NATS server greets on the port with its INFO line (not just anything listening). */
async function waitForNats(port: number, timeoutMs: number, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!alive()) throw new Error(`nats-server on ${port} exited (port taken by another process?)`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      let buf = '';
      s.setTimeout(1000, () => {
        s.destroy();
        resolve(false);
      });
      s.on('data', (d) => {
        buf += d.toString();
        if (buf.includes('\r\n')) {
          s.destroy();
          resolve(buf.startsWith('INFO '));
        }
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nats-server did not listen on ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export class TestNats {
  readonly port: number;
  /** The JetStream store: kept across kill()/start(), removed by stop(). */
  readonly storeDir: string;
  private proc: ChildProcess | undefined;
  private log = '';

  private constructor(
    port: number,
    private readonly args: readonly string[] = [],
  ) {
    this.port = port;
    this.storeDir = mkdtempSync(join(tmpdir(), 'weft-nats-'));
  }

  /**
   * Starts a nats-server with JetStream on a free loopback port. Throws when the binary is
   * missing. `args` are passed on (e.g. `['--user', 'u', '--pass', 'p']` for a server that asks
   * for credentials).
   */
  static async start(opts: { args?: readonly string[] } = {}): Promise<TestNats> {
    if (natsSkipReason) throw new Error(natsSkipReason);
    const n = new TestNats(await freePort(), opts.args);
    await n.start();
    return n;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** The server's last output, for a failing test's message. */
  output(): string {
    return this.log.slice(-4000);
  }

  /** Starts the server (again) on the same port and store dir. */
  async start(): Promise<void> {
    if (this.running) return;
    this.proc = spawn(BIN, ['-js', '-a', '127.0.0.1', '-p', String(this.port), '-sd', this.storeDir, '-n', `weft-test-${this.port}`, ...this.args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.proc.stderr?.on('data', (d: Buffer) => {
      this.log = (this.log + d.toString()).slice(-16_000);
    });
    this.proc.once('error', () => undefined);
    await waitForNats(this.port, 15_000, () => this.running);
  }

  /** kill -9: the server disappears at once; what it stored stays in the store dir. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p || !this.running) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  }

  /** kill -9, then start on the same port and store. */
  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  /** kill -9, then start on the same port with an empty store (a server that lost its disk). */
  async wipe(): Promise<void> {
    await this.kill();
    rmSync(this.storeDir, { recursive: true, force: true });
    mkdirSync(this.storeDir, { recursive: true });
    await this.start();
  }

  /** Kills the server and removes its store. */
  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}
