/**
 * What the organs need from the node and the mesh: narrow ports, so federation/ depends on
 * the pipeline's, the store's and the mesh's types, never on the daemon.
 */
import type { AuditLog } from '../audit/index.js';
import type { Catalog } from '../catalog/index.js';
import type { EmitInput, Envelope } from '../envelope/index.js';
import type { MeshService, PeerBook } from '../mesh/index.js';
import type { CommittedBatch, NodeSelf, Processor } from '../pipeline/index.js';
import type { NodeStore } from '../store/index.js';
import type { Clock, Logger } from '../util/index.js';
import type { MountBook } from './mounts.js';

export interface FederationNode {
  readonly self: NodeSelf;
  readonly ns: Pick<NodeStore, 'store' | 'log' | 'deadLetters' | 'rejections'>;
  readonly catalog: Catalog;
  /** Applies envelopes from elsewhere through the local pipeline in one transaction. */
  readonly processor: Pick<Processor, 'processBatch'>;
  build(input: EmitInput): Envelope;
  emit(input: unknown): Promise<Envelope>;
  onCommitted(fn: (batch: CommittedBatch) => void): () => void;
}

/** What every organ is given. */
export interface OrganDeps {
  node: FederationNode;
  mesh: MeshService;
  peers: PeerBook;
  mounts: MountBook;
  audit: AuditLog;
  clock: Clock;
  logger: Logger;
}
