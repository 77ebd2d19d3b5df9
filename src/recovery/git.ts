/**
 * The system `git`, run without a shell (child_process.spawn with an argument list), against
 * one bare repository the node owns (`<dataDir>/fallback.git`). Every run is bounded: a time
 * limit (killed after it), a cap on what it may print, and no terminal prompt (a remote that
 * wants a password fails instead of hanging).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { WeftError } from '../errors/index.js';

export interface GitInit {
  /** The bare repository (created by `init()`). */
  gitDir: string;
  /** The git binary (default `git` on PATH). */
  binary?: string;
  /** Longest run, ms (default 120 s); killed after it. */
  timeoutMs?: number;
  /** Most output one run may print, bytes (default 256 MiB). */
  maxOutputBytes?: number;
  /** Author and committer of the commits. */
  author: { name: string; email: string };
}

/** A git command failed: its arguments (never the remote's credentials), exit code and what it said. */
export class GitError extends WeftError {
  constructor(
    readonly args: readonly string[],
    readonly gitExit: number | null,
    readonly stderr: string,
  ) {
    super('WEFT_PEER_UNAVAILABLE', `git ${args[0] ?? ''} failed${gitExit === null ? '' : ` (exit ${gitExit})`}: ${redactUrls(stderr.trim()).slice(0, 1000) || 'no message'}`);
  }

  /** The run was stopped because it printed more than it may. */
  overflowed = false;
}

/** The remote without a user or password in it, for messages and events. */
export function redactUrls(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/gi, '$1***@');
}

interface Running {
  kill(): void;
}

/** SIGKILL to the child's process group (git and whatever it started), or to the child alone where there are none. */
function killGroup(child: ReturnType<typeof spawn>): void {
  try {
    if (child.pid !== undefined && process.platform !== 'win32') process.kill(-child.pid, 'SIGKILL');
    else child.kill('SIGKILL');
  } catch {
    // already gone
  }
}

export class Git {
  private readonly binary: string;
  private readonly timeoutMs: number;
  private readonly maxOutputBytes: number;
  /** Runs in progress: `killAll()` ends them (a stopping node must not wait out a slow remote). */
  private readonly running = new Set<Running>();

  constructor(private readonly init: GitInit) {
    this.binary = init.binary ?? 'git';
    this.timeoutMs = init.timeoutMs ?? 120_000;
    this.maxOutputBytes = init.maxOutputBytes ?? 256 * 1024 * 1024;
  }

  get gitDir(): string {
    return this.init.gitDir;
  }

  /** Creates the bare repository when it is not there; throws a clear error when git is missing. */
  async ensure(): Promise<void> {
    if (existsSync(this.init.gitDir)) return;
    await this.run(['init', '--bare', '--quiet', this.init.gitDir], { bare: false });
  }

