import { closeSync, existsSync, mkdirSync, openSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { WeftError } from '../errors/index.js';
import type { Logger } from '../util/index.js';

/**
 * Makes sure the log file can be opened for appending, or says in one line what is in the way
 * (pino would report it later as a bare errno, or as "sonic boom is not ready yet" at exit).
 */
function checkLogFile(dir: string, file: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    closeSync(openSync(file, 'a', 0o600));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === 'EEXIST' || e.code === 'ENOTDIR'
        ? `${dir} is not a directory`
        : e.code === 'EISDIR'
          ? `${file} is a directory`
          : e.code === 'ENOENT'
            ? `${dir} cannot be made (a link to nowhere?)`
            : e.code === 'EACCES' || e.code === 'EPERM'
              ? 'this user may not write there'
              : e.message;
    throw new WeftError('WEFT_CONFIG', `cannot write the daemon's log file ${file}: ${why}; move what is there aside (the daemon makes the folder and the file itself)`, { cause: err });
  }
}

export interface DaemonLogger {
  logger: Logger;
  file: string;
  /** Resolves once the log file is open (a stop before that would fail pino's flush at exit). */
  ready: Promise<void>;
  close(): void;
}

/**
 * Structured JSON logs to stderr and to `<dataDir>/logs/weft.log`, rotated at `maxBytes`
 * (keeping `keep` old files: weft.log.1 ... weft.log.N).
 */
export function createDaemonLogger(dataDir: string, level: string, opts: { maxBytes?: number; keep?: number; stderr?: boolean } = {}): DaemonLogger {
  const dir = join(dataDir, 'logs');
  const file = join(dir, 'weft.log');
  checkLogFile(dir, file);
  const dest = pino.destination({ dest: file, append: true, sync: false, mkdir: true });
  const streams: pino.StreamEntry[] = [{ level: level as pino.Level, stream: dest }];
  if (opts.stderr !== false) streams.push({ level: level as pino.Level, stream: pino.destination({ dest: 2, sync: false }) });
  const logger = pino({ level, base: { pid: process.pid } }, pino.multistream(streams));
  const maxBytes = opts.maxBytes ?? 10 * 1024 * 1024;
  const keep = opts.keep ?? 3;
  const timer = setInterval(() => {
    try {
      if (!existsSync(file) || statSync(file).size < maxBytes) return;
      for (let i = keep - 1; i >= 1; i--) if (existsSync(`${file}.${i}`)) renameSync(`${file}.${i}`, `${file}.${i + 1}`);
      renameSync(file, `${file}.1`);
      dest.reopen();
    } catch {
      // rotation is best effort; logging goes on in the current file
    }
  }, 5000);
  timer.unref();
  const fd = (dest as unknown as { fd: number }).fd;
  const ready =
    typeof fd === 'number' && fd >= 0
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          dest.once('ready', () => resolve());
          // An open that fails is reported by pino itself; the daemon must not wait for it forever.
          dest.once('error', () => resolve());
        });
  return {
    logger: logger as unknown as Logger,
    file,
    ready,
    close() {
      clearInterval(timer);
      try {
        dest.flushSync();
      } catch {
        // not yet open
      }
    },
  };
}
