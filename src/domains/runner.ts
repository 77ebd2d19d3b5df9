/**
 * The domain and personal pipelines at work. A router stage at the end of the system pipeline
 * writes each event a domain (or a member) subscribes to into the inbox, in the batch's own
 * transaction; one lane per pipeline reads its events from there, after the commit, and runs
 * them through its cartridges level by level — the cartridges of one level at once, each level
 * in its own sandbox processes — so a slow or failing domain never delays another, nor the
 * system pipeline. What the cartridges emit enters the node like any event, at the autonomy
 * level the matrix resolves. A lane's position commits after its outputs: a crash replays the
 * batch, and the outputs' idempotency keys drop the repeats.
 */
import { DOMAIN_EVENTS } from '../catalog/index.js';
import type { Catalog } from '../catalog/index.js';
import type { EmitInput, Envelope } from '../envelope/index.js';
import type { WeftError } from '../errors/index.js';
import { type Cartridge, type CartridgeContext, type CommittedBatch, LOGGED_FACT, RefusalNotices } from '../pipeline/index.js';
import {
  type AutonomyLevel,
  type CartridgeManifest,
  createSandbox,
  envelopeCheck,
  SANDBOX_EVENT_ERRORS as E,
  type Sandbox,
  type SandboxInit,
  type SandboxStatus,
} from '../sovereignty/index.js';
import type { Statement } from 'better-sqlite3';
import type { NodeStore } from '../store/index.js';
import { type Clock, type Logger, Mutex, silentLogger, systemClock } from '../util/index.js';
import { loadPipelineSet, type PipelineDef, type PipelineSet, type PipelineSetDeps } from './loader.js';
import { patternMatcher } from './scope.js';
import { PipelineValidationError } from './validate.js';

/** Pipeline stage name of the router (the last system stage). */
export const DOMAIN_ROUTER_STAGE = 'domain-router';

/** Source of what a domain cartridge emits: `domain:marketing/digest`, `domain:personal:alice/ping`. */
export function domainSource(scope: string, cartridge: string): string {
  return `domain:${scope}/${cartridge}`;
}

/** The scope an event came from, when a domain or personal cartridge emitted it. */
function scopeOfSource(source: string): string | undefined {
  if (!source.startsWith('domain:')) return undefined;
  const slash = source.lastIndexOf('/');
  return slash > 7 ? source.slice(7, slash) : undefined;
}

/** Per-event failures that are not the cartridge's doing: no dead letter. */
const PASSIVE: ReadonlySet<string> = new Set([E.STOPPED, E.SUSPENDED, E.NOT_LOADED, E.OVERLOADED]);

/** User options of the runner. */
export interface DomainRunnerInit {
  dataDir: string;
  /** `domains.inbox_limit`: events waiting for one lane before new ones skip that lane. Default 100,000. */
  inboxLimit?: number;
  /** `domains.batch`: events per sandbox round trip. Default 64. */
  batch?: number;
  /** Domain outputs causing domain outputs at most this deep (two domains feeding each other stop there). Default 8. */
  maxChain?: number;
  /**
   * Domain outputs one event may cause in all, through every domain and every depth (two
   * domains that each emit two outputs per event would otherwise make 2^8 of them). Default 256.
   */
  maxOutputsPerEvent?: number;
  /** Outputs refused by these limits are raised once per this window per lane, with their count (ms). Default 60 s. */
  limitNoticeMs?: number;
  /** Sandbox limits; `timeoutMs` comes from each pipeline's `timeout_ms`. */
  sandbox?: Omit<SandboxInit, 'timeoutMs' | 'validateEvent'>;
}

/** What the runner needs of the node. */
export interface DomainRunnerNode {
  readonly ns: NodeStore;
  readonly catalog: Catalog;
  emitMany(inputs: readonly unknown[]): Promise<Envelope[]>;
  onCommitted(fn: (batch: CommittedBatch) => void): () => void;
}

/** The autonomy matrix as the runner uses it. */
export interface AutonomyResolver {
  resolve(query: { domain: string; cartridge: string; eventType: string }): { level: AutonomyLevel; reason: string };
  /** A domain's `[autonomy]` table from its domain.toml. */
  setFileRules?(domain: string, overrides: { level?: AutonomyLevel; cartridges?: Record<string, AutonomyLevel>; events?: Record<string, AutonomyLevel> }): void;
  clearFileRules?(domain: string): void;
}

/** Collaborators of the runner. */
export interface DomainRunnerDeps {
  node: DomainRunnerNode;
  logger: Logger;
  clock: Clock;
  autonomy: AutonomyResolver;
  /** A member's roles by domain, or undefined when there is no such member. */
  rolesOf: PipelineSetDeps['rolesOf'];
}

/** One lane as `weft domains status` shows it. */
export interface LaneStatus {
  readonly scope: string;
  readonly kind: 'domain' | 'personal';
  readonly cartridges: readonly string[];
  readonly levels: readonly (readonly string[])[];
  /** Inbox position of the last event it finished. */
  readonly position: number;
  /** Events routed to it and not finished yet. */
  readonly backlog: number;
  readonly processed: number;
  readonly failures: number;
  readonly emitted: number;
  readonly held: number;
  readonly lastError: string | null;
  readonly sandboxes: readonly SandboxStatus[];
  /** Its cartridges suspended after repeated failures, until `weft domains reload`. */
  readonly suspended: readonly SuspendedCartridge[];
}

/** A cartridge of a lane suspended after repeated failures. */
export interface SuspendedCartridge {
  readonly cartridge: string;
  /** ISO 8601. */
  readonly since: string;
  /** The last error before it was suspended. */
  readonly reason: string;
  /** The cartridges that depend on it, directly or through others: they cannot run either. */
  readonly blocks: readonly string[];
  /** Events it and they skipped since. */
  readonly skipped: number;
}

interface Row {
  seq: number;
  /** Null only if the logged event it points to is gone (never deleted today): the row is skipped. */
  body: string | null;
}

interface Output {
  cartridge: string;
  source: Envelope;
  type: string;
  payload: Record<string, unknown>;
  index: number;
}

interface Failure {
  cartridge: string;
  event: Envelope;
  error: string;
}

/** Creates the runner; `start()` loads and validates every pipeline (and throws when one does not). */
export function createDomainRunner(init: DomainRunnerInit, deps: DomainRunnerDeps): DomainRunner {
  return new DomainRunner(init, deps);
}

