/**
 * Discovery: who the other nodes are. Static peers come from config; with Redis, each node
 * heartbeats its PeerInfo into a registry whose entries expire, and `discoverPeers()` lists
 * everyone else. mDNS on the local link (mdns.ts) finds candidates only, never peers: a human
 * or subnet policy admits them (mdns-candidates.ts).
 */
import { DEFAULT_REDIS_PREFIX, redisKeys } from '../config/index.js';
import { connectRedis, createRedisClient, quitWithin, type RedisClient, runScript } from '../redis/index.js';
import { type Clock, every, FailureStreak, type Logger } from '../util/index.js';
import { isNodeId } from '../identity/index.js';
import { requireState } from '../errors/index.js';

/** What a node announces about itself. */

/**
 * A registry's heartbeat: `beat` every `ms`; failures are logged as a streak (a warning when
 * they start, a reminder a minute, a line when a beat succeeds again), and the next beat
 * retries. Returns the stop; `streak` (from `heartbeatStreak`) is the one shown in status.
 */
export function heartbeatEvery(clock: Clock, ms: number, beat: () => Promise<void>, logger: Logger, streak = heartbeatStreak(logger, clock)): () => void {
  return every(
    clock,
    ms,
    () => {
      beat().then(
        () => streak.succeeded(),
        (err: Error) => streak.failed(err.message),
      );
    },
    { unref: true },
  );
}

/** The failure streak of a registry's heartbeats. */
export function heartbeatStreak(logger: Logger, clock: Clock): FailureStreak {
  return new FailureStreak('peer registry heartbeat', logger, clock, 'nodes that start meanwhile do not find this one');
}

/**
 * The status line of a heartbeat that keeps failing (none while it works): the registry drops
 * this node's entry once it is older than `ttlMs`, and nodes that start then do not find it.
 */
export function heartbeatProblems(streak: FailureStreak, clock: Clock, ttlMs: number): string[] {
  const f = streak.state();
  if (!f) return [];
  const secs = Math.round((clock.now() - f.since) / 1000);
  return [
    `mesh: the peer registry has not taken this node's heartbeat for ${secs} s (${f.failures} tries: ${f.lastError}); its entry lapses ${Math.round(ttlMs / 1000)} s after the last one taken, and nodes that start meanwhile do not find this one`,
  ];
}

export interface PeerInfo {
  computer: string;
  cluster?: string;
  nodeId: string;
  /** `host:port` addresses where its TLS provider listens (may be empty). */
  addresses: string[];
  /** Transport caps it speaks. */
  caps: string[];
  /** When the registry last heard from it, ms since the epoch (set by the registry). */
  lastSeen?: number;
}

/** A peer written in the config file. */
export interface StaticPeer {
  computer: string;
  nodeId: string;
  cluster?: string;
  /** `host:port` of its TLS listener. */
  address?: string;
}

/** Splits `host:port` (IPv6 in brackets). Undefined when malformed. */
export function parseAddress(address: string): { host: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(address) ?? /^([^:[\]]+):(\d{1,5})$/.exec(address);
  if (!m) return undefined;
  const port = Number(m[2]);
  return port > 0 && port < 65536 ? { host: m[1]!, port } : undefined;
}

