import { close, closeSync, openSync, write, writeSync } from 'node:fs';

/** Log bytes held in memory while the file cannot take them; beyond it new lines are counted and dropped. */
const DEFAULT_MAX_BUFFERED = 4 * 1024 * 1024;
/** After a failed write, the next try waits this long (or for the next line). */
const RETRY_MS = 1000;
/** Bytes one write call takes at most. */
const MAX_WRITE = 64 * 1024;

export interface LogFileInit {
  /** A path opened for appending (0600), or an open file descriptor (2 for stderr). */
  dest: string | number;
  /** Bytes buffered at most while writes fail (default 4 MiB). */
  maxBuffered?: number;
}

/** What a log destination that failed has to say: the last error and how much it gave up. */
export interface LogFileTrouble {
  /** errno code of the last failed write (ENOSPC, EIO, EDQUOT ...). */
  code: string;
  /** When writes began to fail (ms since the epoch). */
  at: number;
  /** Lines given up since the start because the buffer was full. */
  droppedLines: number;
}

/**
 * A pino destination for the daemon's log that a full or failing disk cannot stop. pino's own
 * (sonic-boom) raises a failed write as an 'error' event, which nobody can usefully handle
 * mid-request, and its exit flush retries an ENOSPC write forever: a full disk crashed the daemon
 * and then held the dying process (API unanswered, no exit) until killed. Here a failed write is
 * kept, retried a second later, and the lines beyond `maxBuffered` are counted and dropped; a
 * synchronous flush tries once and gives up. Logging is best effort; the node is not.
 */
export class LogFile {
  private fd: number;
  private readonly path: string | undefined;
  private readonly maxBuffered: number;
  private queue: Buffer[] = [];
  private queued = 0;
  private inflight: Buffer | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private reopenWanted = false;
  private closed = false;
  private dropped = 0;
  private droppedSinceWrite = 0;
  private failure: { code: string; at: number } | undefined;

  constructor(init: LogFileInit) {
    this.maxBuffered = init.maxBuffered ?? DEFAULT_MAX_BUFFERED;
    if (typeof init.dest === 'number') {
      this.fd = init.dest;
    } else {
      this.path = init.dest;
      this.fd = openSync(init.dest, 'a', 0o600);
    }
  }

  /** The last failed write, while the file does not take lines; undefined once a write succeeds again. */
  get trouble(): LogFileTrouble | undefined {
    return this.failure ? { ...this.failure, droppedLines: this.dropped } : undefined;
  }

  /** pino's stream interface: takes one serialized line. Never throws, never blocks. */
  write(line: string): boolean {
    if (this.closed) return false;
    const buf = Buffer.from(line);
    if (this.queued + buf.length > this.maxBuffered) {
      this.dropped++;
      this.droppedSinceWrite++;
      return false;
    }
    this.queue.push(buf);
    this.queued += buf.length;
    if (!this.inflight && !this.retryTimer) this.next();
    return true;
  }

  /** Opens the path again (after the file was rotated away), once the write in flight is done. */
  reopen(): void {
    if (this.path === undefined) return;
    this.reopenWanted = true;
    if (!this.inflight) this.swapFile();
  }

  /** Writes what is buffered now, synchronously, giving up at the first error (for exit). */
  flushSync(): void {
    if (this.fd < 0) return;
    try {
      while (this.queue.length > 0) {
        const buf = this.queue[0] as Buffer;
        const n = writeSync(this.fd, buf);
        this.queued -= n;
        if (n < buf.length) this.queue[0] = buf.subarray(n);
        else this.queue.shift();
      }
    } catch (err) {
      this.failed(err);
    }
  }

  /** Flushes once and closes the file (not stderr). */
  close(): void {
    if (this.closed) return;
    this.flushSync();
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.path !== undefined && !this.inflight && this.fd >= 0) {
      try {
        closeSync(this.fd);
      } catch {
        // already gone
      }
      this.fd = -1;
    }
  }

  private swapFile(): void {
    this.reopenWanted = false;
    if (this.path === undefined || this.closed) return;
    let fd: number;
    try {
      fd = openSync(this.path, 'a', 0o600);
    } catch (err) {
      // Keep writing to the old file: better a rotated name than nothing.
      this.failed(err);
      return;
    }
    const old = this.fd;
    this.fd = fd;
    close(old, () => undefined);
  }

  private next(): void {
    this.retryTimer = undefined;
    if (this.closed || this.fd < 0) return;
    if (this.droppedSinceWrite > 0 && this.queued + 200 <= this.maxBuffered) {
      const note = `${JSON.stringify({ level: 40, time: Date.now(), pid: process.pid, mod: 'log', msg: `${this.droppedSinceWrite} log lines dropped: the log file could not be written (${this.failure?.code ?? 'error'})` })}\n`;
      this.droppedSinceWrite = 0;
      const b = Buffer.from(note);
      this.queue.unshift(b);
      this.queued += b.length;
    }
    if (this.queue.length === 0) return;
    let chunk: Buffer;
    if (this.queue.length === 1 || (this.queue[0] as Buffer).length >= MAX_WRITE) {
      chunk = this.queue.shift() as Buffer;
    } else {
      const parts: Buffer[] = [];
      let size = 0;
      while (this.queue.length > 0 && size + (this.queue[0] as Buffer).length <= MAX_WRITE) {
        const b = this.queue.shift() as Buffer;
        parts.push(b);
        size += b.length;
      }
      chunk = Buffer.concat(parts, size);
    }
    this.inflight = chunk;
    write(this.fd, chunk, 0, chunk.length, null, (err, n) => {
      this.inflight = undefined;
      if (err) {
        // Not written: back to the front, tried again in a moment.
        this.queue.unshift(chunk);
        this.failed(err);
        if (this.closed) return;
        if (this.reopenWanted) this.swapFile();
        this.retryTimer = setTimeout(() => this.next(), RETRY_MS);
        this.retryTimer.unref();
        return;
      }
      this.queued -= n;
      if (n < chunk.length) this.queue.unshift(chunk.subarray(n));
      else this.failure = undefined;
      if (this.closed) {
        if (this.path !== undefined && this.fd >= 0) close(this.fd, () => undefined);
        this.fd = -1;
        return;
      }
      if (this.reopenWanted) this.swapFile();
      if (this.queue.length > 0 || this.droppedSinceWrite > 0) this.next();
    });
  }

  private failed(err: unknown): void {
    // `at` is when the trouble began: later failures of the same run only update the code.
    this.failure = { code: (err as NodeJS.ErrnoException).code ?? 'EIO', at: this.failure?.at ?? Date.now() };
  }
}
