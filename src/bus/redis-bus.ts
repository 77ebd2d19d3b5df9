import { WEFT_ENTRY_MARK } from '../config/index.js';
import { type Envelope, fieldsFromArray, fromStreamFields, toStreamFields } from '../envelope/index.js';
import { WeftError } from '../errors/index.js';
import { connectRedis, createRedisClient, quitWithin, type RedisClient, redactUrl, runScript, topologyHint, type TrimCursor, trimOwnStream, unlessAborted } from '../redis/index.js';
import type { EmitJournal, Store } from '../store/index.js';
import { type Clock, every, linkedSignal, type Logger, pause } from '../util/index.js';
import type { Bus, BusEntry, BusStats } from './bus.js';

export interface RedisBusInit {
  /** `redis://host:port`; with `cluster`, the seed nodes, comma separated. */
  url: string;
  /**
   * `url` names a Redis Cluster (default false). Every command of the bus touches its one
   * stream, so the cluster serves it from that stream's slot.
   */
  cluster?: boolean;
  /** Stream name (the daemon's default is `{prefix}events:{computer}`). */
  stream: string;
  /** Consumer group (the daemon's default is `{prefix}pipeline:{computer}`). */
  group: string;
  /** Consumer name inside the group (the computer name). */
  consumer: string;
  /**
   * Whether Weft may delete its own acknowledged entries from this stream (default true).
   * The daemon turns it off for streams outside its prefix (e.g. `teleclaude:events`).
   */
  trim?: boolean;
  /** How long one XADD batch may take before it counts as failed and is retried (ms, default 5000). */
  appendTimeoutMs?: number;
  /** Journal entries not applied this long after they went on the stream are put on it again (ms, default 10 s). */
  resendAfterMs?: number;
  /** Committed events waiting in memory for Redis, at most (default 50,000; beyond, the journal is read back). */
  maxQueued?: number;
  /** How often own acknowledged entries are deleted (ms, default 60 s; 0: never). */
  trimEveryMs?: number;
  /**
   * Events that must not be written to Redis at all (raw-class data: a shared Redis is another
   * machine's memory). They go from the journal to the pipeline on this node's own lane.
   */
  keepLocal?: (env: Envelope) => boolean;
}

/** Position of an entry on the local lane (it has no stream id and is never acknowledged in Redis). */
const LOCAL = 'local';

export interface RedisBusDeps {
  store: Store;
  journal: EmitJournal;
  clock: Clock;
  logger: Logger;
}

type StreamEntries = Array<[string, string[] | null]>;

/**
 * Entries of the first stream in an XREAD/XREADGROUP reply, whichever protocol the client
 * speaks: RESP2 answers `[[key, entries]]`, RESP3 a map that arrives as `[key, entries]`.
 */
/** Whether a stream entry carries the Weft mark (this bus wrote it). */
function isMarked(arr: string[]): boolean {
  return fieldOf(arr, WEFT_ENTRY_MARK.field) === WEFT_ENTRY_MARK.value;
}

/** One field of a stream entry's flat field list, without building the whole map. */
function fieldOf(arr: string[], name: string): string | undefined {
  for (let i = 0; i + 1 < arr.length; i += 2) if (arr[i] === name) return arr[i + 1];
  return undefined;
}

export function streamEntries(reply: unknown): StreamEntries {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  if (typeof reply[0] === 'string') return (reply[1] as StreamEntries | undefined) ?? [];
  return ((reply[0] as [string, StreamEntries])[1] as StreamEntries | undefined) ?? [];
}

/** How long an XACK may go unanswered before the batch moves on without it (ms). */
const XACK_TIMEOUT_MS = 2000;

/** Events waiting for the pipeline that an emit waits behind to be applied at once (about one batch). */
const CATCH_UP_ROWS = 1024;

/** Entries per run of the add-own script (a run holds Redis for its XADDs: about a millisecond). */
const SCRIPT_BATCH = 256;

/** A scan cutoff that takes every journal row. */
const ALL = Number.MAX_SAFE_INTEGER;

/** Ids of entries this bus left alone (unparseable, not Weft's), remembered so they are counted once. */
const MAX_REMEMBERED_FOREIGN = 10_000;

