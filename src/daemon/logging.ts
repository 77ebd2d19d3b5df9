import { closeSync, existsSync, mkdirSync, openSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { WeftError } from '../errors/index.js';
import type { Logger } from '../util/index.js';
import { LogFile, type LogFileTrouble } from './log-file.js';

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
  /** The log file's last failed write (a full disk), while it lasts; undefined when it writes. */
  trouble(): LogFileTrouble | undefined;
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
  // Not pino.destination: a failed write there (ENOSPC) is an uncaught 'error' event, and its
  // exit flush retries it forever (see LogFile).
  const dest = new LogFile({ dest: file });
  const streams: pino.StreamEntry[] = [{ level: level as pino.Level, stream: dest }];
  const err = opts.stderr !== false ? new LogFile({ dest: 2 }) : undefined;
  if (err) streams.push({ level: level as pino.Level, stream: err });
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
  // What is buffered when the process exits (a crash included) is written if the disk takes it.
  const atExit = () => {
    dest.flushSync();
    err?.flushSync();
  };
  process.once('exit', atExit);
  const ready = Promise.resolve();
  return {
    logger: logger as unknown as Logger,
    file,
    ready,
    trouble: () => dest.trouble,
    close() {
      clearInterval(timer);
      process.removeListener('exit', atExit);
      dest.close();
      err?.flushSync();
    },
  };
}