/** The domain and personal pipelines of one node. */
export class DomainRunner {
  /** The router: the last stage of the system pipeline. */
  readonly stage: Cartridge;
  private lanes = new Map<string, Lane>();
  private set: PipelineSet = { domains: [], personal: [], refused: [] };
  /**
   * Refusals standing now, by scope, with the time each began: the same refusal at the next
   * reload is the same `domains.pipeline.refused` (its `since`), one that comes back after it
   * was fixed is a new one.
   */
  private readonly standing = new Map<string, { code: string; reason: string; since: string }>();
  private readonly limit: number;
  private readonly batch: number;
  private readonly maxChain: number;
  private readonly lock = new Mutex();
  private readonly insert;
  private readonly count;
  private readonly maxSeq;
  private readonly topSeq;
  private inboxCount = 0;
  private routedSinceWake = false;
  private gcTicks = 0;
  private unsubscribe: (() => void) | undefined;
  private running = false;
  private gcTimer: NodeJS.Timeout | undefined;
  private readStmt: Statement<[number, number, string, number]> | undefined;
  private backlogStmt: Statement<[number, string]> | undefined;
  /** Every enabled domain's subscription test, for the router. */
  private routes: Array<{ name: string; subscribed: (event: Envelope) => boolean }> = [];
  /** The router's answer (the lanes an event goes to) by source scope, envelope domain and type; cleared when pipelines or roles change. */
  private readonly targetsOf = new Map<string, readonly Lane[]>();
  /** Members' roles, read once per change of roles (`rolesChanged`). */
  private readonly roles = new Map<string, Readonly<Record<string, string>> | undefined>();
  /** How many domain outputs deep an event is, and the event its chain started from (bounded, oldest forgotten first). */
  readonly chain = new Map<string, { depth: number; root: string }>();
  /** Domain outputs caused so far per root event (bounded, oldest forgotten first). */
  private readonly outputsOf = new Map<string, number>();
  private readonly maxOutputs: number;
  /** Outputs refused by the depth and per-event limits: one `system.cartridge.failed` per lane per window, with the count. */
  private readonly limitNotices: RefusalNotices;
  /** The latest refusal per lane: what a folded notice names. */
  private readonly lastLimit = new Map<string, Record<string, string>>();

  constructor(
    private readonly init: DomainRunnerInit,
    private readonly deps: DomainRunnerDeps,
  ) {
    this.limit = Math.max(1, init.inboxLimit ?? 100_000);
    this.batch = Math.max(1, init.batch ?? 64);
    this.maxChain = Math.max(1, init.maxChain ?? 8);
    this.maxOutputs = Math.max(1, init.maxOutputsPerEvent ?? 256);
    this.limitNotices = new RefusalNotices(
      { windowMs: init.limitNoticeMs ?? 60_000 },
      { clock: deps.clock, logger: deps.logger, raise: (scope, detail, count) => this.raiseLimit(scope, detail, count) },
    );
    const db = deps.node.ns.store.db;
    this.insert = db.prepare('INSERT INTO domain_inbox (event_id, event_type, targets, body, created_at) VALUES (?, ?, ?, ?, ?)');
    this.count = db.prepare('SELECT COUNT(*) FROM domain_inbox').pluck();
    this.maxSeq = db.prepare('SELECT COALESCE(MAX(seq), 0) FROM domain_inbox').pluck();
    // What readers can see: committed rows only.
    this.topSeq = deps.node.ns.store.reader.prepare('SELECT COALESCE(MAX(seq), 0) FROM domain_inbox').pluck();
    this.stage = { name: DOMAIN_ROUTER_STAGE, process: (event, ctx) => this.route(event, ctx) };
  }

  private async locked<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.lock.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /** The loaded pipelines. */
  get pipelines(): PipelineSet {
    return this.set;
  }

  /**
   * Loads, validates and starts every pipeline.
   * @throws {PipelineValidationError} naming the pipeline and the cartridges: nothing runs then.
   */
  async start(): Promise<void> {
    await this.locked(async () => {
      const set = await this.load();
      this.inboxCount = this.count.get() as number;
      try {
        await this.apply(set);
      } catch (err) {
        await Promise.all([...this.lanes.values()].map((l) => l.stop()));
        this.lanes.clear();
        throw err;
      }
      this.running = true;
      this.unsubscribe = this.deps.node.onCommitted(() => {
        if (!this.routedSinceWake) return;
        this.routedSinceWake = false;
        for (const lane of this.lanes.values()) lane.wake();
      });
      this.gcTimer = setInterval(() => void this.gc(), 1000);
      this.gcTimer.unref();
    });
  }

  /**
   * Reads the folders again and swaps in what changed. A change that does not validate is
   * refused (`domains.pipeline.refused`) and the running pipelines stay as they are.
   * @throws {PipelineValidationError} for the refused change.
   */
  async reload(): Promise<PipelineSet> {
    return this.locked(async () => {
      let set: PipelineSet;
      try {
        set = await this.load();
      } catch (err) {
        const e = err as Error;
        const v = err instanceof PipelineValidationError ? err : undefined;
        const refusal = { scope: v?.scope ?? 'domains', code: (e as WeftError).code ?? 'WEFT_PIPELINE', reason: e.message.slice(0, 4000) };
        await this.deps.node
          .emitMany([
            {
              event: DOMAIN_EVENTS.pipelineRefused,
              source: DOMAIN_ROUTER_STAGE,
              payload: { ...refusal, cartridges: [...(v?.cartridges ?? [])].slice(0, 64), since: this.refusalSince(refusal) },
            },
          ])
          .catch(() => undefined);
        throw err;
      }
      // Not running (domains.enabled = false, or stopped): the change is checked, nothing starts.
      if (this.running) await this.apply(set);
      else {
        this.set = set;
        this.settleRefusals(set);
      }
      return set;
    });
  }

  /** When the refusal of `scope` for this code and reason began: now, unless it stands since an earlier reload. */
  private refusalSince(r: { scope: string; code: string; reason: string }): string {
    const s = this.standing.get(r.scope);
    if (s && s.code === r.code && s.reason === r.reason) return s.since;
    const since = new Date(this.deps.clock.now()).toISOString();
    this.standing.set(r.scope, { code: r.code, reason: r.reason, since });
    return since;
  }

  /** A set loaded: refusals it no longer has are over (the next one is a new notification). */
  private settleRefusals(set: PipelineSet): void {
    const still = new Set(set.refused.map((r) => r.scope));
    for (const scope of [...this.standing.keys()]) if (!still.has(scope)) this.standing.delete(scope);
  }

  private async load(): Promise<PipelineSet> {
    return loadPipelineSet(this.init.dataDir, {
      knowsEventType: (t) => this.deps.node.catalog.has(t),
      rolesOf: this.deps.rolesOf,
    });
  }