/** Checks a static peer list from config; returns the problems (empty when fine). */
export function validateStaticPeers(peers: readonly StaticPeer[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  peers.forEach((p, i) => {
    if (!p.computer) problems.push(`peers[${i}]: computer is empty`);
    if (seen.has(p.computer)) problems.push(`peers[${i}]: computer ${p.computer} is listed twice`);
    seen.add(p.computer);
    if (!isNodeId(p.nodeId)) problems.push(`peers[${i}] (${p.computer}): nodeId is not a weft:ed25519 id`);
    if (p.address !== undefined && !parseAddress(p.address))
      problems.push(`peers[${i}] (${p.computer}): address ${p.address} is not host:port`);
  });
  return problems;
}

function isPeerInfo(v: unknown): v is PeerInfo {
  const p = v as PeerInfo;
  return (
    typeof p === 'object' &&
    p !== null &&
    typeof p.computer === 'string' &&
    isNodeId(p.nodeId) &&
    (p.cluster === undefined || typeof p.cluster === 'string') &&
    Array.isArray(p.addresses) &&
    p.addresses.every((a) => typeof a === 'string') &&
    Array.isArray(p.caps) &&
    p.caps.every((c) => typeof c === 'string')
  );
}

export interface RedisPeerRegistryInit {
  /** `redis://host:port`; with `cluster`, the seed nodes, comma separated. */
  url: string;
  /**
   * `url` names a Redis Cluster. The registry is then one hash and one sorted set of expiry
   * times under one hash tag (`table`), read and written by Lua scripts in that one slot,
   * instead of one key per computer found by SCAN (which sees one master only).
   */
  cluster?: boolean;
  /** The cluster layout's keys (default: `{redis.prefix}{registry}:peers` and `…:peers:expiry`). */
  table?: { entries: string; expiries: string };
  /** This node's entry. */
  self: PeerInfo;
  /** Entry lifetime, ms (default 30 s). */
  ttlMs?: number;
  /** Heartbeat period, ms (default ttl / 3). */
  heartbeatMs?: number;
  /** Key prefix of the entries (default `weft:peers:`, i.e. `{redis.prefix}peers:`). */
  prefix?: string;
}

export interface RedisPeerRegistryDeps {
  logger: Logger;
  clock: Clock;
}

/**
 * Where a mesh finds peers beyond the configured ones. The Redis registry is one; mDNS and
 * others implement the same three calls.
 */
export interface PeerDiscovery {
  /** Connects and announces this node (and keeps announcing it). Idempotent. */
  start(): Promise<void>;
  /** The peers announced right now (not this node). */
  discoverPeers(): Promise<PeerInfo[]>;
  /** Stops announcing. Idempotent. */
  stop(): Promise<void>;
  /** After a key rotation: this node's entry names the new node id from now on (written at once when running). */
  rekeySelf?(nodeId: string): Promise<void>;
  /** What is wrong with this node's announcement right now (its heartbeats failing), one line each; for `weft status`. */
  problems?(): string[];
}

/** Registry entries read or expired per call, at most (the registry is bounded by its TTL, this bounds one reply). */
const MAX_REGISTRY_ENTRIES = 10_000;

/**
 * The Redis peer registry.
 * @example
 * const reg = new RedisPeerRegistry({ url, self: { computer: 'mars', nodeId, addresses: [], caps: [] } }, { logger, clock });
 * await reg.start(); const peers = await reg.discoverPeers();
 */
export class RedisPeerRegistry implements PeerDiscovery {
  private client: RedisClient | undefined;
  private stopBeating: (() => void) | undefined;
  private readonly ttlMs: number;
  private readonly heartbeatMs: number;
  private readonly prefix: string;
  private readonly table: { entries: string; expiries: string } | undefined;
  private stopping: Promise<void> | undefined;
  /** This node's entry (its node id changes with a key rotation). */
  private readonly self: PeerInfo;
  private readonly beats: FailureStreak;

  constructor(
    private readonly init: RedisPeerRegistryInit,
    private readonly deps: RedisPeerRegistryDeps,
  ) {
    requireState(isPeerInfo(init.self), 'RedisPeerRegistry: init.self is not a valid PeerInfo');
    this.beats = heartbeatStreak(deps.logger, deps.clock);
    this.self = { ...init.self };
    this.ttlMs = init.ttlMs ?? 30_000;
    this.heartbeatMs = init.heartbeatMs ?? Math.max(100, Math.floor(this.ttlMs / 3));
    this.prefix = init.prefix ?? 'weft:peers:';
    this.table = init.cluster ? (init.table ?? redisKeys(DEFAULT_REDIS_PREFIX, init.self.computer, { cluster: true }).peersTable) : undefined;
  }

  /** Connects, announces this node and keeps announcing it. Idempotent. */
  async start(): Promise<void> {
    if (this.client) return;
    // No offline queue: while Redis is away a heartbeat fails at once (the next one retries)
    // instead of queueing, and stop() never waits for Redis.
    this.client = await createRedisClient(this.init.url, { cluster: this.init.cluster, lazyConnect: true, maxRetriesPerRequest: null, enableOfflineQueue: false });
    this.client.on('error', (err) =>
      this.deps.logger.debug({ err: err.message }, 'peer registry connection error'),
    );
    await connectRedis(this.client, this.init.url);
    await this.heartbeat();
    this.stopBeating = heartbeatEvery(this.deps.clock, this.heartbeatMs, () => this.heartbeat(), this.deps.logger, this.beats);
  }

  /**
   * Heartbeats failing in a row (the registry's master refusing writes: OOM, a slot down).
   * The log said so and `weft status` did not, while the entry lapsed and new nodes missed it.
   */
  problems(): string[] {
    return this.stopping ? [] : heartbeatProblems(this.beats, this.deps.clock, this.ttlMs);
  }

  /**
   * After a key rotation: the entry names the new node id, written at once. Until then peers
   * reading the registry took the old key back from it (they had just followed the rotation)
   * and refused every frame signed with the new one until this node restarted.
   */
  async rekeySelf(nodeId: string): Promise<void> {
    this.self.nodeId = nodeId;
    if (this.client && !this.stopping) await this.heartbeat();
  }

  /** Writes this node's entry with a fresh expiry. */
  async heartbeat(): Promise<void> {
    const entry: PeerInfo = { ...this.self, lastSeen: this.deps.clock.now() };
    const c = this.client as RedisClient;
    if (this.table) {
      const t = this.table;
      await runScript(c, 'registry-beat', [t.entries, t.expiries], [this.self.computer, JSON.stringify(entry), this.ttlMs, 100]);
      return;
    }
    await c.set(this.prefix + this.self.computer, JSON.stringify(entry), 'PX', this.ttlMs);
  }

  /** The registry's entries as JSON: one script on the cluster layout, SCAN + MGET on one server. */
  private async entries(c: RedisClient): Promise<Array<string | null>> {
    if (this.table) {
      const t = this.table;
      return (await runScript(c, 'registry-list', [t.entries, t.expiries], [MAX_REGISTRY_ENTRIES])) as string[];
    }
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await c.scan(cursor, 'MATCH', `${this.prefix}*`, 'COUNT', 200);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0' && keys.length < MAX_REGISTRY_ENTRIES);
    if (keys.length === 0) return [];
    return c.mget(...keys);
  }

  /** Every live peer but this node, sorted by computer name. Malformed entries are skipped. */
  async discoverPeers(): Promise<PeerInfo[]> {
    const c = this.client;
    requireState(c !== undefined, 'RedisPeerRegistry: call start() first');
    const values = await this.entries(c);
    const peers: PeerInfo[] = [];
    for (const v of values) {
      if (!v) continue;
      let p: unknown;
      try {
        p = JSON.parse(v);
      } catch {
        continue;
      }
      if (!isPeerInfo(p)) continue;
      if (p.computer === this.self.computer || p.nodeId === this.self.nodeId) continue;
      peers.push(p);
    }
    return peers.sort((a, b) => (a.computer < b.computer ? -1 : a.computer > b.computer ? 1 : 0));
  }

  /** Stops announcing and removes this node's entry (best effort). */
  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      this.stopBeating?.();
      const c = this.client;
      if (!c) return;
      if (c.status === 'ready') {
        const t = this.table;
        const leave = t
          ? runScript(c, 'registry-leave', [t.entries, t.expiries], [this.self.computer, this.self.nodeId])
          : c.del(this.prefix + this.self.computer);
        await Promise.race([leave.catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
      }
      await quitWithin(c);
    })();
    return this.stopping;
  }
}
