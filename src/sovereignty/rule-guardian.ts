/** The rule guardian: size, forbidden constructs, dependencies and emitted types, checked without running the source. */
import type { Guardian } from './guardian.js';
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
  /** Whether an event type is one only the node itself may produce (`catalog.isControl`). */
  isControlType?(type: string): boolean;
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
      const control = req.emits.filter((t) => deps.isControlType?.(t) === true);
      if (control.length > 0) problems.push(`emits the node's own control types ${control.map((t) => `'${t}'`).join(', ')}, which only the node may produce`);
      return problems.length === 0
        ? { approve: true, reason: 'passes the rules (size, constructs, dependencies, emitted types)', guardian: 'rules' }
        : { approve: false, reason: problems.join('; '), guardian: 'rules' };
    },
  });
}