  /** Starts lanes that are new or changed, stops those that are gone; unchanged lanes keep running. */
  private async apply(set: PipelineSet): Promise<void> {
    const wanted = new Map<string, PipelineDef>();
    for (const p of [...set.domains, ...set.personal]) if (p.cartridges.length > 0 && (p.domain?.enabled ?? true)) wanted.set(p.scope, p);
    const started: Lane[] = [];
    try {
      for (const [scope, def] of wanted) {
        const old = this.lanes.get(scope);
        if (old && old.fingerprint === fingerprint(def)) continue;
        const lane = new Lane(def, this, this.deps, this.init.sandbox ?? {}, this.batch);
        await lane.load();
        started.push(lane);
      }
    } catch (err) {
      await Promise.all(started.map((l) => l.stop()));
      throw err;
    }
    // A changed lane is replaced in place: the router keeps routing to its scope while the old
    // one finishes its batch, and the new one starts at the position the old one committed.
    for (const lane of started) {
      const old = this.lanes.get(lane.def.scope);
      if (old) await old.stop();
      // The start is committed before the router can see the lane.
      const start = await this.position(lane.def.scope);
      this.lanes.set(lane.def.scope, lane);
      lane.begin(start);
    }
    for (const [scope, lane] of this.lanes) {
      if (wanted.has(scope)) continue;
      await lane.stop();
      this.lanes.delete(scope);
    }
    // `weft domains reload` brings suspended cartridges of unchanged lanes back.
    for (const lane of this.lanes.values()) if (!started.includes(lane)) lane.resumeAll();
    for (const d of set.domains) {
      if (!d.domain) continue;
      const a = d.domain.autonomy;
      try {
        this.deps.autonomy.setFileRules?.(d.name, { ...(a.level ? { level: a.level } : {}), cartridges: { ...a.cartridges }, events: { ...a.events } });
      } catch (err) {
        // domain.toml's reader refuses what the matrix would; this is a guard, not a path.
        this.deps.logger.error({ domain: d.name, err: (err as Error).message }, "domain.toml's [autonomy] was not applied");
      }
    }
    for (const d of this.set.domains) if (!set.domains.some((x) => x.name === d.name)) this.deps.autonomy.clearFileRules?.(d.name);
    this.routes = set.domains.filter((d) => d.domain?.enabled).map((d) => ({ name: d.name, subscribed: subscriptionOf(d) }));
    this.roles.clear();
    this.targetsOf.clear();
    this.set = set;
    // A member's pipeline left out is said once while it stays so (its `since` and the type's
    // idempotency fields), and again when it is left out again after it was fixed.
    this.settleRefusals(set);
    const refusals = set.refused.map((r) => {
      const refusal = { scope: r.scope, code: r.code, reason: r.message.slice(0, 4000) };
      return {
        event: DOMAIN_EVENTS.pipelineRefused,
        source: DOMAIN_ROUTER_STAGE,
        payload: { ...refusal, cartridges: [...r.cartridges].slice(0, 64), since: this.refusalSince(refusal) },
      };
    });
    if (refusals.length > 0) {
      this.deps.logger.warn({ refused: set.refused.map((r) => r.message) }, 'personal pipelines left out');
      await this.deps.node.emitMany(refusals).catch((err) => this.deps.logger.warn({ err: (err as Error).message }, 'domains.pipeline.refused not emitted'));
    }
    await this.deps.node
      .emitMany([
        {
          event: DOMAIN_EVENTS.pipelineLoaded,
          source: DOMAIN_ROUTER_STAGE,
          payload: { pipelines: [...set.domains, ...set.personal].slice(0, 1000).map((p) => ({ scope: p.scope, cartridges: p.cartridges.length, levels: p.levels.length })) },
        },
      ])
      .catch((err) => this.deps.logger.warn({ err: (err as Error).message }, 'domains.pipeline.loaded not emitted'));
  }

  /**
   * A lane's committed position. A lane seen for the first time starts at the inbox's end (it
   * never saw the older events), and that start is committed before anything is routed to it:
   * after a crash before its first batch committed, it resumes there, not at the new end.
   */
  private async position(scope: string): Promise<number> {
    const ns = this.deps.node.ns;
    const got = ns.offsets.get(laneOffset(scope));
    if (got !== undefined) return Number(got);
    return ns.store.write(() => {
      const start = this.maxSeq.get() as number;
      ns.offsets.set(laneOffset(scope), String(start));
      return start;
    });
  }

  /** Commits a lane's position. */
  commitPosition(scope: string, seq: number, stats: ReadonlyMap<string, number>): Promise<void> {
    const ns = this.deps.node.ns;
    return ns.store.write(() => {
      ns.offsets.set(laneOffset(scope), String(seq));
      const now = ns.store.nowIso();
      for (const [name, n] of stats) ns.stats.add(name, n, now);
    });
  }

  /** Lets member lanes move on once the domains before them did. */
  advanced(): void {
    for (const lane of this.lanes.values()) if (lane.def.kind === 'personal') lane.wake();
  }

  /** A member's roles changed: their personal pipeline's reach follows at once. */
  rolesChanged(): void {
    this.roles.clear();
    this.targetsOf.clear();
  }

  /**
   * The domains a personal pipeline reaches now: those its subscriptions name (or all) where
   * the member still holds a role. Losing a role narrows it at once, without a reload.
   */
  reachOf(def: PipelineDef): readonly string[] {
    const member = def.member;
    if (!member) return [];
    if (!this.roles.has(member.member)) this.roles.set(member.member, this.deps.rolesOf(member.member));
    const roles = this.roles.get(member.member) ?? {};
    return member.domains.length > 0 ? member.domains.filter((d) => roles[d] !== undefined) : Object.keys(roles);
  }

  /** The highest inbox position a lane may read: a member's lane waits for the domains it reaches. */
  ceiling(def: PipelineDef): number {
    if (def.kind === 'domain') return Number.MAX_SAFE_INTEGER;
    let min = Number.MAX_SAFE_INTEGER;
    for (const d of this.reachOf(def)) {
      const lane = this.lanes.get(d);
      if (lane) min = Math.min(min, lane.horizon);
    }
    return min;
  }

  /** The last inbox position readers can see. */
  top(): number {
    return this.topSeq.get() as number;
  }

  // ---- the router ----

  private route(event: Envelope, ctx: CartridgeContext): Envelope {
    if (!this.running || this.lanes.size === 0) return event;
    const from = scopeOfSource(event.source);
    // The answer depends only on these three: computed once per combination, not per event.
    const key = `${from ?? ''}\n${event.domain ?? ''}\n${event.event}`;
    let lanes = this.targetsOf.get(key);
    if (lanes === undefined) {
      lanes = this.targetsFor(event, from);
      if (this.targetsOf.size >= 10_000) this.targetsOf.clear();
      this.targetsOf.set(key, lanes);
    }
    if (lanes.length === 0) return event;
    // Each lane has its own limit: a slow or stuck lane skips events, the others do not.
    let targets = '';
    for (const lane of lanes) {
      if (lane.pending >= this.limit) lane.overflow(ctx, this.limit);
      else {
        targets += `,${lane.def.scope}`;
        lane.pending++;
      }
    }
    if (targets === '') return event;
    // The event log already holds the envelope: copy it only when a stage changed it (trust
    // flags, enrichment context, an installed cartridge), else the lane reads the log's copy.
    const body = ctx.facts.get(LOGGED_FACT) === event ? '' : JSON.stringify(event);
    this.insert.run(event.id, event.event, `${targets},`, body, this.deps.clock.now());
    this.inboxCount++;
    this.routedSinceWake = true;
    return event;
  }

