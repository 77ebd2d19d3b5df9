/** mesh: peers and discovery, the per-peer outbox, the publisher, ingress and the replay guard. */
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
  type PeerDiscovery,
  type PeerInfo,
  parseAddress,
  RedisPeerRegistry,
  type RedisPeerRegistryDeps,
  type RedisPeerRegistryInit,
  type StaticPeer,
  validateStaticPeers,
} from './discovery.js';
export { NatsPeerRegistry, type NatsPeerRegistryDeps, type NatsPeerRegistryInit } from './nats-registry.js';
export {
  auditQuietly,
  type EnvelopeRefusalCode,
  type FrameGuard,
  type FrameRoute,
  type IngressDeps,
  type IngressInit,
  type InboundMessage,
  type LinkRefusalCode,
  type MessageHandler,
  MeshIngress,
  type MeshRefusalCode,
  type TrustRefusalCode,
} from './ingress.js';
export * from './mesh.js';
export * from './mdns.js';
export * from './mdns-candidates.js';
export type { MeshNode } from './ports.js';
export { encodeEventsFrame, PeerSender, type SenderLimits, type SenderLink } from './sender.js';
export { FrameSequence } from './sequence.js';
export * from './outbox.js';
export * from './peer-memory.js';
export * from './peers.js';
export * from './publisher.js';
export * from './teleclaude-wire.js';
export * from './link-keys.js';
