/**
 * The NATS JetStream provider: each node reads its inbox, the stream `{prefix}_inbox_{computer}`
 * bound to the subject `{prefix}.inbox.{computer}` (default prefix `weft`), through the durable
 * pull consumer `{prefix}_mesh` with explicit acks; senders publish to the peer's inbox subject.
 * Computer names are written as subject tokens: every byte outside `[A-Za-z0-9-]` becomes
 * `_xx` (hex), so `my.host` is `my_2ehost`. The `nats` client is loaded on start(), so nodes on
 * another provider never load it.
 *
 * Messages carry the frame bytes as payload and the headers `Weft-From` (the sender's computer:
 * the mark that Weft wrote it), `Weft-Type` (`mesh_event` for event frames, `mesh_frame` for
 * others), `Nats-Msg-Id` (sha256 of the frame, hex: a re-publish of the same bytes within the
 * stream's duplicate window is dropped by the server) and `Nats-Expected-Stream` (the peer's
 * inbox: a publish never lands in a stream that is not a Weft inbox).
 *
 * Delivery rules:
 * - The inbox keeps messages under limits retention with `discard: new` and bounds on messages,
 *   bytes and age: a full inbox refuses the publish (the sender gets TRANSPORT_PEER_UNAVAILABLE
 *   and a `backpressure` event, its outbox keeps the frame and retries), it never drops the
 *   oldest frames.
 * - A frame is acked (and the ack confirmed by the server) only when the consumer calls `ack()`,
 *   after its local commit; then the acked frame is deleted from the inbox. A periodic sweep
 *   deletes Weft frames below the consumer's ack floor that a crash left behind.
 * - The inbox is read by one continuous pull (`consume`) whose subscription stays open between
 *   pull requests. A fetch per pull ends on a client timer 5 % after the pull's expiry; with the
 *   event loop busy past it, frames the server had already sent that pull were thrown away
 *   unread and came back only after the ack wait (the sender re-sent them after 5 s).
 * - Unacked frames come back: at once after a clean stop (the subscription is drained, so
 *   nothing is in flight to a reader that is gone, then they are nak'ed), after the ack wait
 *   (default 30 s) after a crash, with the server's delivery count.
 * - Messages without the mark are another program's: never delivered, acknowledged or deleted.
 *   They are counted (`foreignEntries`) and terminated on Weft's own consumer only, which under
 *   limits retention removes nothing from the stream (other readers still see them).
 * - When the inbox or its consumer is gone (a server that came back without its store), they
 *   are recreated (the consumer from the stream's start) and `inbox.recreated` is reported.
 */
import { createHash } from 'node:crypto';
import type { Consumer, ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg, MsgRequest, NatsConnection, NatsError, StoredMsg } from 'nats';
import { requireDeps } from '../errors/index.js';
import { after, every, maskUrlPasswords, untilAborted } from '../util/index.js';
import { TransportError } from './errors.js';
import { frameTypeHint } from './frame-codec.js';
import { ProviderBase } from './provider-base.js';
import { BoundedQueue, sleep } from './queue.js';
import type { InboundFrame, Provider, ProviderDeps, TransportCap } from './transport.js';

type NatsModule = typeof import('nats');

/** Default prefix of every stream, subject, consumer and bucket Weft makes on NATS. */
export const DEFAULT_NATS_PREFIX = 'weft';
/** What a prefix may be: it is part of stream and bucket names, which allow no `.`. */
export const NATS_PREFIX_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;
/**
 * The largest frame the provider sends by default: NATS servers refuse messages over their
 * `max_payload` (1 MiB unless configured), headers included, so frames stay below it.
 */
export const NATS_MAX_FRAME_BYTES = 1024 * 1024 - 8 * 1024;
/** Room kept for the headers when a frame is checked against the server's max_payload. */
const HEADER_ROOM = 512;
/** The header that says Weft wrote a message, with the sender's computer name. */
export const NATS_FROM_HEADER = 'Weft-From';
const TYPE_HEADER = 'Weft-Type';

/** Ids of foreign messages remembered so they are counted once. */
const MAX_REMEMBERED_FOREIGN = 10_000;
/** Stream sequences this process delivered, remembered to tell a redelivery after a server restart. */
const MAX_REMEMBERED_SEEN = 16_384;
/** Acked frames waiting to be deleted from the inbox, at most (the sweep gets the rest). */
const MAX_PENDING_DELETES = 10_000;
/** Deletes in flight at once. */
const DELETE_CONCURRENCY = 8;
/** An inbox this full (of its message or byte limit) is reported as a problem. */
const INBOX_FULL_SHARE = 0.9;
/** How long an ack waits for the server's confirmation, ms; unconfirmed frames come back and the replay guard drops them. */
const ACK_TIMEOUT_MS = 2000;

