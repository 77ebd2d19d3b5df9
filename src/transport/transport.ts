/** The Provider interface: one shape for every transport that moves frame bytes between nodes. */
import type { NodeIdentity } from '../identity/index.js';
import type { Clock, Logger } from '../util/index.js';

/**
 * What a provider can do. Serializer caps (`crc32c`, `deflate`, `aead`) say which frame
 * features the link may use (`aead`: bodies sealed with the link's X25519/HKDF key); the others
 * describe delivery.
 */
export type TransportCap = 'crc32c' | 'deflate' | 'aead' | 'reliable' | 'ordered' | 'durable';

/** One received frame. Call `ack()` only after its effects are committed locally. */
export interface InboundFrame {
  /** The peer the transport says sent it (a hint: the frame's signed sender is authoritative). */
  readonly from: string | undefined;
  readonly bytes: Uint8Array;
  /** Transport-specific id of this delivery (a Redis stream id, a link counter, ...). */
  readonly deliveryId: string;
  /** 1 on first delivery; more when the transport redelivers an unacknowledged frame. */
  readonly deliveryCount: number;
  /**
   * Releases the frame at the transport (XACK, credit back to the sender, ...). A failed ack
   * is logged, not thrown: the frame comes back and the replay guard recognises it.
   */
  ack(): Promise<void>;
}

/** Why a connection was refused; reported so the node can audit it. */
export type RefusalCode =
  | 'PEER_UNKNOWN_KEY'
  | 'PEER_KEY_MISMATCH'
  | 'PEER_NO_CERTIFICATE'
  | 'PEER_BAD_CERTIFICATE'
  | 'PEER_PROTOCOL_TOO_OLD'
  | 'PEER_HANDSHAKE_FAILED';

/** What a provider reports about its links. */
export type ProviderEvent =
  | { type: 'peer.connected'; peer: string; direction?: 'inbound' | 'outbound' }
  | { type: 'peer.disconnected'; peer: string; reason: string; direction?: 'inbound' | 'outbound' }
  | {
      type: 'peer.refused';
      /** The pinned peer we dialled, or undefined for an inbound connection from an unknown key. */
      peer: string | undefined;
      remoteAddress: string | undefined;
      code: RefusalCode;
      reason: string;
      /** Fingerprint of the key the other side presented, when it presented one. */
      presentedFingerprint?: string;
    }
  | { type: 'backpressure'; peer: string; active: boolean }
  | { type: 'fatal'; peer: string | undefined; message: string }
  | { type: 'inbox.recreated'; stream: string };

/** Per-peer counters (federation's /net/telemetry). */
export interface PeerTelemetry {
  readonly peer: string;
  framesSent: number;
  framesReceived: number;
  bytesSent: number;
  bytesReceived: number;
  /** Times the link became ready (connected, group created, ...). */
  readyCount: number;
  /** Times a send had to wait for the receiver. */
  bpCount: number;
  /** A send is waiting for the receiver right now. */
  bpFlag: boolean;
  fatalCount: number;
  lastEvent: string | undefined;
  lastEventAt: number | undefined;
  /** Last measured round trip, ms. */
  rttMs: number | undefined;
}

/** A transport. start/stop are idempotent; a second stop() returns the same promise. */
export interface Provider {
  readonly name: string;
  readonly caps: ReadonlySet<TransportCap>;
  /**
   * The channel itself keeps frames from third parties (TLS 1.3 between the two nodes, or one
   * process's memory): a *preferred* `aead` is met by it, so frames are not sealed twice and
   * no `transport.flatneg` is raised. Brokered providers (Redis) leave it unset: whoever runs
   * the broker reads what is not sealed.
   */
  readonly confidential?: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
  /**
   * Hands frame bytes to the transport for `peer` (a computer name). Resolves when the
   * transport took them (XADD done, written to the socket); waits while the peer is out of
   * credit, so a slow receiver slows the sender instead of filling memory.
   * @throws TransportError TRANSPORT_STOPPED, TRANSPORT_UNKNOWN_PEER, TRANSPORT_PEER_UNAVAILABLE,
   *   TRANSPORT_FRAME_TOO_LARGE, TRANSPORT_ABORTED.
   */
  send(peer: string, bytes: Uint8Array, opts?: { signal?: AbortSignal }): Promise<void>;
  /**
   * Received frames, in arrival order. One consumer at a time; `break` ends the iteration
   * (unacknowledged frames stay unacknowledged and come back per the provider's rules).
   */
  frames(): AsyncIterable<InboundFrame>;
  /** Subscribes to provider events; returns the unsubscribe function. */
  on(listener: (event: ProviderEvent) => void): () => void;
  /** Counters per peer. */
  telemetry(): PeerTelemetry[];
  /**
   * The largest frame the transport carries right now, when it learns a lower bound than the
   * node's from its server (NATS: the server's `max_payload`, less room for the headers). The
   * mesh cuts frames below it, and dead-letters an envelope no frame of that size can carry.
   */
  readonly maxFrameBytes?: number;
  /** What is wrong with the transport right now (a brokered inbox that is full), one line each; for `weft status`. */
  problems?(): string[];
  /** Brokered providers: entries on this node's inbox that belong to another program and were left alone. */
  readonly foreignEntries?: number;
  /** Resolves when frames to `peer` can flow (connected link); immediate for brokered providers. */
  waitForPeer(peer: string, opts?: { signal?: AbortSignal; timeoutMs?: number }): Promise<void>;
  /** A provider that checks peers' keys itself (TLS): the peer's key after an endorsed rotation. */
  repin?(computer: string, nodeId: string): void;
}

/** What every provider receives from the node. */
export interface ProviderDeps {
  logger: Logger;
  clock: Clock;
  /** Required by providers that authenticate links (tls). */
  identity?: NodeIdentity;
}

/** `xxxProvider(init)` returns this; the node calls it with its deps. */
export type ProviderFactory = (deps: ProviderDeps) => Provider;
