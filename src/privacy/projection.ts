/**
 * The privacy projection stage: for each `terminal.command` that passed the system pipeline
 * on this node, one row of counts-only facts in `terminal_commands` (no command text, no path),
 * in the batch's transaction, once per event id. Summaries and query answers read only that
 * table. A peer's `privacy.summary.shared` is checked (well formed, signed by the node it
 * names, sent by that node) and kept; anything else is refused and logged.
 */
import type { NodeSummary, TerminalEvent } from '../catalog/index.js';
import { verifySummary } from './summaries.js';
import { type Cartridge, type CartridgeFactory, type CartridgeStores, INGRESS_FACT, type IngressFact } from '../pipeline/index.js';
import { commandPattern } from './classify.js';
import { PrivacyStore } from './privacy-store.js';

export const PRIVACY_STAGE = 'privacy-projection';

/** What the stage reports to its owner. */
export interface ProjectionHooks {
  /** A peer's summary was accepted (after the commit is not guaranteed: for counters only). */
  onPeerSummary?(peer: string, s: NodeSummary): void;
  /** A peer's summary was refused: why. */
  onRefusedSummary?(peer: string, reason: string): void;
}

/**
 * The stage's factory (`privacyProjection(hooks)(stores)`).
 * @example
 * const stage = privacyProjection()({ store });
 */
export function privacyProjection(hooks: ProjectionHooks = {}): CartridgeFactory<Pick<CartridgeStores, 'store'>> {
  return ({ store }) => {
    const ps = new PrivacyStore(store);
    const stage: Cartridge = {
      name: PRIVACY_STAGE,
      process(e, ctx) {
        const ingress = ctx.facts.get(INGRESS_FACT) as IngressFact | undefined;
        if (e.event === 'terminal.command') {
          // Raw class never arrives from a peer; if something claims to be one, it is not ours to count.
          if (ingress) return e;
          const p = e.payload as TerminalEvent;
          ps.addCommand({
            eventId: e.id,
            ts: Date.parse(p.timestamp ?? e.timestamp),
            shell: p.shell,
            category: p.category,
            riskLevel: p.risk_level,
            exitCode: p.exit_code ?? null,
            durationMs: p.duration_ms ?? null,
            pattern: commandPattern(p.command),
            caroGenerated: p.caro_generated,
            userConfirmed: p.user_confirmed,
          });
          return e;
        }
        if (e.event === 'privacy.summary.shared' && ingress) {
          const s = e.payload as unknown as NodeSummary;
          const reason = !verifySummary(s)
            ? 'signature does not verify'
            : s.node_id !== ingress.peerNodeId
              ? `summary of ${s.node_id} sent by another node`
              : unfinished(s, ctx.clock.now());
          if (reason) {
            hooks.onRefusedSummary?.(ingress.peerComputer, reason);
            return e;
          }
          ps.addPeerSummary(ingress.peerComputer, s, ctx.clock.now());
          hooks.onPeerSummary?.(ingress.peerComputer, s);
        }
        return e;
      },
    };
    return stage;
  };
}

/** How far a peer's clock may run ahead of ours before its summary's period counts as not over. */
const CLOCK_SKEW_MS = 10 * 60_000;

/**
 * Why a summary is not of a finished period, if it is not: one made before its period ended
 * counts what had happened by then, and one whose period ends after our clock (beyond a skew)
 * is of a time that has not come; either would be kept as if it were the period's final count
 * (and, being the newest period, would crowd out real ones).
 */
function unfinished(s: NodeSummary, now: number): string | undefined {
  const end = Date.parse(s.period.end);
  if (!Number.isFinite(end) || !Number.isFinite(Date.parse(s.generated_at))) return 'summary period end or generated_at is not a time';
  if (Date.parse(s.generated_at) < end) return `summary of ${s.period.granularity} ${s.period.start} was made before its period ended (${s.generated_at}): it is not final`;
  if (end > now + CLOCK_SKEW_MS) return `summary of ${s.period.granularity} ${s.period.start} is of a period that has not ended yet (ends ${s.period.end})`;
  return undefined;
}