  /** Runs git on the repository; resolves to its standard output. */
  run(args: readonly string[], opts: { input?: Uint8Array | string; bare?: boolean; allowExit?: readonly number[]; maxOutputBytes?: number } = {}): Promise<Buffer> {
    const maxOutputBytes = opts.maxOutputBytes ?? this.maxOutputBytes;
    const full = opts.bare === false ? [...args] : [`--git-dir=${this.init.gitDir}`, ...args];
    const { name, email } = this.init.author;
    return new Promise<Buffer>((resolve, reject) => {
      let child: ReturnType<typeof spawn>;
      try {
        child = spawn(this.binary, full, {
          stdio: ['pipe', 'pipe', 'pipe'],
          // Its own process group: a kill takes the helpers git starts too (ssh, the https
          // remote helper), which hold its pipes; killing git alone left them, and the run
          // waiting for its pipes to close, for good.
          detached: process.platform !== 'win32',
          env: {
            ...process.env,
            GIT_TERMINAL_PROMPT: '0',
            GIT_ASKPASS: 'true',
            GIT_AUTHOR_NAME: name,
            GIT_AUTHOR_EMAIL: email,
            GIT_COMMITTER_NAME: name,
            GIT_COMMITTER_EMAIL: email,
            LC_ALL: 'C',
          },
        });
      } catch (err) {
        reject(new WeftError('WEFT_INTERNAL', `cannot run git (${this.binary}): ${(err as Error).message}`));
        return;
      }
      const run: Running = { kill: () => killGroup(child) };
      this.running.add(run);
      const out: Buffer[] = [];
      let outBytes = 0;
      let err = '';
      let failed: Error | undefined;
      let settled = false;
      const settle = (e: Error | undefined, v?: Buffer) => {
        if (settled) return;
        settled = true;
        this.running.delete(run);
        clearTimeout(timer);
        if (e) reject(e);
        else resolve(v as Buffer);
      };
      // Settled here, not when the pipes close: something git started may hold them still.
      const stopWith = (e: Error) => {
        failed ??= e;
        killGroup(child);
        settle(failed);
      };
      const timer = setTimeout(() => stopWith(new GitError(args, null, `timed out after ${Math.round(this.timeoutMs / 1000)} s`)), this.timeoutMs);
      timer.unref();
      run.kill = () => stopWith(new GitError(args, null, 'stopped: the node is stopping'));
      child.stdout?.on('data', (b: Buffer) => {
        outBytes += b.length;
        if (outBytes > maxOutputBytes) {
          const e = new GitError(args, null, `printed more than ${maxOutputBytes} bytes`);
          e.overflowed = true;
          stopWith(e);
          return;
        }
        out.push(b);
      });
      child.stderr?.on('data', (b: Buffer) => {
        if (err.length < 16_384) err += b.toString('utf8');
      });
      child.on('error', (e: NodeJS.ErrnoException) => {
        failed ??= e.code === 'ENOENT' ? new WeftError('WEFT_CONFIG', `git is not installed (no '${this.binary}' on PATH): the git fallback needs it`) : e;
        // A git that could not start has no pipes to wait for.
        if (child.pid === undefined) settle(failed);
      });
      child.on('close', (code) => {
        if (failed) settle(failed);
        else if (code === 0 || (code !== null && opts.allowExit?.includes(code))) settle(undefined, Buffer.concat(out));
        else settle(new GitError(args, code, err));
      });
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(opts.input ?? '');
    });
  }

  /** Kills every git run in progress, with what it started (each rejects). */
  killAll(): void {
    for (const r of [...this.running]) r.kill();
  }

  /** Trimmed text output. */
  async text(args: readonly string[], opts: { input?: Uint8Array | string; allowExit?: readonly number[] } = {}): Promise<string> {
    return (await this.run(args, opts)).toString('utf8').trim();
  }

  /** The commit a ref points to, or undefined when there is no such ref. */
  async resolve(ref: string): Promise<string | undefined> {
    const out = await this.text(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`], { allowExit: [1, 128] });
    return /^[0-9a-f]{40,64}$/.test(out) ? out : undefined;
  }

  /** Refs under a prefix, name → commit. */
  async refs(prefix: string): Promise<Map<string, string>> {
    const out = await this.text(['for-each-ref', '--format=%(objectname) %(refname)', prefix]);
    const refs = new Map<string, string>();
    for (const line of out.split('\n')) {
      const [oid, name] = line.split(' ');
      if (oid && name) refs.set(name, oid);
    }
    return refs;
  }

  /** Whether `a` is an ancestor of (or equal to) `b`. */
  async isAncestor(a: string, b: string): Promise<boolean> {
    return this.run(['merge-base', '--is-ancestor', a, b]).then(
      () => true,
      () => false,
    );
  }

  /** Writes a blob; its object id. */
  async blob(content: Uint8Array): Promise<string> {
    return this.text(['hash-object', '-w', '--stdin'], { input: content });
  }

  /** Reads a blob. */
  readBlob(oid: string): Promise<Buffer> {
    return this.run(['cat-file', 'blob', oid]);
  }
}