export interface NatsProviderInit {
  /** `nats://host:port`, several comma separated. */
  url: string;
  /** This node's computer name; its inbox is `{prefix}_inbox_{computer}`. */
  computer: string;
  /** Prefix of every stream, subject and consumer (default `weft`; letters, digits, `_`, `-`). */
  prefix?: string;
  /** Messages asked for per pull, at most (default 256). */
  batch?: number;
  /** How long one pull request waits for messages, ms (default 1000, the least NATS takes); heartbeats come at half of it. */
  blockMs?: number;
  /** Frames handed out and not yet acknowledged, at most (default 1024); also the consumer's max_ack_pending. */
  maxInflight?: number;
  /** An unacked delivery comes back after this long, ms (default 30 s): the consumer's ack_wait. */
  ackWaitMs?: number;
  /** Limits of this node's inbox stream (defaults: 100 000 messages, 256 MiB, 7 days). */
  inbox?: { maxMsgs?: number; maxBytes?: number; maxAgeMs?: number; replicas?: number; storage?: 'file' | 'memory' };
  /** Window in which the server drops a re-published frame by its Nats-Msg-Id, ms (default 2 min). */
  duplicateWindowMs?: number;
  /** How long a publish waits for the server's ack, ms (default 5000). */
  publishTimeoutMs?: number;
  /** How long connecting may take at start, ms (default 5000). */
  connectTimeoutMs?: number;
  /** Sweep acked frames a crash left in the inbox this often, ms (default 60 s; 0 disables). */
  trimEveryMs?: number;
  /** Backoff bounds after errors, ms (default 100 .. 5000). */
  backoff?: { minMs: number; maxMs: number };
  /** Largest frame sent, bytes (default NATS_MAX_FRAME_BYTES; the server's max_payload also applies). */
  maxFrameSize?: number;
}

/** A name as a NATS subject token and stream-name part: bytes outside `[A-Za-z0-9-]` become `_xx`. */
export function natsToken(name: string): string {
  let out = '';
  for (const b of Buffer.from(name, 'utf8')) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9-]/.test(c) ? c : `_${b.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** The names a computer's inbox has on NATS. */
export function natsInbox(computer: string, prefix = DEFAULT_NATS_PREFIX): { stream: string; subject: string; consumer: string } {
  const t = natsToken(computer);
  return { stream: `${prefix}_inbox_${t}`, subject: `${prefix}.inbox.${t}`, consumer: `${prefix}_mesh` };
}

/** Hides a password (`user:***@`) or a token (`***@`) in a NATS URL (or several) for messages. */
export function redactNatsUrl(url: string): string {
  return maskUrlPasswords(url, true);
}

/** What `nats.connect()` gets for a `nats.url`: the servers, the credentials the URLs carry, and TLS when asked for. */
export interface NatsConnectTarget {
  servers: string[];
  user?: string;
  pass?: string;
  token?: string;
  /** Set (`{}`) when a URL is `tls://`: the connection is refused unless the server speaks TLS. */
  tls?: Record<string, never>;
}

/**
 * The servers of a `nats.url` (comma separated) without their credentials, and those credentials
 * as the client's own options: `nats://user:pass@host` gives user and password,
 * `nats://token@host` a token (percent-encoding is undone). The `nats` client ignores
 * credentials inside a server URL, so they must travel this way. Every URL that carries
 * credentials must carry the same ones (the client has one set for all servers).
 *
 * The client also ignores the scheme: a `tls://` URL would connect in plain text to a server
 * that offers no TLS, and a `ws://` or `wss://` one would speak plain NATS to that port. So
 * `tls://` turns TLS on for the connection (refused unless the server speaks it), and WebSocket
 * URLs are refused (the client speaks TCP only).
 * @throws TransportError TRANSPORT_MISSING_DEPENDENCY when two URLs carry different credentials,
 *   or a URL is not `nats://` or `tls://`.
 */
export function natsConnectTarget(url: string): NatsConnectTarget {
  const servers: string[] = [];
  let creds: { user?: string; pass?: string; token?: string } | undefined;
  let credsKey: string | undefined;
  let tls = false;
  const decode = (v: string) => {
    try {
      return decodeURIComponent(v);
    } catch {
      return v;
    }
  };
  for (const raw of url.split(',')) {
    const u = raw.trim();
    if (u === '') continue;
    const m = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)?(?:([^@/]*)@)?(.*)$/.exec(u) as RegExpExecArray;
    const [, scheme = '', userinfo, rest = ''] = m;
    const proto = scheme.slice(0, -3).toLowerCase();
    if (proto !== '' && proto !== 'nats' && proto !== 'tls') {
      throw new TransportError(
        'TRANSPORT_MISSING_DEPENDENCY',
        `nats.url ${JSON.stringify(redactNatsUrl(u))}: ${proto}:// is not supported; use nats://host:port, or tls://host:port to require TLS (the client speaks TCP to the server's client port, not WebSocket)`,
      );
    }
    if (proto === 'tls') tls = true;
    servers.push(`${scheme}${rest}`);
    if (userinfo === undefined || userinfo === '') continue;
    const colon = userinfo.indexOf(':');
    const these = colon >= 0 ? { user: decode(userinfo.slice(0, colon)), pass: decode(userinfo.slice(colon + 1)) } : { token: decode(userinfo) };
    const key = JSON.stringify(these);
    if (credsKey !== undefined && credsKey !== key) {
      throw new TransportError(
        'TRANSPORT_MISSING_DEPENDENCY',
        `nats.url ${JSON.stringify(redactNatsUrl(url))} carries different credentials for different servers; the NATS client has one set for all of them: give every URL the same (or put them on the first only)`,
      );
    }
    credsKey = key;
    creds = these;
  }
  return { servers, ...creds, ...(tls ? { tls: {} } : {}) };
}

