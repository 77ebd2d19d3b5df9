/**
 * Running a program the user configured (a guardian, a summariser): words split as a shell
 * would, no shell unless the line needs one, the daemon's environment left out, output and time
 * bounded, the whole process group killed on a deadline or an abort.
 */
import { createRequire } from 'node:module';

/**
 * Splits a command line into words as a POSIX shell would (single quotes literal, double
 * quotes with `\` escapes, `\` outside quotes), or returns undefined when the line uses shell
 * syntax (pipes, redirections, `;`, `&`, `$`, backquotes, globs, `~`, a leading `VAR=value`)
 * and so needs a shell.
 * @example
 * splitCommandLine(`llm -s "be brief" 'a b'`); // ['llm', '-s', 'be brief', 'a b']
 * splitCommandLine('llm | jq .'); // undefined
 */
export function splitCommandLine(line: string): string[] | undefined {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let i = 0;
  const s = line.trim();
  while (i < s.length) {
    const c = s[i] as string;
    if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) return undefined;
      cur += s.slice(i + 1, end);
      inWord = true;
      i = end + 1;
      continue;
    }
    if (c === '"') {
      i++;
      inWord = true;
      for (;;) {
        if (i >= s.length) return undefined;
        const d = s[i] as string;
        if (d === '"') break;
        if (d === '$' || d === '`') return undefined;
        if (d === '\\' && i + 1 < s.length && '"\\$`\n'.includes(s[i + 1] as string)) {
          cur += s[i + 1];
          i += 2;
          continue;
        }
        cur += d;
        i++;
      }
      i++;
      continue;
    }
    if (c === '\\') {
      if (i + 1 >= s.length) return undefined;
      cur += s[i + 1];
      inWord = true;
      i += 2;
      continue;
    }
    if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
      i++;
      continue;
    }
    if ('|&;<>()$`*?[]{}!#'.includes(c) || (c === '~' && !inWord)) return undefined;
    cur += c;
    inWord = true;
    i++;
  }
  if (inWord) words.push(cur);
  if (words.length > 0 && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0] as string)) return undefined;
  return words;
}

/** The variables a configured program gets from the daemon: enough to find programs and speak UTF-8. */
export function minimalEnv(): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const k of ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR']) if (process.env[k] !== undefined) out[k] = process.env[k];
  return out;
}

/** What to run and how long it may take. */
export interface ProgramRun {
  /** A command line (run without a shell when it has no shell syntax), or the words themselves. */
  command: string | readonly string[];
  timeoutMs: number;
  /** Largest stdout read, in bytes. */
  maxOutputBytes: number;
  /** The whole environment the program gets (see `minimalEnv`). */
  env: NodeJS.ProcessEnv;
  /** Written to its stdin, which is then closed. */
  stdin: string;
  signal?: AbortSignal;
}

/**
 * Runs a program to completion and resolves its stdout. Rejects with an Error whose message
 * says what went wrong, ready to follow the program's name: "exited with status 2: <stderr>",
 * "gave no answer within 500 ms; it was killed", "printed more than N bytes", "could not start:
 * ...", "was aborted".
 * @example
 * const out = await runProgram({ command: 'judge --strict', timeoutMs: 10_000, maxOutputBytes: 1 << 20, env: minimalEnv(), stdin: json });
 */
export function runProgram(r: ProgramRun): Promise<string> {
  const argv = typeof r.command === 'string' ? splitCommandLine(r.command) : [...r.command];
  const line = typeof r.command === 'string' ? r.command.trim() : r.command.join(' ');
  // node:child_process is loaded when a program is run (the util module is loaded by every CLI call).
  const { spawn } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
  return new Promise<string>((resolve, reject) => {
    const opts = { detached: process.platform !== 'win32', stdio: ['pipe', 'pipe', 'pipe'] as ['pipe', 'pipe', 'pipe'], env: r.env };
    const child = argv && argv.length > 0 ? spawn(argv[0] as string, argv.slice(1), { ...opts, shell: false }) : spawn(line, { ...opts, shell: true });
    let out = '';
    let outBytes = 0;
    let err = '';
    let settled = false;
    const kill = () => {
      try {
        if (child.pid !== undefined && process.platform !== 'win32') process.kill(-child.pid, 'SIGKILL');
        else child.kill('SIGKILL');
      } catch {
        // already gone
      }
    };
    const finish = (e: Error | null, v?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      r.signal?.removeEventListener('abort', onAbort);
      if (e) reject(e);
      else resolve(v as string);
    };
    const onAbort = () => {
      kill();
      finish(new Error('was aborted'));
    };
    r.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => {
      kill();
      finish(new Error(`gave no answer within ${r.timeoutMs} ms; it was killed`));
    }, r.timeoutMs);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      out += d;
      outBytes += Buffer.byteLength(d);
      if (outBytes > r.maxOutputBytes) {
        kill();
        finish(new Error(`printed more than ${r.maxOutputBytes} bytes`));
      }
    });
    child.stderr.on('data', (d: string) => {
      err = (err + d).slice(-2000);
    });
    child.on('error', (e) => finish(new Error(`could not start: ${e.message}`, { cause: e })));
    child.on('close', (code, sig) => {
      if (settled) return;
      if (code !== 0) {
        const why = sig ? `was killed by ${sig}` : `exited with status ${code}`;
        finish(new Error(`${why}${err.trim() ? `: ${err.trim().slice(-500)}` : ''}`));
        return;
      }
      finish(null, out);
    });
    // A program that does not read stdin closes it early; that is its right.
    child.stdin.on('error', () => undefined);
    child.stdin.end(r.stdin);
  });
}