  /** The lanes an event goes to. */
  private targetsFor(event: Envelope, from: string | undefined): Lane[] {
    // The domains that subscribe to it (with cartridges or not: a member's reach counts them
    // all). A domain's own outputs never go back to it (the lane check below), but do reach the
    // personal pipelines of its members; personal outputs go nowhere else.
    const subscribed: string[] = [];
    for (const r of this.routes) if (r.subscribed(event)) subscribed.push(r.name);
    const personalFrom = from?.startsWith('personal:') === true;
    const out: Lane[] = [];
    for (const lane of this.lanes.values()) {
      if (lane.def.scope === from || !lane.consumesEvent(event)) continue;
      if (lane.def.kind === 'domain') {
        if (subscribed.includes(lane.def.name)) out.push(lane);
      } else if (!personalFrom && lane.memberWants(event) && this.reachOf(lane.def).some((d) => subscribed.includes(d))) {
        out.push(lane);
      }
    }
    return out;
  }

  /**
   * Deletes the inbox rows no lane still needs (a row is done once every lane it names has
   * passed it; lanes that no longer exist need nothing), and every 10th time recounts each
   * lane's backlog (a batch that rolled back counted rows that were never written).
   */
  private async gc(): Promise<void> {
    if (!this.running || this.lock.isLocked) return;
    // What every lane has finished, read under the lock (never while lanes are being replaced);
    // the delete itself runs after it, so a stop never waits behind the store. A lane started
    // meanwhile starts at or past this snapshot's end, a replaced one at or past its position.
    const snapshot = await this.locked(async () => ({
      top: this.maxSeq.get() as number,
      lanes: [...this.lanes.values()].map((l) => ({ lane: l, scope: l.def.scope, position: l.position })),
    }));
    const ns = this.deps.node.ns;
    const needed = snapshot.lanes.map(() => '(instr(targets, ?) > 0 AND seq > ?)').join(' OR ');
    const params: Array<string | number> = [snapshot.top];
    for (const l of snapshot.lanes) params.push(`,${l.scope},`, l.position);
    const recount = ++this.gcTicks % 10 === 0;
    try {
      await ns.store.write(() => {
        ns.store.db.prepare(`DELETE FROM domain_inbox WHERE seq <= ?${needed ? ` AND NOT (${needed})` : ''}`).run(...params);
        this.inboxCount = this.count.get() as number;
      });
      if (recount && this.running) for (const l of snapshot.lanes) l.lane.pending = this.backlog(l.scope, l.lane.position);
    } catch (err) {
      if (this.running) this.deps.logger.warn({ err: (err as Error).message }, 'domain inbox clean-up failed; it is retried');
    }
  }

  /** Reads a lane's next events. */
  read(scope: string, after: number, ceiling: number, limit: number): Row[] {
    // Prepared once, on the reader: lanes read while the writer commits.
    this.readStmt ??= this.deps.node.ns.store.reader.prepare<[number, number, string, number]>(
      "SELECT i.seq, CASE WHEN i.body = '' THEN e.body ELSE i.body END AS body FROM domain_inbox i LEFT JOIN events e ON e.id = i.event_id AND i.body = '' WHERE i.seq > ? AND i.seq <= ? AND instr(i.targets, ?) > 0 ORDER BY i.seq LIMIT ?",
    );
    return this.readStmt.all(after, ceiling, `,${scope},`, limit) as Row[];
  }

  /** Events routed to a lane that it has not finished. */
  backlog(scope: string, after: number): number {
    this.backlogStmt ??= this.deps.node.ns.store.reader.prepare<[number, string]>('SELECT COUNT(*) FROM domain_inbox WHERE seq > ? AND instr(targets, ?) > 0').pluck();
    return this.backlogStmt.get(after, `,${scope},`) as number;
  }

  /** Depth of a new output in chains of domain outputs; remembered for its own outputs. */
  chainDepth(source: Envelope): number {
    return (this.chain.get(source.id)?.depth ?? 0) + 1;
  }

  /** The event a chain of domain outputs started from: the source itself when it is no domain output. */
  chainRoot(source: Envelope): string {
    return this.chain.get(source.id)?.root ?? source.id;
  }

  noteChain(id: string, depth: number, root: string): void {
    this.chain.set(id, { depth, root });
    if (this.chain.size > 100_000) this.chain.delete(this.chain.keys().next().value as string);
  }

  /** Takes one of the outputs a root event may cause; false when they are all taken. */
  takeOutput(root: string): boolean {
    const n = this.outputsOf.get(root) ?? 0;
    if (n >= this.maxOutputs) return false;
    this.outputsOf.delete(root);
    this.outputsOf.set(root, n + 1);
    if (this.outputsOf.size > 100_000) this.outputsOf.delete(this.outputsOf.keys().next().value as string);
    return true;
  }

  get maxOutputsPerEvent(): number {
    return this.maxOutputs;
  }

  /** Counts an output refused by a limit towards its lane's folded notice. */
  noteLimit(scope: string, cartridge: string, source: Envelope, error: string): void {
    const detail = { cartridge: domainSource(scope, cartridge), eventId: source.id, eventType: source.event, error };
    this.lastLimit.set(scope, detail);
    if (this.lastLimit.size > 10_000) this.lastLimit.delete(this.lastLimit.keys().next().value as string);
    this.limitNotices.note(scope, detail);
  }

  /** Raises `count` outputs of one lane refused by a limit: a log line and one `system.cartridge.failed` with the count. */
  private async raiseLimit(scope: string, first: Record<string, string | undefined>, count: number): Promise<unknown> {
    const detail = this.lastLimit.get(scope) ?? first;
    const cartridge = detail.cartridge ?? '-';
    this.deps.logger.warn({ cartridge, count, eventId: detail.eventId, err: detail.error }, 'domain outputs refused by a limit (a loop between domains?)');
    return this.deps.node
      .emitMany([
        {
          event: 'system.cartridge.failed',
          source: cartridge,
          // Each notice its own (the type's key, cartridge and event, may repeat across windows).
          idempotencyKey: `domains:limit:${scope}:${this.deps.clock.now()}:${count}`,
          payload: { cartridge, eventId: detail.eventId ?? '-', eventType: detail.eventType ?? '-', error: (detail.error ?? '').slice(0, 2000), count },
        },
      ])
      .catch((err) => {
        // The folded count of a window still open when the node stops: the log line above has it.
        if ((err as WeftError).code !== 'WEFT_STOPPED') throw err;
      });
  }

