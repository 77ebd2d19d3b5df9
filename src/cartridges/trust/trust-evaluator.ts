/**
 * The trust evaluator: the first stage of the system pipeline. It decides accept, flag,
 * quarantine or reject for every event from where it came (this node, a known peer, an
 * unknown one), whether its signature was verified, whether its content fits the catalog,
 * and how fast its source is sending. Flagged events carry `trust:*` flags; quarantined ones
 * wait in the quarantine table for a human; rejected ones are recorded and counted.
 */
import { TRUST_THROTTLED } from '../../catalog/index.js';
import { type Envelope, envelopeWith, serializeEnvelope } from '../../envelope/index.js';
import {
  type Cartridge,
  type CartridgeContext,
  type CartridgeFactory,
  type CartridgeStores,
  INGRESS_FACT,
  type IngressFact,
  RELEASED_FACT,
} from '../../pipeline/index.js';
import { emptyPeerDirectory, type PeerDirectory } from './peer-directory.js';
import {
  CONSEQUENCE_FINDINGS,
  decide,
  FINDING_OUTCOMES,
  type Strictness,
  type TrustFinding,
  type TrustOutcome,
  worse,
} from './policy.js';
import { type RateLimit, RateLimiter, type ThrottleEpisode } from './rate-limiter.js';
import {
  decayed,
  type ResolvedScoreInit,
  resolveScoreInit,
  type ScoreInit,
  scoreOf,
  trustStatements,
} from './trust-store.js';

/**
 * Fact key holding the trust outcome. Later cartridges see 'accept' or 'flag'; for a stopped
 * event the processor's `dropped` list sees 'quarantine' or 'reject'.
 */
export const TRUST_FACT = 'trust';
/** Fact key holding the finding that decided a non-accept outcome (e.g. 'unsigned'), or 'override'. */
export const TRUST_REASON_FACT = 'trust.reason';
/** Batch fact naming the quarantine row a release comes from; trust marks it released in the same transaction. */
export const QUARANTINE_ID_FACT = 'quarantineId';

/** Settings for one source, keyed by source name or peer node id. */
export interface SourceOverride {
  strictness?: Strictness;
  /** Skip every check and decide this (e.g. 'accept' for a trusted bulk importer, 'reject' to mute). */
  outcome?: TrustOutcome;
  /** This source's rate, or false for no rate limit. */
  rate?: RateLimit | false;
}

/** Options of the trust evaluator. */
export interface TrustEvaluatorInit {
  /** Default 'standard'. */
  strictness?: Strictness;
  /**
   * Local source names this node expects (a trailing `*` matches a prefix). Unset: every local
   * source is known. Set: others are `trust:unknown_source`.
   */
  knownSources?: readonly string[];
  /** Per-source settings, keyed by peer node id or source name (the node id wins). */
  overrides?: Readonly<Record<string, SourceOverride>>;
  /** Default rate per source (default 2,000/s sustained, bursts of 10,000: the config's trust.rate_per_second and trust.rate_burst). */
  rate?: RateLimit | false;
  /**
   * Rate for a peer by its trust level, when no override names it (default: `peer` and
   * `supervisor` 20,000/s with bursts of 200,000, so a trusted peer's backlog after an outage is
   * not mistaken for a flood; other levels use `rate`).
   */
  peerRate?: Partial<Record<'untrusted' | 'share_to' | 'query_from' | 'peer' | 'supervisor', RateLimit | false>>;
  /** Largest payload accepted without `trust:oversize`, in bytes of JSON (default 64 KiB). */
  maxPayloadBytes?: number;
  /** Peer score model. */
  score?: ScoreInit;
}

/** Collaborators of the trust evaluator. */
export interface TrustEvaluatorDeps {
  /** The mesh's peer table. Default: no peer is known. */
  peers?: PeerDirectory;
}

/** Outcome counts of one subject since start (in memory). */
export interface SubjectStats {
  seen: number;
  accept: number;
  flag: number;
  quarantine: number;
  reject: number;
}

/** The cartridge, plus what it counted since start. */
/** The stores the trust evaluator writes: its scores and outcome counts, rejections, the quarantine. */
export type TrustStores = Pick<CartridgeStores, 'store' | 'rejections' | 'quarantine'>;

