import { type CartridgeFactory, type CartridgeStores, INGRESS_FACT, type IngressFact } from '../pipeline/index.js';
import { SessionLineage, type SessionLineageInit, sightingOf } from '../store/index.js';

/** Options of the lineage stage: the index's bounds. */
export type SessionLineageStageInit = SessionLineageInit;

/** How often at most the stage raises `system.cartridge.limited` while the index is full. */
const FULL_NOTICE_EVERY_MS = 3_600_000;

/**
 * The last system stage: indexes each event's `session` and `parentSession` into the session
 * tree (`weft sessions tree`). It runs after trust and dedup, so only accepted events count
 * and a redelivered one counts once; peers' events pass the same pipeline, so their sessions
 * join the same trees. An event without a session costs one property read.
 *
 * Where a session runs is where its events come from: the origin node and computer the mesh
 * stamped, else (a local producer, or a foreign entry on this node's own stream) this node.
 * @example
 * const stage = sessionLineage({ maxSessions: 100_000 })(node.ns); // systemPipeline() adds it itself
 */
export function sessionLineage(init: SessionLineageStageInit = {}): CartridgeFactory<Pick<CartridgeStores, 'store'>> {
  return (deps) => {
    const lineage = new SessionLineage(deps.store, init);
    let fullSince: number | undefined;
    let fullRefused = 0;
    let rollbacksSeen = 0;
    return {
      name: 'session-lineage',
      process(event, ctx) {
        if (event.session === undefined) return event;
        const ingress = ctx.facts.get(INGRESS_FACT) as IngressFact | undefined;
        const here = ingress ? { computer: ingress.peerComputer, node: ingress.peerNodeId } : { computer: ctx.self.computer, node: ctx.self.nodeId };
        const sighting = sightingOf(event as typeof event & { session: string }, here, ctx.clock.now());
        const computer = sighting.computer;
        const out = lineage.record(sighting);
        if (out.newClaim) {
          ctx.logger.warn(
            { session: event.session, claimed: event.parentSession, kind: out.parent, eventId: event.id, computer },
            out.parent === 'conflict'
              ? 'a session claims a second parent: the first stays, the claim is recorded (weft sessions tree)'
              : `a session's parent claim was refused (${out.parent}) and recorded (weft sessions tree)`,
          );
        }
        if (out.parent === 'full') {
          fullRefused++;
          // A notice raised in a transaction that rolled back was never seen: raise it again.
          if (deps.store.rollbacks !== rollbacksSeen) {
            rollbacksSeen = deps.store.rollbacks;
            fullSince = undefined;
          }
          const now = ctx.clock.now();
          if (fullSince === undefined || now - fullSince >= FULL_NOTICE_EVERY_MS) {
            fullSince = now;
            const reason = `the session index holds its limit of ${lineage.maxSessions} sessions; new sessions are counted but not indexed (weft sessions list shows the count)`;
            ctx.logger.warn({ session: event.session, refused: fullRefused }, reason);
            try {
              ctx.emit({ event: 'system.cartridge.limited', payload: { cartridge: 'session-lineage', code: 'SESSIONS_FULL', reason, count: fullRefused } });
              fullRefused = 0;
            } catch (err) {
              // The node's own emit limits: the count rides on the next notice.
              ctx.logger.warn({ err: (err as Error).message }, 'session index full: notice not raised');
            }
          }
        }
        return event;
      },
    };
  };
}