  get maxChainDepth(): number {
    return this.maxChain;
  }

  /** Every lane's state. */
  status(): LaneStatus[] {
    return [...this.lanes.values()].map((l) => l.status());
  }

  /**
   * What is wrong with the domain pipelines right now, one line each, for `/api/health` and
   * `weft status`: cartridges suspended after repeated failures (and the dependents that
   * cannot run meanwhile). Empty when all is well.
   */
  problems(): string[] {
    const out: string[] = [];
    for (const lane of this.lanes.values()) {
      const where = lane.def.kind === 'domain' ? `domain ${lane.def.name}` : `personal pipeline of ${lane.def.name}`;
      for (const s of lane.status().suspended) {
        const blocks = s.blocks.length > 0 ? `; ${s.blocks.map((b) => `'${b}'`).join(', ')} depend${s.blocks.length === 1 ? 's' : ''} on it and do${s.blocks.length === 1 ? 'es' : ''} not run either` : '';
        out.push(`${where}: cartridge '${s.cartridge}' suspended since ${s.since} after repeated failures (${s.reason.slice(0, 300)})${blocks}; ${s.skipped} event(s) skipped; weft domains reload brings it back`);
      }
    }
    return out;
  }

  /** Rows in the inbox, the per-lane limit, and events lanes skipped because they were full. */
  inbox(): { waiting: number; limit: number; skipped: number } {
    let skipped = 0;
    for (const l of this.lanes.values()) skipped += l.skipped;
    return { waiting: this.inboxCount, limit: this.limit, skipped };
  }

  /**
   * The answer to a `domains.action.pending` notification: approving emits the held event.
   * Answers what it did, or undefined for notifications of other types.
   */
  async resolveAction(notificationId: number, approve: boolean): Promise<'emitted' | 'dropped' | undefined> {
    const n = this.deps.node.ns.notifications.get(notificationId);
    if (n.eventType !== DOMAIN_EVENTS.actionPending) return undefined;
    if (!approve) return 'dropped';
    const p = n.payload as { domain: string; cartridge: string; sourceEventId: string; proposed: { event: string; payload: Record<string, unknown>; description?: string } };
    await this.deps.node.emitMany([
      {
        event: p.proposed.event,
        payload: p.proposed.payload,
        source: domainSource(p.domain, p.cartridge),
        causationId: p.sourceEventId,
        idempotencyKey: `domains:approved:${notificationId}`,
        ...(p.proposed.description ? { description: p.proposed.description } : {}),
        domain: p.domain,
      },
    ]);
    return 'emitted';
  }

  /** Waits until every lane has finished what was routed to it (tests, benchmarks). */
  async idle(timeoutMs = 30_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const busy = [...this.lanes.values()].some((l) => l.busy || this.backlog(l.def.scope, l.position) > 0);
      if (!busy) return true;
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Stops every lane (the batch in flight finishes) and kills their sandboxes. Idempotent. */
  async stop(): Promise<void> {
    this.running = false;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.gcTimer) clearInterval(this.gcTimer);
    await this.locked(async () => {
      await Promise.all([...this.lanes.values()].map((l) => l.stop()));
      this.lanes.clear();
    });
    this.limitNotices.close();
  }
}

function laneOffset(scope: string): string {
  return `domains:${scope}`;
}

/** An emit refused because of what was given (validation, size, unknown type), not because of the node's state. */
function isInputRefusal(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'WEFT_VALIDATION' || code === 'WEFT_UNKNOWN_EVENT_TYPE' || code === 'WEFT_TOO_LARGE';
}

/** Whether a domain subscribes to an event: its envelope domain is listed, or its type matches. */
function subscriptionOf(def: PipelineDef): (event: Envelope) => boolean {
  const byDomain = new Set(def.domain?.subscribeDomains ?? []);
  const byType = patternMatcher(def.domain?.subscribeEvents ?? []);
  return (e) => byDomain.has(e.domain) || byType(e.event);
}

/** Changes when anything that shapes a lane changes: its settings, its cartridges' code. */
function fingerprint(def: PipelineDef): string {
  return JSON.stringify([def.domain ?? def.member, def.cartridges.map((c) => [c.pkg.manifest, c.sha256])]);
}

/** The payload fields a cartridge declared as its outputs, taken from what it returned. */
function withOutputs(input: Envelope, returned: Record<string, unknown>, outputs: readonly string[] | undefined): Envelope {
  if (!outputs || outputs.length === 0) return input;
  const got = (returned.payload ?? {}) as Record<string, unknown>;
  const payload = { ...input.payload };
  for (const f of outputs) if (f in got) payload[f] = got[f];
  return { ...input, payload };
}

/** Why a pipeline's lane did not start: the cartridge that did not load (none: the sandbox did not start). */
function loadRefusal(def: PipelineDef, name: string, err: unknown): PipelineValidationError {
  return new PipelineValidationError('load', def.kind === 'domain' ? `domain '${def.name}'` : `personal pipeline of '${def.name}'`, name ? [name] : [], `${name ? `cartridge '${name}' does not load` : 'its sandbox does not start'}: ${(err as Error).message}`);
}

/**
 * Loads a pipeline's cartridges into a throwaway sandbox, as a lane's start does, and stops it:
 * `weft pipeline validate` refuses a cartridge whose code the daemon would not load (a top
 * level that throws, a syntax error), with the daemon's own message. Nothing runs but the
 * cartridges' top level.
 * @throws {PipelineValidationError} ('load') naming the cartridge that did not load.
 * @example
 * for (const p of set.domains) await checkPipelineLoads(p);
 */
export async function checkPipelineLoads(def: PipelineDef, init: { sandbox?: Omit<SandboxInit, 'timeoutMs' | 'validateEvent'>; logger?: Logger; clock?: Clock } = {}): Promise<void> {
  const sandbox = createSandbox({ ...(init.sandbox ?? {}), timeoutMs: def.timeoutMs, validateEvent: envelopeCheck }, { logger: init.logger ?? silentLogger, clock: init.clock ?? systemClock });
  let name = '';
  try {
    await sandbox.start();
    for (const c of def.cartridges) {
      name = c.pkg.manifest.name;
      await sandbox.load(c.pkg);
    }
  } catch (err) {
    throw loadRefusal(def, name, err);
  } finally {
    await sandbox.stop();
  }
}

/** One pipeline's reader, its sandboxes and its loop. */
/** Times a batch is tried before its events are dead-lettered and the lane moves on. */
const MAX_BATCH_ATTEMPTS = 8;

