/**
 * The autonomy matrix: at which level a domain cartridge's decision runs (an event it wants to
 * emit, or `cartridge.install` into a domain). `L1` is held for a human, `L2` is done and the
 * domain's admins are told, `L3` is done. The most specific setting decides:
 * event type > cartridge > domain > global (`autonomy.domain_default`).
 *
 * Rules come from two places: `weft config autonomy set` (the `autonomy_rules` table, migration
 * 9; `'*'` in a column means "not specified") and each domain's `domain.toml` (kept in memory,
 * replaced whenever the file is read). Resolution runs for every event a domain cartridge emits,
 * so it never touches SQL: the stored rules are cached and indexed by domain, and decisions are
 * memoized until a rule changes.
 */
import { NotFoundError, ValidationError, WeftError } from '../errors/index.js';
import { type AutonomyLevel, consumesEventType } from '../sovereignty/index.js';
import type { Store } from '../store/index.js';

export type { AutonomyLevel };

/** The levels, weakest autonomy first. */
export const AUTONOMY_LEVELS: readonly AutonomyLevel[] = ['L1', 'L2', 'L3'];

/** Where a rule comes from: `weft config autonomy set` (stored), or a domain's `domain.toml` (in memory). */
export type AutonomySource = 'cli' | 'domain.toml';

/**
 * One setting of the matrix. A field left out matches anything; `eventType` may be a pattern
 * (`build.*`; a trailing `*` also matches deeper segments).
 * @example
 * const rule: AutonomyRule = { domain: 'marketing', cartridge: 'poster', level: 'L2', source: 'cli', setAt: Date.now(), setBy: 'ada' };
 */
export interface AutonomyRule {
  readonly domain?: string;
  readonly cartridge?: string;
  readonly eventType?: string;
  readonly level: AutonomyLevel;
  readonly source: AutonomySource;
  /** Milliseconds since the epoch. */
  readonly setAt?: number;
  readonly setBy?: string;
}

/** What a rule applies to: the key of a stored rule. */
export interface AutonomyKey {
  domain?: string;
  cartridge?: string;
  eventType?: string;
}

/** A rule to store with {@link AutonomyMatrix.set}. */
export interface AutonomyRuleInput extends AutonomyKey {
  level: AutonomyLevel;
  /** Who set it (shown by `explain`); at most 200 characters. */
  setBy?: string;
}

/** The decision asked about. `domain` is absent for a cartridge in no domain (a personal pipeline). */
export interface AutonomyQuery {
  domain?: string;
  cartridge: string;
  eventType: string;
}

/** The answer of {@link resolveAutonomy}: the level, the rule that decided it and why. */
export interface AutonomyDecision {
  readonly level: AutonomyLevel;
  /** The deciding rule; null when the global default applies. */
  readonly rule: AutonomyRule | null;
  /** E.g. "event type rule build.failed in domain marketing (set by ada)" or "global default autonomy.domain_default = L3". */
  readonly reason: string;
  /** Every rule that matches the query, best first (the first one is `rule`). */
  readonly considered: readonly AutonomyRule[];
}

/** What `domain.toml` says about autonomy, as {@link AutonomyMatrix.setFileRules} takes it. */
export interface DomainAutonomyOverrides {
  /** The level of the whole domain. */
  readonly level?: AutonomyLevel;
  /** Per cartridge of the domain. */
  readonly cartridges?: Readonly<Record<string, AutonomyLevel>>;
  /** Per event type (or pattern) in the domain. */
  readonly events?: Readonly<Record<string, AutonomyLevel>>;
}

/** User options of the matrix. */
export interface AutonomyMatrixInit {
  /** `autonomy.domain_default`: the level when no rule matches. */
  globalDefault: AutonomyLevel;
  /** Most rules stored with `set` (default {@link MAX_AUTONOMY_RULES}). */
  maxRules?: number;
}

/** Most rules `weft config autonomy set` may store; also the most one domain.toml may give. */
export const MAX_AUTONOMY_RULES = 10_000;

/** Domain and cartridge names (as cartridge names in sovereignty/package.ts and domains/layout.ts). */
const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** An event type or pattern, as a manifest's `consumes` (sovereignty/package.ts EVENT_PATTERN). */
const EVENT_PATTERN = /^(\*|[A-Za-z0-9_-]+(\.([A-Za-z0-9_-]+|\*))*)$/;
const MAX_EVENT_TYPE = 128;
const MAX_SET_BY = 200;
/** Decisions memoized; past it the memo starts over (event types of a node repeat, so it stays warm). */
const MEMO_LIMIT = 4096;
/** The column value of a field not specified. */
const ANY = '*';

