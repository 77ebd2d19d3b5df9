/**
 * Candidates and mDNS discovery, from the config. The candidate book exists whenever the mesh
 * does (pinned peers come back after a restart even with mDNS turned off later); the mDNS
 * announcer and browser only with `mesh.enable_mdns`, which needs the TLS provider: what is
 * announced is the TLS listener, and a pinned candidate is dialled there.
 */
import { ConfigError } from '../errors/index.js';
import type { WeftConfig } from '../config/index.js';
import { MdnsDiscovery, PeerCandidates } from '../mesh/index.js';
import type { TlsProvider } from '../transport/index.js';
import type { Logger } from '../util/index.js';
import type { AssembledNode } from './assemble.js';

/** What the daemon holds: the book (for the routes), and the lifecycle of the mDNS side. */
export interface PeerCandidatesRuntime {
  candidates: PeerCandidates;
  mdns: boolean;
  /** After the node started: follows key rotations and, with mDNS on, announces and browses. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * @throws ConfigError mesh.enable_mdns with a provider other than tls.
 * @example
 * checkMdnsConfig(loadConfig()); // with mesh.enable_mdns = true and mesh.provider = "redis": throws
 */
export function checkMdnsConfig(cfg: WeftConfig): void {
  if (cfg.mesh.enable_mdns && cfg.mesh.provider !== 'tls') {
    throw new ConfigError(
      `config key mesh.enable_mdns: mDNS announces the TLS listener and needs mesh.provider = "tls" (it is "${cfg.mesh.provider}"); with redis, nodes find each other through the Redis peer registry`,
      { key: 'mesh.enable_mdns' },
    );
  }
}

/**
 * Makes the candidate book and puts pinned peers back (call before the node starts). Undefined
 * without a mesh.
 * @throws ConfigError mesh.enable_mdns with a provider other than tls.
 */
export function peerCandidatesFromConfig(cfg: WeftConfig, a: AssembledNode, logger: Logger): PeerCandidatesRuntime | undefined {
  checkMdnsConfig(cfg);
  const mesh = a.mesh;
  if (!mesh) return undefined;
  const log = logger.child({ mod: 'mdns' });
  const provider = mesh.provider as Partial<TlsProvider>;
  const node = a.node;
  const candidates = new PeerCandidates(
    {},
    {
      node,
      selfNodeId: () => a.identity.nodeId,
      peers: a.peers,
      audit: a.audit,
      ...(typeof provider.addPeer === 'function' ? { dial: (p: Parameters<TlsProvider['addPeer']>[0]) => (provider as TlsProvider).addPeer(p) } : {}),
      // An outbound peer.connected is an authenticated TLS connection where the peer was dialled:
      // what admits a candidate by subnet policy and confirms a pinned peer's new address.
      onLink: (fn) => mesh.provider.on(fn),
      linked: (computer) => mesh.provider.waitForPeer(computer, { timeoutMs: 0 }).then(
        () => true,
        () => false,
      ),
      subnetTrust: (host) => a.privacy.policy.subnetTrust(host),
      clock: node.clock,
      logger: log,
    },
  );
  const restored = candidates.restore();
  if (restored > 0) log.info({ restored }, 'pinned peers restored');
  let discovery: MdnsDiscovery | undefined;
  return {
    candidates,
    mdns: cfg.mesh.enable_mdns,
    async start() {
      candidates.start();
      if (!cfg.mesh.enable_mdns) return;
      const port = (mesh.provider as TlsProvider).address?.()?.port;
      if (!port) throw new ConfigError('config key mesh.enable_mdns: the TLS provider is not listening, so there is no port to announce', { key: 'mesh.enable_mdns' });
      if (/^(127\.|::1$|localhost$)/.test(cfg.mesh.tls_host)) {
        log.warn({ tls_host: cfg.mesh.tls_host }, 'mesh.enable_mdns: the TLS listener is on loopback, so nodes that find this one cannot dial it; set mesh.tls_host = "0.0.0.0" or a LAN address');
      }
      const id = a.identity;
      discovery = new MdnsDiscovery(
        { self: { computer: cfg.computer.name, ...(cfg.computer.cluster ? { cluster: cfg.computer.cluster } : {}), nodeId: id.nodeId, fingerprint: id.fingerprint }, port },
        {
          candidates,
          // MdnsDiscovery bounds these: one per announcer a minute, ten a minute in all, plus one summary a minute.
          reject: ({ code, ...r }) => node.ns.store.write(() => void node.ns.rejections.add({ origin: 'mdns', code: code ?? 'MDNS_ANNOUNCEMENT_INVALID', ...r })),
          clock: node.clock,
          logger: log,
        },
      );
      await discovery.start();
    },
    async stop() {
      await discovery?.stop();
      candidates.stop();
    },
  };
}