class Lane {
  readonly fingerprint: string;
  /** Inbox position of the last event it finished (committed). */
  position = 0;
  /** Everything routed to it up to here is finished: its position, or the inbox's end when it is idle. */
  horizon = 0;
  /** Routed to it and not finished (counted by the router, recounted by the clean-up). */
  pending = 0;
  /** Events it skipped because `pending` was at the limit. */
  skipped = 0;
  busy = false;
  private lastOverflowAt = Number.NEGATIVE_INFINITY;
  private readonly manifests = new Map<string, CartridgeManifest>();
  private readonly slotOf = new Map<string, number>();
  private readonly sandboxes: Sandbox[] = [];
  private readonly consumes: (type: string) => boolean;
  private readonly memberTypes: (type: string) => boolean;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private wakeUp: (() => void) | undefined;
  private pendingWake = false;
  private readonly counters = { processed: 0, failures: 0, emitted: 0, held: 0 };
  private lastError: string | null = null;
  private readonly logger: Logger;
  /** Its suspended cartridges: since when, why, and the events they and their dependents skipped. */
  private readonly suspensions = new Map<string, { at: number; reason: string; skipped: number }>();

  constructor(
    readonly def: PipelineDef,
    private readonly runner: DomainRunner,
    private readonly deps: DomainRunnerDeps,
    private readonly sandboxInit: Omit<SandboxInit, 'timeoutMs' | 'validateEvent'>,
    private readonly batch: number,
  ) {
    this.fingerprint = fingerprint(def);
    this.logger = deps.logger.child({ pipeline: def.scope });
    for (const c of def.cartridges) this.manifests.set(c.pkg.manifest.name, c.pkg.manifest);
    this.consumes = patternMatcher(def.cartridges.flatMap((c) => c.pkg.manifest.consumes));
    const events = def.member?.events ?? [];
    this.memberTypes = events.length > 0 ? patternMatcher(events) : () => true;
    // Cartridges of one level go to different sandboxes (processes), up to max_parallel.
    const slots = Math.max(1, Math.min(def.maxParallel, Math.max(1, ...def.levels.map((l) => l.length))));
    for (const level of def.levels) {
      for (let i = 0; i < level.length; i++) this.slotOf.set(level[i] as string, i % slots);
    }
    for (let i = 0; i < slots; i++) {
      this.sandboxes.push(
        createSandbox(
          { ...this.sandboxInit, timeoutMs: def.timeoutMs, validateEvent: envelopeCheck },
          {
            logger: this.logger,
            clock: deps.clock,
            onSuspended: (s) => this.suspended(s.name, `${s.lastError.code}: ${s.lastError.message}`, s.consecutiveFailures),
          },
        ),
      );
    }
  }

  /** Whether one of its cartridges consumes the event's type. */
  consumesEvent(event: Envelope): boolean {
    return this.consumes(event.event);
  }

  /** Personal lanes: whether the member's subscriptions take the event's type. */
  memberWants(event: Envelope): boolean {
    return this.memberTypes(event.event);
  }

  /** Loads every cartridge into its sandbox. @throws {PipelineValidationError} ('load') naming the one that did not load. */
  async load(): Promise<void> {
    let name = '';
    try {
      for (const s of this.sandboxes) await s.start();
      for (const c of this.def.cartridges) {
        name = c.pkg.manifest.name;
        await (this.sandboxes[this.slotOf.get(name) ?? 0] as Sandbox).load(c.pkg);
      }
    } catch (err) {
      await this.stop();
      throw loadRefusal(this.def, name, err);
    }
  }

  begin(position: number): void {
    this.position = position;
    this.horizon = position;
    this.pending = this.runner.backlog(this.def.scope, position);
    this.loop = this.run();
  }

  /** Clears the suspension of every cartridge (a reload). */
  resumeAll(): void {
    for (const c of this.def.cartridges) this.sandboxes[this.slotOf.get(c.pkg.manifest.name) ?? 0]?.resume(c.pkg.manifest.name);
    this.suspensions.clear();
  }

  /** The router found it full: the event skips this lane; said once a minute. */
  overflow(ctx: CartridgeContext, limit: number): void {
    this.skipped++;
    const now = this.deps.clock.now();
    if (now - this.lastOverflowAt < 60_000) return;
    this.lastOverflowAt = now;
    this.logger.warn({ limit, skipped: this.skipped }, 'domain lane full: new events skip it');
    try {
      ctx.emit({ event: DOMAIN_EVENTS.inboxOverflow, source: DOMAIN_ROUTER_STAGE, payload: { scope: this.def.scope, limit, skipped: this.skipped } });
    } catch (err) {
      this.logger.debug({ err: (err as Error).message }, 'domains.inbox.overflow not emitted');
    }
  }

