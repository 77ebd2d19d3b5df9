import { CARTRIDGE_EVENTS, type Catalog } from '../catalog/index.js';
import type { EmitInput, Envelope } from '../envelope/index.js';
import { isWeftError, NotFoundError, WeftError } from '../errors/index.js';
import { type Cartridge, type CommittedBatch, INGRESS_FACT, type IngressFact, type NodeSelf } from '../pipeline/index.js';
import { camelRow, type NodeStore } from '../store/index.js';
import type { Logger } from '../util/index.js';
import { commandGuardian } from './command-guardian.js';
import { chainGuardians, type Guardian, type GuardianVerdict, guardianRequest } from './guardian.js';
import { type RuleGuardianInit, ruleGuardian } from './rule-guardian.js';
import { isCartridgeSource } from './cartridge-stage.js';
import type { CartridgePackage } from './package.js';
import { packageFromPublished, type PublishedCartridgePayload } from './published.js';
import { LOCAL_ORIGIN, type ReplacedRecord } from './registry.js';
import type { CartridgeRuntime } from './runtime.js';

/** `autonomy.cartridge_install`: L1 human approves, L2 guardian decides and human is told, L3 autonomous. */
export type AutonomyLevel = 'L1' | 'L2' | 'L3';

/** Pipeline stage name of the gate. */
export const GATE_STAGE = 'sovereignty-gate';
/** Source of the events the gate emits. */
export const GATE_SOURCE = 'sovereignty-gate';

/**
 * Where a publication is in the gate:
 * - `queued`: recorded by the stage in the batch transaction, not decided yet;
 * - `awaiting_human`: an actionable `cartridge.install_pending` notification waits (L1, or L2 refused);
 * - `installed`: installed as `pending_activation` (activation stays a human step);
 * - `rejected`: a human answered no;
 * - `failed`: the package is invalid or could not be installed (reason recorded).
 */
export type GateState = 'queued' | 'awaiting_human' | 'installed' | 'rejected' | 'failed';

