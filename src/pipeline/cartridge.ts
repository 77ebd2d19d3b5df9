import type { Catalog } from '../catalog/index.js';
import type { EmitInput, Envelope } from '../envelope/index.js';
import type { NodeStore, NotificationChange } from '../store/index.js';
import type { Clock, Logger } from '../util/index.js';

/** Who this node is, as cartridges see it. */
export interface NodeSelf {
  computer: string;
  cluster?: string;
  /** `weft:ed25519:...` once the node has an identity. */
  nodeId?: string;
}

/**
 * What a cartridge receives besides the event. It runs inside the pipeline's batch
 * transaction: writes to the stores it was given (its factory's deps) commit or roll back with
 * the batch, and events it emits are appended atomically with them.
 */
export interface CartridgeContext {
  readonly catalog: Catalog;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly self: NodeSelf;
  /** ISO time of the batch, from the injected clock. */
  readonly now: string;
  /**
   * Emits a new event caused by the current one (causationId and correlationId are filled
   * in). It is validated like any other and enters the log in the same transaction.
   */
  emit(input: EmitInput): Envelope;
  /** Records a notification change to publish once the batch commits. */
  notify(change: NotificationChange): void;
  /** The cartridge running now (set by the pipeline): what `emit` counts against. */
  cartridge?: string;
  /**
   * Facts about the event being processed, shared with later cartridges. Set before the
   * pipeline: `ingress` ({@link IngressFact}) for events a peer sent, `released` (true) for
   * an event released from quarantine. Set by cartridges: `trust`, `treatment`, ...
   */
  readonly facts: Map<string, unknown>;
}

/**
 * One pipeline stage. Return the (possibly changed) event to pass it on, or null to stop it.
 * A cartridge that throws does not stop the node: the event goes to the dead-letter table and
 * `system.cartridge.failed` is emitted.
 * @example
 * const upper: Cartridge = { name: 'upper', process: (e) => ({ ...e, description: e.description.toUpperCase() }) };
 */
export interface Cartridge {
  readonly name: string;
  process(event: Envelope, ctx: CartridgeContext): Envelope | null | Promise<Envelope | null>;
  /**
   * Never run this stage twice on an event: every event then gets a savepoint of its own.
   * Otherwise, when a stage throws, the pipeline rolls the batch back and runs it again with
   * savepoints (see Pipeline), and what a stage does outside the transaction (counters, caches)
   * happens twice for that batch's events, as when a whole batch fails and is retried. Set by
   * the sandboxed cartridges: their work is costly and happens in another process.
   */
  readonly noRerun?: boolean;
}

/** The parts of the node's store a cartridge may be given; each factory names the ones it uses. */
export type CartridgeStores = Pick<NodeStore, 'store' | 'dedup' | 'notifications' | 'quarantine' | 'rejections' | 'deadLetters' | 'stats'>;

/**
 * The one shape of a cartridge that keeps state: `x(init)` returns a factory, which the node
 * calls with the stores it may write (`x(init)(deps)`), so a cartridge's reach is explicit.
 * @example
 * const dedup = dedupCartridge()(node.ns); // writes only node.ns.dedup
 */
export type CartridgeFactory<D = CartridgeStores> = (deps: D) => Cartridge;

/** Fact set by the mesh ingress on every event of a verified peer frame. */
export interface IngressFact {
  peerNodeId: string;
  peerComputer: string;
  /** The frame's Ed25519 signature verified against the peer's pinned key. */
  signatureVerified: boolean;
  /** `teleclaude`: the seed's unsigned JSON wire, admitted by the cluster-peer rule (default: signed Weft frames). */
  wire?: 'teleclaude';
}

export const INGRESS_FACT = 'ingress';
export const RELEASED_FACT = 'released';
/** Set by the processor on every event: the envelope exactly as the event log holds it (a stage that changes the event returns another object). */
export const LOGGED_FACT = 'logged';
/**
 * Set by the dedup stage on a peer's event: the idempotency key the node judged it by (derived
 * here, not the one the peer brought), which its notification carries too.
 */
export const IDEMPOTENCY_FACT = 'idempotencyKey';
