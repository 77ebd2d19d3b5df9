/**
 * The Redis provider: each node reads its inbox stream `{prefix}messages:{computer}` (default
 * `weft:messages:{computer}`) through a consumer group; senders XADD to the peer's inbox.
 * Entries are hashes of `weft` (the mark: `1`), `type` (`mesh_event` for event frames,
 * `mesh_frame` for others), `from` and `payload` (the frame bytes); `weft mesh decode` prints one.
 *
 * Delivery rules:
 * - XACK happens only when the consumer calls `ack()` (after its local commit).
 * - On start the reader first re-reads its own pending entries (a restart after a crash);
 *   entries left pending by another consumer for `claimIdleMs` are taken over with XAUTOCLAIM.
 * - Entries without the mark are another program's: never delivered, never acknowledged,
 *   never deleted; they are counted (`foreignEntries` in telemetry).
 * - `trim()` deletes only marked entries every group on the inbox has acknowledged.
 * - When Redis comes back empty, the NOGROUP error recreates stream and group (from the
 *   stream's start, so a frame a sender wrote before the group existed is still delivered),
 *   with backoff, and reports `inbox.recreated`; senders re-send from their outboxes.
 *
 * On a Redis Cluster (`cluster: true`, `url` a seed list) the inbox is
 * `{prefix}{computer}:messages`: every command touches one stream, so it goes to the master
 * of that stream's slot. When that master fails, its replica takes over; entries it had not
 * replicated yet are gone, but senders keep every frame in their outbox until the receiver's
 * signed ack, so they are sent again, and the replay guard drops what arrives twice.
 */
import { DEFAULT_REDIS_PREFIX, type RedisKeys, redisKeys, WEFT_ENTRY_MARK } from '../config/index.js';
import { connectRedis, createRedisClient, quitWithin, type RedisClient, redactUrl, topologyHint, type TrimCursor, trimOwnStream, unlessAborted } from '../redis/index.js';
import { after, every, FailureStreak } from '../util/index.js';
import { requireDeps, WeftError } from '../errors/index.js';
import { TransportError } from './errors.js';
import { DEFAULT_MAX_FRAME_SIZE } from './frame.js';
import { frameTypeHint } from './frame-codec.js';
import { BoundedQueue, sleep } from './queue.js';
import { ProviderBase } from './provider-base.js';
import type {
  InboundFrame,
  Provider,
  ProviderDeps,
  TransportCap,
} from './transport.js';

export interface RedisProviderInit {
  /** `redis://host:port`; with `cluster`, the seed nodes, comma separated. */
  url: string;
  /** `url` names a Redis Cluster: hash-tagged key names and a cluster client (default false). */
  cluster?: boolean;
  /** This node's computer name; its inbox is `{prefix}messages:{computer}`. */
  computer: string;
  /** Prefix of every key (default `weft:`). */
  prefix?: string;
  /** Consumer group name (default `{prefix}mesh`). */
  group?: string;
  /** Consumer name inside the group (default: the computer name, so a restart finds its pending entries). */
  consumer?: string;
  /** Entries read per XREADGROUP (default 256). */
  batch?: number;
  /** XREADGROUP BLOCK time, ms (default 1000). */
  blockMs?: number;
  /** Frames handed out and not yet acknowledged, at most (default 1024). */
  maxInflight?: number;
  /** Reclaim entries another consumer left pending this long, ms (default 30 s). */
  claimIdleMs?: number;
  /** Run trim() this often, ms (default 60 s; 0 disables). */
  trimEveryMs?: number;
  /** Backoff bounds after errors, ms (default 100 .. 5000). */
  backoff?: { minMs: number; maxMs: number };
  maxFrameSize?: number;
}

/** The inbox stream name of a computer (`cluster`: the hash-tagged name a Redis Cluster uses). */
export function inboxStream(computer: string, prefix = DEFAULT_REDIS_PREFIX, cluster = false): string {
  return redisKeys(prefix, computer, { cluster }).inbox(computer);
}