/**
 * The Redis bus. An append is durable once its journal commit (SQLite) is: the producer is
 * answered then, whatever Redis is doing, and a background pump puts the journal on the
 * stream (pipelined XADD; retried with backoff while Redis is down; everything again after
 * Redis restarted empty). The processor reads with a consumer group, its own pending
 * entries first (left by a crash), and XACKs after its batch committed; the journal row
 * goes in the same transaction as the event's effects. An emit that finds the pipeline
 * caught up is applied in the commit that journals it (`stageApplied`): its row then only
 * waits to go on the stream, and the copy read back is acknowledged and skipped.
 *
 * Entries that are not envelopes are recorded as rejections once and left pending,
 * unacknowledged; trimming deletes only entries this bus wrote (they carry the Weft mark)
 * that every group on the stream has acknowledged, so other programs' data is never lost.
 */
export class RedisBus implements Bus {
  readonly kind = 'redis' as const;
  readonly stream: string;
  readonly group: string;
  readonly description: string;
  private cmd: RedisClient | undefined;
  private reader: RedisClient | undefined;
  private stopped = true;
  /** Where re-reading this consumer's pending entries continues; undefined: read new ones. */
  private pendingCursor: string | undefined = '0';
  private appended = 0;
  private readBackoffMs = 0;
  private readonly foreign = new Set<string>();
  private foreignCount = 0;
  /** Copies of already-applied events skipped on reading (the journal re-sends at a restart or after a timeout). */
  private skippedCopies = 0;
  private readonly trimCursor: TrimCursor = { next: '-' };
  private stopTrimming: (() => void) | undefined;
  private stopResending: (() => void) | undefined;
  // The pump: committed events on their way to the stream (`applied`: the pipeline applied it
  // in the commit that journaled it; its row goes once the event is on the stream).
  private queue: Array<{ envelope: Envelope; applied: boolean }> = [];
  /** Read the journal back from the start (after a failure, at start, after Redis lost the stream). */
  private scan: { cutoff: number; afterSeq: number } | undefined;
  private pumping: Promise<void> | undefined;
  private lastError: string | undefined;
  private failingSince: number | undefined;
  private connectionError: string | undefined;
  /** Raw-class events on their way to the pipeline without touching Redis. */
  private local: Envelope[] = [];
  private localHandedOut: Envelope[] = [];
  private localWake: (() => void) | undefined;
  /** A stream read still running when the local lane had something first. */
  private inflightRead: Promise<StreamEntries> | undefined;
  /** Aborted by stop(): wakes a read that waits on a Redis that is not there. */
  private abort = new AbortController();

  constructor(
    private readonly init: RedisBusInit,
    private readonly deps: RedisBusDeps,
  ) {
    this.stream = init.stream;
    this.group = init.group;
    this.description = `redis stream ${init.stream}`;
  }

  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    this.abort = new AbortController();
    this.pendingCursor = '0';
    // Commands fail at once while Redis is away (the pump retries them) instead of piling up.
    const cluster = this.init.cluster === true;
    this.cmd = await createRedisClient(this.init.url, { cluster, lazyConnect: true, maxRetriesPerRequest: null, enableOfflineQueue: false, enableAutoPipelining: true });
    this.reader = await createRedisClient(this.init.url, { cluster, lazyConnect: true, maxRetriesPerRequest: null });
    for (const c of [this.cmd, this.reader]) {
      c.on('error', (err: Error) => {
        // Kept for status: while the client reconnects, why it cannot (a password changed, say).
        this.connectionError = err.message;
        this.deps.logger.debug({ err: err.message }, 'redis');
      });
      c.on('ready', () => {
        this.connectionError = undefined;
      });
    }
    try {
      await Promise.all([connectRedis(this.cmd, this.init.url), connectRedis(this.reader, this.init.url)]);
      await this.ensureGroup();
    } catch (err) {
      this.cmd.disconnect();
      this.reader.disconnect();
      this.stopped = true;
      if (err instanceof WeftError) throw err;
      const t = topologyHint(err);
      throw new WeftError(t?.code ?? 'WEFT_BUS', `cannot reach Redis at ${redactUrl(this.init.url)}: ${(err as Error).message}${t ? `: ${t.hint}` : ''}`, {
        cause: err,
      });
    }
    // Whatever the journal holds from before this start goes on the stream again.
    this.scan = { cutoff: ALL, afterSeq: 0 };
    this.kick();
    const resendAfter = this.init.resendAfterMs ?? 10_000;
    this.stopResending = every(
      this.deps.clock,
      Math.max(50, Math.floor(resendAfter / 2)),
      () => {
        if (this.scan) return;
        this.scan = { cutoff: this.deps.clock.now() - resendAfter, afterSeq: 0 };
        this.kick();
      },
      { unref: true },
    );
    const trimEvery = this.init.trimEveryMs ?? 60_000;
    if (this.init.trim !== false && trimEvery > 0) {
      this.stopTrimming = every(this.deps.clock, trimEvery, () => void this.trim(), { unref: true });
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stopResending?.();
    this.stopTrimming?.();
    this.abort.abort(new WeftError('WEFT_STOPPED', 'bus is stopping'));
    this.wakeLocal();
    this.reader?.disconnect();
    // An XADD in flight is abandoned after its own timeout: its events stay in the journal.
    await this.pumping;
    await quitWithin(this.cmd);
  }

