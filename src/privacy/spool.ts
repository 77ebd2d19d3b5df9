/**
 * The spool: where shell hooks leave observed commands for the daemon. One file per shell
 * process (`<shell>-<pid>-<start>.spool`), each record `1 US ts US shell US exit US
 * duration_ms US cwd US command RS LF` (US = \x1f, RS = \x1e), appended with one shell
 * builtin per command. The directory lives on a RAM-backed file system by default
 * (`$XDG_RUNTIME_DIR`, else `/dev/shm`): the command text as typed, before the secrets
 * filter, never touches a disk. The daemon reads each file from its last committed position.
 */
import { closeSync, existsSync, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../errors/index.js';
import { processAlive } from '../util/index.js';
import type { ShellType } from '../catalog/index.js';

export const RECORD_END = '\x1e\n';
const FIELD = '\x1f';
/** A record longer than this is cut off and refused (the hook writes one command per record). */
export const MAX_RECORD_BYTES = 256 * 1024;
/** Bytes read from one file per pass: a large backlog is taken in steps, never all in memory. */
export const READ_CHUNK_BYTES = 1024 * 1024;

/** One command as the hook wrote it. */
export interface SpoolRecord {
  /** Milliseconds since the epoch when the command started. */
  ts: number;
  shell: ShellType;
  exitCode: number | null;
  durationMs: number | null;
  cwd: string;
  command: string;
}

export type ParsedRecord = { ok: true; record: SpoolRecord } | { ok: false; reason: string };

const SHELLS = new Set(['bash', 'zsh', 'fish', 'sh']);

/**
 * Parses one record (without its RS LF end).
 * @example
 * parseSpoolRecord('1\x1f1733333333.5\x1fbash\x1f0\x1f12\x1f/home/me\x1fls -la')
 */
export function parseSpoolRecord(text: string): ParsedRecord {
  const parts: string[] = [];
  let from = 0;
  for (let i = 0; i < 6; i++) {
    const at = text.indexOf(FIELD, from);
    if (at < 0) return { ok: false, reason: `record has ${i + 1} fields; expected 7 (version, ts, shell, exit, duration_ms, cwd, command)` };
    parts.push(text.slice(from, at));
    from = at + 1;
  }
  // The command is the rest: it may itself contain the field separator.
  parts.push(text.slice(from));
  const [version, ts, shell, exit, duration, cwd, command] = parts as [string, string, string, string, string, string, string];
  if (version !== '1') return { ok: false, reason: `format version '${version.slice(0, 10)}' is not 1` };
  if (!/^\d{1,12}(\.\d{1,9})?$/.test(ts)) return { ok: false, reason: `ts '${ts.slice(0, 30)}' is not seconds since the epoch` };
  if (!SHELLS.has(shell)) return { ok: false, reason: `shell '${shell.slice(0, 20)}' is not bash, zsh, fish or sh` };
  if (exit !== '' && !/^-?\d{1,10}$/.test(exit)) return { ok: false, reason: `exit '${exit.slice(0, 20)}' is not an integer` };
  if (duration !== '' && !/^\d{1,12}$/.test(duration)) return { ok: false, reason: `duration_ms '${duration.slice(0, 20)}' is not an integer` };
  return {
    ok: true,
    record: {
      ts: Math.round(Number(ts) * 1000),
      shell: shell as ShellType,
      exitCode: exit === '' ? null : Number(exit),
      durationMs: duration === '' ? null : Number(duration),
      cwd,
      command,
    },
  };
}

/**
 * The default spool directory: per user, on a RAM-backed file system when there is one.
 * @example
 * defaultSpoolDir(process.env, '/home/me/.weft/data') // '/run/user/1000/weft-spool'
 */
export function defaultSpoolDir(env: NodeJS.ProcessEnv, dataDir: string): string {
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg && existsSync(xdg)) return join(xdg, 'weft-spool');
  if (existsSync('/dev/shm')) return join('/dev/shm', `weft-spool-${process.getuid?.() ?? 'user'}`);
  return join(dataDir, 'spool');
}

/**
 * Creates the spool directory 0700, or checks one that exists: it must be a directory (not a
 * link) owned by this user and closed to others, since on a shared `/dev/shm` anyone could
 * have made it first to read what the hooks write.
 */
export function ensureSpoolDir(dir: string): void {
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  checkSpoolDir(dir);
}

/** Throws (ConfigError) unless `dir` is a directory of this user's, closed to others; see ensureSpoolDir. */
export function checkSpoolDir(dir: string): void {
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new ConfigError(`spool directory ${dir} is not a directory (a link or a file is in its place): remove it or set observe.spool_dir`, { path: dir });
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new ConfigError(`spool directory ${dir} belongs to uid ${st.uid}, not to this user (${uid}): someone else made it; remove it or set observe.spool_dir`, { path: dir });
  }
  if ((st.mode & 0o077) !== 0) {
    throw new ConfigError(`spool directory ${dir} is open to other users (mode ${(st.mode & 0o777).toString(8)}): chmod 700 it`, { path: dir });
  }
}