/** A trust evaluator: the factory of its pipeline stage, and what it has seen since start. */
export interface TrustEvaluator extends CartridgeFactory<TrustStores> {
  /** Counts per subject (peer node id, or `local:<source>`) since start. */
  stats(): ReadonlyMap<string, Readonly<SubjectStats>>;
  /** Totals per outcome since start. */
  totals(): Readonly<SubjectStats>;
  /** Subjects throttled right now (with `nowMs`: not those that stopped flooding since). */
  throttled(nowMs?: number): ThrottleEpisode[];
}

const LEVEL_SLACK: Readonly<Record<Strictness, number>> = {
  permissive: Number.POSITIVE_INFINITY,
  standard: 1,
  strict: 0,
};
const MAX_SUBJECTS = 10_000;

/**
 * Builds the trust evaluator.
 * @example
 * const trust = trustEvaluator({ strictness: 'strict', overrides: { importer: { rate: false } } }, { peers });
 * const node = await createNode({ dataDir, computer: 'laptop', cartridges: (d, stores) => [trust(stores), d.dedup, d.projection] });
 */
export function trustEvaluator(init: TrustEvaluatorInit = {}, deps: TrustEvaluatorDeps = {}): TrustEvaluator {
  const peers = deps.peers ?? emptyPeerDirectory;
  const baseStrictness = init.strictness ?? 'standard';
  const baseRate: RateLimit | false = init.rate ?? { perSecond: 2000, burst: 10_000 };
  const trustedRate: RateLimit = { perSecond: 20_000, burst: 200_000 };
  const peerRate = { peer: trustedRate, supervisor: trustedRate, ...(init.peerRate ?? {}) };
  const maxPayload = init.maxPayloadBytes ?? 65_536;
  const score: ResolvedScoreInit = resolveScoreInit(init.score);
  const overrides = new Map(Object.entries(init.overrides ?? {}));
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const s of init.knownSources ?? []) {
    if (s.endsWith('*')) prefixes.push(s.slice(0, -1));
    else exact.add(s);
  }
  const checkKnown = init.knownSources !== undefined;
  const knownCache = new Map<string, boolean>();
  const isKnownLocal = (source: string): boolean => {
    let k = knownCache.get(source);
    if (k === undefined) {
      k = exact.has(source) || prefixes.some((p) => source.startsWith(p));
      if (knownCache.size < MAX_SUBJECTS) knownCache.set(source, k);
    }
    return k;
  };

  const limiter = new RateLimiter();
  const perSubject = new Map<string, SubjectStats>();
  const total: SubjectStats = { seen: 0, accept: 0, flag: 0, quarantine: 0, reject: 0 };
  const count = (subject: string, outcome: TrustOutcome) => {
    let s = perSubject.get(subject);
    if (!s) {
      if (perSubject.size >= MAX_SUBJECTS) subject = '*other*';
      s = perSubject.get(subject);
      if (!s) {
        s = { seen: 0, accept: 0, flag: 0, quarantine: 0, reject: 0 };
        perSubject.set(subject, s);
      }
    }
    s.seen++;
    s[outcome]++;
    total.seen++;
    total[outcome]++;
  };

  // Reused per event: the pipeline runs one event at a time and trust is synchronous.
  const findings: TrustFinding[] = [];
  /** What exactly was wrong with the payload, for the quarantine and rejection records. */
  let payloadProblem: string | undefined;

  function process(event: Envelope, ctx: CartridgeContext, stores: TrustStores): Envelope | null {
    const facts = ctx.facts;
    findings.length = 0;
    payloadProblem = undefined;
    if (facts.get(RELEASED_FACT) === true) return released(event, ctx, stores);

    const ingress = facts.get(INGRESS_FACT) as IngressFact | undefined;
    const subject = ingress ? ingress.peerNodeId : `local:${event.source}`;
    const ov =
      overrides.size === 0
        ? undefined
        : ((ingress ? overrides.get(ingress.peerNodeId) : undefined) ?? overrides.get(event.source));
    if (ov?.outcome !== undefined) return apply(event, ctx, stores, ov.outcome, undefined, subject, ingress, 0);
    const strictness = ov?.strictness ?? baseStrictness;

    // Where it came from.
    let penalty = 0;
    let levelRate: RateLimit | false | undefined;
    if (ingress) {
      const info = peers.get(ingress.peerNodeId);
      if (info) levelRate = peerRate[info.trustLevel];
      if (!info) findings.push('unknown_source');
      else if (info.trustLevel === 'untrusted') findings.push('untrusted_peer');
      else if (info.trustLevel === 'share_to' || info.trustLevel === 'query_from')
        findings.push('limited_peer');
      // A TeleClaude peer signs nothing; the operator opted in per peer, so it is seen, not held.
      if (ingress.wire === 'teleclaude') findings.push('legacy_wire');
      else if (!ingress.signatureVerified) findings.push('unsigned');
      if (
        event.origin !== undefined &&
        event.origin !== ingress.peerNodeId &&
        !(event.hops !== undefined && event.hops > 0)
      ) {
        findings.push('origin_mismatch');
      }
      penalty = currentPenalty(ctx, stores, ingress.peerNodeId);
      const s = scoreOf(penalty, score.scale);
      if (s < score.quarantineBelow) findings.push('distrusted');
      else if (s < score.flagBelow) findings.push('low_score');
    } else {
      if (checkKnown && !isKnownLocal(event.source)) findings.push('unknown_source');
      // Without the ingress fact it never crossed the mesh gate, yet it names another node.
      if (
        (event.sourceComputer !== undefined && event.sourceComputer !== ctx.self.computer) ||
        (event.origin !== undefined && ctx.self.nodeId !== undefined && event.origin !== ctx.self.nodeId)
      ) {
        findings.push('spoofed_origin');
      }
    }

    // What it says.
    const entry = ctx.catalog.get(event.event);
    if (!entry) findings.push('unknown_type');
    else {
      if (!entry.validator.check(event.payload)) {
        findings.push('invalid_payload');
        const e = entry.validator.firstError(event.payload);
        if (e) payloadProblem = `field '/payload${e.path === '/' ? '' : e.path}' ${e.message.toLowerCase()}`;
      }
      if (event.domain !== entry.domain) findings.push('domain_mismatch');
      if (event.level > entry.level + LEVEL_SLACK[strictness]) findings.push('level_escalation');
    }
    if (payloadTooLarge(event.payload, maxPayload)) findings.push('oversize');

    // How fast its source sends.
    const rate = ov?.rate !== undefined ? ov.rate : (levelRate ?? baseRate);
    // The node's own notice of a throttling shares its source with the flood (weft@<computer>):
    // spending from that bucket would quarantine the one event that says what happened.
    const ownNotice = !ingress && event.event === TRUST_THROTTLED && event.causationId !== undefined;
    if (rate !== false && !ownNotice) {
      // With the store: a batch rolled back and run again takes its tokens once, and raises the throttle notice its first run raised.
      const verdict = limiter.take(subject, rate, Date.parse(event.timestamp), ctx.clock.now(), stores.store);
      if (verdict !== 'ok') {
        findings.push('rate_exceeded');
        if (verdict === 'throttle-start') throttleNotice(ctx, subject, event, ingress, rate);
      }
    }

    if (findings.length === 0) {
      if (ingress) recordClean(ctx, stores, ingress.peerNodeId, penalty);
      count(subject, 'accept');
      facts.set(TRUST_FACT, 'accept');
      return event;
    }
    const { outcome, reason } = decide(findings, strictness);
    return apply(event, ctx, stores, outcome, reason, subject, ingress, penalty, strictness);
  }

  function apply(
    event: Envelope,
    ctx: CartridgeContext,
    stores: TrustStores,
    outcome: TrustOutcome,
    reason: TrustFinding | undefined,
    subject: string,
    ingress: IngressFact | undefined,
    penalty: number,
    strictness?: Strictness,
  ): Envelope | null {
    count(subject, outcome);
    const flags = findings.length > 0 && strictness !== undefined ? findings.map((f) => `trust:${f}`) : [];
    const why = reason ?? 'override';
    // Counted by the bare reason; recorded with the field that failed.
    const detailed = why === 'invalid_payload' && payloadProblem ? `invalid_payload: ${payloadProblem}` : why;
    ctx.facts.set(TRUST_FACT, outcome);
    if (outcome !== 'accept') ctx.facts.set(TRUST_REASON_FACT, detailed);
    if (outcome !== 'accept')
      trustStatements(stores.store.db).countOutcome.run(
        ingress?.peerNodeId ?? '',
        event.source,
        outcome,
        why,
        ctx.clock.now(),
      );
    if (ingress && strictness !== undefined) recordOffense(ctx, stores, ingress.peerNodeId, penalty, strictness);
    if (outcome === 'reject') {
      stores.rejections.add({
        origin: `trust:${subject}`,
        ref: event.id,
        code: `TRUST_REJECT`,
        reason: detailed,
        field: why === 'invalid_payload' ? payloadProblem?.match(/^field '([^']*)'/)?.[1] : undefined,
        raw: serializeEnvelope(event),
      });
      return null;
    }
    if (outcome === 'quarantine') {
      stores.quarantine.add(event, detailed, flags);
      return null;
    }
    if (outcome === 'flag' && flags.length > 0) return envelopeWith(event, { flags: mergeFlags(event.flags, flags) });
    return event;
  }

  function released(event: Envelope, ctx: CartridgeContext, stores: TrustStores): Envelope | null {
    const qid = ctx.facts.get(QUARANTINE_ID_FACT);
    if (typeof qid === 'number') {
      const row = stores.quarantine.get(qid);
      if (row.status !== 'held') {
        ctx.logger.warn(
          { quarantineId: qid, status: row.status },
          'quarantined event already decided; release ignored',
        );
        return null;
      }
      stores.quarantine.decide(qid, 'released');
    }
    ctx.facts.set(TRUST_FACT, 'accept');
    return envelopeWith(event, { flags: mergeFlags(event.flags, ['trust:released']) });
  }

  function currentPenalty(ctx: CartridgeContext, stores: TrustStores, peer: string): number {
    const row = trustStatements(stores.store.db).getScore.get(peer) as
      | { penalty: number; updated_at: number }
      | undefined;
    return row ? decayed(row.penalty, ctx.clock.now() - row.updated_at, score.halfLifeMs) : 0;
  }

  function recordClean(ctx: CartridgeContext, stores: TrustStores, peer: string, penalty: number): void {
    // A spotless peer costs no write; one with a record earns it back slowly.
    if (penalty <= 0) return;
    const p = penalty * score.cleanDecay;
    trustStatements(stores.store.db).putScore.run(peer, p < 1e-4 ? 0 : p, 1, 0, ctx.clock.now());
  }

  function recordOffense(ctx: CartridgeContext, stores: TrustStores, peer: string, penalty: number, strictness: Strictness): void {
    let offense: TrustOutcome = 'accept';
    let consequencesOnly = true;
    for (const f of findings) {
      if (CONSEQUENCE_FINDINGS.has(f)) continue;
      consequencesOnly = false;
      offense = worse(offense, FINDING_OUTCOMES[f][strictness]);
    }
    // Held or flagged only for its past record: the event itself is clean and earns trust back.
    if (consequencesOnly) {
      recordClean(ctx, stores, peer, penalty);
      return;
    }
    if (offense === 'accept') return;
    const p = Math.min(score.maxPenalty, penalty + score.weights[offense]);
    trustStatements(stores.store.db).putScore.run(peer, p, 0, 1, ctx.clock.now());
  }

  function throttleNotice(
    ctx: CartridgeContext,
    subject: string,
    event: Envelope,
    ingress: IngressFact | undefined,
    rate: RateLimit,
  ): void {
    ctx.emit({
      event: TRUST_THROTTLED,
      payload: {
        subject,
        source: event.source,
        ...(ingress ? { peer: ingress.peerNodeId } : {}),
        perSecond: rate.perSecond,
        burst: rate.burst,
        since: ctx.now,
      },
    });
  }

  const bind = (stores: TrustStores): Cartridge => ({ name: 'trust', process: (event, ctx) => process(event, ctx, stores) });
  return Object.assign(bind, {
    stats: () => perSubject,
    totals: () => total,
    throttled: (nowMs?: number) => limiter.throttled(nowMs),
  });
}

function mergeFlags(existing: readonly string[] | undefined, add: readonly string[]): string[] {
  const out = existing ? [...existing] : [];
  for (const f of add) if (!out.includes(f) && out.length < 64) out.push(f);
  return out;
}

// JSON length in UTF-16 units bounds the UTF-8 size within 3x; measure bytes only near the limit.
function payloadTooLarge(payload: Record<string, unknown>, max: number): boolean {
  const json = JSON.stringify(payload);
  if (json.length * 3 <= max) return false;
  return Buffer.byteLength(json, 'utf8') > max;
}