/** One publication the gate handled, as `list()` answers it. */
export interface GateEntry {
  readonly publishedKey: string;
  readonly eventId: string;
  readonly origin: string;
  readonly sourceComputer: string | null;
  readonly name: string;
  readonly version: string;
  readonly state: GateState;
  readonly autonomy: AutonomyLevel;
  readonly reason: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** User options of the gate. */
export interface SovereigntyGateInit {
  /** Default L1. Read once per publication, when it is decided. */
  autonomy?: AutonomyLevel;
  /** `autonomy.guardian_command`: a program asked after the rules at L2. */
  guardianCommand?: string;
  /** Default 30,000 ms. */
  guardianTimeoutMs?: number;
  rules?: RuleGuardianInit;
}

/** What the gate needs of a node (a `WeftNode` fits). */
export interface GateNode {
  readonly ns: NodeStore;
  readonly catalog: Catalog;
  readonly self: NodeSelf;
  emitMany(inputs: readonly unknown[]): Promise<Envelope[]>;
  onCommitted(fn: (batch: CommittedBatch) => void): () => void;
}

/** Collaborators of the gate. */
export interface SovereigntyGateDeps {
  node: GateNode;
  runtime: Pick<CartridgeRuntime, 'install' | 'registry'>;
  logger: Logger;
  /** Names of built-in stages a cartridge may depend on (for the rule guardian). */
  builtins?: readonly string[];
  /** Replaces the default guardian (rules, then the command when configured). */
  guardian?: Guardian;
}

/** The sovereignty gate: decides what happens to cartridges peers publish. */
export interface SovereigntyGate {
  /** The pipeline stage; append it after the mesh publisher. */
  readonly stage: Cartridge;
  readonly guardian: Guardian;
  /** Decides publications recorded before a crash, and approvals that were not applied. Idempotent. */
  start(): Promise<void>;
  /** Waits for the decision in flight; later commits are ignored. Idempotent. */
  stop(): Promise<void>;
  /**
   * The human's answer to a `cartridge.install_pending` notification (the API's `onApproved`
   * hook). Approve installs it (`pending_activation`) and emits `cartridge.installed`; reject
   * installs nothing. Answers undefined for notifications of other types.
   * @throws {NotFoundError} when the notification names a publication the gate never saw;
   * install errors (e.g. another version is active) as they are.
   */
  resolve(notificationId: number, approve: boolean): Promise<GateEntry | undefined>;
  /** Every handled publication, newest first. */
  list(): GateEntry[];
  /** Resolves once nothing is queued or being decided (tests, demo). */
  idle(): Promise<void>;
}

interface Row {
  published_key: string;
  event_id: string;
  origin: string;
  source_computer: string | null;
  name: string;
  version: string;
  payload: string;
  state: GateState;
  autonomy: AutonomyLevel;
  reason: string | null;
  created_at: string;
  updated_at: string;
}

/**
 * Creates the gate's table (once per node file). The gate's own bookkeeping: one row per
 * publication, keyed by the publication's idempotency key (name + version + sha256 of the source),
 * written in the pipeline's batch transaction.
 */
export function ensureGateSchema(db: NodeStore['store']['db']): void {
  db.exec(`CREATE TABLE IF NOT EXISTS sovereignty_gate (
    published_key TEXT PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    origin TEXT NOT NULL,
    source_computer TEXT,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    autonomy TEXT NOT NULL,
    reason TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  )`);
}

/**
 * Creates the sovereignty gate. Its stage records every `cartridge.published` that a peer sent
 * and that passed the system pipeline (trust, dedup...) in the batch's own transaction, so a
 * publication is decided exactly once even across crashes; after the commit it is decided by
 * `autonomy.cartridge_install`:
 * - L1: an actionable `cartridge.install_pending` notification; `resolve(id, true)` installs;
 * - L2: the guardian decides; approved → installed + `cartridge.installed` +
 *   `cartridge.install_notified`; refused → `cartridge.install_pending` saying why (a human
 *   may still approve);
 * - L3: installed at once + `cartridge.installed`.
 * A node's own publications are not installed on it: the author already has the package.
 * @example
 * const gate = createSovereigntyGate({ autonomy: 'L1' }, { node, runtime, logger });
 * node.pipeline.replace([...node.pipeline.cartridges, gate.stage]);
 * await gate.start();
 */
export function createSovereigntyGate(init: SovereigntyGateInit, deps: SovereigntyGateDeps): SovereigntyGate {
  return new Gate(init, deps);
}

class Gate implements SovereigntyGate {
  readonly stage: Cartridge;
  readonly guardian: Guardian;
  private readonly logger: Logger;
  private readonly autonomy: AutonomyLevel;
  private recorded = false;
  private state: 'stopped' | 'started' = 'stopped';
  private unsubscribe: (() => void) | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private stopping: Promise<void> | null = null;
  /** Aborted by stop: a guardian still judging (a slow guardian command) is killed, its publication stays queued. */
  private aborter = new AbortController();

  constructor(
    init: SovereigntyGateInit,
    private readonly deps: SovereigntyGateDeps,
  ) {
    this.logger = deps.logger.child({ module: 'sovereignty-gate' });
    this.autonomy = init.autonomy ?? 'L1';
    const builtins = new Set(deps.builtins ?? []);
    const registry = deps.runtime.registry;
    const rules = ruleGuardian(init.rules)({
      hasDependency: (n) => builtins.has(n) || (registry.find(n)?.status ?? 'rejected') !== 'rejected',
      knowsEventType: (t) => deps.node.catalog.has(t),
      isControlType: (t) => deps.node.catalog.isControl(t),
    });
    this.guardian =
      deps.guardian ??
      chainGuardians(
        init.guardianCommand
          ? [rules, commandGuardian({ command: init.guardianCommand, timeoutMs: init.guardianTimeoutMs })]
          : [rules],
      );
    ensureGateSchema(deps.node.ns.store.db);
    this.stage = { name: GATE_STAGE, process: (event, ctx) => this.record(event, ctx) };
  }