/**
 * Loads the `nats` client. Separate so the import stays lazy: a node on another provider never
 * loads it.
 */
export async function loadNats(): Promise<NatsModule> {
  try {
    return await import('nats');
  } catch (err) {
    throw new TransportError('TRANSPORT_MISSING_DEPENDENCY', "the NATS provider needs the 'nats' package (npm install nats)", { cause: err });
  }
}

/** Why `nats.connect()` failed, in words (the client says only "tls" for a server without TLS). */
export function natsConnectError(err: unknown): string {
  const e = err as NatsError;
  if (e?.code === 'SERVER_OPT_NA' && e.message === 'tls') return 'the server does not offer TLS, which a tls:// URL requires';
  return e?.message ?? String(err);
}

/** The API error code of a failed JetStream request (10059 stream not found, ...), if any. */
function apiCode(err: unknown): number | undefined {
  return (err as NatsError | undefined)?.api_error?.err_code;
}

function isNotFound(err: unknown): boolean {
  const c = apiCode(err);
  return c === 10059 || c === 10014 || /not found/i.test((err as Error)?.message ?? '');
}

function isNoResponders(err: unknown): boolean {
  return (err as NatsError | undefined)?.code === '503' && apiCode(err) === undefined;
}

/** Acks, naks and terms are fire-and-forget: a closed connection must not turn one into a crash. */
function quietly(fn: () => void): void {
  try {
    fn();
  } catch {
    // The message comes back after the ack wait; the replay guard knows it.
  }
}

/**
 * A NATS JetStream provider.
 * @example
 * const p = natsProvider({ url: 'nats://127.0.0.1:4222', computer: 'mars' })({ logger, clock });
 * await p.start();
 */
export function natsProvider(init: NatsProviderInit): (deps: ProviderDeps) => Provider {
  return (deps) => new NatsProvider(init, deps);
}

type Opts = Required<Omit<NatsProviderInit, 'inbox'>> & {
  inbox: { maxMsgs: number; maxBytes: number; maxAgeMs: number; replicas: number; storage: 'file' | 'memory' };
};

class NatsProvider extends ProviderBase implements Provider {
  readonly name = 'nats';
  readonly confidential = false;
  readonly caps: ReadonlySet<TransportCap> = new Set(['crc32c', 'deflate', 'aead', 'reliable', 'ordered', 'durable']);
  private readonly names: { stream: string; subject: string; consumer: string };
  private readonly opts: Opts;
  private nats: NatsModule | undefined;
  private nc: NatsConnection | undefined;
  private js: JetStreamClient | undefined;
  private jsm: JetStreamManager | undefined;
  private state: 'idle' | 'started' | 'stopped' = 'idle';
  private connected = false;
  private connectedWake: (() => void) | undefined;
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private loop: Promise<void> | undefined;
  /** The inbox's continuous pull while it runs. */
  private reading: ConsumerMessages | undefined;
  private ensuring: Promise<boolean> | undefined;
  /** Delivered and not acked yet, by stream sequence (queued or handed out). */
  private readonly inflight = new Map<number, JsMsg>();
  private inflightWake: (() => void) | undefined;
  private readonly acks = new Set<Promise<void>>();
  private readonly foreign = new Set<number>();
  private readonly seen = new Set<number>();
  private foreignCount = 0;
  private readonly deletes: number[] = [];
  private deleting = 0;
  private trimCursor = 0;
  private stopTrimming: (() => void) | undefined;
  /** The inbox's size and limits at the last sweep. */
  private inboxFill: { msgs: number; bytes: number; maxMsgs: number; maxBytes: number } | undefined;
  /** Peers whose inbox refused our last publish as full. */
  private readonly full = new Set<string>();
  private readonly abort = new AbortController();

