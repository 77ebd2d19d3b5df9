import { accessSync, closeSync, constants, existsSync, fsyncSync, openSync, rmSync, statfsSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Why a data dir cannot be used by this user, or undefined when it can (or does not exist yet:
 * it is made on first start). The daemon refuses to start on it (`securePrivateDir`), and
 * `weft doctor` says the same instead of "no database yet". Root may use any directory.
 */
export function privateDirProblem(dir: string): string | undefined {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ENOTDIR')
      return `config key data_dir: ${dir} is under a file, not a directory; point data_dir at a directory (it is created if missing)`;
    return `config key data_dir: cannot read ${dir}: ${code ?? (err as Error).message}`;
  }
  if (!st.isDirectory())
    return `config key data_dir: ${dir} is a file, not a directory; point data_dir at a directory (it is created if missing)`;
  const uid = process.getuid?.();
  if (uid !== undefined && uid !== 0 && st.uid !== uid) {
    return `data dir ${dir} belongs to another user (uid ${st.uid}, this is uid ${uid}); run weft as its owner, or point data_dir at a directory of yours`;
  }
  return undefined;
}

/** Free space below which the data dir's disk counts as full: SQLite needs room for a WAL frame and a checkpoint. */
const FULL_BYTES = 1024 * 1024;
/** Free space below which `weft doctor` and /api/health warn that the disk is filling up. */
export const LOW_SPACE_BYTES = 64 * 1024 * 1024;

/** Bytes this user may still write on the disk holding `dir` (undefined where statfs cannot tell). */
export function freeBytes(dir: string): number | undefined {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

/** `1.5 MiB`, `320 KiB`: space as people read it. */
export function formatBytes(n: number): string {
  if (n >= 1024 * 1024 * 1024) return `${(n / 1024 / 1024 / 1024).toFixed(1)} GiB`;
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${Math.floor(n / 1024)} KiB`;
}

/** Why the disk under a data dir cannot take the daemon's writes. */
export interface DiskProblem {
  /** readonly: a read-only mount (EROFS); full: no space (ENOSPC, EDQUOT, or under 1 MiB free). */
  kind: 'readonly' | 'full';
  message: string;
}

/**
 * Whether the data dir's disk takes writes: a read-only mount or a full disk stops a start with
 * one line saying so (the start failed on whichever file came first, with a bare errno, and could
 * leave daemon.json empty), and `weft doctor` names it. A small file is written, synced and
 * removed to find out. Undefined when the dir does not exist yet or all is well.
 */
export function diskProblem(dir: string): DiskProblem | undefined {
  if (!existsSync(dir)) return undefined;
  const readonly = (): DiskProblem => ({
    kind: 'readonly',
    message: `the data dir ${dir} is on a read-only file system: nothing can be written there (no event, no log line, no lock); remount it read-write, or point data_dir at a writable directory`,
  });
  const full = (code: string): DiskProblem => {
    const free = freeBytes(dir);
    return {
      kind: 'full',
      message: `the disk holding the data dir ${dir} is full (${code}${free !== undefined ? `, ${formatBytes(free)} free` : ''}): the daemon cannot commit events there; free space on that disk (old logs/weft.log.*, weft.db.damaged-* or weft.db.rescued-* copies, or other files)`,
    };
  };
  try {
    accessSync(dir, constants.W_OK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EROFS') return readonly();
    return undefined;
  }
  const probe = join(dir, `.weft-write-probe-${process.pid}`);
  let fd: number | undefined;
  try {
    fd = openSync(probe, 'wx', 0o600);
    writeSync(fd, Buffer.alloc(4096));
    fsyncSync(fd);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (code === 'EROFS') return readonly();
    if (code === 'ENOSPC' || code === 'EDQUOT') return full(code);
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
    rmSync(probe, { force: true });
  }
  const free = freeBytes(dir);
  if (free !== undefined && free < FULL_BYTES) return full('almost no space left');
  return undefined;
}
