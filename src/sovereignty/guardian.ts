/** Guardians: who judges a cartridge package before the gate installs it. The port and its request and verdict; the rule and command guardians are beside it. */
import { WeftError } from '../errors/index.js';
import type { CartridgePackage } from './package.js';
import { sourceDigest } from './registry.js';

/**
 * What a guardian is shown: the whole cartridge, as JSON. A `guardian_command` reads exactly
 * this object on stdin.
 */
export interface GuardianRequest {
  readonly name: string;
  readonly version: string;
  readonly author: string;
  readonly description: string;
  readonly entryPoint: string;
  readonly dependencies: readonly string[];
  readonly consumes: readonly string[];
  readonly emits: readonly string[];
  /** The JavaScript source as UTF-8 text. */
  readonly source: string;
  readonly sha256: string;
  readonly sourceBytes: number;
  /** Node id of the peer it came from. */
  readonly origin: string;
  readonly sourceComputer?: string;
}

/** A guardian's answer. */
export interface GuardianVerdict {
  readonly approve: boolean;
  readonly reason: string;
  /** Which guardian answered (`rules`, `command`). */
  readonly guardian: string;
}

/** Judges a cartridge at autonomy L2. */
export interface Guardian {
  readonly name: string;
  /**
   * @throws {GuardianError} when the guardian itself failed (bad output, timeout, crash); the
   * gate treats that as a refusal and says why.
   */
  judge(request: GuardianRequest, options?: { signal?: AbortSignal }): Promise<GuardianVerdict>;
}

/** A guardian that could not give a verdict. The gate refuses the cartridge with this message. */
export class GuardianError extends WeftError {
  constructor(message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super('WEFT_CARTRIDGE', message, options);
  }
}

/**
 * The request for a package from a peer.
 * @example
 * const req = guardianRequest(pkg, { origin: 'weft:ed25519:...', sourceComputer: 'beta' });
 */
export function guardianRequest(pkg: CartridgePackage, from: { origin: string; sourceComputer?: string }): GuardianRequest {
  const m = pkg.manifest;
  return {
    name: m.name,
    version: m.version,
    author: m.author,
    description: m.description,
    entryPoint: m.entryPoint,
    dependencies: [...m.dependencies],
    consumes: [...m.consumes],
    emits: [...m.emits],
    source: pkg.source,
    sha256: sourceDigest(pkg.source),
    sourceBytes: Buffer.byteLength(pkg.source, 'utf8'),
    origin: from.origin,
    ...(from.sourceComputer ? { sourceComputer: from.sourceComputer } : {}),
  };
}

/**
 * Guardians in turn: the first refusal (or failure, as a refusal naming it) wins; all must
 * approve. The gate uses the rules, then the command when one is configured.
 * @example
 * const g = chainGuardians([rules, commandGuardian({ command: cfg.autonomy.guardian_command })]);
 */
export function chainGuardians(guardians: readonly Guardian[]): Guardian {
  return {
    name: guardians.map((g) => g.name).join('+'),
    async judge(req, options) {
      const reasons: string[] = [];
      for (const g of guardians) {
        let v: GuardianVerdict;
        try {
          v = await g.judge(req, options);
        } catch (err) {
          return { approve: false, reason: `guardian failed: ${(err as Error).message}`, guardian: g.name };
        }
        if (!v.approve) return v;
        reasons.push(`${g.name}: ${v.reason}`);
      }
      return { approve: true, reason: reasons.join('; '), guardian: guardians.map((g) => g.name).join('+') };
    },
  };
}
