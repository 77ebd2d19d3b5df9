/**
 * What the mesh needs from the node it runs in: a narrow port (as the sovereignty gate's
 * `GateNode`), so mesh/ depends on the pipeline's and the store's types, never on the daemon.
 * `WeftNode` satisfies it as it is.
 */
import type { EmitInput, Envelope } from '../envelope/index.js';
import type { CommittedBatch, NodeSelf, Processor } from '../pipeline/index.js';
import type { NodeStore } from '../store/index.js';

export interface MeshNode {
  readonly self: NodeSelf;
  /** The store (the only writer), the dead letters and the rejections the mesh records into. */
  readonly ns: Pick<NodeStore, 'store' | 'deadLetters' | 'rejections'>;
  /** Applies peers' envelopes through the local pipeline in one transaction. */
  readonly processor: Pick<Processor, 'processBatch'>;
  /** Builds a local envelope without emitting it. */
  build(input: EmitInput): Envelope;
  emit(input: unknown): Promise<Envelope>;
  /** Called after each committed batch. */
  onCommitted(fn: (batch: CommittedBatch) => void): () => void;
}
