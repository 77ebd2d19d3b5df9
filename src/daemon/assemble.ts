import { join } from 'node:path';
import { AuditLog } from '../audit/index.js';
import { type SystemPipelineInit, systemPipeline, type TrustEvaluator, trustEvaluator } from '../cartridges/index.js';
import { RedisBus } from '../bus/index.js';
import type { Catalog } from '../catalog/index.js';
import { DEFAULT_REDIS_PREFIX, type RedisKeys, redisKeys } from '../config/index.js';
import { RedisClaims } from '../redis/index.js';
import { loadOrCreateIdentity, type NodeIdentity, PinnedKeys } from '../identity/index.js';
import {
  type KnownPeer,
  MeshOutbox,
  MeshService,
  type MeshInit,
  meshPublisher,
  PeerBook,
  type PeerDiscovery,
  type PeerInfo,
  PeerMemory,
  RedisPeerRegistry,
  ReplayGuard,
  TeleClaudeWire,
  teleclaudeNodeId,
} from '../mesh/index.js';
import type { Cartridge } from '../pipeline/index.js';
import { loadOrCreateLinkKeyPair, type ProviderFactory } from '../transport/index.js';
import { type Clock, type Logger, silentLogger, systemClock } from '../util/index.js';
import { createNode, type RedisBusOptions, type WeftNode } from '../node/index.js';
import { type FederationInit, FederationService } from '../federation/index.js';
import { type PrivacyInit, PrivacyPolicy, privacyProjection, PrivacyService } from '../privacy/index.js';
import { type FallbackInit, GitFallback, type RecoveryInit, RecoveryService } from '../recovery/index.js';

export interface AssembleInit {
  dataDir: string;
  computer: string;
  cluster?: string;
  /** Local bus on Redis instead of the embedded log. */
  redis?: RedisBusOptions;
  /** Prefix of every Weft key on Redis (default `weft:`): registry entries, claims, streams. */
  redisPrefix?: string;
  /** The Redis URLs name a Redis Cluster: hash-tagged key names, cluster clients (default false). */
  redisCluster?: boolean;
  catalog?: Catalog;
  system?: SystemPipelineInit;
  /** Cartridges after the system pipeline and the mesh publisher. */
  extraCartridges?: Cartridge[];
  /** Shell observation, sharing policy, summaries and queries (default: the default policy, no observation). */
  privacy?: PrivacyInit;
  mesh?: {
    provider: ProviderFactory;
    /** Peers from the config. */
    peers?: KnownPeer[];
    /** Discovery through the Redis peer registry at this URL. */
    registryUrl?: string;
    /** Another discovery (the NATS KV registry), made with this node's entry; used when `registryUrl` is not set. */
    discovery?: (deps: { self: PeerInfo; logger: Logger; clock: Clock }) => PeerDiscovery;
    /** Addresses to announce in the registry (the TLS listener). */
    announce?: string[];
    options?: MeshInit;
    /** TeleClaude nodes on the same Redis, reached over the seed's plain JSON wire. */
    teleclaude?: { url: string; peers: Array<{ computer: string; cluster?: string }> };
    /** Mounts, mirror and invoke (defaults: enclave = cluster or computer, no edges, no approved pipelines). */
    federation?: Partial<FederationInit>;
  };
  /**
   * Recovery beacons and journals, when there is a mesh (given: on unless `enabled: false`, a
   * beacon every 5 min, 2 copies wanted; absent: this node sends none and keeps its frame
   * sequence as it is, but still answers its peers' questions and can restore). The daemon
   * always gives it.
   */
  recovery?: Omit<RecoveryInit, 'identityCreated' | 'dataDir'>;
  /** The git fallback (`fallback.git_remote`), when there is a mesh; absent: none. */
  fallback?: Omit<FallbackInit, 'dataDir'>;
}

/** A node with its identity, audit log and (when configured) its mesh, not started yet. */
export interface AssembledNode {
  node: WeftNode;
  /** The current identity (replaced by a key rotation). */
  identity: NodeIdentity;
  identityCreated: boolean;
  audit: AuditLog;
  peers: PeerBook;
  mesh: MeshService | undefined;
  /** Mounts, mirror and invoke: there when the mesh is. */
  federation: FederationService | undefined;
  /** Recovery beacons, journals and Phoenix restore: there when the mesh is. */
  recovery: RecoveryService | undefined;
  /** The git fallback: there when the mesh is and a remote is set. */
  fallback: GitFallback | undefined;
  privacy: PrivacyService;
  /** The pipeline's trust stage: who is throttled now, for `weft status`. */
  trust: TrustEvaluator;
  /** Starts the node, then the mesh, then the privacy layer. */
  start(): Promise<void>;
  /** Stops the mesh, then the node. Idempotent. */
  stop(): Promise<void>;
}