/** A spool file's committed read position. */
export interface SpoolPosition {
  ino: number;
  position: number;
}

/** What one pass over a file produced. */
export interface SpoolChunk {
  file: string;
  ino: number;
  /** Byte offset in the file where each record started (the record's stable identity). */
  records: Array<{ offset: number; parsed: ParsedRecord }>;
  /** Where the next read starts once these records are committed. */
  next: number;
  /** Bytes left in the file after `next` (more than one chunk's worth waiting). */
  more: boolean;
}

/** Spool files in a directory, oldest name first; `[]` when it does not exist. */
export function listSpoolFiles(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.spool'))
      .sort();
  } catch {
    return [];
  }
}

/**
 * Reads the complete records of `file` after `from` (at most one chunk). A record not yet
 * finished (the hook is mid-write) waits for the next pass; a record longer than
 * MAX_RECORD_BYTES is refused and skipped so one bad line cannot stall the file.
 */
export function readSpoolChunk(dir: string, file: string, from: SpoolPosition | undefined): SpoolChunk | undefined {
  const path = join(dir, file);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    // A new file under a reused name (same shell pid and second) starts over.
    const start = from && from.ino === st.ino && from.position <= st.size ? from.position : 0;
    if (st.size <= start) return { file, ino: st.ino, records: [], next: start, more: false };
    const len = Math.min(READ_CHUNK_BYTES, st.size - start);
    const buf = Buffer.allocUnsafe(len);
    const n = readSync(fd, buf, 0, len, start);
    const text = buf.subarray(0, n);
    const records: SpoolChunk['records'] = [];
    let at = 0;
    for (;;) {
      const end = text.indexOf(RECORD_END, at, 'latin1');
      if (end < 0) break;
      records.push({
        offset: start + at,
        parsed: end - at > MAX_RECORD_BYTES ? { ok: false, reason: `record longer than ${MAX_RECORD_BYTES} bytes` } : parseSpoolRecord(text.subarray(at, end).toString('utf8')),
      });
      at = end + RECORD_END.length;
    }
    if (records.length === 0 && n >= MAX_RECORD_BYTES) {
      // No end within the bound: skip to the next end (or the whole chunk) and refuse what was there.
      const end = text.indexOf(RECORD_END, MAX_RECORD_BYTES, 'latin1');
      const skip = end < 0 ? n : end + RECORD_END.length;
      records.push({ offset: start, parsed: { ok: false, reason: `record longer than ${MAX_RECORD_BYTES} bytes` } });
      at = skip;
    }
    return { file, ino: st.ino, records, next: start + at, more: start + at < st.size && records.length > 0 };
  } finally {
    closeSync(fd);
  }
}

/** The shell's pid from a spool file's name (`<shell>-<pid>-<start>.spool`). */
export function spoolPid(file: string): number | undefined {
  const m = /^[a-z]+-(\d{1,10})-\d+\.spool$/.exec(file);
  return m ? Number(m[1]) : undefined;
}


/** A file is removed only when nothing was written to it for this long (a write still landing must not be cut off). */
export const SPOOL_REAP_IDLE_MS = 60_000;

/**
 * Removes a spool file that was read to its end once its shell has exited and nothing was
 * written to it for SPOOL_REAP_IDLE_MS: a live shell reopens the file by name for every command,
 * and a size read while the last write is still landing must not pass for the end.
 */
export function removeIfDone(dir: string, file: string, position: SpoolPosition, now = Date.now()): boolean {
  const pid = spoolPid(file);
  if (pid === undefined || processAlive(pid)) return false;
  const path = join(dir, file);
  try {
    const st = statSync(path);
    if (st.ino !== position.ino || st.size !== position.position || now - st.mtimeMs < SPOOL_REAP_IDLE_MS) return false;
    unlinkSync(path);
    return true;
  } catch {
    return false;
  }
}

const SPOOLS_FILE = 'observe-spools.json';

/** Remembers a spool directory a hook was installed with, so the daemon reads it too. */
export function rememberSpoolDir(dataDir: string, dir: string): void {
  const known = knownSpoolDirs(dataDir);
  if (known.includes(dir)) return;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dataDir, SPOOLS_FILE), `${JSON.stringify([...known, dir], null, 2)}\n`, { mode: 0o600 });
}

/** Spool directories hooks were installed with (see rememberSpoolDir). */
export function knownSpoolDirs(dataDir: string): string[] {
  const path = join(dataDir, SPOOLS_FILE);
  if (!existsSync(path)) return [];
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

