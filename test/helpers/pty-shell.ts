import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Drives a shell in a pseudo-terminal: reads a JSON job on stdin, types the lines one at a time and
 * prints everything the terminal shows on stdout. It types the next line only when the shell has read
 * all the input so far (FIONREAD on the slave side is 0) and a line editor has the terminal in
 * non-canonical mode, i.e. the shell is at its prompt; a terminal left canonical for 50 ms (a shell with
 * no line editor, or a long command) is typed into anyway. So the tty's input buffer never fills, and
 * nothing is typed ahead into a running command's cooked-mode line discipline unless it runs long. It
 * exits with the shell's status, or with 124 after a JSON line on stderr saying what it waited for.
 */
const DRIVER = String.raw`
import json, os, sys, select, signal, termios, fcntl, struct, subprocess, time
job = json.load(sys.stdin)
lines = [l.encode() for l in job['lines']]
marker, deadline = job['marker'], time.monotonic() + job['timeoutMs'] / 1000
master, slave = os.openpty()
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', 50, 250, 0, 0))
def ctty():
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
p = subprocess.Popen(job['argv'], stdin=slave, stdout=slave, stderr=slave, env=job['env'], cwd=job['cwd'],
                     start_new_session=True, preexec_fn=ctty, close_fds=True)
def kill():
    try: os.killpg(p.pid, signal.SIGKILL)
    except OSError: pass
signal.signal(signal.SIGTERM, lambda *_: (kill(), sys.exit(143)))
out = sys.stdout.buffer
def pending():
    return struct.unpack('i', fcntl.ioctl(slave, termios.FIONREAD, b'\0\0\0\0'))[0]
canon_since = None
def ready():
    global canon_since
    if pending() != 0: return False
    if not termios.tcgetattr(slave)[3] & termios.ICANON:
        canon_since = None
        return True
    now = time.monotonic()
    if canon_since is None: canon_since = now
    return now - canon_since > 0.05
sent, eof_at, exit_sent, eof = 0, None, False, False
while True:
    readable = select.select([] if eof else [master], [], [], 0.001)[0]
    if readable:
        try: b = os.read(master, 65536)
        except OSError: b = b''
        if b: out.write(b); out.flush()
        else: eof = True
    if p.poll() is not None and (eof or not readable):
        break
    if time.monotonic() > deadline:
        what = ('the shell to read line %d of %d' % (sent + 1, len(lines)) if sent < len(lines)
                else 'the marker command to create %s' % marker if eof_at is None else 'the shell to exit')
        sys.stderr.write(json.dumps({'timeout': what, 'sent': sent}) + '\n')
        kill(); out.flush(); sys.exit(124)
    if sent < len(lines):
        if ready():
            os.write(master, lines[sent] + b'\n'); sent += 1; canon_since = None
    elif eof_at is None and os.path.exists(marker) and ready():
        # Ctrl-D at an empty prompt ends every shell here without a command line that a hook would see.
        os.write(master, b'\x04'); eof_at = time.monotonic()
    elif eof_at is not None and not exit_sent and time.monotonic() - eof_at > 2 and ready():
        os.write(master, b'exit\n'); exit_sent = True
out.flush()
sys.stderr.write(json.dumps({'sent': sent, 'marker': os.path.exists(marker)}) + '\n')
sys.exit(p.returncode if p.returncode >= 0 else 128 - p.returncode)
`;

export interface PtyOptions {
  /** HOME for the shell, so it reads the rc files (and hook) there; XDG dirs point inside it too. */
  home: string;
  /** Added to (or overriding) the small clean environment the shell gets. */
  env?: Record<string, string>;
  /** Command lines typed one after another; a line may hold raw bytes such as a bracketed paste. */
  lines: string[];
  /** Arguments after the shell's name; `['-i']` by default. */
  args?: string[];
  /** A command the shell runs under, e.g. `['strace', '-f', '-o', file]`. */
  wrapper?: string[];
  /** Bound on the whole session, start-up to exit. */
  timeoutMs?: number;
}

