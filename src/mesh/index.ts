/** mesh: cluster membership, discovery, routing and ingress checks (so far: the replay guard). */
export {
  ensureReplayGuardSchema,
  type ReplayError,
  type ReplayErrorCode,
  ReplayGuard,
  type ReplayGuardDeps,
  type ReplayGuardInit,
  type ReplayHeader,
  type ReplayVerdict,
} from './replay-guard.js';
export {
  type PeerInfo,
  parseAddress,
  RedisPeerRegistry,
  type RedisPeerRegistryDeps,
  type RedisPeerRegistryInit,
  type StaticPeer,
  validateStaticPeers,
} from './discovery.js';
