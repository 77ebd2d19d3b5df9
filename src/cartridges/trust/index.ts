/** trust: the trust evaluator cartridge, its policy, peer scores, and quarantine operations. */
export * from './peer-directory.js';
export * from './policy.js';
export * from './quarantine-ops.js';
export * from './rate-limiter.js';
export * from './trust-evaluator.js';
export {
  type PeerTrustRecord,
  peerTrustScores,
  type ScoreInit,
  scoreOf,
  type TrustOutcomeCount,
  trustOutcomeCounts,
  trustOutcomeTotals,
} from './trust-store.js';
