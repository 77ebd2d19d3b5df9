import type { Redis } from 'ioredis';
import { newRedis } from '../util/lazy.js';
import { type Envelope, fieldsFromArray, fromStreamFields, toStreamFields } from '../envelope/index.js';
import { WeftError } from '../errors/index.js';
import type { Logger } from '../util/logger.js';
import type { Bus, BusEntry } from './bus.js';

export interface RedisBusInit {
  url: string;
  /** Stream name (default `weft:events`). */
  stream?: string;
  /** Consumer group (default `weft-pipeline`). */
  group?: string;
  /** Consumer name inside the group (the computer name). */
  consumer: string;
  /** How long append() waits for Redis before failing (ms, default 10000). */
  appendTimeoutMs?: number;
  /** Trim acknowledged entries from the stream (default true). */
  trim?: boolean;
}

type StreamEntries = Array<[string, string[] | null]>;

/**
 * Entries of the first stream in an XREAD/XREADGROUP reply, whichever protocol the client
 * speaks: RESP2 answers `[[key, entries]]`, RESP3 a map that arrives as `[key, entries]`.
 */
export function streamEntries(reply: unknown): StreamEntries {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  if (typeof reply[0] === 'string') return (reply[1] as StreamEntries | undefined) ?? [];
  return ((reply[0] as [string, StreamEntries])[1] as StreamEntries | undefined) ?? [];
}

/**
 * The Redis bus: emit() XADDs one flat entry per envelope (pipelined); the processor reads
 * with a consumer group, first its own pending entries (left by a crash), then new ones, and
 * XACKs only after the batch committed. When Redis restarts empty, the group is recreated.
 * Trimming only removes entries below the group's oldest pending one.
 */
export class RedisBus implements Bus {
  readonly kind = 'redis' as const;
  readonly stream: string;
  readonly group: string;
  private cmd: Redis | undefined;
  private reader: Redis | undefined;
  private stopped = true;
  private readingPending = true;
  private appended = 0;
  private acked = 0;
  private lastTrimAt = 0;
  private backoffMs = 0;
  /** Called after the consumer group had to be recreated (Redis restarted empty). */
  onRecreated: (() => void) | undefined;

