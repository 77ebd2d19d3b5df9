/**
 * The sharing policy (Caro FR-701..705): what this node shares with whom. One trust level per
 * peer (the mesh's `TrustLevel`, also used by the trust evaluator) is resolved from, most
 * specific first: a level set at run time (`weft trust set`), `privacy.node_trust` (by computer
 * name, node id or fingerprint), the peer's `!trust` in `mesh.peers`, `privacy.subnet_trust`
 * (longest matching CIDR of the peer's address), and for a discovered node outside this
 * cluster `privacy.default_trust`.
 */
import { isIP } from 'node:net';
import type { DataLevel, SharingPolicy } from '../catalog/index.js';
import { ConfigError } from '../errors/index.js';
import { fingerprintOfNodeId } from '../identity/index.js';
import { type KnownPeer, TRUST_LEVELS, type TrustLevel } from '../mesh/index.js';
import type { CommandCategory } from './classify.js';

/** The policy as the config gives it. */
export interface PolicyInit {
  /** The most detailed class this node shares: `summarized` (summaries and aggregates) or `aggregated` (query answers only). Default summarized. */
  maxLevel?: Exclude<DataLevel, 'raw'>;
  /** Trust of a discovered node outside this cluster that nothing else names (default share_to). */
  defaultTrust?: TrustLevel;
  nodeTrust?: Readonly<Record<string, TrustLevel>>;
  subnetTrust?: Readonly<Record<string, TrustLevel>>;
  /** Categories to share (empty: all). */
  allowedCategories?: readonly CommandCategory[];
  /** Categories never shared; deny wins over allow. */
  deniedCategories?: readonly CommandCategory[];
  /** Aggregate buckets built from fewer nodes are suppressed (default 3). */
  minContributors?: number;
  /** Push summaries to peers whose trust allows it (default false: preview first with `weft summaries show`). */
  shareSummaries?: boolean;
  /** `mesh.enable_mdns`, shown in the policy (mDNS finds candidates; admitting them is this policy's subnet rule). */
  enableMdns?: boolean;
}

interface Cidr {
  text: string;
  v6: boolean;
  bits: number;
  net: bigint;
}

function ipToBigInt(ip: string): { v6: boolean; value: bigint } | undefined {
  const kind = isIP(ip);
  if (kind === 4) {
    return { v6: false, value: ip.split('.').reduce((a, o) => (a << 8n) | BigInt(Number(o)), 0n) };
  }
  if (kind === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
    if (mapped) return ipToBigInt(mapped[1] as string);
    const [head, tail] = ip.split('::') as [string, string | undefined];
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
    return { v6: true, value: groups.reduce((a, g) => (a << 16n) | BigInt(Number.parseInt(g || '0', 16)), 0n) };
  }
  return undefined;
}

/**
 * Parses `10.0.1.0/24` or `fd00::/8`; a ConfigError names a bad one.
 * @example
 * parseCidr('10.0.1.0/24').bits // 24
 */
export function parseCidr(text: string): Cidr {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text.trim());
  const ip = m ? ipToBigInt(m[1] as string) : undefined;
  const bits = m ? Number(m[2]) : -1;
  if (!m || !ip || bits > (ip.v6 ? 128 : 32)) {
    throw new ConfigError(`config key privacy.subnet_trust: '${text}' is not a CIDR such as 10.0.1.0/24 or fd00::/8`, { key: 'privacy.subnet_trust' });
  }
  const width = ip.v6 ? 128n : 32n;
  const mask = bits === 0 ? 0n : ((1n << BigInt(bits)) - 1n) << (width - BigInt(bits));
  return { text, v6: ip.v6, bits, net: ip.value & mask };
}

function inCidr(c: Cidr, ip: { v6: boolean; value: bigint }): boolean {
  if (c.v6 !== ip.v6) return false;
  const width = c.v6 ? 128n : 32n;
  const mask = c.bits === 0 ? 0n : ((1n << BigInt(c.bits)) - 1n) << (width - BigInt(c.bits));
  return (ip.value & mask) === c.net;
}