/** The names this node holds on a shared Redis: its computer name and its bus stream. */
function claimsFor(init: AssembleInit, keys: RedisKeys, busStream: string | undefined, nodeId: string, logger: Logger): RedisClaims | undefined {
  const url = init.redis?.url ?? init.mesh?.registryUrl;
  if (!url) return undefined;
  const list = [
    {
      key: keys.claimComputer(init.computer),
      what: `computer name '${init.computer}'`,
      hint: 'give this node its own computer.name (WEFT_COMPUTER_NAME)',
    },
  ];
  if (busStream) {
    list.push({ key: keys.claimStream(busStream), what: `bus stream '${busStream}'`, hint: 'give this node its own redis.stream (WEFT_REDIS_STREAM) or leave it unset' });
  }
  return new RedisClaims({ url, cluster: init.redisCluster === true, nodeId, claims: list }, logger.child({ mod: 'claims' }));
}

/**
 * Builds a whole node: identity (`<dataDir>/identity.key`, 0600), the ordered system
 * pipeline (trust → dedup → enrichment → correlation → classification → projection) with the
 * mesh publisher after it, the audit log, and the mesh service when a provider is given.
 * The daemon, the demo and the multi-node tests all assemble nodes this way.
 */
export async function assembleNode(init: AssembleInit, deps: { clock?: Clock; logger?: Logger } = {}): Promise<AssembledNode> {
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger ?? silentLogger;
  const { identity, created } = loadOrCreateIdentity(join(init.dataDir, 'identity.key'));
  const self = { computer: init.computer, nodeId: identity.nodeId, ...(init.cluster ? { cluster: init.cluster } : {}) };
  const peers = new PeerBook(self, init.mesh?.peers ?? []);
  let outbox: MeshOutbox | undefined;
  // The privacy layer is made after the node; the stages that report to it are made before.
  const privacyRef: { s?: PrivacyService } = {};
  const publisher = meshPublisher({
    peers: init.mesh ? peers : undefined,
    outbox: () => outbox,
    self,
    logger: logger.child({ mod: 'publisher' }),
    allow: (e, p) => privacyRef.s?.allowsEgress(e, p) ?? p.trustLevel !== 'untrusted',
  });
  const projection = privacyProjection({
    onPeerSummary: () => privacyRef.s?.onPeerSummary(),
    onRefusedSummary: (peer, reason) => privacyRef.s?.onRefusedSummary(peer, reason),
  });
  const trust = trustEvaluator(init.system?.trust, { peers });
  const node = await createNode(
    {
      dataDir: init.dataDir,
      computer: init.computer,
      ...(init.cluster ? { cluster: init.cluster } : {}),
      ...(init.redis ? { redis: init.redis } : {}),
      ...(init.catalog ? { catalog: init.catalog } : {}),
      cartridges: (_defaults, stores) => systemPipeline(init.system ?? {}, { peers, trust, after: [publisher, projection(stores), ...(init.extraCartridges ?? [])] })(stores),
    },
    { clock, logger },
  );
  node.setNodeId(identity.nodeId);
  const audit = new AuditLog({ store: node.ns.store });
  if (created) await audit.record('identity.created', null, { nodeId: identity.nodeId, fingerprint: identity.fingerprint }, true);
  const keys = redisKeys(init.redisPrefix ?? DEFAULT_REDIS_PREFIX, init.computer, { cluster: init.redisCluster === true });
  // The stream the node's bus actually reads (its default is derived in one place, the node).
  const claims = claimsFor(init, keys, node.bus instanceof RedisBus ? node.bus.stream : undefined, identity.nodeId, logger);
  let mesh: MeshService | undefined;
  // The TeleClaude wire reports refusals through the mesh made after it.
  const meshRef: { m?: MeshService } = {};
  if (init.mesh) {
    outbox = new MeshOutbox(node.ns.store);
    const memory = new PeerMemory(node.ns.store);
    const tc = init.mesh.teleclaude;
    for (const p of tc?.peers ?? []) {
      peers.upsert({
        computer: p.computer,
        nodeId: teleclaudeNodeId(p.computer),
        ...(p.cluster ? { cluster: p.cluster } : {}),
        trustLevel: p.cluster !== undefined && p.cluster === init.cluster ? 'peer' : 'share_to',
        origin: 'static',
        wire: 'teleclaude',
      });
    }
    // Peers found before a restart keep being routed to while the registry is empty.
    if (init.mesh.registryUrl || init.mesh.discovery) for (const p of memory.load(clock.now())) peers.upsert(p);
    const provider = init.mesh.provider({ logger: logger.child({ mod: 'transport' }), clock, identity });
    const registry = init.mesh.registryUrl
      ? new RedisPeerRegistry(
          {
            url: init.mesh.registryUrl,
            self: { ...self, addresses: init.mesh.announce ?? [], caps: [...provider.caps] },
            ttlMs: 15_000,
            prefix: keys.peersPrefix,
            ...(keys.layout === 'cluster' ? { cluster: true, table: keys.peersTable } : {}),
          },
          { logger: logger.child({ mod: 'registry' }), clock },
        )
      : init.mesh.discovery?.({ self: { ...self, addresses: init.mesh.announce ?? [], caps: [...provider.caps] }, logger: logger.child({ mod: 'registry' }), clock });
    const teleclaude =
      tc && tc.peers.length > 0
        ? new TeleClaudeWire(
            { url: tc.url, self, peers: tc.peers },
            {
              store: node.ns.store,
              outbox,
              apply: (entries, inTx) => node.processor.processBatch(entries, {}, inTx),
              refuse: (computer, code, message, input) => (meshRef.m as MeshService).reject(undefined, computer, code, message, input),
              clock,
              logger: logger.child({ mod: 'teleclaude' }),
            },
          )
        : undefined;
    // The static X25519 key that seals frames on aead links (`<dataDir>/link.key`, 0600; peers learn it from our hellos).
    const linkKey = loadOrCreateLinkKeyPair(join(init.dataDir, 'link.key')).pair;
    mesh = new MeshService(init.mesh.options ?? {}, {
      node,
      identity,
      provider,
      peers,
      pins: new PinnedKeys(),
      linkKey,
      outbox,
      guard: new ReplayGuard({}, { store: node.ns.store, logger }),
      audit,
      ...(registry ? { discovery: registry, memory } : {}),
      ...(teleclaude ? { teleclaude } : {}),
      clock,
      logger: logger.child({ mod: 'mesh' }),
    });
  }
  let stopping: Promise<void> | undefined;
  if (mesh) meshRef.m = mesh;
  const federation = mesh && init.mesh ? new FederationService(federationDefaults(init, init.mesh.federation ?? {}), { node, mesh, peers, audit, clock, logger: logger.child({ mod: 'federation' }) }) : undefined;
  // A mirror of this node gets what the publisher would push it, by the same sharing policy.
  federation?.mirror.setEgress((e, p) => privacyRef.s?.allowsEgress(e, p) ?? p.trustLevel !== 'untrusted');
  // And invoke's query.events answers by the same policy.
  federation?.invoke.setEgress((e, p) => privacyRef.s?.allowsEgress(e, p) ?? p.trustLevel !== 'untrusted');
  const recovery =
    mesh && federation
      ? new RecoveryService(
          { ...(init.recovery ?? { enabled: false, sequenceFloor: false }), identityCreated: created, dataDir: init.dataDir },
          { node, mesh, peers, mounts: federation.mounts, audit, identity: () => assembled.identity, clock, logger: logger.child({ mod: 'recovery' }) },
        )
      : undefined;
  const fallback =
    mesh && init.fallback
      ? new GitFallback(
          { ...init.fallback, dataDir: init.dataDir },
          { node, mesh, peers, identity: () => assembled.identity, clock, logger: logger.child({ mod: 'fallback' }) },
        )
      : undefined;
  const privacy = new PrivacyService(init.privacy ?? { policy: new PrivacyPolicy() }, {
    node,
    identity: () => assembled.identity,
    peers,
    mesh,
    audit,
    clock,
    logger: logger.child({ mod: 'privacy' }),
  });
  privacyRef.s = privacy;
  const assembled: AssembledNode = {
    node,
    identity,
    identityCreated: created,
    audit,
    peers,
    mesh,
    federation,
    recovery,
    fallback,
    privacy,
    trust,
    async start() {
      // Before anything is read or written on a shared Redis: refuse if another node has these names.
      await claims?.start();
      await node.start();
      // Before the first frame: a restored node's sequence must not start at 1 (recovery/frame-sequence.ts).
      await recovery?.prepare();
      await mesh?.start();
      await federation?.start();
      await recovery?.start();
      await fallback?.start();
      await privacy.start();
    },
    stop() {
      stopping ??= (async () => {
        await privacy.stop();
        await fallback?.stop();
        await recovery?.stop();
        await federation?.stop();
        await mesh?.stop();
        await node.stop();
        await claims?.stop();
      })();
      return stopping;
    },
  };
  return assembled;
}

/** Federation settings with their defaults: enclave = cluster, else computer name. */
function federationDefaults(init: AssembleInit, f: Partial<FederationInit>): FederationInit {
  return {
    invoke: {
      enclave: init.cluster ?? init.computer,
      enclaves: {},
      edges: [],
      pipelines: [],
      maxConcurrent: 32,
      maxDeadlineMs: 600_000,
      forward: false,
      ...f.invoke,
    },
    mirror: { beatMs: 1000, window: 512, inFlight: 4, ...f.mirror },
  };
}
