/**
 * The NATS peer registry: the KV bucket `{prefix}_peers` (default `weft_peers`) holds one entry
 * per computer (its key is the computer name as a subject token, see `natsToken`), a JSON
 * PeerInfo that the node rewrites every heartbeat. The bucket's TTL (max age) makes the entry
 * of a node that stopped heartbeating vanish; a node that stops cleanly deletes its own.
 * Entries that fail validation are skipped. The `nats` client is loaded on start().
 */
import type { JetStreamManager, KV, NatsConnection } from 'nats';
import { requireState, WeftError } from '../errors/index.js';
import { isNodeId } from '../identity/index.js';
import { DEFAULT_NATS_PREFIX, loadNats, NATS_PREFIX_PATTERN, natsConnectError, natsConnectTarget, natsToken, redactNatsUrl } from '../transport/index.js';
import type { Clock, FailureStreak, Logger } from '../util/index.js';
import { heartbeatEvery, heartbeatProblems, heartbeatStreak, type PeerDiscovery, type PeerInfo } from './discovery.js';

export interface NatsPeerRegistryInit {
  /** `nats://host:port`, several comma separated. */
  url: string;
  /** This node's entry. */
  self: PeerInfo;
  /** Entry lifetime, ms (default 30 s): the bucket's TTL when this node creates it. */
  ttlMs?: number;
  /** Heartbeat period, ms (default ttl / 3). */
  heartbeatMs?: number;
  /** Prefix of the bucket name (default `weft`, i.e. `{nats.prefix}`): the bucket is `{prefix}_peers`. */
  prefix?: string;
  /** Entries read per discovery, at most (default 1024). */
  maxPeers?: number;
}

export interface NatsPeerRegistryDeps {
  logger: Logger;
  clock: Clock;
}

/** Largest entry, bytes (the bucket refuses bigger values). */
const MAX_ENTRY_BYTES = 64 * 1024;
/** Largest bucket, bytes. */
const MAX_BUCKET_BYTES = 64 * 1024 * 1024;

function isPeerInfo(v: unknown): v is PeerInfo {
  const p = v as PeerInfo;
  return (
    typeof p === 'object' &&
    p !== null &&
    typeof p.computer === 'string' &&
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(p.computer) &&
    isNodeId(p.nodeId) &&
    (p.cluster === undefined || typeof p.cluster === 'string') &&
    Array.isArray(p.addresses) &&
    p.addresses.length <= 64 &&
    p.addresses.every((a) => typeof a === 'string') &&
    Array.isArray(p.caps) &&
    p.caps.length <= 64 &&
    p.caps.every((c) => typeof c === 'string')
  );
}

/**
 * Peer discovery through a NATS KV bucket with heartbeats.
 * @example
 * const reg = new NatsPeerRegistry({ url: 'nats://127.0.0.1:4222', self: { computer: 'mars', nodeId, addresses: [], caps: [] } }, { logger, clock });
 * await reg.start(); const peers = await reg.discoverPeers();
 */
export class NatsPeerRegistry implements PeerDiscovery {
  private nc: NatsConnection | undefined;
  private kv: KV | undefined;
  private jsm: JetStreamManager | undefined;
  private stopBeating: (() => void) | undefined;
  private beats: FailureStreak | undefined;
  private readonly ttlMs: number;
  private readonly heartbeatMs: number;
  private readonly bucket: string;
  private readonly key: string;
  private readonly maxPeers: number;
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  /** This node's entry (its node id changes with a key rotation). */
  private readonly self: PeerInfo;

  constructor(
    private readonly init: NatsPeerRegistryInit,
    private readonly deps: NatsPeerRegistryDeps,
  ) {
    requireState(isPeerInfo(init.self), 'NatsPeerRegistry: init.self is not a valid PeerInfo');
    this.self = { ...init.self };
    const prefix = init.prefix ?? DEFAULT_NATS_PREFIX;
    requireState(NATS_PREFIX_PATTERN.test(prefix), `NatsPeerRegistry: prefix ${JSON.stringify(prefix)} is not letters, digits, '_' or '-'`);
    this.ttlMs = init.ttlMs ?? 30_000;
    this.heartbeatMs = init.heartbeatMs ?? Math.max(100, Math.floor(this.ttlMs / 3));
    this.bucket = `${prefix}_peers`;
    this.key = natsToken(init.self.computer);
    this.maxPeers = init.maxPeers ?? 1024;
  }

  /**
   * Connects, refuses when another live node announces this computer name, announces this node
   * and keeps announcing it. Idempotent.
   * @throws WeftError WEFT_BUS when NATS cannot be reached, WEFT_CONFLICT when the name is taken.
   */
  start(): Promise<void> {
    this.starting ??= (async () => {
      const nats = await loadNats();
      const where = redactNatsUrl(this.init.url);
      try {
        this.nc = await nats.connect({
          ...natsConnectTarget(this.init.url),
          name: `weft registry ${this.self.computer}`,
          maxReconnectAttempts: -1,
          reconnectTimeWait: 250,
          pingInterval: 10_000,
          maxPingOut: 3,
        });
      } catch (err) {
        throw new WeftError('WEFT_BUS', `cannot reach NATS at ${where}: ${natsConnectError(err)}`, { cause: err });
      }
      try {
        this.kv = await this.nc.jetstream().views.kv(this.bucket, {
          ttl: this.ttlMs,
          history: 1,
          max_bytes: MAX_BUCKET_BYTES,
          maxValueSize: MAX_ENTRY_BYTES,
        });
        this.jsm = await this.nc.jetstreamManager();
        const status = await this.kv.status();
        if (status.ttl !== this.ttlMs) {
          this.deps.logger.warn({ bucket: this.bucket, bucketTtlMs: status.ttl, ttlMs: this.ttlMs }, 'the NATS peer bucket exists with another TTL; entries live as long as it says');
        }
        await this.claim();
        await this.heartbeat();
      } catch (err) {
        await this.nc.close().catch(() => undefined);
        this.nc = undefined;
        this.kv = undefined;
        this.jsm = undefined;
        if (err instanceof WeftError) throw err;
        throw new WeftError('WEFT_BUS', `NATS at ${where} refused the peer bucket ${this.bucket}: ${(err as Error).message}`, { cause: err });
      }
      this.beats ??= heartbeatStreak(this.deps.logger, this.deps.clock);
      this.stopBeating = heartbeatEvery(this.deps.clock, this.heartbeatMs, () => this.heartbeat(), this.deps.logger, this.beats);
    })();
    return this.starting;
  }

