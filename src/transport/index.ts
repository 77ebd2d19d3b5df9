/** transport: the frame codec, link keys, caps negotiation and the providers that move frames (memory, redis, nats, tls). */
export { crc32c } from './crc32c.js';
export {
  FRAME_ERROR_CODES,
  type FrameError,
  type FrameErrorCode,
  TransportError,
  type TransportErrorCode,
} from './errors.js';
export * from './frame.js';
export {
  type DecodeOptions,
  type DecodeResult,
  decodeFrame,
  type EncodeOptions,
  encodeFrame,
  frameTypeHint,
  type PeekResult,
  peekFrame,
} from './frame-codec.js';
export { deriveLinkKey, generateLinkKeyPair, type LinkKeyPair, linkKeyPairOf, linkPrivateKeyFromDer, loadOrCreateLinkKeyPair } from './link-key.js';
export { MemoryNetwork, type MemoryProviderInit, memoryProvider } from './memory.js';
export { BoundedQueue } from './queue.js';
export { inboxStream, type RedisProviderInit, redisProvider } from './redis.js';
export {
  DEFAULT_NATS_PREFIX,
  loadNats,
  NATS_FROM_HEADER,
  NATS_MAX_FRAME_BYTES,
  NATS_PREFIX_PATTERN,
  type NatsConnectTarget,
  natsConnectError,
  natsConnectTarget,
  natsInbox,
  type NatsProviderInit,
  natsProvider,
  natsToken,
  redactNatsUrl,
} from './nats.js';
export { TelemetryBook } from './telemetry.js';
export type {
  InboundFrame,
  PeerTelemetry,
  Provider,
  ProviderDeps,
  ProviderEvent,
  ProviderFactory,
  RefusalCode,
  TransportCap,
} from './transport.js';
export { type TlsPeer, type TlsProvider, type TlsProviderInit, tlsProvider } from './tls.js';
export {
  type CapsOffer,
  encodeOptionsFor,
  intersectCaps,
  type MountCaps,
  type NegotiatedCaps,
  type Negotiation,
  type NegotiationEvent,
  negotiateCaps,
  SERIALIZER_CAPS,
  type SerializerCap,
} from './caps.js';
