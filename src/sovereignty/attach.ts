/**
 * A node's sovereignty, wired: the cartridge runtime, the gate in front of it and the
 * promotion tracker, as one part the daemon attaches to a node.
 */
import type { Cartridge } from '../pipeline/index.js';
import type { Clock, Logger } from '../util/index.js';
import { type AutonomyLevel, createSovereigntyGate, GATE_STAGE, type GateNode, type SovereigntyGate } from './gate.js';
import { ensurePromotionSchema, PROMOTION_STAGE, promotionTracker, resolvePromotion } from './promotion.js';
import { type CartridgeRuntime, type CartridgeRuntimeInit, createCartridgeRuntime, type RuntimeNode } from './runtime.js';

/** User options of a node's sovereignty: the config's `autonomy.*` keys and the data dir. */
export interface SovereigntyInit {
  dataDir: string;
  /** `autonomy.cartridge_install`, default L1. */
  autonomy?: AutonomyLevel;
  /** `autonomy.guardian_command`. */
  guardianCommand?: string;
  guardianTimeoutMs?: number;
  /** `autonomy.promotion_threshold`, default 10. */
  promotionThreshold?: number;
  sandbox?: CartridgeRuntimeInit['sandbox'];
}

/** A node whose pipeline can be extended (a `WeftNode` fits). */
export interface SovereigntyNode extends GateNode, RuntimeNode {
  readonly pipeline: { readonly cartridges: readonly Cartridge[]; replace(cartridges: readonly Cartridge[]): void };
}

/** Installed cartridges, the gate and the promotion tracker, wired into one node. */
export interface Sovereignty {
  readonly runtime: CartridgeRuntime;
  readonly gate: SovereigntyGate;
  /** Starts the gate (after the node started: it may emit). */
  start(): Promise<void>;
  /**
   * The API's `onApproved` hook: an answered `cartridge.install_pending` goes to the gate, an
   * answered `cartridge.promotion_suggested` promotes an alpha cartridge; others are ignored.
   */
  onApproved(notificationId: number, approve: boolean): Promise<void>;
  /** Stops the gate, then the runtime. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Wires sovereignty into an assembled node, as the seed's daemon wiring says: after the
 * pipeline it has (system stages, then the mesh publisher) come the promotion tracker and the
 * gate's stage (the installer's commit-time half runs after each commit), then the installed
 * cartridges, which the runtime starts here.
 * @throws as `CartridgeRuntime.start` does (a dependency cycle refuses the start).
 * @example
 * const sov = await attachSovereignty({ dataDir, autonomy: 'L1' }, { node, logger, clock: node.clock });
 * await assembled.start();
 * await sov.start();
 * // buildApi(..., { onApproved: (id, ok) => sov.onApproved(id, ok) })
 */
export async function attachSovereignty(
  init: SovereigntyInit,
  deps: {
    node: SovereigntyNode;
    logger: Logger;
    clock: Clock;
    /** Stages that always run last, after the installed cartridges (the domain router). */
    tail?: readonly Cartridge[];
  },
): Promise<Sovereignty> {
  const { node, logger } = deps;
  const tail = deps.tail ?? [];
  ensurePromotionSchema(node.ns.store.db);
  const base = [...node.pipeline.cartridges];
  let system: Cartridge[] = base;
  const builtins = [...base.map((c) => c.name), PROMOTION_STAGE, GATE_STAGE, ...tail.map((c) => c.name)];
  const runtime = createCartridgeRuntime(
    { dataDir: init.dataDir, builtins, ...(init.sandbox ? { sandbox: init.sandbox } : {}) },
    {
      node,
      logger: logger.child({ mod: 'cartridges' }),
      clock: deps.clock,
      onStagesChanged: (stages) => node.pipeline.replace([...system, ...stages, ...tail]),
    },
  );
  const gate = createSovereigntyGate(
    {
      autonomy: init.autonomy ?? 'L1',
      ...(init.guardianCommand ? { guardianCommand: init.guardianCommand } : {}),
      ...(init.guardianTimeoutMs ? { guardianTimeoutMs: init.guardianTimeoutMs } : {}),
    },
    { node, runtime, logger, builtins },
  );
  system = [...base, promotionTracker({ threshold: init.promotionThreshold ?? 10 })(deps.node.ns), gate.stage];
  await runtime.start();
  node.pipeline.replace([...system, ...runtime.stages(), ...tail]);
  let stopping: Promise<void> | undefined;
  return {
    runtime,
    gate,
    start: () => gate.start(),
    async onApproved(notificationId, approve) {
      if ((await gate.resolve(notificationId, approve)) !== undefined) return;
      await resolvePromotion({ ns: node.ns, runtime }, notificationId, approve);
    },
    stop() {
      stopping ??= (async () => {
        await gate.stop();
        await runtime.stop();
      })();
      return stopping;
    },
  };
}
