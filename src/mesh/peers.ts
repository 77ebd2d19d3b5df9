import { ConfigError } from '../errors/index.js';
import { isNodeId } from '../identity/index.js';
import type { PeerInfo } from './discovery.js';

/** How far this node trusts a peer (caro's TrustLevel, lowest first). */
export type TrustLevel = 'untrusted' | 'share_to' | 'query_from' | 'peer' | 'supervisor';
export const TRUST_LEVELS: readonly TrustLevel[] = ['untrusted', 'share_to', 'query_from', 'peer', 'supervisor'];

/** A peer this node knows: from the config or discovered. */
export interface KnownPeer {
  computer: string;
  nodeId: string;
  cluster?: string;
  /** `host:port` of its TLS listener, when it has one. */
  address?: string;
  trustLevel: TrustLevel;
  /** The level was written in the config (`!trust` in mesh.peers), not a default. */
  trustSet?: boolean;
  origin: 'static' | 'discovered';
  lastSeen?: number;
  /** Transport caps it announced (discovered peers). */
  caps?: string[];
  /** `teleclaude`: a TeleClaude node reached over the seed's plain JSON wire (mesh.teleclaude_peers). */
  wire?: 'teleclaude';
}

/**
 * Parses a static peer: `computer[/cluster]@host:port#nodeId[!trust]` (the address part may
 * be omitted for a Redis-only peer: `computer[/cluster]#nodeId`).
 * @example
 * parsePeerSpec('mars/home@127.0.0.1:9238#weft:ed25519:AAAA...')
 */
