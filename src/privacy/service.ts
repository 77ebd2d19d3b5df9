/**
 * A node's privacy layer, wired: the observer (spool → `terminal.command`), the sharing
 * policy and trust levels, summaries (generated per hour, day and week; pushed only when
 * `privacy.share_summaries` is on and only to peers whose trust allows it), and aggregate
 * queries over the mesh (signed, answered per policy by each node, merged with a k-threshold).
 * Every decision that crosses the node's edge is audited: QueryReceived, ResponseSent,
 * PolicyViolation, TrustChanged, SummaryGenerated, SummaryShared.
 */
import { randomUUID } from 'node:crypto';
import type { AuditLog } from '../audit/index.js';
import {
  type Granularity,
  GRANULARITIES,
  type MeshQuery,
  type MeshResponse,
  meshQueryValidator,
  meshResponseValidator,
  type NodeSummary,
  type QueryFilter,
  type QueryType,
  type ResponseData,
  type SharingPolicy,
} from '../catalog/index.js';
import type { Envelope } from '../envelope/index.js';
import { WeftError } from '../errors/index.js';
import { fingerprintOfNodeId, type NodeIdentity } from '../identity/index.js';
import type { InboundMessage, KnownPeer, PeerBook, TrustLevel } from '../mesh/index.js';
import { TRUST_LEVELS } from '../mesh/index.js';
import type { Store } from '../store/index.js';
import { type Clock, every, type Logger } from '../util/index.js';
import type { SecretPattern } from './secrets.js';
import { Observer, type ObserverInit, type ObserverStats, redactTerminalCommand } from './observer.js';
import { DEFAULT_MIN_CONTRIBUTORS, GRANTS, type PrivacyPolicy } from './policy.js';
import { PrivacyStore, type StoredSummary } from './privacy-store.js';
import { answerLocally, mergeAnswers, type NodeAnswer, rangeMs } from './query.js';
import { previousPeriod, periodAt, signContent, signSummary, summarize, type UnsignedSummary, verifyContent } from './summaries.js';

/** The wire protocol version of queries and answers (NodeHealthStatus.protocol_version). */
export const PRIVACY_PROTOCOL_VERSION = 1;
export const QUERY_MESSAGE = 'privacy.query';
export const ANSWER_MESSAGE = 'privacy.answer';

export interface PrivacyInit {
  policy: PrivacyPolicy;
  /** Shell observation; off when undefined. */
  observe?: ObserverInit;
  /** The user's own secret patterns (`observe.secret_patterns`), for every terminal.command emitted, observed or not. */
  secretPatterns?: readonly SecretPattern[];
  /** Summaries of finished periods are generated this often, ms (default 60 s). 0: never by itself. */
  summarizeEveryMs?: number;
  /** How long a query waits for answers by default, ms (default 3000). */
  queryTimeoutMs?: number;
  /** Queries one peer may send us per minute before they are refused (default 120). */
  queriesPerPeerPerMinute?: number;
  /**
   * Milliseconds a minute this node spends answering peers' queries, all peers together (default
   * 15,000); past it, queries are answered ERROR until the minute is over, so askers with query
   * rights cannot keep the daemon busy with year-long queries (each is synchronous SQL).
   */
  answerMsPerMinute?: number;
  /** Queries this node may have waiting for answers at once (default 32). */
  maxPendingQueries?: number;
  /** `mesh.peers` as written, for the policy's `static_peers`. */
  staticPeers?: readonly string[];
}

/** What the privacy layer needs of the node. */
export interface PrivacyNode {
  readonly ns: {
    readonly store: Store;
    readonly dedup: { has(key: string): boolean };
    readonly rejections: { add(r: { origin: string; ref: string; code: string; reason: string; field?: string; raw: string }): void };
  };
  idle(timeoutMs?: number): Promise<boolean>;
  readonly self: { computer: string; cluster?: string };
  emit(input: unknown): Promise<Envelope>;
  emitMany(inputs: readonly unknown[]): Promise<Envelope[]>;
  /** Where the secrets filter is set on every terminal.command. */
  readonly catalog: { setPayloadFilter(type: string, fn: (payload: Record<string, unknown>) => Record<string, unknown>): void };
}

/** What the privacy layer needs of the mesh (absent: queries reach no peer). */
export interface PrivacyMesh {
  sendMessage(computer: string, kind: string, data: unknown, opts?: { timeoutMs?: number }): Promise<void>;
  onMessage(kind: string, handler: (m: InboundMessage) => Promise<void> | void): () => void;
}

export interface PrivacyDeps {
  node: PrivacyNode;
  identity: () => NodeIdentity;
  peers: PeerBook;
  mesh: PrivacyMesh | undefined;
  audit: AuditLog;
  clock: Clock;
  logger: Logger;
}