/** Ids of foreign entries remembered so they are counted once and never re-claimed. */
const MAX_REMEMBERED_FOREIGN = 10_000;
/**
 * How long an XACK may go unanswered. A command written just before the connection died is
 * re-sent by ioredis only once Redis is back, so an ack could hold the receive loop (and a
 * stop) for as long as Redis is away; unacknowledged entries are redelivered and the replay
 * guard drops them, so giving up is safe.
 */
const XACK_TIMEOUT_MS = 2000;
/** How long an XACK waits once the one before went unanswered. */
const XACK_AWAY_TIMEOUT_MS = 200;

/**
 * A Redis Streams provider.
 * @example
 * const p = redisProvider({ url: 'redis://127.0.0.1:6379', computer: 'mars' })({ logger, clock });
 * await p.start();
 */
export function redisProvider(init: RedisProviderInit): (deps: ProviderDeps) => Provider {
  return (deps) => new RedisProvider(init, deps);
}

type StreamEntry = [id: Buffer, fields: Buffer[] | null];

function fieldsOf(fields: Buffer[] | null): Map<string, Buffer> {
  const m = new Map<string, Buffer>();
  if (!fields) return m;
  for (let i = 0; i + 1 < fields.length; i += 2) m.set(fields[i]!.toString(), fields[i + 1]!);
  return m;
}

/**
 * Entries of a single-stream XREADGROUP reply: RESP2 gives [[key, entries]], RESP3 (ioredis 6
 * default) a map that ioredis flattens to [key, entries].
 */
function readReplyEntries(reply: unknown): StreamEntry[] {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  if (Array.isArray(reply[0])) return ((reply[0] as unknown[])[1] as StreamEntry[] | undefined) ?? [];
  return (reply[1] as StreamEntry[] | undefined) ?? [];
}

/** An inbox read's error, with what to do when the inbox's key is not a stream at all. */
function inboxReadError(err: unknown, stream: string): string {
  const msg = (err as Error).message;
  return /^WRONGTYPE/.test(msg)
    ? `${msg}: the key ${stream} holds something other than a stream, written by another program (Weft never deletes what it did not write): remove or rename that key`
    : msg;
}

function isNoGroup(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOGROUP');
}

class RedisProvider extends ProviderBase implements Provider {
  readonly name = 'redis';
  readonly caps: ReadonlySet<TransportCap> = new Set([
    'crc32c',
    'deflate',
    'aead',
    'reliable',
    'ordered',
    'durable',
  ]);
  private readonly stream: string;
  private readonly group: string;
  private readonly consumer: string;
  private readonly opts: Required<Omit<RedisProviderInit, 'group' | 'consumer'>>;
  private readonly keys: RedisKeys;
  private readonly foreign = new Set<string>();
  private foreignCount = 0;
  private readonly trimCursor: TrimCursor = { next: '-' };
  private reader: RedisClient | undefined;
  private writer: RedisClient | undefined;
  private state: 'idle' | 'started' | 'stopped' = 'idle';
  private loop: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private starting: Promise<void> | undefined;
  private readonly inflight = new Set<string>();
  private inflightWake: (() => void) | undefined;
  private stopTrimming: (() => void) | undefined;
  private readonly abort = new AbortController();
  /**
   * Reads of the inbox failing in a row. A node that cannot read its inbox hears nothing from
   * any peer: a key of another type in its place (WRONGTYPE), its slot's master down with its
   * replicas. The log said so every 5 s and `weft status` said 'problems: none'.
   */
  private readonly readStreak: FailureStreak;

  constructor(
    init: RedisProviderInit,
    private readonly deps: ProviderDeps,
  ) {
    super('redisProvider', deps);
    if (!init.url) throw new TransportError('TRANSPORT_MISSING_DEPENDENCY', 'redisProvider needs init.url');
    requireDeps('redisProvider', init, { computer: "this node's computer name" }, { code: 'TRANSPORT_MISSING_DEPENDENCY', of: 'init' });
    const keys = redisKeys(init.prefix ?? DEFAULT_REDIS_PREFIX, init.computer, { cluster: init.cluster === true });
    this.keys = keys;
    this.stream = keys.inbox(init.computer);
    this.group = init.group ?? keys.inboxGroup;
    this.consumer = init.consumer ?? init.computer;
    this.opts = {
      url: init.url,
      cluster: init.cluster === true,
      computer: init.computer,
      prefix: init.prefix ?? DEFAULT_REDIS_PREFIX,
      batch: init.batch ?? 256,
      blockMs: init.blockMs ?? 1000,
      maxInflight: init.maxInflight ?? 1024,
      claimIdleMs: init.claimIdleMs ?? 30_000,
      trimEveryMs: init.trimEveryMs ?? 60_000,
      backoff: init.backoff ?? { minMs: 100, maxMs: 5000 },
      maxFrameSize: init.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE,
    };
    this.readStreak = new FailureStreak(`reading the Redis inbox ${this.stream}`, deps.logger, deps.clock, "peers' frames wait in Redis and in their outboxes");
  }