  constructor(
    private readonly init: RedisBusInit,
    private readonly logger: Logger,
  ) {
    this.stream = init.stream ?? 'weft:events';
    this.group = init.group ?? 'weft-pipeline';
  }

  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    this.readingPending = true;
    const opts = { lazyConnect: true, maxRetriesPerRequest: null, enableAutoPipelining: true } as const;
    this.cmd = await newRedis(this.init.url, opts);
    this.reader = await newRedis(this.init.url, { lazyConnect: true, maxRetriesPerRequest: null });
    for (const c of [this.cmd, this.reader]) c.on('error', (err: Error) => this.logger.debug({ err: err.message }, 'redis'));
    try {
      await Promise.all([this.cmd.connect(), this.reader.connect()]);
      await this.ensureGroup();
    } catch (err) {
      this.cmd.disconnect();
      this.reader.disconnect();
      this.stopped = true;
      throw new WeftError('WEFT_BUS', `cannot reach Redis at ${redactUrl(this.init.url)}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.reader?.disconnect();
    await this.cmd?.quit().catch(() => undefined);
  }

  async append(envs: readonly Envelope[]): Promise<void> {
    if (envs.length === 0) return;
    const cmd = this.cmd;
    if (!cmd || this.stopped) throw new WeftError('WEFT_STOPPED', 'bus is stopped');
    const p = cmd.pipeline();
    for (const env of envs) p.xadd(this.stream, '*', ...toStreamFields(env));
    const timeoutMs = this.init.appendTimeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    const res = await Promise.race([
      p.exec(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new WeftError('WEFT_BUS', `Redis did not accept the events within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    for (const [err] of res ?? []) {
      if (err) throw new WeftError('WEFT_BUS', `XADD to ${this.stream} failed: ${err.message}`, { cause: err });
    }
    this.appended += envs.length;
  }

  async next(max: number): Promise<BusEntry[]> {
    while (!this.stopped) {
      const reader = this.reader as Redis;
      try {
        const id = this.readingPending ? '0' : '>';
        const args: Array<string | number> = ['GROUP', this.group, this.init.consumer, 'COUNT', max];
        if (!this.readingPending) args.push('BLOCK', 1000);
        args.push('STREAMS', this.stream, id);
        const entries = streamEntries(await reader.call('XREADGROUP', ...args));
        this.backoffMs = 0;
        if (this.readingPending && entries.length === 0) {
          this.readingPending = false;
          continue;
        }
        if (entries.length === 0) continue;
        return entries.map(([entryId, arr]) => this.toEntry(entryId, arr));
      } catch (err) {
        if (this.stopped) return [];
        const msg = (err as Error).message ?? String(err);
        if (msg.includes('NOGROUP')) {
          this.logger.warn({ stream: this.stream }, 'consumer group missing (Redis restarted?): recreating it');
          await this.ensureGroup().catch(() => undefined);
          this.readingPending = true;
          this.onRecreated?.();
        } else {
          this.logger.warn({ err: msg }, 'reading the Redis bus failed; retrying');
        }
        this.backoffMs = Math.min(Math.max(this.backoffMs * 2, 50), 2000);
        await new Promise((r) => setTimeout(r, this.backoffMs));
      }
    }
    return [];
  }

  private toEntry(entryId: string, arr: string[] | null): BusEntry {
    // A pending entry deleted by a trim comes back with null fields.
    if (!arr) return { position: entryId, error: 'entry was deleted from the stream', raw: '' };
    const fields = fieldsFromArray(arr);
    try {
      return { position: entryId, envelope: fromStreamFields(fields, entryId), logged: false };
    } catch (err) {
      return { position: entryId, error: (err as Error).message, raw: JSON.stringify(fields) };
    }
  }

  rewind(): void {
    this.readingPending = true;
  }

  async committed(entries: readonly BusEntry[]): Promise<void> {
    if (entries.length === 0 || !this.cmd) return;
    const ids = entries.map((e) => e.position);
    try {
      await this.cmd.xack(this.stream, this.group, ...ids);
      this.acked += ids.length;
      if (this.init.trim !== false && this.acked - this.lastTrimAt >= 10_000) {
        this.lastTrimAt = this.acked;
        await this.trim(ids[ids.length - 1] as string);
      }
    } catch (err) {
      // Not fatal: the entries come back as pending and the log's id check skips them.
      this.logger.warn({ err: (err as Error).message }, 'XACK failed; entries will be redelivered and skipped');
    }
  }

  /** Removes entries below both the oldest pending entry and the last acknowledged one. */
  private async trim(lastAcked: string): Promise<void> {
    const cmd = this.cmd as Redis;
    const summary = (await cmd.xpending(this.stream, this.group)) as [number, string | null, string | null, unknown];
    const minPending = summary[0] > 0 ? summary[1] : null;
    const floor = minPending && compareIds(minPending, lastAcked) < 0 ? minPending : lastAcked;
    await cmd.xtrim(this.stream, 'MINID', floor);
  }

  private async ensureGroup(): Promise<void> {
    try {
      await (this.cmd as Redis).xgroup('CREATE', this.stream, this.group, '0', 'MKSTREAM');
    } catch (err) {
      if (!(err as Error).message.includes('BUSYGROUP')) throw err;
    }
  }

  stats(): { appended: number } {
    return { appended: this.appended };
  }
}

/** Compares two stream ids (`ms-seq`). */
export function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am !== bm ? am - bm : as - bs;
}

/** Hides a password in a Redis URL for messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):([^@/]*)@/, '//$1:***@');
}
