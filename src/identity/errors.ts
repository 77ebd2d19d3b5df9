/** Named identity errors with stable codes (never change a code once shipped). */

export type IdentityErrorCode =
  | 'IDENTITY_KEY_MODE'
  | 'IDENTITY_KEY_INVALID'
  | 'IDENTITY_BAD_NODE_ID'
  | 'IDENTITY_ROTATION_INVALID';

/** An identity problem: a key file with a loose mode, an unreadable key, a malformed node id. */
export class IdentityError extends Error {
  readonly code: IdentityErrorCode;
  readonly details: Record<string, unknown> | undefined;
  constructor(
    code: IdentityErrorCode,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'IdentityError';
    this.code = code;
    this.details = options?.details;
  }
}
