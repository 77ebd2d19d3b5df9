/** The frame: the wire unit, a signed batch of envelopes (or a control message) from one sender. */
import type { KeyRotationRecord } from '../identity/index.js';

/** Magic bytes at the start of every frame: ASCII "WEFT". */
export const FRAME_MAGIC = 0x57454654;
/** The wire protocol version this code speaks. */
export const PROTOCOL_VERSION = 1;
/** Default largest frame accepted or produced: 4 MiB. */
export const DEFAULT_MAX_FRAME_SIZE = 4 * 1024 * 1024;

/** An envelope as it travels: a plain msgpack-able object (the envelope module owns its shape). */
export type WireEnvelope = Record<string, unknown>;

/**
 * Hello cap of a node whose events frames may carry envelopes as their JSON text (the form the
 * sender's outbox holds them in, sent as it is); a decoded frame always holds objects. Sent to
 * a peer only once its signed hello announced the cap.
 */
export const JSON_ENVELOPES_CAP = 'json-envelopes';

/** The body of each frame type. */
export interface FrameBodies {
  /** A batch of envelopes: one signature covers them all. */
  events: { envelopes: WireEnvelope[] };
  /** The receiver committed the frames with these sequences (and these envelope ids). */
  ack: { sequences: number[]; envelopeIds?: string[] };
  /**
   * Who I am, what I speak and my static X25519 link key (raw 32 bytes), so the receiver can
   * derive the key that seals frames between us. Sent unsealed (it holds nothing secret).
   */
  hello: {
    computer: string;
    cluster?: string;
    caps: string[];
    protocolVersions: number[];
    x25519?: Uint8Array;
    /** Send me your hello: I do not know your link key (or could not open your frames). */
    reply?: boolean;
  };
  ping: { id: number; sentAt: number };
  pong: { id: number; pingSentAt: number; sentAt: number };
  /** The sender's key is being replaced; the record is endorsed by the old key. */
  'key-rotation': { record: KeyRotationRecord };
  goodbye: { reason?: string };
  /** Anything else a higher layer wants signed and replay-protected (queries, invoke, ...). */
  message: { kind: string; data?: unknown };
}

export type FrameType = keyof FrameBodies;

/** Numeric frame type codes on the wire. Never renumber. */
export const FRAME_TYPE_CODES: { readonly [K in FrameType]: number } = {
  events: 1,
  ack: 2,
  hello: 3,
  ping: 4,
  pong: 5,
  'key-rotation': 6,
  goodbye: 7,
  message: 8,
};

export const FRAME_TYPES = Object.keys(FRAME_TYPE_CODES) as FrameType[];

/** AEAD algorithms a frame may be sealed with. */
export type AeadAlgorithm = 'chacha20-poly1305' | 'aes-256-gcm';

/** What the frame header says (all covered by the signature). */
export interface FrameHeader {
  readonly version: number;
  readonly type: FrameType;
  /** Sender node id, `weft:ed25519:<base64>`. */
  readonly sender: string;
  /** Per-sender sequence, strictly increasing over the sender's life. */
  readonly sequence: number;
  /** Sender's clock, ms since the epoch. */
  readonly timestamp: number;
  /** 16 random bytes; with the sender it identifies the frame for the replay guard. */
  readonly nonce: Uint8Array;
  readonly crc32c: boolean;
  readonly deflate: boolean;
  readonly aead: AeadAlgorithm | null;
}

/** A decoded, verified frame. */
export type Frame = {
  [K in FrameType]: { readonly type: K; readonly header: FrameHeader; readonly body: FrameBodies[K] };
}[FrameType];

/** What an encoder may be given per type: an events frame's envelopes may also be their JSON text (`JSON_ENVELOPES_CAP`). */
export type OutgoingBodies = Omit<FrameBodies, 'events'> & { events: { envelopes: Array<WireEnvelope | string> } };

/** A frame to encode. `nonce` defaults to 16 random bytes. */
export type OutgoingFrame = {
  [K in FrameType]: {
    type: K;
    sequence: number;
    timestamp: number;
    nonce?: Uint8Array;
    body: OutgoingBodies[K];
  };
}[FrameType];