  start(): Promise<void> {
    if (this.starting) return this.starting;
    this.starting = (async () => {
      if (this.state !== 'idle') return;
      const common = { maxRetriesPerRequest: null, lazyConnect: true, enableOfflineQueue: true } as const;
      // The writer fails at once while Redis is away (senders keep frames in their outbox and
      // retry) instead of queueing sends, acks and trims without bound.
      const cluster = this.opts.cluster;
      this.writer = await createRedisClient(this.opts.url, { ...common, cluster, enableOfflineQueue: false, enableAutoPipelining: true });
      this.reader = await createRedisClient(this.opts.url, { ...common, cluster });
      // ioredis reconnects by itself; errors are reported through the loop, not as crashes.
      this.writer.on('error', (err) =>
        this.deps.logger.debug({ err: err.message }, 'redis writer connection error'),
      );
      this.reader.on('error', (err) =>
        this.deps.logger.debug({ err: err.message }, 'redis reader connection error'),
      );
      try {
        await Promise.all([connectRedis(this.writer, this.opts.url), connectRedis(this.reader, this.opts.url)]);
        await this.ensureGroup(false);
      } catch (err) {
        this.writer.disconnect();
        this.reader.disconnect();
        if (err instanceof WeftError) throw err;
        const t = topologyHint(err);
        if (t) throw new WeftError(t.code, `redis provider at ${redactUrl(this.opts.url)}: ${(err as Error).message}: ${t.hint}`, { cause: err });
        throw err;
      }
      this.queue = new BoundedQueue(this.opts.maxInflight);
      this.state = 'started';
      this.book.emit({ type: 'peer.connected', peer: this.opts.computer });
      this.loop = this.run(this.queue);
      if (this.opts.trimEveryMs > 0) {
        this.stopTrimming = every(
          this.deps.clock,
          this.opts.trimEveryMs,
          () => void this.trim().catch((err) => this.deps.logger.debug({ err: (err as Error).message }, 'redis inbox trim failed')),
          { unref: true },
        );
      }
    })();
    return this.starting;
  }

  private async ensureGroup(recreated: boolean): Promise<void> {
    try {
      // '0': a new group also delivers what senders queued before this node ever started, or
      // wrote after Redis restarted empty and before this reader recreated its group.
      await this.writer!.call('XGROUP', 'CREATE', this.stream, this.group, '0', 'MKSTREAM');
      if (recreated) {
        this.deps.logger.warn(
          { stream: this.stream },
          'redis inbox was gone (Redis restarted empty); recreated stream and group',
        );
        this.book.emit({ type: 'inbox.recreated', stream: this.stream });
      }
    } catch (err) {
      if (!(err instanceof Error && err.message.startsWith('BUSYGROUP'))) throw err;
    }
  }