/** What the ranking needs of one rule's event type. */
interface EventShape {
  readonly specified: boolean;
  readonly exact: boolean;
  readonly literals: number;
  readonly segments: number;
  readonly parts: readonly string[];
}

function shapeOf(eventType: string | undefined): EventShape {
  if (eventType === undefined) return { specified: false, exact: false, literals: 0, segments: 0, parts: [] };
  const parts = eventType.split('.');
  const literals = parts.filter((p) => p !== '*').length;
  return { specified: true, exact: literals === parts.length, literals, segments: parts.length, parts };
}

function matches(rule: AutonomyRule, q: AutonomyQuery): boolean {
  if (rule.domain !== undefined && rule.domain !== q.domain) return false;
  if (rule.cartridge !== undefined && rule.cartridge !== q.cartridge) return false;
  if (rule.eventType === undefined) return true;
  return rule.eventType === q.eventType || consumesEventType({ consumes: [rule.eventType] }, q.eventType);
}

const flag = (b: boolean): number => (b ? 1 : 0);

/**
 * Negative when `a` is more specific than `b`. The tiers are (event type given, cartridge given,
 * domain given); inside a tier an exact event type beats a pattern, a pattern with more literal
 * segments beats one with fewer, then one with more segments; then `cli` beats `domain.toml`,
 * then the more recently set. What is still tied after that (say `build.*.x` and `build.x.*`)
 * goes to the pattern whose first literal comes earlier, then to the key in code-point order, so
 * the answer never depends on the order the rules were listed in.
 */