/** A merged query result, as `weft query` prints it. */
export interface QueryResult {
  query_id: string;
  query_type: QueryType;
  time_range: { start: string; end: string };
  filters: QueryFilter[];
  /**
   * complete: every node asked answered (a policy refusal is an answer); partial: some did not
   * or failed (the data is still a result); failed: no node could answer with its counts or
   * "no data", this one included (nothing in `data` is a result).
   */
  status: 'complete' | 'partial' | 'failed';
  data: unknown;
  /**
   * Fingerprints of the nodes whose answers were merged into `data` (this node included). For
   * the aggregate types (tool_usage, safety_posture, activity_patterns) that is every node that
   * answered with its counts or with "no data", sorted: naming which of them had commands
   * matching the query would single them out (a filter such as `category = kubernetes` would
   * name the one node that uses it, whatever the k-threshold withholds). `with_data` says how many had counts.
   */
  contributors: string[];
  /** Nodes that answered but had nothing in the range: anomalies and node_health only (empty for the aggregate types, see `contributors`). */
  no_data: string[];
  /** How many of the contributors had counts (the rest answered "no data"). */
  with_data: number;
  /** Nodes whose policy refused us: ACCESS_DENIED. */
  denied: Array<{ computer: string; fingerprint: string; reason: string }>;
  /** Nodes that did not answer in time or could not be reached. */
  missing: Array<{ computer: string; fingerprint: string; reason: string }>;
  /** Nodes that answered with an error or NOT_SUPPORTED, or INVALID: a malformed answer, or data that does not fit the query (another type, another node's anomalies or health); not counted as answered. */
  failed: Array<{ computer: string; fingerprint: string; status: string; reason: string }>;
  asked: number;
  answered: number;
  /** Percent of the nodes asked (this one included) that answered. */
  coverage: number;
  /** The threshold applied: the largest of this node's `privacy.min_contributors` and every answering node's own. */
  min_contributors: number;
  /** Buckets withheld because fewer than min_contributors nodes made them. */
  suppressed: string[];
  elapsed_ms: number;
}

interface Pending {
  asked: Map<string, { computer: string; fingerprint: string }>;
  responses: Map<string, MeshResponse>;
  /** Asked nodes whose answer could not be read, with why: named under failed, not waited for. */
  unreadable: Map<string, string>;
  done: () => void;
}

/**
 * What is wrong with a node's answer data for a query, or undefined: data of another query type,
 * or anomalies or a health report that name another node than the one that signed the answer
 * (a node speaks for itself only; a peer must not pin signals on another).
 */
function misfit(type: QueryType, data: ResponseData, fingerprint: string): string | undefined {
  if (data.type !== type) return `answered ${data.type} to a ${type} query`;
  if (data.type === 'anomalies') {
    const other = data.value.find((a) => a.node_fingerprint !== fingerprint);
    if (other) return `reported an anomaly of another node (${other.node_fingerprint.slice(0, 64)})`;
  }
  if (data.type === 'node_health' && data.value.fingerprint !== fingerprint) return `reported the health of another node (${data.value.fingerprint.slice(0, 64)})`;
  return undefined;
}

const OP_SYMBOL: Record<QueryFilter['operator'], string> = { equals: '=', not_equals: '!=', contains: '~', greater_than: '>', less_than: '<', in_list: 'in' };

/** A query's filters as the audit log keeps them, "field op value" each (a value cut at 200 characters): who asked what, exactly. */
function filtersAsAsked(filters: readonly QueryFilter[]): string[] {
  return filters.map((f) => `${f.field.slice(0, 64)} ${OP_SYMBOL[f.operator] ?? f.operator} ${f.value.length > 200 ? `${f.value.slice(0, 200)}…` : f.value}`);
}

/** The privacy layer of one node; see the module comment. */
export class PrivacyService {
  readonly observer: Observer | undefined;
  readonly store: PrivacyStore;
  readonly policy: PrivacyPolicy;
  private readonly pending = new Map<string, Pending>();
  private readonly queryRate = new Map<string, { windowStart: number; n: number }>();
  /** Time spent answering peers' queries in the current minute (see PrivacyInit.answerMsPerMinute). */
  private answering = { windowStart: Number.NEGATIVE_INFINITY, ms: 0, warned: false };
  private readonly unsubs: Array<() => void> = [];
  private stopTimer: (() => void) | undefined;
  private startedAt = 0;
  private stopping: Promise<void> | undefined;
  readonly counters = { queriesSent: 0, queriesAnswered: 0, queriesDenied: 0, queriesDropped: 0, queriesBusy: 0, summariesGenerated: 0, summariesShared: 0, peerSummaries: 0, peerSummariesRefused: 0 };