  private async run(queue: BoundedQueue<InboundFrame>): Promise<void> {
    let backoff = this.opts.backoff.minMs;
    // Our own pending entries first: what we read but did not ack before a restart.
    let pendingCursor: string | undefined = '0';
    let lastClaim = Number.NEGATIVE_INFINITY;
    while (this.state === 'started') {
      try {
        while (this.inflight.size >= this.opts.maxInflight && this.state === 'started') {
          await new Promise<void>((r) => (this.inflightWake = r));
        }
        if (this.state !== 'started') break;
        const now = this.deps.clock.now();
        if (pendingCursor === undefined && now - lastClaim >= Math.min(this.opts.claimIdleMs, 5000)) {
          lastClaim = now;
          await this.claim(queue);
        }
        const args: (string | number)[] = ['GROUP', this.group, this.consumer, 'COUNT', this.opts.batch];
        if (pendingCursor === undefined) args.push('BLOCK', this.opts.blockMs);
        args.push('STREAMS', this.stream, pendingCursor ?? '>');
        const entries = readReplyEntries(await unlessAborted(this.reader!.callBuffer('XREADGROUP', ...args), this.abort.signal));
        if (pendingCursor !== undefined) {
          const last = entries[entries.length - 1];
          pendingCursor = last ? last[0].toString() : undefined;
        }
        this.readStreak.succeeded();
        for (const e of entries) {
          if (!(await this.deliver(queue, e, pendingCursor !== undefined ? 2 : 1))) return;
        }
        backoff = this.opts.backoff.minMs;
      } catch (err) {
        if (this.state !== 'started') break;
        if (isNoGroup(err)) {
          try {
            await this.ensureGroup(true);
            pendingCursor = undefined;
            continue;
          } catch (e2) {
            this.readStreak.failed(`recreating the inbox failed: ${(e2 as Error).message}`);
          }
        } else {
          this.readStreak.failed(inboxReadError(err, this.stream));
        }
        try {
          await sleep(backoff, this.abort.signal, this.deps.clock);
        } catch {
          break;
        }
        backoff = Math.min(backoff * 2, this.opts.backoff.maxMs);
      }
    }
  }

  private async claim(queue: BoundedQueue<InboundFrame>): Promise<void> {
    let cursor = '0-0';
    for (let round = 0; round < 16; round++) {
      // On the reader: the loop runs claims and reads in turn, and the writer auto-pipelines.
      const res = (await unlessAborted(
        this.reader!.callBuffer('XAUTOCLAIM', this.stream, this.group, this.consumer, this.opts.claimIdleMs, cursor, 'COUNT', this.opts.batch),
        this.abort.signal,
      )) as [Buffer, StreamEntry[], Buffer[]?];
      cursor = res[0].toString();
      for (const e of res[1]) {
        // Entries we hold ourselves (slow consumer) are already on their way.
        if (e[1] === null || this.inflight.has(e[0].toString()) || this.foreign.has(e[0].toString())) continue;
        if (!(await this.deliver(queue, e, 2))) return;
      }
      if (cursor === '0-0') return;
    }
  }

  private async deliver(
    queue: BoundedQueue<InboundFrame>,
    [idBuf, raw]: StreamEntry,
    deliveryCount: number,
  ): Promise<boolean> {
    const id = idBuf.toString();
    if (this.foreign.has(id)) return true;
    const f = fieldsOf(raw);
    const payload = f.get('payload');
    if (f.get(WEFT_ENTRY_MARK.field)?.toString() !== WEFT_ENTRY_MARK.value || !payload) {
      // Another program's entry (or one deleted by it): not ours to deliver, acknowledge or delete.
      this.foreignCount++;
      if (this.foreign.size >= MAX_REMEMBERED_FOREIGN) this.foreign.delete(this.foreign.values().next().value as string);
      this.foreign.add(id);
      this.deps.logger.debug({ stream: this.stream, id }, 'left a foreign entry alone');
      return true;
    }
    const from = f.get('from')?.toString();
    this.inflight.add(id);
    this.book.received(from ?? '?', payload.length);
    let acked = false;
    const frame: InboundFrame = {
      from,
      bytes: payload,
      deliveryId: id,
      deliveryCount,
      ack: async () => {
        if (acked) return;
        acked = true;
        try {
          await this.xack(id);
        } finally {
          this.inflight.delete(id);
          this.inflightWake?.();
        }
      },
    };
    return queue.push(frame);
  }

  private ackBatch: string[] = [];
  private ackFlush: Promise<void> | undefined;
  /** The last XACK went unanswered (Redis away): the next ones wait briefly, not 2 s each. */
  private acksUnanswered = false;

