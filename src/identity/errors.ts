/** Named identity errors with stable codes (never change a code once shipped). */
import { type ErrorCode, WeftError } from '../errors/index.js';

export type IdentityErrorCode = Extract<ErrorCode, `IDENTITY_${string}`>;

/** An identity problem: a key file with a loose mode, an unreadable key, a malformed node id. */
export class IdentityError extends WeftError {
  declare readonly code: IdentityErrorCode;
  constructor(code: IdentityErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(code, message, options);
  }
}