export interface PtyResult {
  /** Everything the terminal showed, escape sequences included. */
  output: string;
  /** The shell's exit status, or null if it was killed. */
  code: number | null;
  /** The command line the helper typed after `lines` (the shell records it like any other). */
  markerLine: string;
}

let sessions = 0;

/**
 * Runs `shell` interactively in a pseudo-terminal, types `lines`, then a marker command (a builtin that
 * creates a file) and, once the marker file exists, Ctrl-D (`exit` if that did not end it within 2 s);
 * resolves when the shell has exited. Rejects
 * after `timeoutMs` naming what it was waiting for. The environment is built from scratch (nothing of
 * the test runner's ZDOTDIR, ENV, PROMPT_COMMAND or HISTFILE leaks in); for zsh an empty ~/.zshrc is
 * made if none exists, so zsh-newuser-install never prompts, and fish's XDG dirs are inside `home`.
 *
 * @example
 * const r = await runInPty('bash', { home, lines: ['cd /tmp', 'true x'] });
 */
export async function runInPty(shell: string, opts: PtyOptions): Promise<PtyResult> {
  const home = opts.home;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const config = join(home, '.config');
  const data = join(home, '.local', 'share');
  for (const d of [config, data, join(home, '.cache'), join(home, '.local', 'state')])
    mkdirSync(d, { recursive: true });
  // fish's first start scans man pages in a background job that outlives the session (and races the
  // test's cleanup) unless this directory exists.
  if (shell === 'fish') mkdirSync(join(data, 'fish', 'generated_completions'), { recursive: true });
  if (shell === 'zsh' && !existsSync(join(home, '.zshrc')))
    writeFileSync(join(home, '.zshrc'), '', { mode: 0o600 });
  const marker = join(home, `.pty-done-${process.pid}-${++sessions}`);
  // `true` is a builtin in every shell here, so the marker works with PATH=/nonexistent too.
  const markerLine = `true >'${marker}'`;
  const env: Record<string, string> = {
    HOME: home,
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    TERM: 'xterm-256color',
    LANG: 'C.UTF-8',
    USER: process.env.USER ?? 'weft',
    LOGNAME: process.env.LOGNAME ?? process.env.USER ?? 'weft',
    SHELL: shell,
    XDG_CONFIG_HOME: config,
    XDG_DATA_HOME: data,
    XDG_CACHE_HOME: join(home, '.cache'),
    XDG_STATE_HOME: join(home, '.local', 'state'),
    ...opts.env,
  };
  const job = {
    argv: [...(opts.wrapper ?? []), shell, ...(opts.args ?? ['-i'])],
    env,
    cwd: home,
    lines: [...opts.lines, markerLine],
    marker,
    timeoutMs,
  };
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const child = spawn(python, ['-c', DRIVER], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let err = '';
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => {
    err += b.toString('utf8');
  });
  child.stdin.end(JSON.stringify(job));
  // The driver enforces the bound itself; this only catches a driver that hangs.
  const backstop = setTimeout(() => child.kill('SIGKILL'), timeoutMs + 10_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, s) => resolve([c, s]));
  }).finally(() => clearTimeout(backstop));
  const output = Buffer.concat(out).toString('utf8');
  const last = err.trim().split('\n').pop() ?? '';
  const tail = JSON.stringify(output.slice(-600));
  if (code === 124 || signal !== null) {
    const what = /"timeout": "([^"]*)"/.exec(last)?.[1] ?? 'the pty driver';
    throw new Error(
      `runInPty(${shell}): gave up after ${timeoutMs} ms waiting for ${what}; last output: ${tail}`,
    );
  }
  if (!existsSync(marker)) {
    throw new Error(
      `runInPty(${shell}): the shell exited (status ${code}) before running the marker command ${markerLine}; ` +
        `driver: ${err.trim() || '(nothing)'}; last output: ${tail}`,
    );
  }
  return { output, code, markerLine };
}