  async append(envs: readonly Envelope[]): Promise<void> {
    if (envs.length === 0) return;
    if (this.stopped) throw new WeftError('WEFT_STOPPED', 'bus is stopped');
    const { store, journal, clock } = this.deps;
    await store.write(() => {
      const now = clock.now();
      for (const e of envs) journal.add(e, now);
    });
    this.appended += envs.length;
    this.flush(envs);
  }

  stage(env: Envelope): void {
    this.deps.journal.add(env, this.deps.clock.now());
  }

  flush(all: readonly Envelope[]): void {
    if (all.length === 0 || this.stopped) return;
    const keep = this.init.keepLocal;
    let staged: readonly Envelope[] = all;
    if (keep) {
      const remote: Envelope[] = [];
      staged = remote;
      for (const e of all) {
        if (!keep(e)) remote.push(e);
        else if (this.local.length < (this.init.maxQueued ?? 50_000)) this.local.push(e);
        // else: the journal keeps it and the next full scan hands it over
        else if (this.scan?.cutoff !== ALL) this.scan = { cutoff: ALL, afterSeq: 0 };
      }
      if (staged.length < all.length) this.wakeLocal();
    }
    this.enqueue(staged, false);
  }

  /** Committed journal rows to put on the stream: queued in memory, or left to a full scan. */
  private enqueue(envs: readonly Envelope[], applied: boolean): void {
    if (this.queue.length + envs.length > (this.init.maxQueued ?? 50_000)) {
      // Too many waiting in memory: the journal has them, a full scan sends them.
      if (this.scan?.cutoff !== ALL) this.scan = { cutoff: ALL, afterSeq: 0 };
    } else if (this.scan?.cutoff !== ALL) {
      // (A full scan, after a failure or at start, reaches these rows by itself; a periodic
      // resend scan only takes rows older than resendAfterMs, so new ones are queued.)
      for (const envelope of envs) this.queue.push({ envelope, applied });
    }
    this.kick();
  }

  /**
   * Nothing journaled waits for the pipeline and no raw-class event waits on the local lane:
   * an emit applied now passes none of this node's earlier events. (Entries other programs
   * wrote to the stream are applied as they are read, before or after it: no order holds
   * between independent producers.)
   */
  caughtUp(): boolean {
    return !this.stopped && this.local.length === 0 && this.localHandedOut.length === 0 && this.deps.journal.waitingAtMost(0);
  }

  /** Redis takes and gives events, and at most one batch of the pipeline's waits in the journal. */
  catchesUpSoon(): boolean {
    return !this.stopped && this.lastError === undefined && this.deps.journal.waitingAtMost(CATCH_UP_ROWS);
  }

  /**
   * Inside the transaction that applies this node's new events at once (`Processor.processEmitted`):
   * each is journaled as applied, to go on the stream for its other readers after the commit.
   * Raw-class events are not journaled: they never go to Redis.
   */
  stageApplied(envs: readonly Envelope[], bodies?: readonly string[]): void {
    const now = this.deps.clock.now();
    envs.forEach((e, i) => {
      if (!this.init.keepLocal?.(e)) this.deps.journal.add(e, now, true, bodies?.[i]);
    });
  }

  /** After that commit: the pump puts them on the stream (the journal has them if it cannot). */
  flushApplied(envs: readonly Envelope[]): void {
    if (envs.length === 0 || this.stopped) return;
    this.appended += envs.length;
    const keep = this.init.keepLocal;
    this.enqueue(keep ? envs.filter((e) => !keep(e)) : envs, true);
  }

