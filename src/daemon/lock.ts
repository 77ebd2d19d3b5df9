import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { StoreError } from '../errors/index.js';
import { processAlive } from '../util/index.js';

/**
 * When a process started, in clock ticks since boot (`/proc/<pid>/stat`, field 22): with the pid,
 * it names one process, not whichever later got the same pid. Undefined where there is no /proc.
 */
export function processStartTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Whether `pid` runs Node, where /proc says (true where it cannot tell). */
function looksLikeNode(pid: number): boolean {
  try {
    const argv0 = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
    return /node|weft|telec/.test(argv0.slice(argv0.lastIndexOf('/') + 1)) || argv0 === process.execPath;
  } catch {
    return true;
  }
}

/** What the lock file says: `<pid> <start ticks>` (the start is missing in locks of older versions and where there is no /proc). */
function lockText(): string {
  const start = processStartTicks(process.pid);
  return start === undefined ? String(process.pid) : `${process.pid} ${start}`;
}

/**
 * Whether the process a lock names still runs: its pid is alive and, where /proc tells when it
 * started, it is the process that wrote the lock (after a crash or a reboot another process may
 * have the pid: a service manager's restart would otherwise be refused for good).
 */
function holderRuns(text: string): number | undefined {
  const [pidText, start] = text.trim().split(/\s+/);
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || !processAlive(pid)) return undefined;
  if (start !== undefined) {
    const now = processStartTicks(pid);
    if (now !== undefined && now !== start) return undefined;
  } else if (!looksLikeNode(pid)) {
    // A lock of an older version (a pid alone): at least the process must be a Node one.
    return undefined;
  }
  return pid;
}

/**
 * One daemon per data dir: `<dataDir>/weft.lock` holds the owner's pid and when it started. A
 * lock left by a dead process (or one whose pid another process has now) is taken over; a live
 * owner makes the second daemon stop with a clear message.
 */
export function acquireLock(dataDir: string): { release(): void } {
  const path = join(dataDir, 'weft.lock');
  const mine = lockText();
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, mine);
      closeSync(fd);
      return {
        release() {
          try {
            if (readFileSync(path, 'utf8') === mine) rmSync(path);
          } catch {
            // already gone
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = holderRuns(readFileSync(path, 'utf8'));
      if (pid !== undefined) {
        throw new StoreError(
          'WEFT_LOCKED',
          `another weft daemon (pid ${pid}) is already running on ${dataDir} (it holds ${path})`,
        );
      }
      rmSync(path, { force: true });
    }
  }
  throw new StoreError('WEFT_LOCKED', `cannot take the lock ${path}`);
}