  // ---- the stage ----

  private record(event: Envelope, ctx: Parameters<Cartridge['process']>[1]): Envelope {
    if (event.event !== CARTRIDGE_EVENTS.published) return event;
    const ingress = ctx.facts.get(INGRESS_FACT) as IngressFact | undefined;
    const fromPeer = ingress ?? (event.sourceComputer && event.sourceComputer !== ctx.self.computer ? event : undefined);
    if (!fromPeer) return event; // our own publication: nothing to install here
    const origin = ingress?.peerNodeId ?? event.origin ?? (event.sourceComputer as string);
    const sourceComputer = ingress?.peerComputer ?? event.sourceComputer ?? null;
    const p = event.payload as Partial<PublishedCartridgePayload>;
    const name = String(p.name ?? p.event_type ?? '?');
    const version = String(p.version ?? '?');
    // Only a node's operator publishes: one that a cartridge emitted (its source cartridge:<name>)
    // is code that cartridge chose, signed by its node as if the operator had published it.
    const refused = isCartridgeSource(event.source)
      ? `refused: it was emitted by a cartridge (source '${event.source}'), not published by the node's operator`
      : null;
    const inserted = this.deps.node.ns.store.db
      .prepare(
        `INSERT OR IGNORE INTO sovereignty_gate (published_key, event_id, origin, source_computer, name, version, payload,
           state, autonomy, reason, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        event.idempotencyKey ?? `${CARTRIDGE_EVENTS.published}:${event.id}`,
        event.id,
        origin,
        sourceComputer,
        name,
        version,
        JSON.stringify(event.payload),
        refused ? 'failed' : 'queued',
        this.autonomy,
        refused,
        ctx.now,
        ctx.now,
      );
    if (refused) {
      if (inserted.changes > 0) {
        this.logger.warn({ cartridge: name, from: sourceComputer ?? origin, source: event.source }, 'published cartridge not installed: it came from a cartridge');
        ctx.emit({
          event: 'system.cartridge.failed',
          source: GATE_SOURCE,
          visibility: 'local',
          payload: { cartridge: GATE_STAGE, eventId: event.id, eventType: CARTRIDGE_EVENTS.published, error: `${name} ${version} from ${sourceComputer ?? origin}: ${refused}`.slice(0, 2000) },
        });
      }
      return event;
    }
    this.recorded = true;
    return event;
  }

  // ---- lifecycle ----

  async start(): Promise<void> {
    if (this.state === 'started') return;
    if (this.stopping) await this.stopping;
    this.stopping = null;
    this.state = 'started';
    if (this.aborter.signal.aborted) this.aborter = new AbortController();
    this.unsubscribe = this.deps.node.onCommitted(() => {
      if (!this.recorded) return;
      this.recorded = false;
      this.kick();
    });
    await this.serial(() => this.reconcile());
    this.kick();
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.state = 'stopped';
      this.unsubscribe?.();
      this.unsubscribe = null;
      this.aborter.abort();
      await this.chain.catch(() => undefined);
    })();
    return this.stopping;
  }

  async idle(): Promise<void> {
    // Bounded: a publication that keeps failing (the node is stopping) stays queued for the next start.
    for (let i = 0; i < 100; i++) {
      const chain = this.chain;
      await chain.catch(() => undefined);
      if (chain === this.chain && (this.state !== 'started' || this.rows("state = 'queued'").length === 0)) return;
      if (chain === this.chain) this.kick();
    }
  }

  list(): GateEntry[] {
    return this.rows('1 = 1 ORDER BY created_at DESC, event_id').map(toEntry);
  }

  // ---- decisions ----

  private kick(): void {
    if (this.state !== 'started') return;
    void this.serial(() => this.drain()).catch((err) => {
      this.logger.error({ err: (err as Error).message }, 'sovereignty gate: deciding publications failed; retried at the next publication or start');
    });
  }

  private async drain(): Promise<void> {
    for (;;) {
      if (this.state !== 'started') return;
      const row = this.rows("state = 'queued' ORDER BY created_at, event_id LIMIT 1")[0];
      if (!row) return;
      await this.decide(row);
    }
  }

  private async decide(row: Row): Promise<void> {
    let pkg: CartridgePackage;
    try {
      pkg = packageFromPublished(JSON.parse(row.payload) as PublishedCartridgePayload);
    } catch (err) {
      await this.fail(row, `the published package is invalid: ${(err as Error).message}`);
      return;
    }
    const facts = this.facts(row, pkg);
    const level = row.autonomy;
    // A record of another origin (the operator's own, another peer's) is replaced only when a human says so.
    const replaces = this.deps.runtime.registry.wouldReplace(pkg.manifest.name, row.origin);
    const upgrade = this.upgradeOver(pkg);
    const note = `${replaces ? `; it would replace ${replaced(pkg.manifest.name, replaces)}` : ''}${upgrade ? `; ${upgrade}` : ''}`;
    if (level === 'L1') {
      await this.askHuman(row, facts, `autonomy L1: a human decides (weft notifications resolve <id> --approve | --reject)${note}`, { replaces, upgrade });
      return;
    }
    if (level === 'L2') {
      const request = guardianRequest(pkg, { origin: row.origin, ...(row.source_computer ? { sourceComputer: row.source_computer } : {}) });
      const signal = this.aborter.signal;
      const verdict: GuardianVerdict = await this.guardian.judge(request, { signal }).catch((err: Error) => ({
        approve: false,
        reason: `guardian failed: ${err.message}`,
        guardian: this.guardian.name,
      }));
      // Stopped while the guardian judged (it was killed): no verdict; decided at the next start.
      if (signal.aborted) {
        this.logger.info({ cartridge: pkg.manifest.name, from: row.source_computer }, 'guardian stopped with the node; the publication stays queued');
        return;
      }
      this.logger.info({ cartridge: pkg.manifest.name, from: row.source_computer, ...verdict }, 'guardian verdict');
      if (!verdict.approve) {
        await this.askHuman(row, facts, `guardian (${verdict.guardian}) refused: ${verdict.reason}; nothing was installed (approve to install anyway)${note}`, { replaces, upgrade });
        return;
      }
      if (replaces) {
        await this.askHuman(row, facts, `guardian (${verdict.guardian}) approved (${verdict.reason}), but a human decides${note}`, { replaces, upgrade });
        return;
      }
      if (!(await this.install(row, pkg))) return;
      await this.emit(row, [
        { event: CARTRIDGE_EVENTS.installed, payload: { ...facts, autonomy: 'L2' } },
        {
          event: CARTRIDGE_EVENTS.installNotified,
          payload: { ...facts, guardian: verdict.guardian.slice(0, 200), reason: verdict.reason.slice(0, 2000) },
        },
      ]);
      await this.setState(row, 'installed', `guardian (${verdict.guardian}) approved: ${verdict.reason}`);
      return;
    }
    if (replaces) {
      await this.askHuman(row, facts, `autonomy L3 installs without asking, but a human decides here${note}`, { replaces, upgrade });
      return;
    }
    if (!(await this.install(row, pkg))) return;
    await this.emit(row, [{ event: CARTRIDGE_EVENTS.installed, payload: { ...facts, autonomy: 'L3' } }]);
    await this.setState(row, 'installed', 'autonomy L3: installed without asking');
  }

  /** Installs as `pending_activation`; on an error records it, tells the human and answers false. */
  private async install(row: Row, pkg: CartridgePackage): Promise<boolean> {
    try {
      const r = await this.deps.runtime.install(pkg, { origin: row.origin, peer: {} });
      this.logger.info({ cartridge: pkg.manifest.name, version: pkg.manifest.version, from: row.source_computer, changed: r.changed }, 'cartridge installed from a peer; it waits for activation');
      return true;
    } catch (err) {
      await this.fail(row, `cannot install: ${(err as Error).message}`);
      return false;
    }
  }

  /**
   * Says so when the package is another version of a cartridge that runs here (active, alpha or
   * suspended): installing it is refused until a human rejects that one, and approving says so.
   */
  private upgradeOver(pkg: CartridgePackage): string | undefined {
    const { name, version } = pkg.manifest;
    const c = this.deps.runtime.registry.find(name);
    if (!c || c.version === version || c.status === 'rejected' || c.status === 'pending_activation') return undefined;
    return `it is an upgrade over ${name} ${c.version}, which is ${c.status} here: approving installs it only once that one is rejected (weft cartridges reject ${name})`;
  }

  private async askHuman(
    row: Row,
    facts: Record<string, unknown>,
    reason: string,
    about: { replaces?: ReplacedRecord | undefined; upgrade?: string | undefined } = {},
  ): Promise<void> {
    const { replaces, upgrade } = about;
    const from = row.source_computer ?? row.origin;
    const description = [
      `install cartridge ${row.name} ${row.version} from ${from}?`,
      ...(replaces ? [`Approving REPLACES ${replaced(row.name, replaces)}.`] : []),
      ...(upgrade ? [`Note: ${upgrade}.`] : []),
    ].join(' ');
    await this.emit(row, [
      {
        event: CARTRIDGE_EVENTS.installPending,
        description: description.slice(0, 1000),
        payload: { ...facts, reason: reason.slice(0, 2000), ...(replaces ? { replaces: { ...replaces } } : {}) },
      },
    ]);
    await this.setState(row, 'awaiting_human', reason);
  }

  private async fail(row: Row, reason: string): Promise<void> {
    this.logger.warn({ cartridge: row.name, from: row.source_computer, reason }, 'published cartridge not installed');
    await this.emit(row, [
      {
        event: 'system.cartridge.failed',
        payload: { cartridge: GATE_STAGE, eventId: row.event_id, eventType: CARTRIDGE_EVENTS.published, error: `${row.name} ${row.version} from ${row.source_computer ?? row.origin}: ${reason}`.slice(0, 2000) },
      },
    ]);
    await this.setState(row, 'failed', reason);
  }

  /** What the gate's events and the human's question say about the package. */
  private facts(row: Row, pkg: CartridgePackage): Record<string, unknown> {
    const req = guardianRequest(pkg, { origin: row.origin, ...(row.source_computer ? { sourceComputer: row.source_computer } : {}) });
    const { name, version, author, description, origin, sourceComputer, sha256 } = req;
    return { name, version, author, description, origin, ...(sourceComputer ? { sourceComputer } : {}), sha256, publishedEventId: row.event_id };
  }

  /**
   * Emits the gate's events, caused by the publication. Their idempotency keys (origin + name +
   * version) make a repeat after a crash a no-op.
   */
  private async emit(row: Row, inputs: Array<Pick<EmitInput, 'event' | 'payload' | 'description'>>): Promise<void> {
    await this.deps.node.emitMany(
      inputs.map((i) => ({ ...i, source: GATE_SOURCE, visibility: 'local', causationId: row.event_id, correlationId: row.event_id })),
    );
  }

  // ---- the human's answer ----

  resolve(notificationId: number, approve: boolean): Promise<GateEntry | undefined> {
    const n = this.deps.node.ns.notifications.get(notificationId);
    if (n.eventType !== CARTRIDGE_EVENTS.installPending) return Promise.resolve(undefined);
    const eventId = String(n.payload.publishedEventId ?? '');
    return this.serial(async () => {
      const row = this.rows('event_id = ?', eventId)[0];
      if (!row) throw new NotFoundError('cartridge publication', eventId);
      // Still open (the API answers before it commits the resolution): a failed install leaves it open.
      const open = n.agentStatus !== 'resolved';
      if (row.state === 'awaiting_human') await this.answer(row, approve, agreedReplace(n.payload), open ? notificationId : undefined);
      return toEntry(this.rows('event_id = ?', eventId)[0] as Row);
    });
  }

  /**
   * `replaces`: the record of another origin the request said approving replaces (only that one
   * may be). `openRequest`: the notification is not resolved yet; an install that fails then
   * leaves the publication waiting for the human, with an error saying why and what to do.
   */
  private async answer(
    row: Row,
    approve: boolean,
    replaces: { origin: string; version: string } | undefined,
    openRequest?: number,
  ): Promise<void> {
    if (!approve) {
      await this.setState(row, 'rejected', 'a human refused the installation');
      this.logger.info({ cartridge: row.name, from: row.source_computer }, 'cartridge installation refused by a human');
      return;
    }
    const pkg = packageFromPublished(JSON.parse(row.payload) as PublishedCartridgePayload);
    try {
      await this.deps.runtime.install(pkg, { origin: row.origin, peer: replaces ? { replaces } : {} });
    } catch (err) {
      if (openRequest !== undefined && isWeftError(err)) {
        this.logger.info({ cartridge: row.name, err: err.message }, 'approved cartridge not installed yet; the request stays open');
        throw new WeftError(err.code, `${err.message}; install request ${openRequest} stays open: approve it again once that is done (or reject it)`, {
          cause: err,
          ...(err.details ? { details: err.details } : {}),
        });
      }
      await this.setState(row, 'failed', `approved, but cannot install: ${(err as Error).message}`);
      throw err;
    }
    await this.emit(row, [{ event: CARTRIDGE_EVENTS.installed, payload: { ...this.facts(row, pkg), autonomy: 'L1' } }]);
    await this.setState(row, 'installed', 'approved by a human');
  }

  /** Answers approvals that were committed but not applied (a crash between the two). */
  private async reconcile(): Promise<void> {
    const waiting = this.rows("state = 'awaiting_human'");
    if (waiting.length === 0) return;
    const byEvent = new Map(waiting.map((r) => [r.event_id, r]));
    const { items } = this.deps.node.ns.notifications.list({
      eventType: CARTRIDGE_EVENTS.installPending,
      agentStatus: 'resolved',
      limit: 10_000,
    });
    for (const n of items) {
      const row = byEvent.get(String(n.payload.publishedEventId ?? ''));
      const approved = n.resolution?.approved;
      if (!row || typeof approved !== 'boolean') continue;
      await this.answer(row, approved, agreedReplace(n.payload)).catch((err) => {
        this.logger.warn({ cartridge: row.name, err: (err as Error).message }, 'approved cartridge could not be installed');
      });
    }
  }

  // ---- storage ----

  private rows(where: string, ...params: unknown[]): Row[] {
    return this.deps.node.ns.store.reader.prepare(`SELECT * FROM sovereignty_gate WHERE ${where}`).all(...params) as Row[];
  }

  private async setState(row: Row, state: GateState, reason: string): Promise<void> {
    const store = this.deps.node.ns.store;
    const now = store.nowIso();
    await store.write(() =>
      store.db
        .prepare('UPDATE sovereignty_gate SET state = ?, reason = ?, updated_at = ? WHERE published_key = ?')
        .run(state, reason.slice(0, 2000), now, row.published_key),
    );
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }
}

/** How a request names the record approving it replaces. */
function replaced(name: string, r: ReplacedRecord): string {
  const from = r.origin === LOCAL_ORIGIN ? 'this node (origin local)' : r.origin;
  return `${name} ${r.version} (${r.status}), installed from ${from}`;
}

/** The record of another origin an answered request said it replaces, from its payload. */
function agreedReplace(payload: Record<string, unknown>): { origin: string; version: string } | undefined {
  const r = payload.replaces as { origin?: unknown; version?: unknown } | undefined;
  return r && typeof r.origin === 'string' && typeof r.version === 'string' ? { origin: r.origin, version: r.version } : undefined;
}

function toEntry(r: Row): GateEntry {
  // The published payload (the cartridge's whole source) stays in the table: entries are listed.
  const { payload: _payload, ...entry } = camelRow(r);
  return entry;
}
