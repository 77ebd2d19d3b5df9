import { spawn } from 'node:child_process';
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

/** One forbidden construct: a pattern over the source and the words that name it. */
export interface ForbiddenConstruct {
  readonly pattern: RegExp;
  readonly what: string;
}

/**
 * Constructs the rule guardian refuses. The sandbox already contains them; refusing them at
 * the gate keeps code that tries to escape from being installed at all. `process` is only
 * refused as an object (`process.env`, `process[...]`): `process` is the usual entry point name.
 */
export const FORBIDDEN_CONSTRUCTS: readonly ForbiddenConstruct[] = [
  { pattern: /\beval\s*\(/, what: 'eval(' },
  { pattern: /\bFunction\s*\(/, what: 'Function( (code from strings)' },
  { pattern: /\bimport\s*\(/, what: 'import( (dynamic import)' },
  { pattern: /^\s*import\s[^(]/m, what: 'import statement' },
  { pattern: /\brequire\b/, what: 'require' },
  { pattern: /\bprocess\s*(\.|\[|\?\.)/, what: 'process (the host process object)' },
  { pattern: /\bglobalThis\b/, what: 'globalThis' },
  { pattern: /\bconstructor\s*(\.|\[)\s*['"`]?constructor/, what: 'constructor.constructor (Function through a prototype)' },
  { pattern: /\b(child_process|WebAssembly|Atomics|SharedArrayBuffer)\b/, what: 'host or low-level APIs' },
];

/** User options of the rule guardian. */
export interface RuleGuardianInit {
  /** Largest source accepted, in UTF-8 bytes. Default 64 KiB (the package limit is 256 KiB). */
  maxSourceBytes?: number;
  /** Default {@link FORBIDDEN_CONSTRUCTS}. */
  forbidden?: readonly ForbiddenConstruct[];
}

/** What the rule guardian checks against. */
export interface RuleGuardianDeps {
  /** Whether a dependency name is present on this node (an installed cartridge or a built-in stage). */
  hasDependency(name: string): boolean;
  /** Whether this node's catalog knows an event type. */
  knowsEventType(type: string): boolean;
}

/**
 * The built-in guardian: size limit, forbidden constructs, declared dependencies present,
 * declared emitted types known. Every failing rule is named in the reason.
 * @example
 * const rules = ruleGuardian({ maxSourceBytes: 32_768 })({
 *   hasDependency: (n) => runtime.registry.find(n) !== undefined,
 *   knowsEventType: (t) => node.catalog.has(t),
 * });
 * const v = await rules.judge(guardianRequest(pkg, { origin: peerId })); // { approve, reason, guardian: 'rules' }
 */
export function ruleGuardian(init: RuleGuardianInit = {}): (deps: RuleGuardianDeps) => Guardian {
  const max = init.maxSourceBytes ?? 64 * 1024;
  const forbidden = init.forbidden ?? FORBIDDEN_CONSTRUCTS;
  return (deps) => ({
    name: 'rules',
    async judge(req, options) {
      options?.signal?.throwIfAborted();
      const problems: string[] = [];
      if (req.sourceBytes > max) problems.push(`source is ${req.sourceBytes} bytes, more than ${max}`);
      for (const f of forbidden) if (f.pattern.test(req.source)) problems.push(`uses ${f.what}`);
      const missing = req.dependencies.filter((d) => !deps.hasDependency(d));
      if (missing.length > 0) problems.push(`depends on ${missing.map((d) => `'${d}'`).join(', ')}, not present on this node`);
      const unknown = req.emits.filter((t) => !deps.knowsEventType(t));
      if (unknown.length > 0) problems.push(`emits unknown event types ${unknown.map((t) => `'${t}'`).join(', ')}`);
      return problems.length === 0
        ? { approve: true, reason: 'passes the rules (size, constructs, dependencies, emitted types)', guardian: 'rules' }
        : { approve: false, reason: problems.join('; '), guardian: 'rules' };
    },
  });
}

/** User options of the command guardian. */
export interface CommandGuardianInit {
  /** A shell command line (`autonomy.guardian_command`). */
  command: string;
  /** Milliseconds before the command is killed and the cartridge refused. Default 30,000. */
  timeoutMs?: number;
  /** Largest stdout read, in bytes. Default 1 MiB. */
  maxOutputBytes?: number;
  /** Extra environment for the command. */
  env?: NodeJS.ProcessEnv;
}

/**
 * A guardian that is any program: it gets the {@link GuardianRequest} as JSON on stdin and
 * answers `{"approve": true|false, "reason": "..."}` on stdout (the whole output, or its last
 * non-empty line, so chatter before the answer is fine). Exit status must be 0.
 * @throws {GuardianError} (from `judge`) on a timeout, a non-zero exit, or output that is not
 * such an object; the message names what was wrong.
 * @example
 * const g = commandGuardian({ command: 'node judge.js', timeoutMs: 10_000 });
 * const v = await g.judge(req); // { approve: false, reason: 'network access', guardian: 'command' }
 */
export function commandGuardian(init: CommandGuardianInit): Guardian {
  const timeoutMs = init.timeoutMs ?? 30_000;
  const maxOut = init.maxOutputBytes ?? 1024 * 1024;
  const label = `guardian command '${init.command}'`;
  return {
    name: 'command',
    judge(req, options) {
      options?.signal?.throwIfAborted();
      return new Promise<GuardianVerdict>((resolve, reject) => {
        const child = spawn(init.command, {
          shell: true,
          detached: process.platform !== 'win32',
          stdio: ['pipe', 'pipe', 'pipe'],
          // Not the daemon's environment (it may hold secrets such as the Telegram token): the
          // minimum a program needs to run, plus what the config gives it.
          env: { ...minimalEnv(), ...init.env },
        });
        let out = '';
        let err = '';
        let settled = false;
        const kill = () => {
          try {
            if (child.pid !== undefined && process.platform !== 'win32') process.kill(-child.pid, 'SIGKILL');
            else child.kill('SIGKILL');
          } catch {
            // already gone
          }
        };
        const finish = (e: GuardianError | null, v?: GuardianVerdict) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          options?.signal?.removeEventListener('abort', onAbort);
          if (e) reject(e);
          else resolve(v as GuardianVerdict);
        };
        const onAbort = () => {
          kill();
          finish(new GuardianError(`${label} was aborted`));
        };
        options?.signal?.addEventListener('abort', onAbort, { once: true });
        const timer = setTimeout(() => {
          kill();
          finish(new GuardianError(`${label} gave no answer within ${timeoutMs} ms; it was killed`, { details: { timeoutMs } }));
        }, timeoutMs);
        child.stdout.setEncoding('utf8');
        child.stderr.setEncoding('utf8');
        child.stdout.on('data', (d: string) => {
          out += d;
          if (out.length > maxOut) {
            kill();
            finish(new GuardianError(`${label} printed more than ${maxOut} bytes`));
          }
        });
        child.stderr.on('data', (d: string) => {
          err = (err + d).slice(-2000);
        });
        child.on('error', (e) => finish(new GuardianError(`${label} could not start: ${e.message}`, { cause: e })));
        child.on('close', (code, signal) => {
          if (settled) return;
          if (code !== 0) {
            const why = signal ? `was killed by ${signal}` : `exited with status ${code}`;
            finish(new GuardianError(`${label} ${why}${err.trim() ? `: ${err.trim().slice(-500)}` : ''}`, { details: { exitCode: code } }));
            return;
          }
          try {
            finish(null, parseVerdict(out, label));
          } catch (e) {
            finish(e as GuardianError);
          }
        });
        // A command that does not read stdin closes it early; that is its right.
        child.stdin.on('error', () => undefined);
        child.stdin.end(`${JSON.stringify(req)}\n`);
      });
    },
  };
}

/** Parses a command's stdout: the whole of it, or else its last non-empty line. */
function parseVerdict(stdout: string, label: string): GuardianVerdict {
  const text = stdout.trim();
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  let value: unknown;
  let parsed = false;
  for (const candidate of [text, lines[lines.length - 1] ?? '']) {
    try {
      value = JSON.parse(candidate);
      parsed = true;
      break;
    } catch {
      // try the next form
    }
  }
  const shown = text.length > 200 ? `${text.slice(0, 200)}...` : text;
  if (!parsed) {
    throw new GuardianError(`${label} printed no JSON answer (expected {"approve": true|false, "reason": "..."}), got: ${shown || '(nothing)'}`);
  }
  const v = value as { approve?: unknown; reason?: unknown } | null;
  if (typeof v !== 'object' || v === null || Array.isArray(v) || typeof v.approve !== 'boolean') {
    throw new GuardianError(`${label} answered without a boolean "approve" (expected {"approve": true|false, "reason": "..."}), got: ${shown}`);
  }
  if (v.reason !== undefined && typeof v.reason !== 'string') {
    throw new GuardianError(`${label} answered a "reason" that is not a string, got: ${shown}`);
  }
  return { approve: v.approve, reason: (v.reason ?? (v.approve ? 'approved' : 'refused')).slice(0, 1500), guardian: 'command' };
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

/** The variables a guardian program gets from the daemon: enough to find programs and speak UTF-8. */
export function minimalEnv(): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const k of ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR']) if (process.env[k] !== undefined) out[k] = process.env[k];
  return out;
}
