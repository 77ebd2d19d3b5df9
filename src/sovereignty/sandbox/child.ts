import { type ChildProcess, fork } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../util/index.js';
import type { ChildMessage, HostMessage } from './protocol.js';

/** Why the child went away. */
export type ExitReason = 'timeout' | 'memory' | 'crash' | 'stop' | 'idle' | 'start-failed';

/** What a request to the child ends with: its reply, or the reason it died first. */
export type RequestOutcome =
  | { type: 'reply'; msg: ChildMessage }
  | { type: 'dead'; reason: ExitReason; detail: string };

export interface ChildOptions {
  rssCapBytes: number;
  rssPollMs: number;
  startTimeoutMs: number;
}

/**
 * Where the worker script is, and the Node flags it needs. From compiled output the worker is
 * `worker.js` next to this file; under tsx (tests, development) it is `worker.ts` and the child
 * needs the tsx loader too. isolated-vm requires `--no-node-snapshot` on Node 20+.
 */
export function workerCommand(): { script: string; execArgv: string[] } {
  const here = fileURLToPath(import.meta.url);
  const isTs = here.endsWith('.ts');
  const script = join(dirname(here), isTs ? 'worker.ts' : 'worker.js');
  const execArgv = ['--no-node-snapshot'];
  if (isTs) execArgv.push('--import', import.meta.resolve('tsx'));
  return { script, execArgv };
}

/**
 * One sandbox child process: started with {@link ChildHandle.spawn}, serving one request at a
 * time, killed by its owner on deadline or when its resident memory passes the cap.
 */
export class ChildHandle {
  readonly pid: number;
  private readonly proc: ChildProcess;
  private pending: {
    seq: number;
    resolve: (o: RequestOutcome) => void;
    timer: NodeJS.Timeout | undefined;
  } | null = null;
  private killReason: ExitReason | null = null;
  private poll: NodeJS.Timeout | undefined;
  private stderrTail = '';
  /** Last resident set size seen, in bytes. */
  rss = 0;
  /** Set once the process has exited. */
  exited = false;
  /** Resolves when the process has exited. */
  readonly exit: Promise<{ reason: ExitReason; detail: string }>;

  private constructor(
    private readonly opts: ChildOptions,
    private readonly logger: Logger,
    private readonly onExit: (reason: ExitReason, detail: string) => void,
  ) {
    const { script, execArgv } = workerCommand();
    this.proc = fork(script, [], {
      execArgv,
      // Nothing of the host's environment (tokens, paths) reaches the child.
      env: {},
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    this.pid = this.proc.pid ?? -1;
    this.proc.stderr?.setEncoding('utf8');
    this.proc.stderr?.on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-4000);
    });
    this.proc.on('message', (msg: ChildMessage) => this.onMessage(msg));
    this.proc.on('error', (err) =>
      this.logger.warn({ err: err.message, pid: this.pid }, 'sandbox process error'),
    );
    this.exit = new Promise((resolve) => {
      this.proc.once('exit', (code, signal) => {
        this.exited = true;
        if (this.poll) clearInterval(this.poll);
        const reason = this.killReason ?? 'crash';
        const detail = this.describeExit(reason, code, signal);
        const p = this.pending;
        this.pending = null;
        if (p) {
          if (p.timer) clearTimeout(p.timer);
          p.resolve({ type: 'dead', reason, detail });
        }
        this.onExit(reason, detail);
        resolve({ reason, detail });
      });
    });
  }

  /** Starts a child and waits for it to report ready. Rejects (after killing it) when it does not. */
  static async spawn(
    opts: ChildOptions,
    logger: Logger,
    onExit: (reason: ExitReason, detail: string) => void,
  ): Promise<ChildHandle> {
    const child = new ChildHandle(opts, logger, onExit);
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), opts.startTimeoutMs);
      child.proc.on('message', (msg: ChildMessage) => {
        if (msg.t === 'ready') {
          clearTimeout(timer);
          resolve(true);
        }
      });
      void child.exit.then(() => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (!ready) {
      child.kill('start-failed');
      const { detail } = await child.exit;
      throw new Error(detail);
    }
    child.poll = setInterval(() => void child.checkRss(), opts.rssPollMs);
    child.poll.unref();
    return child;
  }

  /**
   * Sends one request and resolves with the reply carrying the same `seq`, or with the reason
   * the child died. Kills the child when no reply comes within `deadlineMs`.
   */
  request(msg: HostMessage, deadlineMs: number): Promise<RequestOutcome> {
    if (this.done)
      return Promise.resolve({ type: 'dead', reason: this.killReason ?? 'crash', detail: 'not running' });
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.kill('timeout'), deadlineMs);
      this.pending = { seq: msg.seq, resolve, timer };
      try {
        this.proc.send(msg, (err) => {
          if (err) this.kill('crash');
        });
      } catch {
        // The channel closed under us: the exit handler settles this request.
        this.kill('crash');
      }
    });
  }

  /** True once the child was told to die or has died: it takes no new work. */
  get done(): boolean {
    return this.exited || this.killReason !== null;
  }

  /** SIGKILLs the child; the exit is reported with `reason`. Idempotent. */
  kill(reason: ExitReason): void {
    if (this.exited) return;
    if (this.killReason === null) this.killReason = reason;
    this.proc.kill('SIGKILL');
  }

  private onMessage(msg: ChildMessage): void {
    if ('rss' in msg) this.noteRss(msg.rss);
    if (msg.t === 'ready' || msg.t === 'rss') return;
    const p = this.pending;
    if (p && p.seq === msg.seq) {
      this.pending = null;
      if (p.timer) clearTimeout(p.timer);
      p.resolve({ type: 'reply', msg });
    }
  }

  private noteRss(bytes: number): void {
    this.rss = bytes;
    if (bytes > this.opts.rssCapBytes) {
      this.logger.warn(
        { pid: this.pid, rss: bytes, cap: this.opts.rssCapBytes },
        'sandbox process passed its memory cap',
      );
      this.kill('memory');
    }
  }

  /** Reads VmRSS from /proc: works even while the child is stuck inside native code. */
  private async checkRss(): Promise<void> {
    if (this.exited) return;
    try {
      const status = await readFile(`/proc/${this.pid}/status`, 'utf8');
      const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
      if (m?.[1]) this.noteRss(Number(m[1]) * 1024);
    } catch {
      // No /proc (macOS) or the child just exited: the child's own reports still arrive.
    }
  }

  private describeExit(reason: ExitReason, code: number | null, signal: NodeJS.Signals | null): string {
    const how = signal ? `signal ${signal}` : `exit code ${code}`;
    const tail = this.stderrTail.trim().split('\n').slice(-3).join(' | ');
    switch (reason) {
      case 'timeout':
        return 'sandbox process killed: it did not answer within its deadline';
      case 'memory':
        return `sandbox process killed: resident memory passed the cap of ${Math.round(this.opts.rssCapBytes / 1048576)} MB`;
      case 'stop':
      case 'idle':
        return 'sandbox process stopped';
      case 'start-failed':
        return `sandbox process did not start (${how})${tail ? `: ${tail}` : ''}`;
      default:
        return `sandbox process died (${how})${tail ? `: ${tail}` : ''}`;
    }
  }
}
