/**
 * Validation of one domain or personal pipeline: names, dependencies, cycles, scope and
 * output conflicts, and the DAG's levels (cartridges on one level run at the same time).
 */
import { WeftError } from '../errors/index.js';
import { type CartridgeManifest, findCycle } from '../sovereignty/index.js';
import { withinAny } from './scope.js';

/** Why a pipeline was refused. */
export type PipelineProblem = 'duplicate' | 'missing_dependency' | 'cycle' | 'scope' | 'conflict' | 'not_leaf' | 'load';

/** A pipeline refused by validation; `details.cartridges` names the cartridges involved. */
export class PipelineValidationError extends WeftError {
  readonly problem: PipelineProblem;
  readonly scope: string;
  readonly cartridges: readonly string[];

  constructor(problem: PipelineProblem, scope: string, cartridges: readonly string[], message: string) {
    super('WEFT_PIPELINE_INVALID', `${scope}: ${message}`, { details: { problem, scope, cartridges: [...cartridges] } });
    this.problem = problem;
    this.scope = scope;
    this.cartridges = cartridges;
  }
}

/** First segments of the types the node emits itself: approvals, failures, transport, privacy. */
const NODE_OWNED = new Set(['system', 'cartridge', 'cartridges', 'mesh', 'transport', 'privacy', 'terminal', 'telemetry', 'sovereign']);

/** Whether an emitted type (or pattern) reaches the node's own types; `domains.alert` is the cartridges' to emit. */
function isRunnerOwned(pattern: string): boolean {
  const first = pattern.split('.')[0] ?? '';
  if (first === '*' || NODE_OWNED.has(first)) return true;
  return first === 'domains' && pattern !== 'domains.alert';
}

/** What a pipeline may touch. */
export interface PipelineScope {
  /** `domain 'marketing'` or `personal pipeline of 'alice'`: how errors name it. */
  readonly label: string;
  /** Event-type patterns the pipeline receives; null when it receives any type (subscribed by envelope domain). */
  readonly receives: readonly string[] | null;
  /** Event-type patterns its cartridges may emit. */
  readonly emits: readonly string[];
  /** Personal pipelines: every cartridge must be a leaf (no dependencies). */
  readonly leavesOnly?: boolean;
}

/**
 * Checks a pipeline and answers its levels: level 0 holds the cartridges without dependencies,
 * level n those whose deepest dependency is on level n-1. Inside a level, input order.
 * @throws {PipelineValidationError} on the first problem, naming the cartridges.
 * @example
 * validatePipeline({ label: "domain 'ops'", receives: null, emits: ['domains.alert'] }, manifests);
 * // [['fetch', 'score'], ['alert']]
 */
export function validatePipeline(scope: PipelineScope, manifests: readonly CartridgeManifest[]): string[][] {
  const label = scope.label;
  const byName = new Map<string, CartridgeManifest>();
  for (const m of manifests) {
    if (byName.has(m.name)) throw new PipelineValidationError('duplicate', label, [m.name], `cartridge '${m.name}' is there twice`);
    byName.set(m.name, m);
  }
  for (const m of manifests) {
    if (scope.leavesOnly && m.dependencies.length > 0) {
      throw new PipelineValidationError('not_leaf', label, [m.name], `cartridge '${m.name}' depends on ${m.dependencies.map((d) => `'${d}'`).join(', ')}; personal cartridges are leaves and may depend on nothing`);
    }
    for (const d of m.dependencies) {
      if (!byName.has(d)) {
        throw new PipelineValidationError('missing_dependency', label, [m.name, d], `cartridge '${m.name}' depends on '${d}', which is not in this pipeline`);
      }
    }
  }
  const cycle = findCycle(manifests, byName);
  if (cycle) throw new PipelineValidationError('cycle', label, [...new Set(cycle)], `dependency cycle ${cycle.join(' -> ')}`);
  for (const m of manifests) {
    const owned = m.emits.filter(isRunnerOwned);
    if (owned.length > 0) {
      throw new PipelineValidationError('scope', label, [m.name], `cartridge '${m.name}' emits ${owned.map((t) => `'${t}'`).join(', ')}: the node's own types (system.*, cartridge.*, mesh.*, domains.* but domains.alert, ...) are not a cartridge's to emit`);
    }
    const outside = m.emits.filter((t) => !withinAny(t, scope.emits));
    if (outside.length > 0) {
      throw new PipelineValidationError('scope', label, [m.name], `cartridge '${m.name}' emits ${outside.map((t) => `'${t}'`).join(', ')}, outside what this pipeline may emit (${scope.emits.join(', ') || 'nothing'})`);
    }
    if (scope.receives !== null) {
      const receives = scope.receives;
      const unseen = m.consumes.filter((p) => !withinAny(p, receives));
      if (unseen.length > 0) {
        throw new PipelineValidationError('scope', label, [m.name], `cartridge '${m.name}' consumes ${unseen.map((t) => `'${t}'`).join(', ')}, outside what this pipeline receives (${receives.join(', ') || 'nothing'})`);
      }
    }
  }
  const claims = new Map<string, string>();
  for (const m of manifests) {
    for (const field of m.outputs ?? []) {
      const owner = claims.get(field);
      if (owner !== undefined) {
        throw new PipelineValidationError('conflict', label, [owner, m.name], `cartridges '${owner}' and '${m.name}' both claim the output '${field}'`);
      }
      claims.set(field, m.name);
    }
  }
  return levelsOf(manifests, byName);
}

function levelsOf(manifests: readonly CartridgeManifest[], byName: Map<string, CartridgeManifest>): string[][] {
  const depth = new Map<string, number>();
  const visit = (name: string): number => {
    const known = depth.get(name);
    if (known !== undefined) return known;
    const m = byName.get(name) as CartridgeManifest;
    const d = m.dependencies.length === 0 ? 0 : Math.max(...m.dependencies.map(visit)) + 1;
    depth.set(name, d);
    return d;
  };
  const levels: string[][] = [];
  for (const m of manifests) {
    const d = visit(m.name);
    while (levels.length <= d) levels.push([]);
    (levels[d] as string[]).push(m.name);
  }
  return levels;
}
