/**
 * errors: every error Weft raises, with a stable `code` that maps to an HTTP status and a
 * CLI exit code. Codes never change once shipped; add new ones instead.
 */

export interface ErrorCodeInfo {
  /** HTTP status the API answers with. */
  readonly status: number;
  /** CLI exit code: 1 failure, 2 usage error. */
  readonly exit: 1 | 2;
}

/** The one registry of error codes. */
export const ERROR_CODES = {
  WEFT_VALIDATION: { status: 400, exit: 2 },
  WEFT_UNKNOWN_EVENT_TYPE: { status: 400, exit: 2 },
  WEFT_DUPLICATE_EVENT_TYPE: { status: 500, exit: 1 },
  WEFT_NOT_FOUND: { status: 404, exit: 1 },
  WEFT_ILLEGAL_TRANSITION: { status: 409, exit: 1 },
  WEFT_CONFLICT: { status: 409, exit: 1 },
  WEFT_UNAUTHORIZED: { status: 401, exit: 1 },
  WEFT_FORBIDDEN: { status: 403, exit: 1 },
  /**
   * A configuration (the config file, a domain's domain.toml, a member's subscriptions.toml)
   * that is wrong, or that does not allow what was asked (the mesh is off): the node's state
   * refuses the request, nothing failed inside it (409, not 500 with a reference to the log).
   */
  WEFT_CONFIG: { status: 409, exit: 2 },
  WEFT_STORE: { status: 500, exit: 1 },
  WEFT_STORE_CORRUPT: { status: 500, exit: 1 },
  /** The database was migrated by a newer Weft than this one: refused unchanged, never repaired. */
  WEFT_STORE_TOO_NEW: { status: 500, exit: 1 },
  /** The disk holding the database is full: nothing of the request was kept; it may be sent again once there is space. */
  WEFT_STORE_FULL: { status: 507, exit: 1 },
  WEFT_LOCKED: { status: 409, exit: 1 },
  WEFT_BUS: { status: 503, exit: 1 },
  WEFT_STOPPED: { status: 503, exit: 1 },
  WEFT_TOO_LARGE: { status: 413, exit: 1 },
  /** A request body the API does not read (it takes JSON only). */
  WEFT_MEDIA_TYPE: { status: 415, exit: 2 },
  WEFT_LIMIT: { status: 429, exit: 1 },
  WEFT_CARTRIDGE: { status: 500, exit: 1 },
  /** A cartridge judged and refused (a guardian said no, or could not judge, which is a no): an answer, not a failure. */
  WEFT_CARTRIDGE_REFUSED: { status: 422, exit: 1 },
  WEFT_PIPELINE: { status: 500, exit: 1 },
  /** A domain or personal pipeline that does not validate (cycle, missing dependency, scope, conflict). */
  WEFT_PIPELINE_INVALID: { status: 409, exit: 1 },
  /** An invoke got no answer within its deadline (the callee was told to cancel). */
  WEFT_INVOKE_TIMEOUT: { status: 504, exit: 1 },
  /** The callee refused an invoke before any work (no handler, busy, budget, pipeline, edge) or its handler failed. */
  WEFT_INVOKE_REJECTED: { status: 502, exit: 1 },
  /** A peer could not be reached. */
  WEFT_PEER_UNAVAILABLE: { status: 503, exit: 1 },
  WEFT_INTERNAL: { status: 500, exit: 1 },
  // transport/
  TRANSPORT_NOT_STARTED: { status: 503, exit: 1 },
  TRANSPORT_STOPPED: { status: 503, exit: 1 },
  TRANSPORT_UNKNOWN_PEER: { status: 404, exit: 1 },
  TRANSPORT_PEER_UNAVAILABLE: { status: 503, exit: 1 },
  TRANSPORT_FRAME_TOO_LARGE: { status: 413, exit: 1 },
  TRANSPORT_ABORTED: { status: 503, exit: 1 },
  TRANSPORT_MISSING_DEPENDENCY: { status: 500, exit: 1 },
  TRANSPORT_ENCODE: { status: 500, exit: 1 },
  // identity/
  IDENTITY_KEY_MODE: { status: 500, exit: 1 },
  IDENTITY_KEY_INVALID: { status: 500, exit: 1 },
  IDENTITY_BAD_NODE_ID: { status: 400, exit: 2 },
  IDENTITY_ROTATION_INVALID: { status: 400, exit: 1 },
  SIGNAL_FEED_INVALID: { status: 422, exit: 1 }, // signals/: a fetched body that is no readable feed
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Base class: a named error with a stable code and optional structured details. */
export class WeftError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options?.details;
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  get exitCode(): 1 | 2 {
    return ERROR_CODES[this.code].exit;
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details ? { code: this.code, message: this.message, details: this.details } : { code: this.code, message: this.message };
  }
}

/** Input that fails a schema: names the path of the first failing field. */
export class ValidationError extends WeftError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('WEFT_VALIDATION', message, { details });
  }
}

export class UnknownEventTypeError extends WeftError {
  constructor(type: string) {
    super('WEFT_UNKNOWN_EVENT_TYPE', `unknown event type '${type}': 'weft schemas list' shows the known types; a new one is registered in the catalog (docs/events.md, "The catalog")`, {
      details: { type },
    });
  }
}

export class DuplicateEventTypeError extends WeftError {
  constructor(type: string) {
    super('WEFT_DUPLICATE_EVENT_TYPE', `event type '${type}' is already registered`, { details: { type } });
  }
}

export class NotFoundError extends WeftError {
  constructor(what: string, id: string | number) {
    super('WEFT_NOT_FOUND', `${what} ${id} not found`, { details: { what, id } });
  }
}

export class IllegalTransitionError extends WeftError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('WEFT_ILLEGAL_TRANSITION', message, { details });
  }
}

export class ConfigError extends WeftError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('WEFT_CONFIG', message, { details });
  }
}

export class StoreError extends WeftError {
  constructor(code: 'WEFT_STORE' | 'WEFT_STORE_CORRUPT' | 'WEFT_STORE_TOO_NEW' | 'WEFT_STORE_FULL' | 'WEFT_LOCKED', message: string, cause?: unknown) {
    super(code, message, { cause });
  }
}

/**
 * A programming error in how a part was wired: a collaborator it needs was not given, or a
 * call came in the wrong state. One helper for every such check, so they read alike.
 * @example
 * requireDeps('AuditLog', deps, { store: "the node's Store" });
 */
export function requireDeps<T extends object>(
  owner: string,
  deps: T,
  needs: { [K in keyof T]?: string },
  opts: { code?: ErrorCode; of?: 'deps' | 'init' } = {},
): void {
  for (const [key, what] of Object.entries(needs) as Array<[keyof T & string, string]>) {
    if (deps[key] === undefined || deps[key] === null || deps[key] === '') {
      throw new WeftError(opts.code ?? 'WEFT_INTERNAL', `${owner} needs ${opts.of ?? 'deps'}.${key} (${what})`);
    }
  }
}

/** The same for a call made in the wrong state (`requireState(db.inTransaction, 'AuditLog.recordIn must run inside a store write')`). */
export function requireState(ok: boolean, message: string): asserts ok {
  if (!ok) throw new WeftError('WEFT_INTERNAL', message);
}

/** True for any error this package raised on purpose. */
export function isWeftError(err: unknown): err is WeftError {
  return err instanceof WeftError;
}
