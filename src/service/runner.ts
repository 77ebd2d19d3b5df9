/**
 * The side effects of `weft service`, behind one small interface: run a program (no shell) and read, write
 * and remove files. Tests inject their own `exec` and never reach the real user session.
 */
import { execFile } from 'node:child_process';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname } from 'node:path';

/** How a program ended. `missing`: it is not installed (ENOENT), so it never ran. */
export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
  missing: boolean;
}

/** Runs a program with arguments, without a shell. */
export type ExecFn = (
  file: string,
  args: readonly string[],
  opts?: { signal?: AbortSignal },
) => Promise<ExecResult>;

/** The side effects `weft service` needs. */
export interface ServiceRunner {
  exec: ExecFn;
  /** A file's text and permission bits, or undefined when there is none. */
  read(path: string): { text: string; mode: number } | undefined;
  /** Writes a file atomically with exactly this mode; missing parent directories are made 0700. */
  write(path: string, text: string, mode: number): void;
  /** Whether anything (file, directory, link) is at a path. */
  exists(path: string): boolean;
  /** Makes a directory and its missing parents with this mode; returns those it made, outermost first. */
  mkdir(path: string, mode: number): string[];
  /** Removes a file or a symbolic link; says whether there was one. */
  remove(path: string): boolean;
  /** A symbolic link's target, or undefined when the path is not one. */
  readLink(path: string): string | undefined;
}

/**
 * Runs a program without a shell and collects its output; a missing program is a result, not an error.
 * @example
 * const r = await execProgram('systemctl', ['--user', 'is-active', 'weft.service']);
 * r.stdout.trim(); // 'active', 'inactive', or '' with r.stderr 'Failed to connect to bus: ...'
 */
export const execProgram: ExecFn = (file, args, opts = {}) =>
  new Promise((resolve) => {
    if (opts.signal?.aborted) {
      resolve({ code: null, stdout: '', stderr: 'aborted', missing: false });
      return;
    }
    execFile(
      file,
      [...args],
      {
        encoding: 'utf8',
        timeout: 30_000,
        maxBuffer: 1024 * 1024,
        ...(opts.signal ? { signal: opts.signal } : {}),
      },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
        if (e && e.code === 'ENOENT') {
          resolve({ code: null, stdout: '', stderr: `${file}: not found`, missing: true });
          return;
        }
        const code = e ? (typeof e.code === 'number' ? e.code : null) : 0;
        resolve({
          code,
          stdout: String(stdout),
          stderr: String(stderr) || (e && code === null ? e.message : ''),
          missing: false,
        });
      },
    );
  });

/**
 * The real runner: node:fs for files, `execFile` for programs (or the `exec` given, for tests).
 * @example
 * const runner = systemRunner({ exec: async () => ({ code: 1, stdout: '', stderr: 'Failed to connect to bus: No medium found', missing: false }) });
 */
export function systemRunner(init: { exec?: ExecFn } = {}): ServiceRunner {
  return {
    exec: init.exec ?? execProgram,
    read(path) {
      try {
        const mode = statSync(path).mode & 0o777;
        return { text: readFileSync(path, 'utf8'), mode };
      } catch {
        return undefined;
      }
    },
    write(path, text, mode) {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      const tmp = `${path}.${process.pid}.tmp`;
      try {
        writeFileSync(tmp, text, { mode, flag: 'w' });
        // The umask may have taken bits away, never added any; say the mode exactly.
        chmodSync(tmp, mode);
        renameSync(tmp, path);
      } catch (err) {
        rmSync(tmp, { force: true });
        throw err;
      }
    },
    exists(path) {
      try {
        lstatSync(path);
        return true;
      } catch {
        return false;
      }
    },
    mkdir(path, mode) {
      const first = mkdirSync(path, { recursive: true, mode });
      if (first === undefined) return [];
      const made = [path];
      for (let d = path; d !== first && dirname(d) !== d; ) {
        d = dirname(d);
        made.unshift(d);
      }
      return made;
    },
    remove(path) {
      try {
        lstatSync(path);
      } catch {
        return false;
      }
      rmSync(path, { force: true });
      return true;
    },
    readLink(path) {
      try {
        return readlinkSync(path);
      } catch {
        return undefined;
      }
    },
  };
}
