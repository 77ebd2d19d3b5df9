import { type ErrorCode, WeftError } from '../errors/index.js';

/**
 * Stable codes of the sovereignty module. Each class below also carries the registry `code`
 * (`WEFT_VALIDATION`, `WEFT_CARTRIDGE`, ...) so the API and CLI map it to a status and exit code;
 * `reason` is the finer, equally stable code that names what went wrong.
 */
export const SOVEREIGNTY_ERROR_CODES = [
  'WEFT_CARTRIDGE_MANIFEST_INVALID',
  'WEFT_CARTRIDGE_PACKAGE_IO',
  'WEFT_CARTRIDGE_DEPENDENCY_CYCLE',
  'WEFT_CARTRIDGE_DEPENDENCY_MISSING',
  'WEFT_CARTRIDGE_DUPLICATE',
  'WEFT_CARTRIDGE_LOAD_FAILED',
  'WEFT_CARTRIDGE_NOT_LOADED',
  'WEFT_SANDBOX_STOPPED',
  'WEFT_SANDBOX_UNAVAILABLE',
] as const;

/** The fine-grained code of a thrown sovereignty error. */
export type SovereigntyErrorCode = (typeof SOVEREIGNTY_ERROR_CODES)[number];

/** Base class of every error the sovereignty module throws. */
export class SovereigntyError extends WeftError {
  /** Stable fine-grained code; never changes once shipped. */
  readonly reason: SovereigntyErrorCode;

  constructor(
    code: ErrorCode,
    reason: SovereigntyErrorCode,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(code, message, options);
    this.reason = reason;
  }
}

/** A cartridge manifest or package that fails validation; the message names the field. */
export class ManifestError extends SovereigntyError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('WEFT_VALIDATION', 'WEFT_CARTRIDGE_MANIFEST_INVALID', message, { details });
  }
}

/** Reading or writing a package directory failed. */
export class PackageIoError extends SovereigntyError {
  constructor(message: string, cause?: unknown) {
    super('WEFT_CARTRIDGE', 'WEFT_CARTRIDGE_PACKAGE_IO', message, { cause });
  }
}

/** Cartridges depend on each other in a circle; `cycle` lists it, first name repeated last. */
export class DependencyCycleError extends SovereigntyError {
  readonly cycle: readonly string[];
  constructor(cycle: readonly string[]) {
    super(
      'WEFT_CARTRIDGE',
      'WEFT_CARTRIDGE_DEPENDENCY_CYCLE',
      `cartridge dependency cycle: ${cycle.join(' -> ')}`,
      {
        details: { cycle: [...cycle] },
      },
    );
    this.cycle = cycle;
  }
}

/** A cartridge declares a dependency that is not among the cartridges being ordered. */
export class MissingDependencyError extends SovereigntyError {
  constructor(cartridge: string, dependency: string) {
    super(
      'WEFT_CARTRIDGE',
      'WEFT_CARTRIDGE_DEPENDENCY_MISSING',
      `cartridge '${cartridge}' depends on '${dependency}', which is not installed`,
      { details: { cartridge, dependency } },
    );
  }
}

/** Two cartridges with the same name were given where names must be unique. */
export class DuplicateCartridgeError extends SovereigntyError {
  constructor(name: string) {
    super('WEFT_CONFLICT', 'WEFT_CARTRIDGE_DUPLICATE', `cartridge '${name}' is listed twice`, {
      details: { name },
    });
  }
}

/** The sandbox could not load a cartridge: syntax error, missing entry point, top level threw or ran too long. */
export class CartridgeLoadError extends SovereigntyError {
  constructor(name: string, message: string) {
    super('WEFT_CARTRIDGE', 'WEFT_CARTRIDGE_LOAD_FAILED', `cartridge '${name}' failed to load: ${message}`, {
      details: { name },
    });
  }
}

/** The named cartridge is not loaded in the sandbox. */
export class CartridgeNotLoadedError extends SovereigntyError {
  constructor(name: string) {
    super('WEFT_NOT_FOUND', 'WEFT_CARTRIDGE_NOT_LOADED', `cartridge '${name}' is not loaded in the sandbox`, {
      details: { name },
    });
  }
}

/** The sandbox is not started, or was stopped while the call waited. */
export class SandboxStoppedError extends SovereigntyError {
  constructor() {
    super('WEFT_STOPPED', 'WEFT_SANDBOX_STOPPED', 'the cartridge sandbox is not running');
  }
}

/** The sandbox child process could not be started. */
export class SandboxUnavailableError extends SovereigntyError {
  constructor(message: string, cause?: unknown) {
    super('WEFT_CARTRIDGE', 'WEFT_SANDBOX_UNAVAILABLE', `the cartridge sandbox is unavailable: ${message}`, {
      cause,
    });
  }
}