function checkLevel(key: string, name: string, level: string): TrustLevel {
  if (!TRUST_LEVELS.includes(level as TrustLevel)) {
    throw new ConfigError(`config key ${key}: '${name}' = '${level}' is not one of ${TRUST_LEVELS.join(', ')}`, { key });
  }
  return level as TrustLevel;
}

/** `privacy.min_contributors` when the config does not set it; an answer without `min_contributors` is read as this. */
export const DEFAULT_MIN_CONTRIBUTORS = 3;

/** What a trust level lets a peer have of ours. */
export interface TrustGrant {
  /** Our pushed summaries (summarized class). */
  receivesSummaries: boolean;
  /** Answers to its aggregate queries (aggregated class). */
  mayQuery: boolean;
}

/**
 * The grants of each level: untrusted nothing; share_to our summaries; query_from queries;
 * peer both; supervisor queries (aggregated class) but never a node's own summaries.
 */
export const GRANTS: Readonly<Record<TrustLevel, TrustGrant>> = {
  untrusted: { receivesSummaries: false, mayQuery: false },
  share_to: { receivesSummaries: true, mayQuery: false },
  query_from: { receivesSummaries: false, mayQuery: true },
  peer: { receivesSummaries: true, mayQuery: true },
  supervisor: { receivesSummaries: false, mayQuery: true },
};

/** The effective policy: trust resolution, category filter, and the grants. */
export class PrivacyPolicy {
  readonly maxLevel: Exclude<DataLevel, 'raw'>;
  readonly defaultTrust: TrustLevel;
  readonly nodeTrust: ReadonlyMap<string, TrustLevel>;
  private readonly subnets: Array<{ cidr: Cidr; level: TrustLevel }>;
  readonly allowed: ReadonlySet<CommandCategory>;
  readonly denied: ReadonlySet<CommandCategory>;
  readonly minContributors: number;
  readonly shareSummaries: boolean;
  private readonly enableMdns: boolean;
  /** Levels set at run time (`weft trust set`), by computer name and the key they were set for: the most specific of all. */
  private readonly runtime = new Map<string, { level: TrustLevel; nodeId?: string }>();

  constructor(init: PolicyInit = {}) {
    if ((init.maxLevel as string | undefined) === 'raw') {
      throw new ConfigError("config key privacy.max_level: 'raw' is not allowed: raw data never leaves its node (summarized or aggregated)", { key: 'privacy.max_level' });
    }
    this.maxLevel = init.maxLevel ?? 'summarized';
    this.defaultTrust = init.defaultTrust ?? 'share_to';
    this.nodeTrust = new Map(Object.entries(init.nodeTrust ?? {}).map(([k, v]) => [k, checkLevel('privacy.node_trust', k, v)]));
    this.subnets = Object.entries(init.subnetTrust ?? {})
      .map(([k, v]) => ({ cidr: parseCidr(k), level: checkLevel('privacy.subnet_trust', k, v) }))
      .sort((a, b) => b.cidr.bits - a.cidr.bits);
    this.allowed = new Set(init.allowedCategories ?? []);
    this.denied = new Set(init.deniedCategories ?? []);
    this.minContributors = init.minContributors ?? DEFAULT_MIN_CONTRIBUTORS;
    this.shareSummaries = init.shareSummaries ?? false;
    this.enableMdns = init.enableMdns ?? false;
  }

  /**
   * A level set at run time for a peer, bound to the key it has now: a node that later shows up
   * under the same name with another key (a name anyone can announce on a shared registry)
   * does not inherit it.
   */
  /** The level set at run time for `computer`, if any. */
  runtimeLevel(computer: string): TrustLevel | undefined {
    return this.runtime.get(computer)?.level;
  }

  setRuntime(computer: string, level: TrustLevel | undefined, nodeId?: string): void {
    if (level === undefined) this.runtime.delete(computer);
    else this.runtime.set(computer, { level, ...(nodeId ? { nodeId } : {}) });
  }