  constructor(
    init: NatsProviderInit,
    private readonly deps: ProviderDeps,
  ) {
    super('natsProvider', deps);
    requireDeps(
      'natsProvider',
      init,
      { url: 'the NATS server URL (nats.url)', computer: "this node's computer name" },
      { code: 'TRANSPORT_MISSING_DEPENDENCY', of: 'init' },
    );
    const prefix = init.prefix ?? DEFAULT_NATS_PREFIX;
    if (!NATS_PREFIX_PATTERN.test(prefix)) {
      throw new TransportError(
        'TRANSPORT_MISSING_DEPENDENCY',
        `natsProvider: prefix ${JSON.stringify(prefix)} is not allowed; expected 1 to 32 letters, digits, '_' or '-' (it is part of stream names)`,
      );
    }
    this.names = natsInbox(init.computer, prefix);
    // Refuses URLs whose credentials cannot be passed on (checked at config time too).
    natsConnectTarget(init.url);
    this.opts = {
      url: init.url,
      computer: init.computer,
      prefix,
      batch: init.batch ?? 256,
      blockMs: Math.max(1000, init.blockMs ?? 1000),
      maxInflight: init.maxInflight ?? 1024,
      ackWaitMs: init.ackWaitMs ?? 30_000,
      inbox: {
        maxMsgs: init.inbox?.maxMsgs ?? 100_000,
        maxBytes: init.inbox?.maxBytes ?? 256 * 1024 * 1024,
        maxAgeMs: init.inbox?.maxAgeMs ?? 7 * 24 * 3600_000,
        replicas: init.inbox?.replicas ?? 1,
        storage: init.inbox?.storage ?? 'file',
      },
      duplicateWindowMs: init.duplicateWindowMs ?? 120_000,
      publishTimeoutMs: init.publishTimeoutMs ?? 5000,
      connectTimeoutMs: init.connectTimeoutMs ?? 5000,
      trimEveryMs: init.trimEveryMs ?? 60_000,
      backoff: init.backoff ?? { minMs: 100, maxMs: 5000 },
      maxFrameSize: init.maxFrameSize ?? NATS_MAX_FRAME_BYTES,
    };
  }

  start(): Promise<void> {
    this.starting ??= (async () => {
      if (this.state !== 'idle') return;
      const nats = await loadNats();
      this.nats = nats;
      const where = redactNatsUrl(this.opts.url);
      try {
        this.nc = await nats.connect({
          // Credentials in the URL travel as the client's options (it ignores them in a server URL).
          ...natsConnectTarget(this.opts.url),
          name: `weft ${this.opts.computer}`,
          timeout: this.opts.connectTimeoutMs,
          maxReconnectAttempts: -1,
          reconnectTimeWait: 250,
          pingInterval: 10_000,
          maxPingOut: 3,
        });
      } catch (err) {
        throw new TransportError('TRANSPORT_PEER_UNAVAILABLE', `cannot reach NATS at ${where}: ${natsConnectError(err)}`, { cause: err });
      }
      try {
        this.jsm = await this.nc.jetstreamManager();
        this.js = this.nc.jetstream();
        await this.ensureInbox(false);
      } catch (err) {
        await this.nc.close().catch(() => undefined);
        const hint = /jetstream not enabled|503/i.test((err as Error).message) ? ' (is JetStream enabled? start nats-server with -js)' : '';
        throw new TransportError('TRANSPORT_PEER_UNAVAILABLE', `NATS at ${where} refused the inbox ${this.names.stream}: ${(err as Error).message}${hint}`, { cause: err });
      }
      const maxPayload = this.nc.info?.max_payload ?? 0;
      if (maxPayload > 0 && maxPayload < this.opts.maxFrameSize + HEADER_ROOM) {
        this.deps.logger.warn(
          { maxPayload, maxFrameSize: this.opts.maxFrameSize, framesCutAt: this.maxFrameBytes },
          'the NATS server takes smaller messages than the largest frame: frames are cut to fit its max_payload, and an event too big for such a frame is dead-lettered (raise max_payload on the server to carry it)',
        );
      }
      this.connected = true;
      this.watchStatus(this.nc).catch((err) => this.deps.logger.debug({ err: (err as Error).message }, 'nats status stream ended'));
      this.queue = new BoundedQueue(this.opts.maxInflight);
      this.state = 'started';
      this.book.emit({ type: 'peer.connected', peer: this.opts.computer });
      this.loop = this.run(this.queue);
      if (this.opts.trimEveryMs > 0) {
        this.stopTrimming = every(
          this.deps.clock,
          this.opts.trimEveryMs,
          () => void this.trim().catch((err) => this.deps.logger.debug({ err: (err as Error).message }, 'nats inbox sweep failed')),
          { unref: true },
        );
      }
    })();
    return this.starting;
  }

  /**
   * The stream and the durable consumer, made when missing. Says whether it made either. One
   * check at a time (the reader and the reconnect both ask), so a loss is reported once.
   */
  private ensureInbox(recreated: boolean): Promise<boolean> {
    if (!this.ensuring) {
      this.ensuring = this.makeInbox(recreated).finally(() => {
        this.ensuring = undefined;
      });
    }
    return this.ensuring;
  }