  /**
   * Refuses a computer name another live node announces (a restart of this node, same id, is
   * fine). A free name is taken with a create, so two nodes starting at once do not both win.
   */
  private async claim(): Promise<void> {
    const kv = this.kv as KV;
    for (let attempt = 0; ; attempt++) {
      const e = await kv.get(this.key);
      if (e && e.operation === 'PUT' && e.length > 0) {
        let other: unknown;
        try {
          other = JSON.parse(e.string());
        } catch {
          return; // a damaged entry: the heartbeat overwrites it
        }
        if (!isPeerInfo(other) || other.nodeId === this.self.nodeId) return;
        const ageMs = Math.max(0, this.deps.clock.now() - e.created.getTime());
        throw new WeftError(
          'WEFT_CONFLICT',
          `computer name '${this.self.computer}' is in use on this NATS by another live node (${other.nodeId}); give this node its own computer.name (WEFT_COMPUTER_NAME) (or, if that node is gone, wait ${Math.ceil(Math.max(0, this.ttlMs - ageMs) / 1000)} s for its entry to expire)`,
          { details: { bucket: this.bucket, key: this.key, holder: other.nodeId } },
        );
      }
      try {
        await kv.create(this.key, this.entry());
        return;
      } catch (err) {
        // Written by someone else since the get: look again (once).
        if (attempt >= 1) throw err;
      }
    }
  }

  private entry(): Uint8Array {
    const entry: PeerInfo = { ...this.self, lastSeen: this.deps.clock.now() };
    return new TextEncoder().encode(JSON.stringify(entry));
  }

  /** After a key rotation: the entry names the new node id, written at once (see RedisPeerRegistry.rekeySelf). */
  async rekeySelf(nodeId: string): Promise<void> {
    this.self.nodeId = nodeId;
    if (this.kv && !this.stopping) await this.heartbeat();
  }

  /** Writes this node's entry (which restarts its TTL). */
  async heartbeat(): Promise<void> {
    const kv = this.kv;
    requireState(kv !== undefined, 'NatsPeerRegistry: call start() first');
    await kv.put(this.key, this.entry());
  }

  /**
   * Every live peer but this node, sorted by computer name. Malformed entries are skipped.
   * The keys come from one request for the bucket stream's subjects (each request bounded by
   * the client's JetStream timeout), not from the client's key iterator: that one waits for as
   * many entries as the bucket held when it began, and an entry that expires meanwhile (a TTL
   * heartbeat registry expires entries all the time) made it wait forever.
   */
  async discoverPeers(): Promise<PeerInfo[]> {
    const kv = this.kv;
    const jsm = this.jsm;
    requireState(kv !== undefined && jsm !== undefined, 'NatsPeerRegistry: call start() first');
    const prefix = `$KV.${this.bucket}.`;
    const info = await jsm.streams.info(`KV_${this.bucket}`, { subjects_filter: `${prefix}>` });
    let keys = Object.keys(info.state.subjects ?? {})
      .filter((s) => s.startsWith(prefix))
      .map((s) => s.slice(prefix.length))
      .sort();
    if (keys.length > this.maxPeers) {
      this.deps.logger.warn({ bucket: this.bucket, maxPeers: this.maxPeers, announced: keys.length }, 'more peers announced than the registry reads; the rest are ignored');
      keys = keys.slice(0, this.maxPeers);
    }
    const peers: PeerInfo[] = [];
    for (const k of keys) {
      if (k === this.key) continue;
      const e = await kv.get(k);
      if (e?.operation !== 'PUT' || e.length === 0 || e.length > MAX_ENTRY_BYTES) continue;
      let p: unknown;
      try {
        p = JSON.parse(e.string());
      } catch {
        continue;
      }
      // The key must be the entry's own computer: an entry cannot speak for another name.
      if (!isPeerInfo(p) || natsToken(p.computer) !== k) continue;
      if (p.computer === this.self.computer || p.nodeId === this.self.nodeId) continue;
      peers.push(p);
    }
    return peers.sort((a, b) => (a.computer < b.computer ? -1 : a.computer > b.computer ? 1 : 0));
  }

  /** Stops announcing and removes this node's entry (best effort, bounded). Idempotent. */
  /** Heartbeats failing in a row, for `weft status`. */
  problems(): string[] {
    return this.beats && !this.stopping ? heartbeatProblems(this.beats, this.deps.clock, this.ttlMs) : [];
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.starting?.catch(() => undefined);
      this.stopBeating?.();
      const nc = this.nc;
      if (!nc) return;
      if (this.kv && !nc.isClosed()) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          (this.kv.delete(this.key) as Promise<void>).catch(() => undefined),
          new Promise<void>((r) => {
            timer = setTimeout(r, 1000);
            timer.unref();
          }),
        ]);
        clearTimeout(timer);
      }
      await nc.close().catch(() => undefined);
    })();
    return this.stopping;
  }
}