  /**
   * A peer's trust level under this policy, with the rule that decided it; `undefined` level
   * means no rule names it (the peer keeps what the mesh gave it).
   */
  resolve(p: Pick<KnownPeer, 'computer' | 'nodeId' | 'address' | 'origin' | 'cluster' | 'trustSet'>, selfCluster: string | undefined): { level: TrustLevel | undefined; rule: string } {
    const rt = this.runtime.get(p.computer);
    if (rt && (rt.nodeId === undefined || rt.nodeId === p.nodeId)) return { level: rt.level, rule: 'weft trust set' };
    // A discovered node chose its own name and address: only its key (node id, fingerprint) can name it.
    const claimed = p.origin === 'discovered';
    for (const key of [claimed ? undefined : p.computer, p.nodeId, fingerprintOfNodeId(p.nodeId)]) {
      const v = key ? this.nodeTrust.get(key) : undefined;
      if (v) return { level: v, rule: `privacy.node_trust.${key}` };
    }
    if (p.trustSet) return { level: undefined, rule: `mesh.peers (!trust)` };
    const bySubnet = p.address && !claimed ? this.subnetTrust(hostOf(p.address)) : undefined;
    if (bySubnet) return bySubnet;
    if (p.origin === 'discovered' && !(selfCluster !== undefined && p.cluster === selfCluster)) {
      return { level: this.defaultTrust, rule: 'privacy.default_trust' };
    }
    return { level: undefined, rule: p.origin === 'static' ? 'mesh.peers' : 'same cluster' };
  }

  /**
   * The level `privacy.subnet_trust` gives an IP address (longest matching CIDR) and the rule
   * that gave it; undefined when no CIDR matches. mDNS admission asks this for the address an
   * announcement came from.
   * @example
   * new PrivacyPolicy({ subnetTrust: { '10.0.1.0/24': 'peer' } }).subnetTrust('10.0.1.7') // { level: 'peer', rule: 'privacy.subnet_trust.10.0.1.0/24' }
   */
  subnetTrust(host: string): { level: TrustLevel; rule: string } | undefined {
    const ip = ipToBigInt(host);
    if (!ip) return undefined;
    for (const s of this.subnets) if (inCidr(s.cidr, ip)) return { level: s.level, rule: `privacy.subnet_trust.${s.cidr.text}` };
    return undefined;
  }

  /** A peer's endorsed key rotation: a level set for its old key follows it. Returns whether one did. */
  rekey(computer: string, oldNodeId: string, newNodeId: string): boolean {
    const rt = this.runtime.get(computer);
    if (!rt || rt.nodeId !== oldNodeId) return false;
    this.runtime.set(computer, { level: rt.level, nodeId: newNodeId });
    return true;
  }

  /** Whether a category may appear in anything shared (deny wins; an empty allow list allows all). */
  shares(category: CommandCategory): boolean {
    if (this.denied.has(category)) return false;
    return this.allowed.size === 0 || this.allowed.has(category);
  }

  /** Whether this node pushes its summaries to a peer of this level. */
  pushesSummariesTo(level: TrustLevel): boolean {
    return this.shareSummaries && this.maxLevel === 'summarized' && GRANTS[level].receivesSummaries;
  }

  /** The policy in the seed's SharingPolicy shape (for `weft privacy policy` and the API). */
  describe(staticPeers: readonly string[]): SharingPolicy {
    return {
      max_level: this.maxLevel,
      default_trust: this.defaultTrust,
      node_trust: Object.fromEntries([...this.nodeTrust, ...[...this.runtime].map(([k, v]) => [k, v.level] as const)]),
      subnet_trust: Object.fromEntries(this.subnets.map((s) => [s.cidr.text, s.level])),
      allowed_categories: [...this.allowed],
      denied_categories: [...this.denied],
      enable_mdns: this.enableMdns,
      static_peers: [...staticPeers],
    };
  }
}

function hostOf(address: string): string {
  const v6 = /^\[([^\]]+)\]:\d+$/.exec(address);
  if (v6) return v6[1] as string;
  const i = address.lastIndexOf(':');
  return i > 0 && address.indexOf(':') === i ? address.slice(0, i) : address;
}