  private async makeInbox(recreated: boolean): Promise<boolean> {
    const nats = this.nats as NatsModule;
    const jsm = this.jsm as JetStreamManager;
    const { stream, subject, consumer } = this.names;
    let made = false;
    try {
      await jsm.streams.info(stream);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      const limits = this.opts.inbox;
      try {
        await jsm.streams.add({
          name: stream,
          subjects: [subject],
          description: `Weft inbox of ${this.opts.computer}`,
          retention: nats.RetentionPolicy.Limits,
          // A full inbox refuses new frames (the sender keeps them): never drop the oldest.
          discard: nats.DiscardPolicy.New,
          max_msgs: limits.maxMsgs,
          max_bytes: limits.maxBytes,
          max_age: nats.nanos(limits.maxAgeMs),
          duplicate_window: nats.nanos(Math.min(this.opts.duplicateWindowMs, limits.maxAgeMs)),
          storage: limits.storage === 'memory' ? nats.StorageType.Memory : nats.StorageType.File,
          num_replicas: limits.replicas,
        });
        made = true;
      } catch (e2) {
        // Another process made it in between (10058: name in use): use it.
        if (apiCode(e2) !== 10058) throw e2;
      }
    }
    const want = { ack_wait: nats.nanos(this.opts.ackWaitMs), max_ack_pending: this.opts.maxInflight };
    try {
      const info = await jsm.consumers.info(stream, consumer);
      if (info.config.ack_wait !== want.ack_wait || info.config.max_ack_pending !== want.max_ack_pending) {
        await jsm.consumers.update(stream, consumer, want).catch((e) =>
          this.deps.logger.warn({ err: (e as Error).message, consumer }, 'could not update the inbox consumer; it keeps its settings'),
        );
      }
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await jsm.consumers.add(stream, {
        durable_name: consumer,
        description: `Weft mesh reader of ${this.opts.computer}`,
        ack_policy: nats.AckPolicy.Explicit,
        // From the stream's start: frames published before this consumer existed are delivered.
        deliver_policy: nats.DeliverPolicy.All,
        replay_policy: nats.ReplayPolicy.Instant,
        max_deliver: -1,
        ...want,
      });
      made = true;
    }
    if (made && recreated) {
      // A new stream numbers from 1 again.
      this.seen.clear();
      this.foreign.clear();
      this.trimCursor = 0;
      this.deps.logger.warn({ stream }, 'nats inbox was gone (server lost its store?); recreated stream and consumer');
      this.book.emit({ type: 'inbox.recreated', stream });
    }
    return made;
  }

  /** Follows the connection: sends are refused while it is down; after a reconnect the inbox is checked. */
  private async watchStatus(nc: NatsConnection): Promise<void> {
    const { Events } = this.nats as NatsModule;
    for await (const s of nc.status()) {
      if (this.state === 'stopped') break;
      if (s.type === Events.Disconnect) {
        if (this.connected) this.deps.logger.warn({ server: String(s.data) }, 'NATS connection lost; reconnecting');
        this.connected = false;
      } else if (s.type === Events.Reconnect) {
        this.connected = true;
        this.deps.logger.info({ server: String(s.data) }, 'NATS connection back');
        this.connectedWake?.();
        this.ensureInbox(true).catch((err) => this.deps.logger.warn({ err: (err as Error).message }, 'nats inbox check after reconnect failed'));
      }
    }
  }

  private async run(queue: BoundedQueue<InboundFrame>): Promise<void> {
    let backoff = this.opts.backoff.minMs;
    const { stream, consumer } = this.names;
    let c: Consumer | undefined;
    while (this.state === 'started') {
      try {
        while (this.inflight.size >= this.opts.maxInflight && this.state === 'started') {
          await new Promise<void>((r) => (this.inflightWake = r));
        }
        if (this.state !== 'started') break;
        if (!this.connected) {
          // Pulls would only queue in the client; wait for the connection (or the next round).
          await new Promise<void>((r) => {
            this.connectedWake = r;
            after(this.deps.clock, this.opts.blockMs, r, { unref: true });
          });
          continue;
        }
        c ??= await (this.js as JetStreamClient).consumers.get(stream, consumer);
        if (this.state !== 'started') break;
        // One subscription for all pulls: the client asks for more as frames arrive, and the
        // server hands out at most max_ack_pending (= maxInflight) unacked frames.
        // A missing stream or consumer ends the read with an error, so the inbox is recreated
        // below (the library would otherwise wait for someone else to restore it).
        const iter = await c.consume({ max_messages: this.opts.batch, expires: this.opts.blockMs, abort_on_missing_resource: true });
        this.reading = iter;
        // A stop that came while the pull was being set up found nothing to end.
        if (this.state !== 'started') void this.endReading(iter);
        for await (const m of iter) {
          // Only if the consumer kept a larger max_ack_pending than ours (its update failed).
          while (this.inflight.size >= this.opts.maxInflight && this.state === 'started') {
            await new Promise<void>((r) => (this.inflightWake = r));
          }
          this.deliver(queue, m);
          backoff = this.opts.backoff.minMs;
        }
        this.reading = undefined;
        // Ended without an error: stopped, or the library gave up on the consumer (checked below).
        if (this.state === 'started') throw new Error('the inbox reader ended');
      } catch (err) {
        this.reading = undefined;
        c = undefined;
        if (this.state !== 'started') break;
        let recovered = false;
        if (this.connected) {
          try {
            recovered = await this.ensureInbox(true);
          } catch (e2) {
            this.deps.logger.debug({ err: (e2 as Error).message }, 'nats inbox check failed');
          }
        }
        if (recovered) continue;
        this.deps.logger.warn({ err: (err as Error).message, backoffMs: backoff }, 'nats inbox read failed; retrying');
        try {
          await sleep(backoff, this.abort.signal, this.deps.clock);
        } catch {
          break;
        }
        backoff = Math.min(backoff * 2, this.opts.backoff.maxMs);
      }
    }
  }