export function parsePeerSpec(spec: string): KnownPeer {
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\/([A-Za-z0-9._-]+))?(?:@([^#]+))?#(weft:ed25519:[A-Za-z0-9+/=]+)(?:!([a-z_]+))?$/.exec(spec.trim());
  if (!m) {
    throw new ConfigError(
      `config key mesh.peers: ${JSON.stringify(spec)} is not allowed; expected "computer[/cluster]@host:port#weft:ed25519:<key>[!trust]"`,
      { key: 'mesh.peers' },
    );
  }
  const [, computer, cluster, address, nodeId, trust] = m;
  if (!isNodeId(nodeId)) throw new ConfigError(`config key mesh.peers: ${computer}: ${nodeId} is not a valid node id`, { key: 'mesh.peers' });
  if (trust !== undefined && !TRUST_LEVELS.includes(trust as TrustLevel)) {
    throw new ConfigError(`config key mesh.peers: ${computer}: trust '${trust}' is not one of ${TRUST_LEVELS.join(', ')}`, { key: 'mesh.peers' });
  }
  return {
    computer: computer as string,
    nodeId: nodeId as string,
    ...(cluster ? { cluster } : {}),
    ...(address ? { address } : {}),
    trustLevel: (trust as TrustLevel | undefined) ?? 'peer',
    ...(trust !== undefined ? { trustSet: true } : {}),
    origin: 'static',
  };
}

/**
 * Every peer this node knows, never itself. Static peers come from the config; discovered
 * ones from the Redis registry (a discovered peer in our cluster is a `peer`, one outside it
 * `share_to`). Feeds the trust evaluator's PeerDirectory and the publisher's routing.
 */
export class PeerBook {
  private readonly byComputer = new Map<string, KnownPeer>();
  private readonly byNode = new Map<string, KnownPeer>();
  private readonly listeners = new Set<(p: KnownPeer) => void>();
  private readonly rekeyListeners = new Set<(p: KnownPeer, oldNodeId: string) => void>();
  private trustOf: ((p: KnownPeer) => TrustLevel | undefined) | undefined;
  /** The level each peer had before a policy rule set it (what the config or discovery gave). */
  private readonly given = new Map<string, TrustLevel>();
  /** Keys peers rotated away from (old node id → computer): discovery never brings one back. */
  private readonly retired = new Map<string, string>();
  /** Retired keys a registry still named, reported once each. */
  private readonly retiredSeen = new Set<string>();
  /** Told once per retired key a registry entry still names (a stale entry, or someone replaying it). */
  onRetiredKey: ((computer: string, nodeId: string) => void) | undefined;

  constructor(
    private readonly self: { computer: string; cluster?: string; nodeId: string },
    statics: readonly KnownPeer[] = [],
  ) {
    for (const p of statics) this.upsert(p);
  }

  /** Adds or refreshes a peer; ignores self. Returns true when it is new or changed key. */
  upsert(p: KnownPeer): boolean {
    if (p.computer === this.self.computer || p.nodeId === this.self.nodeId) return false;
    const old = this.byComputer.get(p.computer);
    if (old && old.origin === 'static' && p.origin === 'discovered') {
      old.lastSeen = p.lastSeen;
      return false; // the config wins over what the registry says
    }
    if (old) this.byNode.delete(old.nodeId);
    this.given.set(p.computer, p.trustLevel);
    const t = this.trustOf?.(p);
    if (t) p.trustLevel = t;
    this.byComputer.set(p.computer, p);
    this.byNode.set(p.nodeId, p);
    const changed = !old || old.nodeId !== p.nodeId;
    if (changed) for (const l of this.listeners) l(p);
    return changed;
  }

  /**
   * Merges what the registry reports. An entry naming a key its computer rotated away from is
   * skipped: the registry entry is rewritten by the node's heartbeat, and until then it would
   * take back the key the endorsed rotation replaced (every frame signed with the new one then
   * refused as FRAME_UNKNOWN_SENDER).
   */
  discovered(infos: readonly PeerInfo[]): void {
    for (const i of infos) {
      if (this.retired.has(i.nodeId)) {
        if (!this.retiredSeen.has(i.nodeId) && this.retiredSeen.size < 1024) {
          this.retiredSeen.add(i.nodeId);
          this.onRetiredKey?.(i.computer, i.nodeId);
        }
        continue;
      }
      this.upsert({
        computer: i.computer,
        nodeId: i.nodeId,
        ...(i.cluster ? { cluster: i.cluster } : {}),
        ...(i.addresses[0] ? { address: i.addresses[0] } : {}),
        trustLevel: i.cluster !== undefined && i.cluster === this.self.cluster ? 'peer' : 'share_to',
        origin: 'discovered',
        caps: i.caps,
        ...(i.lastSeen !== undefined ? { lastSeen: i.lastSeen } : {}),
      });
    }
  }

  /** Marks a key as rotated away from: discovery never makes it a peer's key again (bounded: the newest 1024 kept). */
  retire(oldNodeId: string, computer: string): void {
    this.retired.delete(oldNodeId);
    if (this.retired.size >= 1024) {
      const oldest = this.retired.keys().next();
      if (!oldest.done) this.retired.delete(oldest.value);
    }
    this.retired.set(oldNodeId, computer);
  }

  /** Replaces a peer's key after an endorsed rotation. */
  rekey(oldNodeId: string, newNodeId: string): void {
    const p = this.byNode.get(oldNodeId);
    if (!p) return;
    this.retire(oldNodeId, p.computer);
    this.byNode.delete(oldNodeId);
    p.nodeId = newNodeId;
    this.byNode.set(newNodeId, p);
    for (const l of this.rekeyListeners) l(p, oldNodeId);
  }

  /** Calls `fn` after an endorsed key rotation (what was bound to the old key moves to the new one). */
  onRekeyed(fn: (p: KnownPeer, oldNodeId: string) => void): () => void {
    this.rekeyListeners.add(fn);
    return () => this.rekeyListeners.delete(fn);
  }

  /**
   * Sets the rule that decides peers' trust levels (the privacy policy) and applies it to every
   * peer now; `retrust()` applies it again after the rule changed. A peer the rule does not
   * name keeps the level the config or discovery gave it.
   */
  setTrustResolver(fn: (p: KnownPeer) => TrustLevel | undefined): void {
    this.trustOf = fn;
    this.retrust();
  }

  retrust(): void {
    for (const p of this.byComputer.values()) {
      const given = this.given.get(p.computer) ?? p.trustLevel;
      p.trustLevel = this.trustOf?.({ ...p, trustLevel: given }) ?? given;
    }
  }

  onAdded(fn: (p: KnownPeer) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** For the trust evaluator. */
  get(nodeId: string): KnownPeer | undefined {
    return this.byNode.get(nodeId);
  }

  byName(computer: string): KnownPeer | undefined {
    return this.byComputer.get(computer);
  }

  /** Every known peer except self. */
  getAllPeers(): KnownPeer[] {
    return [...this.byComputer.values()];
  }

  /** Peers sharing this node's cluster, except self; none when this node has no cluster. */
  getClusterPeers(): KnownPeer[] {
    const c = this.self.cluster;
    if (c === undefined) return [];
    return this.getAllPeers().filter((p) => p.cluster === c);
  }
}
