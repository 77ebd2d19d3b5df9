/**
 * The one place that builds the system pipeline, in its fixed order:
 * trust → dedup → enrichment → correlation → classification → notification projection →
 * session lineage.
 * Stages that come later (mesh publisher, promotion tracker) are appended after the lineage stage;
 * nothing can be inserted between system stages.
 */
import { WeftError } from '../errors/index.js';
import type { Cartridge, CartridgeStores } from '../pipeline/index.js';
import { type ClassificationInit, classification } from './classification.js';
import { type CorrelationInit, correlation } from './correlation.js';
import { dedupCartridge } from './dedup.js';
import { type EnrichmentInit, enrichment } from './enrichment.js';
import { notificationProjector } from './notification-projector.js';
import { type SessionLineageStageInit, sessionLineage } from './session-lineage.js';
import {
  type TrustEvaluator,
  type TrustEvaluatorDeps,
  type TrustEvaluatorInit,
  trustEvaluator,
} from './trust/index.js';

/** The system stages by cartridge name, in the order they run. */
export const SYSTEM_PIPELINE_ORDER = [
  'trust',
  'dedup',
  'enrichment',
  'correlation',
  'classification',
  'notification-projection',
  'session-lineage',
] as const;

export type SystemStage = (typeof SYSTEM_PIPELINE_ORDER)[number];

/** Options of every system stage. */
export interface SystemPipelineInit {
  trust?: TrustEvaluatorInit;
  enrichment?: EnrichmentInit;
  correlation?: CorrelationInit;
  classification?: ClassificationInit;
  /** Bounds of the session index (`weft sessions tree`). */
  sessions?: SessionLineageStageInit;
}

/** Collaborators of the system stages, and the stages that run after them. */
export interface SystemPipelineDeps extends TrustEvaluatorDeps {
  /** Appended after notification projection, in this order (mesh publisher, promotion tracker, ...). */
  after?: readonly Cartridge[];
  /** Use this trust evaluator instead of building one (to read its stats). */
  trust?: TrustEvaluator;
}

/**
 * The ordered cartridge list for a node, as a factory the node calls with its stores (the
 * stages are built once, each given only the stores it writes).
 * @example
 * const node = await createNode({ dataDir, computer: 'laptop',
 *   cartridges: (_defaults, stores) => systemPipeline({ trust: { strictness: 'standard' } }, { peers })(stores) });
 */
export function systemPipeline(init: SystemPipelineInit = {}, deps: SystemPipelineDeps = {}): (stores: CartridgeStores) => Cartridge[] {
  const after = deps.after ?? [];
  // Checked here, before any node is built: a list that would repeat a system stage is refused at once.
  for (const c of after) {
    if ((SYSTEM_PIPELINE_ORDER as readonly string[]).includes(c.name)) {
      throw new WeftError('WEFT_PIPELINE', `cartridge '${c.name}' is a system stage and cannot be appended again`);
    }
  }
  const trust = deps.trust ?? trustEvaluator(init.trust, deps.peers ? { peers: deps.peers } : {});
  const factories = {
    trust,
    dedup: dedupCartridge(),
    enrichment: enrichment(init.enrichment),
    correlation: correlation(init.correlation),
    classification: classification(init.classification),
    'notification-projection': notificationProjector(),
    'session-lineage': sessionLineage(init.sessions),
  };
  return (stores) => {
    const stages: Record<SystemStage, Cartridge> = {
      trust: factories.trust(stores),
      dedup: factories.dedup(stores),
      enrichment: factories.enrichment(stores),
      correlation: factories.correlation(stores),
      classification: factories.classification(stores),
      'notification-projection': factories['notification-projection'](stores),
      'session-lineage': factories['session-lineage'](stores),
    };
    const list = [...SYSTEM_PIPELINE_ORDER.map((name) => stages[name]), ...after];
    assertSystemOrder(list);
    return list;
  };
}

/**
 * Throws WEFT_PIPELINE unless the list starts with the system stages in order. The daemon
 * calls it on whatever list it was given, so a misconfigured pipeline fails at start.
 * @example
 * assertSystemOrder(node.pipeline.cartridges);
 */
export function assertSystemOrder(cartridges: readonly Pick<Cartridge, 'name'>[]): void {
  SYSTEM_PIPELINE_ORDER.forEach((name, i) => {
    const got = cartridges[i]?.name;
    if (got !== name) {
      throw new WeftError(
        'WEFT_PIPELINE',
        `system pipeline stage ${i + 1} must be '${name}', found '${got ?? 'nothing'}' (order: ${SYSTEM_PIPELINE_ORDER.join(' → ')})`,
      );
    }
  });
}