  /**
   * Ends the inbox's pull: its subscription is drained (the library's own `close()` unsubscribes
   * at once and throws away what is still on its way), then the pull is closed.
   */
  private async endReading(iter: ConsumerMessages): Promise<void> {
    const sub = (iter as unknown as { sub?: { drain?: () => Promise<void> } }).sub;
    if (sub && typeof sub.drain === 'function') await sub.drain().catch(() => undefined);
    await iter.close().catch(() => undefined);
  }

  /** Resolves once the inbox's consumer has no pull request waiting (or it cannot be asked). */
  private async untilNoPullWaiting(): Promise<void> {
    const jsm = this.jsm;
    while (jsm && this.nc && !this.nc.isClosed()) {
      const info = await jsm.consumers.info(this.names.stream, this.names.consumer).catch(() => undefined);
      if (!info || info.num_waiting === 0) return;
      await new Promise((r) => setTimeout(r, 50).unref());
    }
  }

  private deliver(queue: BoundedQueue<InboundFrame>, m: JsMsg): void {
    const seq = m.seq;
    const from = m.headers?.get(NATS_FROM_HEADER) || undefined;
    if (!from) {
      // Another program's message: not ours to deliver, acknowledge or delete. Terminating it on
      // our own consumer stops its redelivery to us; under limits retention it stays in the stream.
      if (!this.foreign.has(seq)) {
        this.foreignCount++;
        if (this.foreign.size >= MAX_REMEMBERED_FOREIGN) this.foreign.delete(this.foreign.values().next().value as number);
        this.foreign.add(seq);
        this.deps.logger.debug({ stream: this.names.stream, seq }, 'left a foreign message alone');
      }
      quietly(() => m.term());
      return;
    }
    if (this.state !== 'started') {
      // Pulled while stopping: given back with the others once the pull has ended (see stop()).
      if (!this.inflight.has(seq)) this.inflight.set(seq, m);
      return;
    }
    // A redelivery (ack wait passed) of a frame we still hold: it is already on its way.
    if (this.inflight.has(seq)) return;
    this.inflight.set(seq, m);
    // The server's count, or at least 2 for a message this process saw before: a server that
    // restarted may have lost the delivery state, and the ingress must know a redelivery.
    const deliveryCount = this.seen.has(seq) ? Math.max(2, m.info.deliveryCount) : m.info.deliveryCount;
    if (this.seen.size >= MAX_REMEMBERED_SEEN) this.seen.delete(this.seen.values().next().value as number);
    this.seen.add(seq);
    this.book.received(from, m.data.length);
    let acked = false;
    const frame: InboundFrame = {
      from,
      bytes: m.data,
      deliveryId: String(seq),
      deliveryCount,
      ack: async () => {
        if (acked) return;
        acked = true;
        const p = this.ack(m);
        this.acks.add(p);
        try {
          await p;
        } finally {
          this.acks.delete(p);
          if (this.inflight.get(seq) === m) this.inflight.delete(seq);
          this.inflightWake?.();
        }
      },
    };
    // Never waits: the queue holds maxInflight frames and at most that many are in flight.
    void queue.push(frame);
  }

  private async ack(m: JsMsg): Promise<void> {
    try {
      await m.ackAck({ timeout: ACK_TIMEOUT_MS });
    } catch (err) {
      this.deps.logger.warn({ err: (err as Error).message, seq: m.seq }, 'nats ack unconfirmed (server away?); the frame will be redelivered');
      return;
    }
    // Acked: our frame leaves the inbox (limits retention keeps it otherwise).
    if (this.deletes.length >= MAX_PENDING_DELETES) this.deletes.shift();
    this.deletes.push(m.seq);
    this.drainDeletes();
  }

  private drainDeletes(): void {
    while (this.deleting < DELETE_CONCURRENCY && this.deletes.length > 0 && this.jsm && this.connected) {
      const seq = this.deletes.shift() as number;
      this.deleting++;
      this.jsm.streams
        .deleteMessage(this.names.stream, seq, false)
        .catch((err) => {
          if (!isNotFound(err) && !/no message found/i.test((err as Error).message))
            this.deps.logger.debug({ err: (err as Error).message, seq }, 'nats inbox delete failed; the sweep retries');
        })
        .finally(() => {
          this.deleting--;
          this.drainDeletes();
        });
    }
  }