function compareRules(a: AutonomyRule, b: AutonomyRule, sa: EventShape, sb: EventShape): number {
  const tuple = (r: AutonomyRule, s: EventShape): number[] => [
    flag(s.specified),
    flag(r.cartridge !== undefined),
    flag(r.domain !== undefined),
    flag(s.exact),
    s.literals,
    s.segments,
    flag(r.source === 'cli'),
    r.setAt ?? Number.NEGATIVE_INFINITY,
  ];
  const ta = tuple(a, sa);
  const tb = tuple(b, sb);
  for (let i = 0; i < ta.length; i++) {
    const d = (tb[i] as number) - (ta[i] as number);
    if (d !== 0 && !Number.isNaN(d)) return d;
  }
  for (let i = 0; i < Math.min(sa.parts.length, sb.parts.length); i++) {
    const la = sa.parts[i] !== '*';
    const lb = sb.parts[i] !== '*';
    if (la !== lb) return la ? -1 : 1;
  }
  const ka = keyString(a);
  const kb = keyString(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

function keyString(r: AutonomyKey): string {
  return `${r.domain ?? ANY}\u0000${r.cartridge ?? ANY}\u0000${r.eventType ?? ANY}`;
}

/**
 * A rule in words, e.g. "cartridge rule poster in domain marketing (from domain.toml)".
 * @example
 * describeAutonomyRule({ eventType: 'build.failed', domain: 'marketing', level: 'L1', source: 'cli', setBy: 'ada' });
 * // "event type rule build.failed in domain marketing (set by ada)"
 */
export function describeAutonomyRule(r: AutonomyRule): string {
  const words: string[] = [];
  if (r.eventType !== undefined) {
    words.push(`event type rule ${r.eventType}`);
    if (r.cartridge !== undefined) words.push(`for cartridge ${r.cartridge}`);
  } else if (r.cartridge !== undefined) {
    words.push(`cartridge rule ${r.cartridge}`);
  } else if (r.domain !== undefined) {
    words.push(`domain rule ${r.domain}`);
  } else {
    words.push('rule for every decision');
  }
  if (r.domain !== undefined && (r.eventType !== undefined || r.cartridge !== undefined))
    words.push(`in domain ${r.domain}`);
  const from =
    r.source === 'domain.toml' ? 'from domain.toml' : `set by ${r.setBy ?? 'weft config autonomy'}`;
  return `${words.join(' ')} (${from})`;
}

/**
 * The level of one decision: the most specific matching rule (event type > cartridge > domain),
 * or `globalDefault` when none matches. Pure: the same rules and query give the same decision,
 * whatever order the rules come in.
 * @example
 * const rules: AutonomyRule[] = [
 *   { domain: 'marketing', level: 'L2', source: 'domain.toml' },
 *   { domain: 'marketing', eventType: 'post.*', level: 'L1', source: 'cli', setBy: 'ada' },
 * ];
 * resolveAutonomy(rules, { domain: 'marketing', cartridge: 'poster', eventType: 'post.published' }, 'L3').level; // 'L1'
 */
export function resolveAutonomy(
  rules: readonly AutonomyRule[],
  query: AutonomyQuery,
  globalDefault: AutonomyLevel,
): AutonomyDecision {
  const matching: Array<{ rule: AutonomyRule; shape: EventShape }> = [];
  for (const rule of rules) if (matches(rule, query)) matching.push({ rule, shape: shapeOf(rule.eventType) });
  if (matching.length === 0) {
    return {
      level: globalDefault,
      rule: null,
      reason: `global default autonomy.domain_default = ${globalDefault}`,
      considered: [],
    };
  }
  matching.sort((a, b) => compareRules(a.rule, b.rule, a.shape, b.shape));
  const best = (matching[0] as { rule: AutonomyRule }).rule;
  return {
    level: best.level,
    rule: best,
    reason: describeAutonomyRule(best),
    considered: matching.map((m) => m.rule),
  };
}

function checkName(field: 'domain' | 'cartridge', v: unknown, where = ''): string {
  if (typeof v !== 'string' || !NAME.test(v)) {
    throw new ValidationError(
      `${where}${field} ${JSON.stringify(v)} is invalid: a ${field} name is lowercase letters, digits, '.', '_' or '-', starting with a letter or digit, at most 64 characters`,
      { field },
    );
  }
  return v;
}

function checkEventType(v: unknown, where = ''): string {
  if (typeof v !== 'string' || v.length > MAX_EVENT_TYPE || !EVENT_PATTERN.test(v)) {
    throw new ValidationError(
      `${where}eventType ${JSON.stringify(v)} is invalid: an event type such as "build.failed", or a pattern whose segments after the first may be "*" (e.g. "build.*"), at most ${MAX_EVENT_TYPE} characters`,
      { field: 'eventType' },
    );
  }
  if (v === '*') {
    throw new ValidationError(
      `${where}eventType "*" matches every event type: leave the event type out to set a cartridge or domain rule`,
      {
        field: 'eventType',
      },
    );
  }
  return v;
}

function checkLevel(v: unknown, where = ''): AutonomyLevel {
  if (!AUTONOMY_LEVELS.includes(v as AutonomyLevel)) {
    throw new ValidationError(
      `${where}level ${JSON.stringify(v)} is invalid: it must be L1 (held for a human), L2 (done, the domain's admins told) or L3 (done)`,
      {
        field: 'level',
      },
    );
  }
  return v as AutonomyLevel;
}

/** The key with each given field checked; at least one must be given. */
function checkKey(k: AutonomyKey): AutonomyKey {
  const key: AutonomyKey = {};
  if (k.domain !== undefined) key.domain = checkName('domain', k.domain);
  if (k.cartridge !== undefined) key.cartridge = checkName('cartridge', k.cartridge);
  if (k.eventType !== undefined) key.eventType = checkEventType(k.eventType);
  if (key.domain === undefined && key.cartridge === undefined && key.eventType === undefined) {
    throw new ValidationError(
      'domain, cartridge, eventType: give at least one; the level when no rule matches is the config key autonomy.domain_default (weft config show)',
      { field: 'domain' },
    );
  }
  return key;
}

interface RuleRow {
  domain: string;
  cartridge: string;
  event_type: string;
  level: AutonomyLevel;
  set_at: number;
  set_by: string | null;
}

function ruleOfRow(r: RuleRow): AutonomyRule {
  return {
    ...(r.domain !== ANY ? { domain: r.domain } : {}),
    ...(r.cartridge !== ANY ? { cartridge: r.cartridge } : {}),
    ...(r.event_type !== ANY ? { eventType: r.event_type } : {}),
    level: r.level,
    source: 'cli',
    setAt: r.set_at,
    ...(r.set_by !== null ? { setBy: r.set_by } : {}),
  };
}

function byKey(a: AutonomyRule, b: AutonomyRule): number {
  const ka = keyString(a);
  const kb = keyString(b);
  if (ka !== kb) return ka < kb ? -1 : 1;
  return a.source === b.source ? 0 : a.source === 'cli' ? -1 : 1;
}

/**
 * The node's autonomy matrix: rules set with `weft config autonomy` (stored in the node's
 * SQLite file) and rules from each domain's `domain.toml` (in memory), resolved without SQL.
 * @example
 * const matrix = new AutonomyMatrix(ns.store, { globalDefault: cfg.autonomy.domain_default });
 * await matrix.set({ domain: 'marketing', cartridge: 'poster', level: 'L2', setBy: 'ada' });
 * matrix.resolve({ domain: 'marketing', cartridge: 'poster', eventType: 'post.published' }).level; // 'L2'
 */
export class AutonomyMatrix {
  readonly globalDefault: AutonomyLevel;
  private readonly maxRules: number;
  /** Stored rules, loaded on first use and after every set/unset. */
  private stored: AutonomyRule[] | undefined;
  /** domain.toml rules by domain. */
  private readonly fileRules = new Map<string, AutonomyRule[]>();
  /** Every rule by its domain; rules of no domain under ANY. Rebuilt when a rule changes. */
  private index: Map<string, AutonomyRule[]> | undefined;
  private readonly memo = new Map<string, AutonomyDecision>();

  constructor(
    readonly store: Store,
    init: AutonomyMatrixInit,
  ) {
    this.globalDefault = checkLevel(init.globalDefault, 'autonomy.domain_default: ');
    this.maxRules = init.maxRules ?? MAX_AUTONOMY_RULES;
  }

  /**
   * Stores a rule (replacing one with the same domain, cartridge and event type).
   * @throws {ValidationError} naming the field that is invalid; `WEFT_LIMIT` past the rule limit.
   * @example
   * await matrix.set({ domain: 'marketing', eventType: 'post.*', level: 'L1', setBy: 'ada' });
   */
  async set(input: AutonomyRuleInput): Promise<AutonomyRule> {
    const key = checkKey(input);
    const level = checkLevel(input.level);
    if (input.setBy !== undefined && (typeof input.setBy !== 'string' || input.setBy.length > MAX_SET_BY)) {
      throw new ValidationError(`setBy must be text of at most ${MAX_SET_BY} characters`, { field: 'setBy' });
    }
    const setAt = this.store.clock.now();
    const row = [key.domain ?? ANY, key.cartridge ?? ANY, key.eventType ?? ANY] as const;
    await this.store.write(() => {
      const db = this.store.db;
      const exists = db
        .prepare('SELECT 1 FROM autonomy_rules WHERE domain = ? AND cartridge = ? AND event_type = ?')
        .get(...row);
      if (!exists) {
        const { n } = db.prepare('SELECT COUNT(*) AS n FROM autonomy_rules').get() as { n: number };
        if (n >= this.maxRules) {
          throw new WeftError(
            'WEFT_LIMIT',
            `the autonomy matrix holds ${n} rules, the most allowed: remove some with 'weft config autonomy unset' first`,
            {
              details: { rules: n, max: this.maxRules },
            },
          );
        }
      }
      db.prepare(
        `INSERT INTO autonomy_rules (domain, cartridge, event_type, level, set_at, set_by) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(domain, cartridge, event_type) DO UPDATE SET level = excluded.level, set_at = excluded.set_at, set_by = excluded.set_by`,
      ).run(...row, level, setAt, input.setBy ?? null);
    });
    this.reload();
    return {
      ...key,
      level,
      source: 'cli',
      setAt,
      ...(input.setBy !== undefined ? { setBy: input.setBy } : {}),
    };
  }

  /**
   * Removes a stored rule and returns it. Rules from domain.toml are changed in that file.
   * @throws {NotFoundError} when no rule is stored under the key.
   * @example
   * await matrix.unset({ domain: 'marketing', cartridge: 'poster' });
   */
  async unset(k: AutonomyKey): Promise<AutonomyRule> {
    const key = checkKey(k);
    const row = [key.domain ?? ANY, key.cartridge ?? ANY, key.eventType ?? ANY] as const;
    const removed = await this.store.write(() => {
      const db = this.store.db;
      const r = db
        .prepare('SELECT * FROM autonomy_rules WHERE domain = ? AND cartridge = ? AND event_type = ?')
        .get(...row) as RuleRow | undefined;
      if (r)
        db.prepare('DELETE FROM autonomy_rules WHERE domain = ? AND cartridge = ? AND event_type = ?').run(
          ...row,
        );
      return r;
    });
    if (!removed) {
      const err = new NotFoundError('autonomy rule', describeKey(key));
      if (
        key.domain !== undefined &&
        this.fileRules.get(key.domain)?.some((r) => keyString(r) === keyString(key))
      ) {
        err.message += ` in the node's settings (this one comes from domain ${key.domain}'s domain.toml: change it there)`;
      }
      throw err;
    }
    this.reload();
    return ruleOfRow(removed);
  }

  /**
   * Every rule, stored and from domain.toml files, ordered by domain, cartridge and event type.
   * @example
   * for (const r of matrix.list()) console.log(r.source, r.level);
   */
  list(): AutonomyRule[] {
    const all = [...this.storedRules(), ...[...this.fileRules.values()].flat()];
    return all.sort(byKey);
  }

  /**
   * Replaces the rules that come from `domain`'s domain.toml: `level` becomes a domain rule,
   * `cartridges` cartridge rules and `events` event-type rules, all in that domain.
   * Validates everything before replacing anything.
   * @example
   * matrix.setFileRules('marketing', { level: 'L2', cartridges: { poster: 'L1' }, events: { 'post.draft': 'L3' } });
   */
  setFileRules(domain: string, overrides: DomainAutonomyOverrides): void {
    checkName('domain', domain);
    const where = `domain ${domain}'s domain.toml: `;
    const setAt = this.store.clock.now();
    const rules: AutonomyRule[] = [];
    if (overrides.level !== undefined)
      rules.push({ domain, level: checkLevel(overrides.level, where), source: 'domain.toml', setAt });
    for (const [cartridge, level] of Object.entries(overrides.cartridges ?? {})) {
      rules.push({
        domain,
        cartridge: checkName('cartridge', cartridge, where),
        level: checkLevel(level, `${where}cartridge ${cartridge}: `),
        source: 'domain.toml',
        setAt,
      });
    }
    for (const [eventType, level] of Object.entries(overrides.events ?? {})) {
      rules.push({
        domain,
        eventType: checkEventType(eventType, where),
        level: checkLevel(level, `${where}event ${eventType}: `),
        source: 'domain.toml',
        setAt,
      });
    }
    if (rules.length > this.maxRules) {
      throw new ValidationError(
        `${where}${rules.length} autonomy settings, more than the ${this.maxRules} allowed`,
        { field: 'events' },
      );
    }
    if (rules.length === 0) this.fileRules.delete(domain);
    else this.fileRules.set(domain, rules);
    this.changed();
  }

  /** Forgets the rules of `domain`'s domain.toml (the domain was removed). */
  clearFileRules(domain: string): void {
    if (this.fileRules.delete(domain)) this.changed();
  }

  /**
   * The level of one decision. No SQL once the stored rules are loaded (the first call loads them).
   * @example
   * if (matrix.resolve({ domain, cartridge, eventType }).level === 'L1') holdForHuman();
   */
  resolve(query: AutonomyQuery): AutonomyDecision {
    const memoKey = `${query.domain ?? ''}\u0000${query.cartridge}\u0000${query.eventType}`;
    const hit = this.memo.get(memoKey);
    if (hit) return hit;
    const index = this.indexed();
    const none = index.get(ANY) ?? [];
    const inDomain = query.domain === undefined ? [] : (index.get(query.domain) ?? []);
    const decision = resolveAutonomy(
      inDomain.length === 0 ? none : [...inDomain, ...none],
      query,
      this.globalDefault,
    );
    if (this.memo.size >= MEMO_LIMIT) this.memo.clear();
    this.memo.set(memoKey, decision);
    return decision;
  }

  /**
   * The same decision as {@link resolve}, for people: `considered` lists every matching rule,
   * best first, and `reason` names the one that decided.
   * @example
   * const d = matrix.explain({ domain: 'marketing', cartridge: 'poster', eventType: 'post.published' });
   * console.log(d.level, d.reason);
   */
  explain(query: AutonomyQuery): AutonomyDecision {
    return this.resolve(query);
  }

  private storedRules(): AutonomyRule[] {
    if (this.stored === undefined) this.reload();
    return this.stored as AutonomyRule[];
  }

  private reload(): void {
    const rows = this.store.reader
      .prepare('SELECT domain, cartridge, event_type, level, set_at, set_by FROM autonomy_rules')
      .all() as RuleRow[];
    this.stored = rows.map(ruleOfRow);
    this.changed();
  }

  private changed(): void {
    this.index = undefined;
    this.memo.clear();
  }

  private indexed(): Map<string, AutonomyRule[]> {
    if (this.index) return this.index;
    const index = new Map<string, AutonomyRule[]>();
    for (const r of [...this.storedRules(), ...[...this.fileRules.values()].flat()]) {
      const k = r.domain ?? ANY;
      const list = index.get(k);
      if (list) list.push(r);
      else index.set(k, [r]);
    }
    this.index = index;
    return index;
  }
}

function describeKey(k: AutonomyKey): string {
  const parts = [
    ...(k.domain !== undefined ? [`domain=${k.domain}`] : []),
    ...(k.cartridge !== undefined ? [`cartridge=${k.cartridge}`] : []),
    ...(k.eventType !== undefined ? [`eventType=${k.eventType}`] : []),
  ];
  return `{${parts.join(', ')}}`;
}