  private kick(): void {
    if (this.pumping || this.stopped) return;
    this.pumping = this.pump().finally(() => {
      this.pumping = undefined;
      if (!this.stopped && (this.queue.length > 0 || this.scan)) this.kick();
    });
  }

  private async pump(): Promise<void> {
    const { journal, store, clock, logger } = this.deps;
    let backoff = 0;
    while (!this.stopped) {
      const scan = this.scan;
      let batch: Array<{ envelope: Envelope; applied: boolean }>;
      let rows: Array<{ seq: number; envelope: Envelope; applied: boolean }> = [];
      if (scan) {
        rows = journal.stale(scan.cutoff, scan.afterSeq, 1000);
        if (rows.length === 0) {
          this.scan = undefined;
          continue;
        }
        batch = [];
        for (const r of rows) {
          if (r.applied) batch.push(r);
          else if (this.init.keepLocal?.(r.envelope)) {
            if (this.local.length < (this.init.maxQueued ?? 50_000)) this.local.push(r.envelope);
          } else batch.push(r);
        }
        this.wakeLocal();
        if (batch.length === 0) {
          scan.afterSeq = (rows[rows.length - 1] as { seq: number }).seq;
          continue;
        }
      } else {
        if (this.queue.length === 0) return;
        batch = this.queue.splice(0, 1000);
      }
      try {
        await this.xadd(batch);
        backoff = 0;
        if (this.lastError) {
          logger.info({ stream: this.stream }, 'Redis takes events again; the journal is being put on the stream');
          this.lastError = undefined;
          this.failingSince = undefined;
        }
        const done: string[] = [];
        for (const b of batch) if (b.applied) done.push(b.envelope.id);
        if (scan && rows.length > 0) {
          const first = (rows[0] as { seq: number }).seq;
          const last = (rows[rows.length - 1] as { seq: number }).seq;
          scan.afterSeq = last;
          await store.write(() => {
            journal.touch(first, last, clock.now());
            journal.sent(done);
          });
        } else if (done.length > 0) {
          // Losing this in a crash only puts them on the stream again (a copy, skipped on reading).
          void store.writeSoon(() => journal.sent(done));
        }
      } catch (err) {
        if (this.stopped) return;
        const msg = (err as Error).message;
        if (this.lastError === undefined) {
          logger.warn({ err: msg, journal: journal.count() }, 'Redis does not take events; they wait in the emit journal (emits are still accepted)');
        }
        this.lastError = msg;
        this.failingSince ??= this.deps.clock.now();
        // Everything committed so far is in the journal: read it back once Redis answers.
        this.queue = [];
        this.scan = { cutoff: ALL, afterSeq: 0 };
        backoff = Math.min(Math.max(backoff * 2, 50), 2000);
        await pause(backoff, this.abort.signal, this.deps.clock);
      }
    }
  }