  /**
   * Deletes Weft frames the consumer has acknowledged (below its ack floor) that are still in
   * the inbox: left by a crash between ack and delete, or by a failed delete. Other programs'
   * messages and unacknowledged frames are never removed. Returns how many it deleted; looks
   * at `batch` messages per call at most.
   */
  async trim(): Promise<number> {
    const jsm = this.jsm;
    if (!jsm || this.state !== 'started' || !this.connected) return 0;
    const { stream, subject, consumer } = this.names;
    const [si, ci] = await Promise.all([jsm.streams.info(stream), jsm.consumers.info(stream, consumer)]);
    this.inboxFill = { msgs: si.state.messages, bytes: si.state.bytes, maxMsgs: si.config.max_msgs, maxBytes: si.config.max_bytes };
    const floor = ci.ack_floor.stream_seq;
    let seq = Math.max(si.state.first_seq, this.trimCursor);
    let deleted = 0;
    for (let looked = 0; seq <= floor && looked < this.opts.batch; looked++) {
      let m: StoredMsg;
      try {
        // The first message at or after seq that still exists (the server skips deleted ones).
        m = await jsm.streams.getMessage(stream, { seq, next_by_subj: subject } as unknown as MsgRequest);
      } catch (err) {
        if (isNotFound(err) || /no message found/i.test((err as Error).message)) {
          seq = floor + 1;
          break;
        }
        throw err;
      }
      if (m.seq > floor) {
        seq = floor + 1;
        break;
      }
      if (m.header.get(NATS_FROM_HEADER) && !this.inflight.has(m.seq)) {
        await jsm.streams.deleteMessage(stream, m.seq, false).then(
          () => deleted++,
          () => undefined,
        );
      }
      seq = m.seq + 1;
    }
    this.trimCursor = seq;
    return deleted;
  }

  /**
   * The largest frame this provider can send: its own limit, or less when the server's
   * max_payload (headers included) is smaller. Frames over it would be refused by the server
   * on every try, so the mesh cuts frames below it.
   */
  get maxFrameBytes(): number {
    const maxPayload = this.nc?.info?.max_payload ?? 0;
    return maxPayload > 0 ? Math.max(0, Math.min(this.opts.maxFrameSize, maxPayload - HEADER_ROOM)) : this.opts.maxFrameSize;
  }

  /**
   * What is wrong with this node's inbox, as of the last sweep: nearly full (90 % of its message
   * or byte limit), so peers' frames are refused (`discard: new`) and wait in their outboxes.
   * Says so when other programs' messages, which Weft never deletes, are on it.
   */
  problems(): string[] {
    const f = this.inboxFill;
    if (!f || this.state !== 'started') return [];
    const share = Math.max(f.maxMsgs > 0 ? f.msgs / f.maxMsgs : 0, f.maxBytes > 0 ? f.bytes / f.maxBytes : 0);
    if (share < INBOX_FULL_SHARE) return [];
    const mib = (b: number) => `${(b / 1048576).toFixed(b < 10 * 1048576 ? 1 : 0)} MiB`;
    const foreign =
      this.foreignCount > 0
        ? `; ${this.foreignCount} messages on it came from another program (no ${NATS_FROM_HEADER} header) and are never deleted by Weft: remove them, or stop what publishes on ${this.names.subject}`
        : '; it empties as this node reads';
    return [
      `mesh: inbox ${this.names.stream} on NATS is ${share >= 1 ? 'full' : `${Math.floor(share * 100)} % full`} (${f.msgs} of ${f.maxMsgs} messages, ${mib(f.bytes)} of ${mib(f.maxBytes)}): peers' frames are refused and wait in their outboxes${foreign}`,
    ];
  }