  /** Acks issued in the same tick go out as one XACK. */
  private xack(id: string): Promise<void> {
    this.ackBatch.push(id);
    this.ackFlush ??= new Promise<void>((resolve) => {
      setImmediate(() => {
        const ids = this.ackBatch;
        this.ackBatch = [];
        this.ackFlush = undefined;
        let done = false;
        const finish = () => {
          if (done) return;
          done = true;
          cancel();
          resolve();
        };
        // While Redis does not answer, a batch's acks one after another each waited the full
        // 2 s: a stop draining the ingress took up to its own 10 s bound.
        const cancel = after(
          this.deps.clock,
          this.acksUnanswered ? XACK_AWAY_TIMEOUT_MS : XACK_TIMEOUT_MS,
          () => {
            if (!this.acksUnanswered) this.deps.logger.warn({ count: ids.length }, 'XACK unanswered (Redis away?); the entries will be redelivered');
            this.acksUnanswered = true;
            finish();
          },
          { unref: true },
        );
        this.writer!.call('XACK', this.stream, this.group, ...ids)
          .then(
            () => {
              this.acksUnanswered = false;
            },
            (err: unknown) =>
              this.deps.logger.warn(
                { err: (err as Error).message, count: ids.length },
                'XACK failed; the entries will be redelivered',
              ),
          )
          .then(finish);
      });
    });
    return this.ackFlush;
  }

  /**
   * Deletes the inbox's Weft entries that every group has acknowledged; returns how many.
   * Pending entries and other programs' entries are never removed.
   */
  async trim(): Promise<number> {
    const w = this.writer;
    if (!w || this.state !== 'started') return 0;
    return trimOwnStream(w, this.stream, this.trimCursor);
  }

  /**
   * What is wrong with this node's inbox: reads failing in a row (nothing from any peer gets
   * through meanwhile). A single failure (a fail-over, a slot moving) clears at the next read.
   */
  problems(): string[] {
    const f = this.readStreak.state();
    if (!f || this.state !== 'started') return [];
    const secs = Math.round((this.deps.clock.now() - f.since) / 1000);
    return [
      `mesh: this node cannot read its inbox ${this.stream} on Redis (for ${secs} s, ${f.failures} tries: ${f.lastError}); nothing from peers arrives meanwhile, their frames wait in Redis and in their outboxes`,
    ];
  }

  /** Entries on the inbox that were not Weft's and were left alone. */
  get foreignEntries(): number {
    return this.foreignCount;
  }

  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      await this.starting?.catch(() => undefined);
      const wasStarted = this.state === 'started';
      this.state = 'stopped';
      this.abort.abort();
      this.stopTrimming?.();
      this.queue?.close();
      this.inflightWake?.();
      // Interrupts a blocked XREADGROUP; unacked entries stay pending in Redis for the next start.
      this.reader?.disconnect();
      await this.loop;
      // Acks already issued go out before the writer closes (else they come back as redeliveries).
      await this.ackFlush;
      await quitWithin(this.writer);
      if (wasStarted)
        this.book.emit({ type: 'peer.disconnected', peer: this.opts.computer, reason: 'stopped' });
    })();
    return this.stopping;
  }

  async send(peer: string, bytes: Uint8Array, opts?: { signal?: AbortSignal }): Promise<void> {
    this.assertCanSend('redis', this.state, bytes, this.opts.maxFrameSize, opts?.signal);
    const type = frameTypeHint(bytes) === 'events' ? 'mesh_event' : 'mesh_frame';
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    const reply = this.writer!.call(
      'XADD',
      this.keys.inbox(peer),
      '*',
      WEFT_ENTRY_MARK.field,
      WEFT_ENTRY_MARK.value,
      'type',
      type,
      'from',
      this.opts.computer,
      'payload',
      buf,
    );
    // An XADD written just before the connection died waits for Redis to return: the caller's
    // signal ends the wait (the sender's outbox still has the frame). Only a caller's own
    // signal is listened to: one listener per send on a shared signal would make thousands of
    // frames in flight cost quadratic time.
    const signal = opts?.signal;
    try {
      await (signal ? unlessAborted(reply, signal) : reply);
    } catch (err) {
      if (signal?.aborted) throw new TransportError('TRANSPORT_ABORTED', `send to ${peer} aborted before Redis answered`, { cause: err });
      throw err;
    }
    this.book.sent(peer, bytes.length);
  }

  async waitForPeer(): Promise<void> {}
}
