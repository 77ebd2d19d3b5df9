/**
 * What the trust evaluator needs to know about other nodes: the mesh's peer table, seen
 * through one small read-only interface so the evaluator does not depend on `mesh/`.
 */

/** How far this node trusts a peer (DESIGN.md vocabulary, weakest first). */
export type PeerTrustLevel = 'untrusted' | 'share_to' | 'query_from' | 'peer' | 'supervisor';

/** What the directory knows about one peer. */
export interface PeerInfo {
  computer: string;
  cluster?: string;
  trustLevel: PeerTrustLevel;
}

/**
 * Looks peers up by node id (`weft:ed25519:...`). Called once per event that arrives from a
 * peer, inside the pipeline's transaction: keep `get` synchronous and in memory.
 * @example
 * const peers: PeerDirectory = { get: (id) => (id === laptopId ? { computer: 'laptop', trustLevel: 'peer' } : undefined) };
 */
export interface PeerDirectory {
  get(nodeId: string): PeerInfo | undefined;
}

/**
 * A directory over a fixed map, for tests and static configuration.
 * @example
 * const peers = staticPeerDirectory({ 'weft:ed25519:AAAA': { computer: 'desk', trustLevel: 'peer' } });
 */
export function staticPeerDirectory(
  entries: Record<string, PeerInfo> | ReadonlyMap<string, PeerInfo>,
): PeerDirectory {
  const map = entries instanceof Map ? entries : new Map(Object.entries(entries as Record<string, PeerInfo>));
  return { get: (id) => map.get(id) };
}

/** Knows no peer: every event from the mesh counts as coming from an unknown source. */
export const emptyPeerDirectory: PeerDirectory = { get: () => undefined };
