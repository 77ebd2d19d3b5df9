import { type ErrorCode, WeftError } from '../errors/index.js';

/** Transport and frame error codes. Codes are stable: they appear in audit records and the API. */

/** Every reason `decodeFrame` can refuse a byte string. */
export type FrameErrorCode =
  | 'FRAME_TOO_LARGE'
  | 'FRAME_TRUNCATED'
  | 'FRAME_BAD_MAGIC'
  | 'FRAME_BAD_VERSION'
  | 'FRAME_BAD_TYPE'
  | 'FRAME_BAD_FLAGS'
  | 'FRAME_BAD_SENDER'
  | 'FRAME_TRAILING_BYTES'
  | 'FRAME_BAD_CRC'
  | 'FRAME_UNKNOWN_SENDER'
  | 'FRAME_BAD_SIGNATURE'
  | 'FRAME_AEAD_KEY_MISSING'
  | 'FRAME_AEAD_FAILED'
  | 'FRAME_INFLATE_FAILED'
  | 'FRAME_BAD_MSGPACK'
  | 'FRAME_BAD_FIELD';

/** All frame error codes, for exhaustive tests and docs. */
export const FRAME_ERROR_CODES: readonly FrameErrorCode[] = [
  'FRAME_TOO_LARGE',
  'FRAME_TRUNCATED',
  'FRAME_BAD_MAGIC',
  'FRAME_BAD_VERSION',
  'FRAME_BAD_TYPE',
  'FRAME_BAD_FLAGS',
  'FRAME_BAD_SENDER',
  'FRAME_TRAILING_BYTES',
  'FRAME_BAD_CRC',
  'FRAME_UNKNOWN_SENDER',
  'FRAME_BAD_SIGNATURE',
  'FRAME_AEAD_KEY_MISSING',
  'FRAME_AEAD_FAILED',
  'FRAME_INFLATE_FAILED',
  'FRAME_BAD_MSGPACK',
  'FRAME_BAD_FIELD',
];

/** A decode failure as data: `decodeFrame` returns it, never throws it. */
export interface FrameError {
  readonly code: FrameErrorCode;
  readonly message: string;
}

export type TransportErrorCode = Extract<ErrorCode, `TRANSPORT_${string}`>;

/** A transport operation failed (send to an unknown peer, send after stop, ...). */
export class TransportError extends WeftError {
  declare readonly code: TransportErrorCode;
  constructor(code: TransportErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(code, message, options);
  }
}