  /** Messages on the inbox that were not Weft's and were left alone. */
  get foreignEntries(): number {
    return this.foreignCount;
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.starting?.catch(() => undefined);
      const wasStarted = this.state === 'started';
      this.state = 'stopped';
      this.abort.abort();
      this.stopTrimming?.();
      this.queue?.close();
      this.inflightWake?.();
      this.connectedWake?.();
      // The pull's subscription is drained, not cut: frames the server sent before it saw the
      // unsubscribe still reach deliver() (and are given back below) instead of being dropped
      // unread and held by the server for the ack wait.
      let timer: NodeJS.Timeout | undefined;
      const cutoff = new Promise<'cut'>((r) => {
        timer = setTimeout(() => r('cut'), this.opts.blockMs * 2 + 1000);
        timer.unref();
      });
      const reading = this.reading;
      if ((await Promise.race([reading ? this.endReading(reading).then(() => this.loop) : this.loop, cutoff])) === 'cut') {
        await reading?.close().catch(() => undefined);
        await this.loop;
      }
      // A frame given back while the server still holds a pull request of ours is handed to it
      // and taken back as never delivered: it would return with a delivery count of 1, and the
      // ingress would take it for a replay. So the naks wait until the server holds none.
      if (this.inflight.size > 0) await Promise.race([this.untilNoPullWaiting(), cutoff]);
      clearTimeout(timer);
      // Acks already issued finish first (else their frames come back as redeliveries).
      await Promise.all([...this.acks]);
      // What was delivered and not acked goes back now, not after the ack wait.
      for (const m of this.inflight.values()) quietly(() => m.nak());
      this.inflight.clear();
      const nc = this.nc;
      if (nc && !nc.isClosed()) {
        await Promise.race([
          nc.flush().catch(() => undefined),
          new Promise<void>((r) => {
            timer = setTimeout(r, 2000);
            timer.unref();
          }),
        ]);
        clearTimeout(timer);
        await nc.close().catch(() => undefined);
      }
      if (wasStarted) this.book.emit({ type: 'peer.disconnected', peer: this.opts.computer, reason: 'stopped' });
    })();
    return this.stopping;
  }

  async send(peer: string, bytes: Uint8Array, opts?: { signal?: AbortSignal }): Promise<void> {
    this.assertCanSend('nats', this.state, bytes, this.opts.maxFrameSize, opts?.signal);
    const maxPayload = this.nc?.info?.max_payload ?? 0;
    if (maxPayload > 0 && bytes.length + HEADER_ROOM > maxPayload) {
      throw new TransportError('TRANSPORT_FRAME_TOO_LARGE', `frame of ${bytes.length} bytes exceeds the NATS server's max_payload of ${maxPayload} bytes (headers included)`);
    }
    if (!this.connected) {
      throw new TransportError('TRANSPORT_PEER_UNAVAILABLE', `NATS at ${redactNatsUrl(this.opts.url)} is unreachable (reconnecting); the frame for ${peer} stays with the sender`);
    }
    const nats = this.nats as NatsModule;
    const to = natsInbox(peer, this.opts.prefix);
    const h = nats.headers();
    h.set(NATS_FROM_HEADER, this.opts.computer);
    h.set(TYPE_HEADER, frameTypeHint(bytes) === 'events' ? 'mesh_event' : 'mesh_frame');
    const msgID = createHash('sha256').update(bytes).digest('hex');
    try {
      await untilAborted(
        (this.js as JetStreamClient).publish(to.subject, bytes, { msgID, headers: h, expect: { streamName: to.stream }, timeout: this.opts.publishTimeoutMs }),
        opts?.signal,
      );
    } catch (err) {
      throw this.sendError(peer, to.stream, err, opts?.signal);
    }
    if (this.full.delete(peer)) this.book.emit({ type: 'backpressure', peer, active: false });
    this.book.sent(peer, bytes.length);
  }

  /** A failed publish as a TransportError that says what to do about it. */
  private sendError(peer: string, stream: string, err: unknown, signal: AbortSignal | undefined): TransportError {
    if (signal?.aborted) return new TransportError('TRANSPORT_ABORTED', `send to ${peer} aborted before NATS answered`, { cause: err });
    const e = err as NatsError;
    const description = e.api_error?.description ?? e.message;
    if (e.code === 'MAX_PAYLOAD_EXCEEDED') {
      return new TransportError('TRANSPORT_FRAME_TOO_LARGE', `frame for ${peer} exceeds the NATS server's max_payload`, { cause: err });
    }
    if (/exceeded/i.test(description) || apiCode(err) === 10077 || apiCode(err) === 10047) {
      if (!this.full.has(peer)) {
        this.full.add(peer);
        this.deps.logger.warn({ peer, stream, reason: description }, 'the peer inbox on NATS is full; frames wait in the outbox');
        this.book.emit({ type: 'backpressure', peer, active: true });
      }
      return new TransportError('TRANSPORT_PEER_UNAVAILABLE', `inbox ${stream} of ${peer} on NATS is full (${description}); the frame stays with the sender until the peer reads`, {
        cause: err,
        details: { peer, stream, reason: description },
      });
    }
    if (isNoResponders(err)) {
      return new TransportError('TRANSPORT_PEER_UNAVAILABLE', `no inbox ${stream} for ${peer} on NATS yet (has its node started with this prefix?), or JetStream is away`, {
        cause: err,
      });
    }
    if (apiCode(err) === 10060) {
      return new TransportError('TRANSPORT_PEER_UNAVAILABLE', `the subject of ${peer}'s inbox belongs to another stream than ${stream} on NATS; nothing was sent`, { cause: err });
    }
    return new TransportError('TRANSPORT_PEER_UNAVAILABLE', `publish to ${peer} on NATS failed: ${description}`, { cause: err });
  }

  /** Resolves once the peer's inbox exists on the server (its node has started once). */
  async waitForPeer(peer: string, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<void> {
    if (this.state !== 'started') {
      throw new TransportError(this.state === 'idle' ? 'TRANSPORT_NOT_STARTED' : 'TRANSPORT_STOPPED', `nats provider is ${this.state}`);
    }
    const { stream } = natsInbox(peer, this.opts.prefix);
    const deadline = this.deps.clock.now() + (opts.timeoutMs ?? 30_000);
    for (;;) {
      if (opts.signal?.aborted) throw new TransportError('TRANSPORT_ABORTED', `wait for ${peer} aborted`, { cause: opts.signal.reason });
      try {
        await (this.jsm as JetStreamManager).streams.info(stream);
        return;
      } catch (err) {
        if (this.deps.clock.now() >= deadline) {
          throw new TransportError('TRANSPORT_PEER_UNAVAILABLE', `no inbox ${stream} for ${peer} on NATS: ${(err as Error).message}`, { cause: err });
        }
      }
      await sleep(200, opts.signal, this.deps.clock).catch(() => undefined);
    }
  }
}