  constructor(
    private readonly init: PrivacyInit,
    private readonly deps: PrivacyDeps,
  ) {
    this.policy = init.policy;
    this.store = new PrivacyStore(deps.node.ns.store);
    // Every terminal.command is redacted, not only the shell hooks' (a producer emitting one
    // through the API or the CLI stored its secrets as typed).
    const extra = init.secretPatterns ?? init.observe?.secretPatterns ?? [];
    deps.node.catalog.setPayloadFilter('terminal.command', (p) => redactTerminalCommand(p, extra));
    this.observer = init.observe
      ? new Observer(init.observe, {
          node: deps.node,
          clock: deps.clock,
          logger: deps.logger.child({ mod: 'observer' }),
          refuse: (list) => this.refuseRecords(list),
        })
      : undefined;
  }

  /** Applies the trust levels set at run time, starts observing, summarizing and answering. */
  async start(): Promise<void> {
    this.startedAt = this.deps.clock.now();
    for (const t of this.store.trustSettings()) this.policy.setRuntime(t.peer, t.level, t.nodeId ?? undefined);
    this.deps.peers.setTrustResolver((p) => this.policy.resolve(p, this.deps.node.self.cluster).level);
    this.unsubs.push(
      this.deps.peers.onRekeyed((p, oldNodeId) => {
        if (!this.policy.rekey(p.computer, oldNodeId, p.nodeId)) return;
        const level = this.policy.resolve(p, this.deps.node.self.cluster).level;
        void this.deps.node.ns.store
          .write(() => this.store.setTrust(p.computer, level, this.deps.clock.now(), 'key rotated', p.nodeId))
          .catch((err: Error) => this.deps.logger.warn({ peer: p.computer, err: err.message }, 'trust setting not moved to the new key'));
        this.deps.peers.retrust();
      }),
    );
    if (this.deps.mesh) {
      this.unsubs.push(this.deps.mesh.onMessage(QUERY_MESSAGE, (m) => this.onQuery(m)));
      this.unsubs.push(this.deps.mesh.onMessage(ANSWER_MESSAGE, (m) => this.onAnswer(m)));
    }
    await this.observer?.start();
    const every_ = this.init.summarizeEveryMs ?? 60_000;
    if (every_ > 0) this.stopTimer = every(this.deps.clock, every_, () => void this.summarizeDue().catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'summaries not generated')), { unref: true });
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stopTimer?.();
      for (const u of this.unsubs) u();
      for (const p of this.pending.values()) p.done();
      await this.observer?.stop();
    })();
    return this.stopping;
  }

  get observerStats(): ObserverStats | undefined {
    return this.observer?.stats;
  }

  /** Whether the mesh lets a peer (by computer name) have what: its level, the rule that set it, and the grants. */
  trustOf(p: KnownPeer): { computer: string; fingerprint: string; level: TrustLevel; rule: string; receivesSummaries: boolean; mayQuery: boolean } {
    const r = this.policy.resolve(p, this.deps.node.self.cluster);
    return {
      computer: p.computer,
      fingerprint: fingerprintOfNodeId(p.nodeId) ?? '?',
      level: p.trustLevel,
      rule: r.rule,
      receivesSummaries: this.policy.pushesSummariesTo(p.trustLevel),
      mayQuery: GRANTS[p.trustLevel].mayQuery,
    };
  }

  trustList(): Array<ReturnType<PrivacyService['trustOf']>> {
    return this.deps.peers.getAllPeers().map((p) => this.trustOf(p));
  }

  /**
   * Sets a peer's trust level at run time (stored; it outlives restarts and wins over the
   * config), or with `undefined` goes back to what the config says. Audited as TrustChanged.
   */
  async setTrust(computer: string, level: TrustLevel | undefined, reason?: string): Promise<{ computer: string; from: TrustLevel; to: TrustLevel; rule: string; unchanged?: true }> {
    if (level !== undefined && !TRUST_LEVELS.includes(level)) throw new WeftError('WEFT_VALIDATION', `trust level '${level}' is not one of ${TRUST_LEVELS.join(', ')}`);
    const peer = this.findPeer(computer);
    computer = peer.computer;
    const from = peer.trustLevel;
    // What is asked is already so: nothing to store, nothing for the audit log.
    if (this.policy.runtimeLevel(computer) === level) {
      return { computer, from, to: from, rule: this.policy.resolve(peer, this.deps.node.self.cluster).rule, unchanged: true };
    }
    const now = this.deps.clock.now();
    this.policy.setRuntime(computer, level, peer.nodeId);
    this.deps.peers.retrust();
    const to = peer.trustLevel;
    const rule = this.policy.resolve(peer, this.deps.node.self.cluster).rule;
    await this.deps.node.ns.store.write(() => {
      this.store.setTrust(computer, level, now, reason, peer.nodeId);
      this.deps.audit.recordIn('trust.changed', computer, { from, to, rule, ...(reason ? { reason } : {}) }, true);
    });
    return { computer, from, to, rule };
  }

  /**
   * A known peer by what `weft trust list` shows of it: its name (exactly, else ignoring case when
   * that names one peer), its fingerprint, or its node id.
   */
  private findPeer(ref: string): KnownPeer {
    const all = this.deps.peers.getAllPeers();
    const exact = this.deps.peers.byName(ref);
    if (exact) return exact;
    const lower = ref.trim().toLowerCase();
    const byKey = all.find((p) => p.nodeId === ref.trim() || fingerprintOfNodeId(p.nodeId) === lower);
    if (byKey) return byKey;
    const byCase = all.filter((p) => p.computer.toLowerCase() === lower);
    if (byCase.length === 1) return byCase[0] as KnownPeer;
    throw new WeftError(
      'WEFT_NOT_FOUND',
      byCase.length > 1
        ? `'${ref}' names ${byCase.map((p) => p.computer).join(' and ')}: give the exact name or the fingerprint ('weft trust list')`
        : `no known peer '${ref}' by name, fingerprint or node id: 'weft trust list' shows the known ones (a peer is known once it is in mesh.peers or was discovered)`,
    );
  }

  describePolicy(): SharingPolicy {
    return this.policy.describe(this.init.staticPeers ?? []);
  }

  /**
   * What this node would share for the period containing `at` (default: the one in progress):
   * the summary exactly as it would be signed and sent, and to whom.
   */
  preview(granularity: Granularity, at?: number): { summary: UnsignedSummary; signer: string; recipients: string[]; sharing: boolean; withheld: string[]; note: string } {
    const now = this.deps.clock.now();
    const p = periodAt(granularity, at ?? now);
    const summary = this.summarizePeriod(granularity, p.start, p.end, now);
    const recipients = this.deps.peers.getAllPeers().filter((x) => x.wire !== 'teleclaude' && this.policy.pushesSummariesTo(x.trustLevel)).map((x) => x.computer);
    const withheld = [...new Set([...this.policy.denied])].sort();
    const sharing = this.policy.shareSummaries && this.policy.maxLevel === 'summarized';
    const note = !sharing
      ? this.policy.maxLevel === 'aggregated'
        ? 'privacy.max_level is aggregated: no summary leaves this node; queries get aggregates only'
        : 'privacy.share_summaries is off: nothing is pushed; set it to true to share summaries like this one'
      : recipients.length === 0
        ? 'sharing is on, but no peer is trusted to receive summaries (share_to or peer)'
        : `shared at the end of each period with ${recipients.join(', ')}`;
    return { summary, signer: this.deps.identity().fingerprint, recipients: sharing ? recipients : [], sharing, withheld, note };
  }

  private summarizePeriod(granularity: Granularity, start: number, end: number, now: number): UnsignedSummary {
    return summarize(this.deps.node.ns.store.reader, {
      nodeId: this.deps.identity().nodeId,
      granularity,
      start,
      end,
      now,
      shares: (c) => this.policy.shares(c),
    });
  }

  /**
   * For each granularity's last finished period: signs and stores its summary if there is none
   * yet or the one stored was made before the period ended (`weft summaries generate` during
   * it), and shares it when the policy says so. Also shares, once, a summary of the last week
   * that was stored but never sent (a crash between the two, or sharing turned on since).
   */
  async summarizeDue(now = this.deps.clock.now()): Promise<StoredSummary[]> {
    const made: StoredSummary[] = [];
    for (const g of GRANULARITIES) {
      const p = previousPeriod(g, now);
      const existing = this.store.summary(g, new Date(p.start).toISOString());
      if (existing && Date.parse(existing.summary.generated_at) >= p.end) continue;
      const s = this.summarizePeriod(g, p.start, p.end, now);
      if (s.total_commands === 0 && !existing) continue;
      const stored = await this.storeSummary(signSummary(s, this.deps.identity(), now), now);
      if (stored) made.push(stored);
    }
    for (const old of this.store.unshared(now - 7 * 86_400_000)) {
      const end = Date.parse(old.periodEnd);
      if (end > now) continue;
      // Made while its period ran (`weft summaries generate`) and never completed: complete it first.
      if (Date.parse(old.summary.generated_at) < end) {
        const stored = await this.storeSummary(signSummary(this.summarizePeriod(old.granularity, Date.parse(old.periodStart), end, now), this.deps.identity(), now), now);
        if (stored) made.push(stored);
      } else await this.share(old.summary, now);
    }
    return made;
  }

  /**
   * Signs and stores the summary of the period containing `at`, now (`weft summaries generate`),
   * and shares it when the policy says so. A period that has not started is refused. A period
   * still running is summarized as it stands and kept on this node only: it is not final, so it
   * is not shared; it is made again, complete, and shared once it has ended. A finished period
   * without commands is not stored (undefined), as the timer would not store it.
   */
  async generate(granularity: Granularity, at: number): Promise<StoredSummary | undefined> {
    const now = this.deps.clock.now();
    const p = periodAt(granularity, at);
    const span = `${granularity} period ${new Date(p.start).toISOString()} .. ${new Date(p.end).toISOString()}`;
    if (p.start > now) {
      throw new WeftError('WEFT_VALIDATION', `the ${span} has not started yet: a summary counts commands already typed (give --at a time up to now; 'weft summaries show' previews the period in progress)`);
    }
    const existing = this.store.summary(granularity, new Date(p.start).toISOString());
    if (existing && Date.parse(existing.summary.generated_at) >= p.end) return existing;
    const s = this.summarizePeriod(granularity, p.start, p.end, now);
    if (s.total_commands === 0 && !existing) return undefined;
    return this.storeSummary(signSummary(s, this.deps.identity(), now), now);
  }

  /** Stores a signed summary; shares it only if its period had ended when it was made (a summary of a running period is not final). */
  private async storeSummary(s: NodeSummary, now: number): Promise<StoredSummary | undefined> {
    await this.deps.node.ns.store.write(() => {
      this.store.putSummary(s, now);
      this.deps.audit.recordIn('summary.generated', null, { id: s.id, granularity: s.period.granularity, start: s.period.start, total_commands: s.total_commands }, true);
    });
    this.counters.summariesGenerated++;
    if (Date.parse(s.period.end) <= Date.parse(s.generated_at)) await this.share(s, now);
    return this.store.summary(s.period.granularity, s.period.start);
  }

  /** Sends a stored summary to the peers the policy pushes summaries to, if any, and marks it shared. */
  private async share(s: NodeSummary, now: number): Promise<void> {
    const recipients = this.deps.peers.getAllPeers().filter((x) => x.wire !== 'teleclaude' && this.policy.pushesSummariesTo(x.trustLevel));
    if (recipients.length === 0) return;
    // The publisher sends it to exactly these peers (its egress check asks the same policy).
    await this.deps.node.emit({ event: 'privacy.summary.shared', payload: s, visibility: 'public' });
    await this.deps.node.ns.store.write(() => {
      this.store.markSummaryShared(s.id, now);
      this.deps.audit.recordIn('summary.shared', null, { id: s.id, granularity: s.period.granularity, start: s.period.start, recipients: recipients.map((r) => r.computer) }, true);
    });
    this.counters.summariesShared++;
  }

  /** The publisher's egress rule for privacy data: a summary goes only where the policy pushes summaries. */
  allowsEgress(e: Envelope, peer: KnownPeer): boolean {
    if (peer.trustLevel === 'untrusted') return false;
    if (e.event === 'privacy.summary.shared') return this.policy.pushesSummariesTo(peer.trustLevel);
    return true;
  }

  /** A peer's summary arrived and was kept. */
  onPeerSummary(): void {
    this.counters.peerSummaries++;
  }

  onRefusedSummary(peer: string, reason: string): void {
    this.counters.peerSummariesRefused++;
    this.deps.logger.warn({ peer, reason }, 'a summary from a peer was refused');
    void this.deps.audit.record('policy.violation', peer, { what: 'summary', reason }, false).catch(() => undefined);
  }

  /**
   * Spool records that could not be read: the first 100 of a pass are stored as refusals in one
   * write, and one log line says how many there were (a file of garbage costs one write, not one
   * per record).
   */
  private refuseRecords(list: ReadonlyArray<{ file: string; offset: number; reason: string }>): void {
    const [first] = list;
    if (!first) return;
    this.deps.logger.warn({ file: first.file, refused: list.length, first: first.reason }, 'spool records refused');
    const kept = list.slice(0, 100);
    void this.deps.node.ns.store
      .write(() => {
        for (const r of kept) this.deps.node.ns.rejections.add({ origin: 'observe', ref: `${r.file}@${r.offset}`, code: 'SPOOL_RECORD_INVALID', reason: r.reason, raw: '' });
      })
      .catch(() => undefined);
  }


  /**
   * Runs an aggregate query: this node's own answer, plus one signed query to every peer,
   * answers collected until all came or `timeoutMs` passed, merged with the k-threshold.
   */
  async query(o: { type: QueryType; range: { start: string; end: string }; filters?: QueryFilter[]; timeoutMs?: number }): Promise<QueryResult> {
    const t0 = performance.now();
    const range = rangeMs(o.range, o.type);
    const filters = o.filters ?? [];
    if (this.pending.size >= (this.init.maxPendingQueries ?? 32)) throw new WeftError('WEFT_LIMIT', `${this.pending.size} queries are waiting for answers already; try again shortly`);
    const identity = this.deps.identity();
    const now = this.deps.clock.now();
    const timeoutMs = Math.max(1, Math.min(o.timeoutMs ?? this.init.queryTimeoutMs ?? 3000, 600_000));
    const content: Omit<MeshQuery, 'signature'> = {
      query_id: randomUUID(),
      requester: identity.nodeId,
      query_type: o.type,
      time_range: { start: new Date(range.start).toISOString(), end: new Date(range.end).toISOString() },
      filters,
      deadline_ms: timeoutMs,
    };
    const q: MeshQuery = { ...content, signature: signContent(content, identity, now) };
    // An untrusted peer is not asked: it gets nothing from this node, not even our questions.
    const targets = this.deps.mesh ? this.deps.peers.getAllPeers().filter((p) => p.wire !== 'teleclaude' && p.trustLevel !== 'untrusted') : [];
    const deadline = performance.now() + timeoutMs;
    const missing: QueryResult['missing'] = [];
    const pending: Pending = { asked: new Map(), responses: new Map(), unreadable: new Map(), done: () => undefined };
    const settled = new Promise<void>((resolve) => {
      pending.done = resolve;
    });
    this.pending.set(q.query_id, pending);
    const mesh = this.deps.mesh;
    try {
      await Promise.all(
        targets.map(async (p) => {
          const who = { computer: p.computer, fingerprint: fingerprintOfNodeId(p.nodeId) ?? '?' };
          pending.asked.set(p.nodeId, who);
          try {
            await (mesh as PrivacyMesh).sendMessage(p.computer, QUERY_MESSAGE, q, { timeoutMs });
          } catch (err) {
            pending.asked.delete(p.nodeId);
            missing.push({ ...who, reason: `not reachable: ${(err as Error).message.slice(0, 200)}` });
          }
        }),
      );
      this.counters.queriesSent++;
      void this.deps.audit.record('query.sent', null, { query_id: q.query_id, query_type: q.query_type, time_range: q.time_range, filters: filtersAsAsked(q.filters), asked: [...pending.asked.values()].map((a) => a.computer) }, true).catch(() => undefined);
      const own = this.answer(q, identity);
      const left = deadline - performance.now();
      if (pending.asked.size > pending.responses.size + pending.unreadable.size && left > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([settled, new Promise<void>((r) => (timer = setTimeout(r, left)))]);
        clearTimeout(timer);
      }
      return this.assemble(q, own, pending, missing, 1 + targets.length, identity, performance.now() - t0);
    } finally {
      this.pending.delete(q.query_id);
    }
  }

  private assemble(q: MeshQuery, own: MeshResponse, pending: Pending, missing: QueryResult['missing'], asked: number, identity: NodeIdentity, elapsed: number): QueryResult {
    const answers: NodeAnswer[] = [];
    const noData: string[] = [];
    const denied: QueryResult['denied'] = [];
    const failed: QueryResult['failed'] = [];
    // The largest min_contributors of the asker and of every node whose answer is merged: the
    // asker's config cannot lower the threshold a node's owner set for that node's counts.
    let k = this.policy.minContributors;
    const take = (r: MeshResponse, who: { computer: string; fingerprint: string }) => {
      const wrong = r.status === 'SUCCESS' && r.data ? misfit(q.query_type, r.data, who.fingerprint) : undefined;
      if (!wrong && (r.status === 'SUCCESS' || r.status === 'NO_DATA')) k = Math.max(k, r.min_contributors ?? DEFAULT_MIN_CONTRIBUTORS);
      if (wrong) failed.push({ ...who, status: 'INVALID', reason: `${wrong}: its answer was left out` });
      else if (r.status === 'SUCCESS' && r.data) answers.push({ fingerprint: who.fingerprint, data: r.data });
      else if (r.status === 'SUCCESS' || r.status === 'NO_DATA') noData.push(who.fingerprint);
      else if (r.status === 'ACCESS_DENIED') denied.push({ ...who, reason: r.reason ?? 'refused by its sharing policy' });
      else failed.push({ ...who, status: r.status, reason: r.reason ?? '' });
    };
    take(own, { computer: this.deps.node.self.computer, fingerprint: identity.fingerprint });
    for (const [nodeId, who] of pending.asked) {
      const r = pending.responses.get(nodeId);
      const unreadable = pending.unreadable.get(nodeId);
      if (r) take(r, who);
      else if (unreadable) failed.push({ ...who, status: 'INVALID', reason: unreadable });
      else missing.push({ ...who, reason: `no answer within ${q.deadline_ms} ms` });
    }
    const merged = mergeAnswers(q.query_type, answers, k, q.time_range);
    // A node that failed (ERROR, NOT_SUPPORTED) did not answer the question; one that refused did.
    const answered = answers.length + noData.length + denied.length;
    const status = answers.length + noData.length === 0 ? 'failed' : missing.length > 0 || failed.length > 0 ? 'partial' : 'complete';
    // The k-threshold's types never say which node had counts and which had none (see QueryResult.contributors).
    const counted = q.query_type === 'tool_usage' || q.query_type === 'safety_posture' || q.query_type === 'activity_patterns';
    return {
      query_id: q.query_id,
      query_type: q.query_type,
      time_range: q.time_range,
      filters: q.filters,
      status,
      data: merged.data,
      contributors: counted ? [...answers.map((a) => a.fingerprint), ...noData].sort() : answers.map((a) => a.fingerprint),
      no_data: counted ? [] : noData,
      with_data: answers.length,
      denied,
      missing,
      failed,
      asked,
      answered,
      coverage: Math.round((answered / asked) * 1000) / 10,
      min_contributors: k,
      suppressed: merged.suppressed,
      elapsed_ms: Math.round(elapsed * 10) / 10,
    };
  }

  /** This node's signed answer to a query it is allowed to answer. */
  private answer(q: MeshQuery, identity: NodeIdentity): MeshResponse {
    const now = this.deps.clock.now();
    let status: MeshResponse['status'] = 'SUCCESS';
    let data: ResponseData | null = null;
    let reason: string | undefined;
    try {
      data = answerLocally(
        { type: q.query_type, range: rangeMs(q.time_range, q.query_type), filters: q.filters },
        {
          db: this.deps.node.ns.store.reader,
          fingerprint: identity.fingerprint,
          now,
          shares: (c) => this.policy.shares(c),
          health: { fingerprint: identity.fingerprint, startedAt: this.startedAt, protocolVersion: PRIVACY_PROTOCOL_VERSION },
        },
      );
      if (data === null) status = 'NO_DATA';
    } catch (err) {
      status = err instanceof WeftError && err.code === 'WEFT_VALIDATION' ? 'NOT_SUPPORTED' : 'ERROR';
      reason = (err as Error).message.slice(0, 300);
      if (status === 'ERROR') this.deps.logger.warn({ err: (err as Error).message }, 'answering a query failed');
    }
    return this.signed(q.query_id, status, data, reason, identity, now);
  }

  private signed(queryId: string, status: MeshResponse['status'], data: ResponseData | null, reason: string | undefined, identity: NodeIdentity, now: number): MeshResponse {
    const content: Omit<MeshResponse, 'signature'> = {
      query_id: queryId,
      responder: identity.nodeId,
      status,
      data,
      contributors: status === 'SUCCESS' && data ? [identity.fingerprint] : [],
      timestamp: new Date(now).toISOString(),
      ...(reason ? { reason } : {}),
      // Only when it is not the default: an answer with the default stays readable by nodes that predate the field.
      ...(this.policy.minContributors !== DEFAULT_MIN_CONTRIBUTORS ? { min_contributors: this.policy.minContributors } : {}),
    };
    return { ...content, signature: signContent(content, identity, now) };
  }

  /** A peer's query: checked, audited, answered per policy (ACCESS_DENIED when its trust does not allow it). */
  private async onQuery(m: InboundMessage): Promise<void> {
    const identity = this.deps.identity();
    const peer = this.deps.peers.get(m.nodeId);
    const reply = (r: MeshResponse) =>
      (this.deps.mesh as PrivacyMesh)
        .sendMessage(m.computer, ANSWER_MESSAGE, r, { timeoutMs: 5000 })
        .catch((err: Error) => this.deps.logger.info({ peer: m.computer, err: err.message }, 'query answer not sent'));
    // First, before anything is written: a peer flooding us costs one audit entry a minute, not one per query.
    const rate = this.takeQueryToken(m.computer);
    if (rate !== 'ok') {
      this.counters.queriesDropped++;
      if (rate === 'first-over') {
        await this.deps.audit.record('policy.violation', m.computer, { what: 'query', reason: `more than ${this.init.queriesPerPeerPerMinute ?? 120} queries a minute: the rest of this minute's are dropped unanswered` }, false);
      }
      return;
    }
    if (!meshQueryValidator.check(m.data)) {
      const e = meshQueryValidator.firstError(m.data);
      await this.deps.audit.record('policy.violation', m.computer, { what: 'query', reason: `malformed query: field '${e?.path}' ${e?.message}` }, false);
      return;
    }
    const q = m.data;
    const { signature, ...content } = q;
    const refuse = async (status: MeshResponse['status'], reason: string, violation: boolean) => {
      const now = this.deps.clock.now();
      const audited = Promise.all([
        received,
        violation ? this.deps.audit.record('policy.violation', m.computer, { what: 'query', query_id: q.query_id, query_type: q.query_type, reason }, false) : undefined,
        this.deps.audit.record('response.sent', m.computer, { query_id: q.query_id, status, reason }, false),
      ]);
      if (status === 'ACCESS_DENIED') this.counters.queriesDenied++;
      await reply(this.signed(q.query_id, status, null, reason, identity, now));
      await audited;
    };
    const received = this.deps.audit.record('query.received', m.computer, { query_id: q.query_id, query_type: q.query_type, time_range: q.time_range, filters: filtersAsAsked(q.filters), trust: peer?.trustLevel ?? 'unknown' }, true);
    if (q.requester !== m.nodeId || !verifyContent(content, signature, q.requester)) {
      await refuse('ACCESS_DENIED', 'the query is not signed by the node that sent it', true);
      return;
    }
    if (!peer || !GRANTS[peer.trustLevel].mayQuery) {
      await refuse('ACCESS_DENIED', `trust level ${peer?.trustLevel ?? 'unknown'} may not query this node`, true);
      return;
    }
    const age = this.deps.clock.now() - Date.parse(signature.timestamp);
    if (q.deadline_ms !== undefined && age > q.deadline_ms + 30_000) {
      // Not worked on, but said: if the asker still waits, the two clocks are apart, and it should know why.
      await refuse('ERROR', `the query was signed ${Math.round(age / 1000)} s ago by this node's clock, past its ${q.deadline_ms} ms deadline: if it was sent just now, the two computers' clocks are that far apart`, false);
      return;
    }
    const now = this.deps.clock.now();
    const budget = this.init.answerMsPerMinute ?? 15_000;
    if (now - this.answering.windowStart >= 60_000) this.answering = { windowStart: now, ms: 0, warned: false };
    if (this.answering.ms >= budget) {
      const wait = Math.ceil((this.answering.windowStart + 60_000 - now) / 1000);
      if (!this.answering.warned) {
        this.answering.warned = true;
        this.deps.logger.warn({ peer: m.computer, budget_ms: budget }, 'answering queries took this minute\'s budget: the rest are answered busy');
      }
      this.counters.queriesBusy++;
      await refuse('ERROR', `busy: this node spent its ${budget} ms a minute answering queries; ask again in ${wait} s`, false);
      return;
    }
    const t0 = performance.now();
    const r = this.answer(q, identity);
    this.answering.ms += performance.now() - t0;
    // Recorded while the answer travels: the decision is made, and the audit's commit is not on the requester's clock.
    const audited = Promise.all([received, this.deps.audit.record('response.sent', m.computer, { query_id: q.query_id, status: r.status, contributors: r.contributors.length }, true)]);
    this.counters.queriesAnswered++;
    await reply(r);
    await audited;
  }

  /** A fixed one-minute window per peer: 'first-over' once when it is exceeded, 'over' after. */
  private takeQueryToken(computer: string): 'ok' | 'first-over' | 'over' {
    const now = this.deps.clock.now();
    const limit = this.init.queriesPerPeerPerMinute ?? 120;
    let s = this.queryRate.get(computer);
    if (!s || now - s.windowStart >= 60_000) {
      if (this.queryRate.size >= 10_000) this.queryRate.clear();
      s = { windowStart: now, n: 0 };
      this.queryRate.set(computer, s);
    }
    s.n++;
    return s.n <= limit ? 'ok' : s.n === limit + 1 ? 'first-over' : 'over';
  }

  /** An answer to one of our queries: kept if it is well formed, signed by its sender, and expected. */
  private async onAnswer(m: InboundMessage): Promise<void> {
    if (!meshResponseValidator.check(m.data)) {
      this.deps.logger.warn({ peer: m.computer }, 'a malformed query answer was dropped');
      // From a node we asked (the link says who sent it): named as failed at once, not waited for as missing.
      const id = (m.data as { query_id?: unknown } | null)?.query_id;
      const p = typeof id === 'string' ? this.pending.get(id) : undefined;
      if (p?.asked.has(m.nodeId) && !p.responses.has(m.nodeId) && !p.unreadable.has(m.nodeId)) {
        const e = meshResponseValidator.firstError(m.data);
        p.unreadable.set(m.nodeId, `malformed answer: field '${e?.path ?? ''}' ${e?.message ?? ''}`.slice(0, 300));
        if (p.responses.size + p.unreadable.size === p.asked.size) p.done();
      }
      return;
    }
    const r = m.data;
    const p = this.pending.get(r.query_id);
    if (!p?.asked.has(m.nodeId) || p.responses.has(m.nodeId) || p.unreadable.has(m.nodeId)) return;
    const { signature, ...content } = r;
    if (r.responder !== m.nodeId || !verifyContent(content, signature, m.nodeId)) {
      this.deps.logger.warn({ peer: m.computer }, 'a query answer not signed by its sender was dropped');
      return;
    }
    p.responses.set(m.nodeId, r);
    if (r.status === 'ACCESS_DENIED') {
      void this.deps.audit.record('policy.violation', m.computer, { what: 'our query', query_id: r.query_id, status: r.status, reason: r.reason ?? '' }, false).catch(() => undefined);
    }
    if (p.responses.size + p.unreadable.size === p.asked.size) p.done();
  }
}