  wake(): void {
    this.pendingWake = true;
    this.wakeUp?.();
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.stopping) {
      // What readers could see before this read: if it comes back short, everything routed to
      // this lane up to there is finished once the batch is (a member's lane waits on that).
      const top = this.runner.top();
      const rows = this.runner.read(this.def.scope, this.position, this.runner.ceiling(this.def), this.batch);
      if (rows.length === 0) {
        if (top > this.horizon && this.def.kind === 'domain') {
          this.horizon = top;
          this.runner.advanced();
        }
        if (this.pendingWake) {
          this.pendingWake = false;
          continue;
        }
        await new Promise<void>((resolve) => {
          this.wakeUp = resolve;
          // A member's lane also waits for its domains; a timer covers a wake-up lost to a race.
          setTimeout(resolve, 250).unref();
        });
        this.wakeUp = undefined;
        continue;
      }
      this.busy = true;
      try {
        await this.process(rows, attempt >= MAX_BATCH_ATTEMPTS ? this.lastError : null);
        attempt = 0;
        this.horizon = rows.length < this.batch ? Math.max(top, this.position) : this.position;
        if (this.def.kind === 'domain') this.runner.advanced();
      } catch (err) {
        attempt++;
        this.lastError = (err as Error).message;
        this.logger.error({ err: this.lastError, attempt, of: MAX_BATCH_ATTEMPTS }, 'domain batch failed; it is retried');
        await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** Math.min(attempt, 6), 5000)));
      } finally {
        this.busy = false;
      }
    }
  }

  /**
   * Runs a batch through the levels, emits what came out, then commits the position. A batch
   * that failed as a whole `MAX_BATCH_ATTEMPTS` times (`giveUp`: its last error) is not run
   * again: its events go to the dead letters and the lane moves on.
   */
  private async process(rows: readonly Row[], giveUp: string | null): Promise<void> {
    const events: Envelope[] = [];
    for (const r of rows) {
      if (r.body === null) this.logger.warn({ seq: r.seq }, 'domain inbox row without its event: skipped');
      else events.push(JSON.parse(r.body) as Envelope);
    }
    const last = rows[rows.length - 1] as Row;
    if (giveUp !== null) {
      this.logger.error({ events: events.length, err: giveUp }, 'domain batch given up after repeated failures: its events are dead letters');
      await this.recordFailures(events.map((event) => ({ cartridge: '(batch)', event, error: `WEFT_PIPELINE: given up after ${MAX_BATCH_ATTEMPTS} attempts: ${giveUp}` })));
      await this.runner.commitPosition(this.def.scope, last.seq, new Map());
      this.position = last.seq;
      this.pending = Math.max(0, this.pending - rows.length);
      return;
    }
    // results[i].get(c): the event as cartridge c passed it on, or null (stopped, failed or skipped by a dependency).
    const results = events.map(() => new Map<string, Envelope | null>());
    // Per event, the cartridges that did not run on it because they, or one they depend on, are suspended.
    const blocked = events.map(() => new Set<string>());
    const outputs: Output[] = [];
    const failures: Failure[] = [];
    const runs = new Map<string, number>();
    const scope = this.def.scope;
    for (const level of this.def.levels) {
      await Promise.all(
        level.map(async (name) => {
          const m = this.manifests.get(name) as CartridgeManifest;
          const own = domainSource(scope, name);
          const inputs: Array<{ i: number; event: Envelope }> = [];
          for (let i = 0; i < events.length; i++) {
            const event = events[i] as Envelope;
            const r = results[i] as Map<string, Envelope | null>;
            let input: Envelope | null = event;
            for (const dep of m.dependencies) {
              const got = r.get(dep);
              if (got === null || got === undefined) {
                if ((blocked[i] as Set<string>).has(dep) && this.consumesType(m, event.event)) (blocked[i] as Set<string>).add(name);
                input = null;
                break;
              }
              if (got !== event) input = { ...(input as Envelope), payload: { ...(input as Envelope).payload, ...got.payload } };
            }
            if (input === null) r.set(name, null);
            // Not for this cartridge (type, or its own output): passed on unchanged.
            else if (input.source === own || !this.consumesType(m, input.event)) r.set(name, input);
            else inputs.push({ i, event: input });
          }
          if (inputs.length === 0) return;
          const sandbox = this.sandboxes[this.slotOf.get(name) ?? 0] as Sandbox;
          const res = await sandbox.process(name, inputs.map((x) => x.event));
          let ok = 0;
          for (let k = 0; k < inputs.length; k++) {
            const { i, event } = inputs[k] as { i: number; event: Envelope };
            const r = results[i] as Map<string, Envelope | null>;
            const got = res[k];
            const source = events[i] as Envelope;
            if (!got?.ok) {
              r.set(name, null);
              const error = got ? `${got.error.code}: ${got.error.message}` : 'no result';
              if (got?.error.code === E.SUSPENDED) (blocked[i] as Set<string>).add(name);
              if (!got || !PASSIVE.has(got.error.code)) failures.push({ cartridge: name, event: source, error });
              continue;
            }
            ok++;
            r.set(name, got.event === null ? null : withOutputs(event, got.event, m.outputs));
            got.emitted.forEach((e, index) => {
              outputs.push({ cartridge: name, source, type: e.type, payload: e.payload as Record<string, unknown>, index });
            });
          }
          if (ok > 0) runs.set(domainSource(scope, name), ok);
        }),
      );
    }
    this.countSkipped(blocked);
    await this.emitOutputs(outputs, failures);
    await this.recordFailures(failures);
    await this.runner.commitPosition(scope, last.seq, runs);
    this.position = last.seq;
    this.pending = Math.max(0, this.pending - rows.length);
    this.counters.processed += rows.length;
  }

  private consumesType(m: CartridgeManifest, type: string): boolean {
    return patternMatcherCache(m)(type);
  }

  /** Emits the outputs at their autonomy levels: L3 as they are, L2 and a note to the admins, L1 held. */
  private async emitOutputs(outputs: readonly Output[], failures: Failure[]): Promise<void> {
    if (outputs.length === 0) return;
    const scope = this.def.scope;
    const personal = this.def.kind === 'personal';
    const inputs: EmitInput[] = [];
    const origins: Output[] = [];
    const notify = new Map<string, number[]>();
    const depths: number[] = [];
    const roots: string[] = [];
    for (const o of outputs) {
      const depth = this.runner.chainDepth(o.source);
      const root = this.runner.chainRoot(o.source);
      // A loop between domains is refused at a bound, and said once a minute per lane with the
      // count: one event must not become thousands of notifications, outputs or refusals alike.
      const limit =
        depth > this.runner.maxChainDepth
          ? `WEFT_LIMIT: '${o.type}' refused: domain outputs causing domain outputs may go ${this.runner.maxChainDepth} deep (two domains feeding each other?)`
          : !this.runner.takeOutput(root)
            ? `WEFT_LIMIT: '${o.type}' refused: one event may cause at most ${this.runner.maxOutputsPerEvent} domain outputs in all (two domains feeding each other?)`
            : undefined;
      if (limit !== undefined) {
        this.counters.failures++;
        this.lastError = limit;
        this.runner.noteLimit(scope, o.cartridge, o.source, limit);
        continue;
      }
      const decision: { level: AutonomyLevel; reason: string } = personal
        ? { level: 'L3', reason: 'personal pipelines act for their member' }
        : this.deps.autonomy.resolve({ domain: scope, cartridge: o.cartridge, eventType: o.type });
      const lineage = { causationId: o.source.id, correlationId: o.source.correlationId ?? o.source.id };
      const key = `domains:${scope}:${o.cartridge}:${o.source.id}:${o.index}`;
      if (decision.level === 'L1') {
        inputs.push({
          event: DOMAIN_EVENTS.actionPending,
          source: domainSource(scope, o.cartridge),
          ...lineage,
          domain: scope,
          idempotencyKey: key,
          description: `${scope}/${o.cartridge} wants to emit ${o.type} (held at L1: ${decision.reason})`,
          payload: {
            domain: scope,
            cartridge: o.cartridge,
            sourceEventId: o.source.id,
            rule: decision.reason.slice(0, 500),
            // The title travels with it: approved, the event reads as it would have.
            proposed: { event: o.type, payload: o.payload, ...(typeof o.payload.title === 'string' && o.payload.title.length > 0 ? { description: o.payload.title.slice(0, 500) } : {}) },
          },
        });
        depths.push(0);
        roots.push(root);
        origins.push(o);
        this.counters.held++;
        continue;
      }
      inputs.push({
        event: o.type,
        payload: o.payload,
        // An alert's title says more than its type's description.
        ...(typeof o.payload.title === 'string' && o.payload.title.length > 0 ? { description: o.payload.title.slice(0, 500) } : {}),
        source: domainSource(scope, o.cartridge),
        ...lineage,
        // The envelope domain is the pipeline's (`personal:<member>` for a member's): its
        // notifications are its people's, and group only with its own.
        domain: scope,
        idempotencyKey: key,
      });
      depths.push(depth);
      roots.push(root);
      origins.push(o);
      if (decision.level === 'L2') notify.set(o.cartridge, [...(notify.get(o.cartridge) ?? []), inputs.length - 1]);
    }
    if (inputs.length === 0) return;
    const emitted = await this.emitEach(inputs, origins, failures);
    emitted.forEach((e, i) => {
      const d = depths[i] ?? 0;
      if (e && d > 0) this.runner.noteChain(e.id, d, roots[i] as string);
    });
    this.counters.emitted += emitted.filter((e) => e !== undefined).length;
    if (notify.size === 0) return;
    const notes: EmitInput[] = [];
    for (const [cartridge, idx] of notify) {
      const list = idx.map((i) => emitted[i]).filter((e): e is Envelope => e !== undefined);
      if (list.length === 0) continue;
      notes.push({
        event: DOMAIN_EVENTS.actionTaken,
        source: domainSource(scope, cartridge),
        domain: scope,
        idempotencyKey: `domains:taken:${scope}:${cartridge}:${(list[0] as Envelope).id}`,
        description: `${scope}/${cartridge} emitted ${list.length} event(s) at L2: ${[...new Set(list.map((e) => e.event))].slice(0, 5).join(', ')}`,
        payload: {
          domain: scope,
          cartridge,
          count: list.length,
          types: [...new Set(list.map((e) => e.event))].slice(0, 64),
          eventIds: list.slice(0, 64).map((e) => e.id),
        },
      });
    }
    if (notes.length > 0) await this.deps.node.emitMany(notes);
  }

  /**
   * Emits the outputs in one call; when that is refused (an output a cartridge got wrong: a
   * payload its type's schema refuses, an oversized one), one by one, so the bad one becomes
   * a recorded failure of its cartridge and the others go out. A refusal that is not about the
   * input (the node stopping) is thrown: the batch is tried again.
   */
  private async emitEach(inputs: readonly EmitInput[], origins: readonly Output[], failures: Failure[]): Promise<Array<Envelope | undefined>> {
    try {
      return await this.deps.node.emitMany(inputs);
    } catch (err) {
      if (!isInputRefusal(err)) throw err;
    }
    const out: Array<Envelope | undefined> = [];
    for (let i = 0; i < inputs.length; i++) {
      try {
        const [e] = await this.deps.node.emitMany([inputs[i] as EmitInput]);
        out.push(e);
      } catch (err) {
        if (!isInputRefusal(err)) throw err;
        const o = origins[i] as Output;
        failures.push({ cartridge: o.cartridge, event: o.source, error: `WEFT_CARTRIDGE_BAD_OUTPUT: '${o.type}' refused: ${(err as Error).message}` });
        out.push(undefined);
      }
    }
    return out;
  }

  /** A failure that is the cartridge's own: a dead letter and `system.cartridge.failed`. */
  private async recordFailures(failures: readonly Failure[]): Promise<void> {
    if (failures.length === 0) return;
    const ns = this.deps.node.ns;
    this.counters.failures += failures.length;
    this.lastError = failures[failures.length - 1]?.error ?? null;
    await ns.store.write(() => {
      for (const f of failures) ns.deadLetters.add(f.event, domainSource(this.def.scope, f.cartridge), f.error.slice(0, 2000));
    });
    await this.deps.node.emitMany(failures.map((f) => this.failedInput(f.cartridge, f.error, f.event)));
  }

  /** `system.cartridge.failed` for one of its cartridges: on an event, or (no event) suspended. */
  private failedInput(cartridge: string, error: string, event?: Envelope): EmitInput {
    const source = domainSource(this.def.scope, cartridge);
    return {
      event: 'system.cartridge.failed',
      source,
      // A suspension carries its time: suspended again after a reload is a new notification
      // (the idempotency key was the cartridge and '-' alone, so only the first one showed).
      payload: { cartridge: source, eventId: event?.id ?? '-', eventType: event?.event ?? '-', error: error.slice(0, 2000), ...(event ? {} : { suspended: true, suspendedAt: new Date(this.deps.clock.now()).toISOString() }) },
    };
  }

  /**
   * The sandbox suspended a cartridge after repeated failures: remembered for the status and
   * `/api/health` until a reload, and said once, in words of its own (not those of a failure
   * on one event).
   */
  private suspended(name: string, reason: string, failuresInARow: number): void {
    this.suspensions.set(name, { at: this.deps.clock.now(), reason, skipped: 0 });
    const blocks = this.dependentsOf(name);
    this.logger.warn({ cartridge: name, reason, blocks }, 'domain cartridge suspended after repeated failures; weft domains reload brings it back');
    const where = this.def.kind === 'domain' ? `domain ${this.def.name}` : `personal pipeline of ${this.def.name}`;
    const input = this.failedInput(name, reason);
    input.description = `${where}: cartridge '${name}' suspended after ${failuresInARow} failures in a row (last: ${reason.slice(0, 500)}); it${blocks.length > 0 ? ` and what depends on it (${blocks.join(', ')})` : ''} skip every event until weft domains reload`;
    void this.deps.node.emitMany([input]).catch(() => undefined);
  }

  /** The cartridges that depend on `name`, directly or through others. */
  private dependentsOf(name: string): string[] {
    const out = new Set<string>();
    let frontier = [name];
    while (frontier.length > 0) {
      const next: string[] = [];
      for (const [n, m] of this.manifests) if (!out.has(n) && m.dependencies.some((d) => frontier.includes(d))) next.push(n);
      for (const n of next) out.add(n);
      frontier = next;
    }
    return [...out];
  }

  /** Counts, against each suspension, the events its cartridge and their dependents skipped. */
  private countSkipped(blocked: ReadonlyArray<ReadonlySet<string>>): void {
    if (this.suspensions.size === 0) return;
    for (const [name, s] of this.suspensions) {
      const group = [name, ...this.dependentsOf(name)];
      for (const set of blocked) if (group.some((n) => set.has(n))) s.skipped++;
    }
  }

  status(): LaneStatus {
    return {
      scope: this.def.scope,
      kind: this.def.kind,
      cartridges: this.def.cartridges.map((c) => c.pkg.manifest.name),
      levels: this.def.levels,
      position: this.position,
      backlog: this.runner.backlog(this.def.scope, this.position),
      ...this.counters,
      lastError: this.lastError,
      sandboxes: this.sandboxes.map((s) => s.status()),
      suspended: [...this.suspensions].map(([cartridge, s]) => ({ cartridge, since: new Date(s.at).toISOString(), reason: s.reason, blocks: this.dependentsOf(cartridge), skipped: s.skipped })),
    };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeUp?.();
    await this.loop;
    await Promise.all(this.sandboxes.map((s) => s.stop()));
  }
}

const matchers = new WeakMap<CartridgeManifest, (type: string) => boolean>();
function patternMatcherCache(m: CartridgeManifest): (type: string) => boolean {
  let f = matchers.get(m);
  if (!f) {
    f = patternMatcher(m.consumes);
    matchers.set(m, f);
  }
  return f;
}