  private async xadd(batch: ReadonlyArray<{ envelope: Envelope; applied: boolean }>): Promise<void> {
    const cmd = this.cmd as RedisClient;
    const timeoutMs = this.init.appendTimeoutMs ?? 5000;
    let timer: NodeJS.Timeout | undefined;
    const within = <T>(reply: Promise<T>): Promise<T> =>
      Promise.race([
        reply,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new WeftError('WEFT_BUS', `Redis did not accept the events within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]).finally(() => clearTimeout(timer));
    if (batch.some((b) => b.applied)) {
      // Events applied at emit: the script also moves this node's group past them when it has
      // read everything before them (src/redis/add-own-1.lua), sparing the read back.
      for (let i = 0; i < batch.length; i += SCRIPT_BATCH) {
        const args: Array<string | number> = [this.group];
        for (const { envelope, applied } of batch.slice(i, i + SCRIPT_BATCH)) {
          const fields = toStreamFields(envelope);
          args.push(applied ? '1' : '0', fields.length + 2, WEFT_ENTRY_MARK.field, WEFT_ENTRY_MARK.value);
          for (const f of fields) args.push(f);
        }
        try {
          this.skippedCopies += Number(await within(runScript(cmd, 'add-own', [this.stream], args)));
        } catch (err) {
          if (err instanceof WeftError) throw err;
          throw new WeftError('WEFT_BUS', `XADD to ${this.stream} failed: ${(err as Error).message}`, { cause: err });
        }
      }
      return;
    }
    const p = cmd.pipeline();
    for (const { envelope: env } of batch) p.xadd(this.stream, '*', WEFT_ENTRY_MARK.field, WEFT_ENTRY_MARK.value, ...toStreamFields(env));
    const res = await within(p.exec());
    for (const [err] of res ?? []) {
      if (err) throw new WeftError('WEFT_BUS', `XADD to ${this.stream} failed: ${err.message}`, { cause: err });
    }
  }

  private wakeLocal(): void {
    const w = this.localWake;
    this.localWake = undefined;
    w?.();
  }

  /** Up to `max` events of the local lane, remembered until committed (a rewind hands them out again). */
  private takeLocal(max: number): BusEntry[] {
    const out = this.local.splice(0, max);
    this.localHandedOut.push(...out);
    return out.map((envelope) => ({ position: LOCAL, envelope, logged: false }));
  }

  async next(max: number): Promise<BusEntry[]> {
    while (!this.stopped) {
      if (this.local.length > 0) return this.takeLocal(max);
      const reader = this.reader as RedisClient;
      try {
        const pending = this.pendingCursor;
        let read = this.inflightRead;
        if (!read) {
          const args: Array<string | number> = ['GROUP', this.group, this.init.consumer, 'COUNT', max];
          if (pending === undefined) args.push('BLOCK', 1000);
          args.push('STREAMS', this.stream, pending ?? '>');
          read = unlessAborted(reader.call('XREADGROUP', ...args), this.abort.signal).then(streamEntries);
          // It may be left running when the local lane wins (and then rejected by a stop).
          read.catch(() => undefined);
          this.inflightRead = read;
        }
        // A local event does not wait for the blocked read; the read's reply is taken next time.
        const localReady = new Promise<'local'>((resolve) => {
          this.localWake = () => resolve('local');
        });
        const first = await Promise.race([read, localReady]);
        if (first === 'local') continue;
        this.localWake = undefined;
        this.inflightRead = undefined;
        const entries = first;
        this.readBackoffMs = 0;
        if (pending !== undefined) {
          // Pending entries come back in id order; continue after the last one (some stay
          // pending for good: entries that are not Weft's are never acknowledged).
          const last = entries[entries.length - 1];
          this.pendingCursor = last ? last[0] : undefined;
        }
        const fresh = this.withoutApplied(entries.filter(([entryId]) => !this.foreign.has(entryId)));
        if (fresh.length > 0) return fresh;
      } catch (err) {
        this.inflightRead = undefined;
        this.localWake = undefined;
        if (this.stopped) return [];
        const msg = (err as Error).message ?? String(err);
        if (msg.includes('NOGROUP')) {
          this.deps.logger.warn({ stream: this.stream }, 'consumer group missing (Redis restarted empty?): recreating it and putting the journal on the stream again');
          await this.ensureGroup().catch(() => undefined);
          this.pendingCursor = '0';
          this.scan = { cutoff: ALL, afterSeq: 0 };
          this.kick();
        } else {
          this.deps.logger.warn({ err: msg }, 'reading the Redis bus failed; retrying');
        }
        this.readBackoffMs = Math.min(Math.max(this.readBackoffMs * 2, 50), 2000);
        await pause(this.readBackoffMs, this.abort.signal, this.deps.clock);
      }
    }
    return [];
  }

  /**
   * Drops (and acknowledges) entries this bus wrote whose event no longer waits in its journal:
   * it was applied already (at emit, or this is a copy the journal put on the stream again at
   * a restart or after `resendAfterMs`). Entries other producers wrote are never in the journal
   * and pass. A copy is told by its `id` field, before any parsing.
   */
  private withoutApplied(entries: StreamEntries): BusEntry[] {
    const ownIds = new Map<string, string>();
    for (const [entryId, arr] of entries) {
      const id = arr && isMarked(arr) ? fieldOf(arr, 'id') : undefined;
      if (id) ownIds.set(entryId, id);
    }
    const waiting = ownIds.size > 0 ? this.deps.journal.present([...ownIds.values()]) : undefined;
    const out: BusEntry[] = [];
    const applied: string[] = [];
    for (const [entryId, arr] of entries) {
      const id = ownIds.get(entryId);
      if (id !== undefined && !waiting?.has(id)) applied.push(entryId);
      else out.push(this.toEntry(entryId, arr));
    }
    if (applied.length === 0) return out;
    this.skippedCopies += applied.length;
    void this.cmd?.xack(this.stream, this.group, ...applied).catch((err: Error) => this.deps.logger.debug({ err: err.message }, 'XACK of applied copies failed; they come back and are skipped again'));
    return out;
  }

  private toEntry(entryId: string, arr: string[] | null): BusEntry {
    // A pending entry deleted by someone else comes back with null fields.
    if (!arr) return { position: entryId, error: 'entry was deleted from the stream', raw: '' };
    const fields = fieldsFromArray(arr);
    try {
      return { position: entryId, envelope: fromStreamFields(fields, entryId), logged: false };
    } catch (err) {
      const field = (err as WeftError).details?.field;
      return { position: entryId, error: (err as Error).message, raw: JSON.stringify(fields), ...(typeof field === 'string' ? { field } : {}) };
    }
  }

  consumed(entries: readonly BusEntry[]): void {
    const ids: string[] = [];
    for (const e of entries) if ('envelope' in e) ids.push(e.envelope.id);
    this.deps.journal.remove(ids);
  }

  rewind(): void {
    this.pendingCursor = '0';
    // Local events of the batch that rolled back go first again.
    this.local = [...this.localHandedOut, ...this.local];
    this.localHandedOut = [];
  }

  async committed(entries: readonly BusEntry[]): Promise<void> {
    if (entries.length === 0 || !this.cmd) return;
    if (entries.every((e) => e.position === LOCAL)) {
      this.localHandedOut = [];
      return;
    }
    const ids: string[] = [];
    for (const e of entries) {
      if (e.position === LOCAL) continue;
      if ('envelope' in e) ids.push(e.position);
      else this.rememberForeign(e.position);
    }
    this.localHandedOut = [];
    if (ids.length === 0) return;
    try {
      // A stop or XACK_TIMEOUT_MS ends the wait: an XACK written just before the connection died
      // is re-sent by ioredis only once Redis is back, and the pipeline loop (and a stop) would
      // wait for it. An entry left unacknowledged stays pending; a restart reads it and skips it.
      const bound = linkedSignal([this.abort.signal], XACK_TIMEOUT_MS);
      await unlessAborted(this.cmd.xack(this.stream, this.group, ...ids), bound.signal).finally(bound.release);
    } catch (err) {
      // Not fatal: the entries come back as pending and the log's id check skips them.
      this.deps.logger.warn({ err: (err as Error).message }, 'XACK failed; entries will be redelivered and skipped');
    }
  }

  private rememberForeign(id: string): void {
    if (this.foreign.has(id)) return;
    this.foreignCount++;
    if (this.foreign.size >= MAX_REMEMBERED_FOREIGN) this.foreign.delete(this.foreign.values().next().value as string);
    this.foreign.add(id);
  }

  /** Deletes this bus's own entries that every group has acknowledged; returns how many. */
  async trim(): Promise<number> {
    const cmd = this.cmd;
    if (!cmd || this.stopped || cmd.status !== 'ready') return 0;
    try {
      return await trimOwnStream(cmd, this.stream, this.trimCursor);
    } catch (err) {
      this.deps.logger.debug({ err: (err as Error).message }, 'trimming the bus stream failed');
      return 0;
    }
  }

  private async ensureGroup(): Promise<void> {
    try {
      await (this.cmd as RedisClient).xgroup('CREATE', this.stream, this.group, '0', 'MKSTREAM');
    } catch (err) {
      if (!(err as Error).message.includes('BUSYGROUP')) throw err;
    }
  }

  /** Journaled events not yet applied (the journal row goes in the batch that applies it), as committed. */
  pending(): number {
    return this.deps.journal.count({ committed: true });
  }

  stats(): BusStats {
    return {
      appended: this.appended,
      depth: this.queue.length,
      journal: this.deps.journal.count(),
      unsent: this.deps.journal.unsent(),
      foreign: this.foreignCount,
      skippedCopies: this.skippedCopies,
      ...(this.lastError ? { lastError: this.lastError, failingSince: this.failingSince } : {}),
      ...(this.cmd ? { connection: this.cmd.status } : {}),
      ...(this.connectionError && this.cmd?.status !== 'ready' ? { connectionError: this.connectionError } : {}),
    };
  }
}

/** Compares two stream ids (`ms-seq`). */
export function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am !== bm ? am - bm : as - bs;
}
