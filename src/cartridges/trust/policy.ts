/**
 * The trust policy: what each finding about an event means at each strictness, and how the
 * findings of one event combine into one outcome (the most severe wins).
 */

/** What the evaluator decides for one event. */
export type TrustOutcome = 'accept' | 'flag' | 'quarantine' | 'reject';
/** How hard the evaluator looks. */
export type Strictness = 'permissive' | 'standard' | 'strict';

export const TRUST_OUTCOMES: readonly TrustOutcome[] = ['accept', 'flag', 'quarantine', 'reject'];
export const STRICTNESS_LEVELS: readonly Strictness[] = ['permissive', 'standard', 'strict'];

/** Something suspicious about an event. Each becomes the flag `trust:<finding>`. */
export type TrustFinding =
  /** A peer that is not in the directory, or a local source name not in `knownSources`. */
  | 'unknown_source'
  /** A peer event whose frame signature was not verified. */
  | 'unsigned'
  /** An unsigned event from a configured TeleClaude peer of this cluster (mesh.teleclaude_peers). */
  | 'legacy_wire'
  /** A local event (no ingress) that claims another node as its origin or computer. */
  | 'spoofed_origin'
  /** A peer event claiming a different origin without any relay hop. */
  | 'origin_mismatch'
  /** A peer whose trust level is `untrusted`. */
  | 'untrusted_peer'
  /** A peer we share to or answer queries from, but do not take events from. */
  | 'limited_peer'
  /** An event type this node's catalog does not know. */
  | 'unknown_type'
  /** A payload that does not match its type's schema. */
  | 'invalid_payload'
  /** A level well above the type's default. */
  | 'level_escalation'
  /** A domain different from the type's domain. */
  | 'domain_mismatch'
  /** A payload larger than `maxPayloadBytes`. */
  | 'oversize'
  /** The source exceeded its rate and is throttled. */
  | 'rate_exceeded'
  /** The peer's persisted trust score is below `flagBelow`. */
  | 'low_score'
  /** The peer's persisted trust score is below `quarantineBelow`. */
  | 'distrusted';

type Row = Readonly<Record<Strictness, TrustOutcome>>;
const row = (permissive: TrustOutcome, standard: TrustOutcome, strict: TrustOutcome): Row => ({
  permissive,
  standard,
  strict,
});

/** The outcome of each finding at each strictness. */
export const FINDING_OUTCOMES: Readonly<Record<TrustFinding, Row>> = {
  unknown_source: row('flag', 'flag', 'quarantine'),
  unsigned: row('flag', 'quarantine', 'reject'),
  legacy_wire: row('accept', 'flag', 'quarantine'),
  spoofed_origin: row('flag', 'quarantine', 'reject'),
  origin_mismatch: row('accept', 'flag', 'quarantine'),
  untrusted_peer: row('flag', 'quarantine', 'reject'),
  limited_peer: row('accept', 'flag', 'quarantine'),
  // A newer peer may know types we do not: flag, so it is seen, rather than lose it.
  unknown_type: row('flag', 'flag', 'quarantine'),
  invalid_payload: row('flag', 'quarantine', 'reject'),
  level_escalation: row('accept', 'flag', 'flag'),
  domain_mismatch: row('accept', 'flag', 'quarantine'),
  oversize: row('flag', 'quarantine', 'reject'),
  // Flood protection guards the node itself, so it holds even when content checks are relaxed.
  rate_exceeded: row('quarantine', 'quarantine', 'quarantine'),
  low_score: row('accept', 'flag', 'flag'),
  distrusted: row('flag', 'quarantine', 'quarantine'),
};

/**
 * Findings that are consequences of earlier offenses, not new ones: they never lower the
 * score again, or a distrusted peer could never recover.
 */
export const CONSEQUENCE_FINDINGS: ReadonlySet<TrustFinding> = new Set<TrustFinding>([
  'low_score',
  'distrusted',
  // What the peer is (its configured or discovered trust level) decides the outcome, but is no
  // misbehaviour of the event: it must not wear the peer's score down event by event (a
  // cross-cluster peer found by discovery was quarantined after ~200 clean events).
  'limited_peer',
  'untrusted_peer',
]);

const SEVERITY: Readonly<Record<TrustOutcome, number>> = { accept: 0, flag: 1, quarantine: 2, reject: 3 };

/**
 * The more severe of two outcomes.
 * @example
 * worse('flag', 'quarantine'); // 'quarantine'
 */
export function worse(a: TrustOutcome, b: TrustOutcome): TrustOutcome {
  return SEVERITY[b] > SEVERITY[a] ? b : a;
}

/**
 * Combines findings: the most severe outcome and the finding that decided it (the first one at that severity).
 * @example
 * decide(['unknown_source', 'unsigned'], 'standard'); // { outcome: 'quarantine', reason: 'unsigned' }
 */
export function decide(
  findings: readonly TrustFinding[],
  strictness: Strictness,
): { outcome: TrustOutcome; reason: TrustFinding | undefined } {
  let outcome: TrustOutcome = 'accept';
  let reason: TrustFinding | undefined;
  for (const f of findings) {
    const o = FINDING_OUTCOMES[f][strictness];
    if (SEVERITY[o] > SEVERITY[outcome]) {
      outcome = o;
      reason = f;
    }
  }
  return { outcome, reason };
}
