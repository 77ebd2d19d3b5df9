/**
 * domain.toml (a domain's settings) and subscriptions.toml (a member's), read and checked.
 * Every error names the file and the key.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { ConfigError } from '../errors/index.js';
import type { AutonomyLevel } from '../sovereignty/index.js';
import { SCOPE_NAME } from './layout.js';

const PATTERN = /^(\*|[A-Za-z0-9_-]+(\.([A-Za-z0-9_-]+|\*))*)$/;
/** An event type or a pattern that names its first segment (what the autonomy matrix takes: `*` alone is the domain's `level`). */
const RULE_PATTERN = /^[A-Za-z0-9_-]+(\.([A-Za-z0-9_-]+|\*))*$/;
const LEVELS: readonly AutonomyLevel[] = ['L1', 'L2', 'L3'];

/** Who judges what is submitted to a domain. */
export interface DomainGuardianConfig {
  /** The built-in rule guardian (size, forbidden constructs, emitted types). Default true. */
  readonly rules: boolean;
  /** A program that reads the cartridge as JSON on stdin and answers `{"approve": bool, "reason": "..."}`. */
  readonly command?: string;
  readonly timeoutMs: number;
  /** Largest source the rule guardian accepts, bytes. Default 65,536. */
  readonly maxSourceBytes: number;
}

/** A domain's `[autonomy]` table: levels by domain, by cartridge and by event type. */
export interface DomainAutonomyConfig {
  readonly level?: AutonomyLevel;
  readonly cartridges: Readonly<Record<string, AutonomyLevel>>;
  readonly events: Readonly<Record<string, AutonomyLevel>>;
}

/** One domain's settings. */
export interface DomainConfig {
  readonly name: string;
  readonly description: string;
  readonly enabled: boolean;
  /** Events whose envelope `domain` is one of these go to the domain. Default: its own name. */
  readonly subscribeDomains: readonly string[];
  /** Events whose type matches one of these go to the domain too. Default none. */
  readonly subscribeEvents: readonly string[];
  /** Types its cartridges may emit. Default `domains.alert` and `domain.<name>.*`. */
  readonly emits: readonly string[];
  /** Time one cartridge may take on one event, ms. Default 1,000. */
  readonly timeoutMs: number;
  /** Sandbox processes one DAG level may use at once. Default 4. */
  readonly maxParallel: number;
  readonly guardian: DomainGuardianConfig;
  readonly autonomy: DomainAutonomyConfig;
}

/** A member's subscriptions: what their personal cartridges see. */
export interface MemberSubscriptions {
  readonly member: string;
  /** Domains (of those the member holds a role in) whose events reach the member's cartridges. Empty: all of them. */
  readonly domains: readonly string[];
  /** Event-type patterns; empty: every type. */
  readonly events: readonly string[];
  /** Types the member's cartridges may emit. Default `domains.alert`. */
  readonly emits: readonly string[];
  readonly timeoutMs: number;
}

/** The default emit scope of a domain. */
export function defaultDomainEmits(name: string): string[] {
  return ['domains.alert', `domain.${name}.*`];
}

class Reader {
  constructor(
    private readonly file: string,
    private readonly t: Record<string, unknown>,
    private readonly prefix = '',
  ) {}

  private fail(key: string, expected: string, got?: unknown): never {
    const shown = got === undefined ? '' : ` (got ${JSON.stringify(got)?.slice(0, 80)})`;
    throw new ConfigError(`${this.file}: ${this.prefix}${key} must be ${expected}${shown}`, { file: this.file, key: `${this.prefix}${key}` });
  }

  known(keys: readonly string[]): void {
    for (const k of Object.keys(this.t)) {
      if (!keys.includes(k)) this.fail(k, `one of the known keys (${keys.join(', ')}); '${k}' is not one`);
    }
  }

  string(key: string, def: string): string {
    const v = this.t[key];
    if (v === undefined) return def;
    if (typeof v !== 'string' || v.length > 2000) this.fail(key, 'a string of at most 2000 characters', v);
    return v;
  }

  bool(key: string, def: boolean): boolean {
    const v = this.t[key];
    if (v === undefined) return def;
    if (typeof v !== 'boolean') this.fail(key, 'true or false', v);
    return v;
  }

  int(key: string, def: number, min: number, max: number): number {
    const v = this.t[key];
    if (v === undefined) return def;
    if (typeof v !== 'number' && typeof v !== 'bigint') this.fail(key, `a whole number from ${min} to ${max}`, String(v));
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) this.fail(key, `a whole number from ${min} to ${max}`, n);
    return n;
  }

  list(key: string, def: readonly string[], re: RegExp, what: string): string[] {
    const v = this.t[key];
    if (v === undefined) return [...def];
    if (!Array.isArray(v) || v.length > 256 || v.some((x) => typeof x !== 'string' || !re.test(x))) {
      this.fail(key, `a list (at most 256) of ${what}`, v);
    }
    return [...new Set(v as string[])];
  }

  level(key: string, v: unknown): AutonomyLevel {
    if (typeof v !== 'string' || !LEVELS.includes(v as AutonomyLevel)) this.fail(key, '"L1", "L2" or "L3"', v);
    return v as AutonomyLevel;
  }

  levels(key: string, re: RegExp, what: string): Record<string, AutonomyLevel> {
    const v = this.t[key];
    if (v === undefined) return {};
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(key, `a table of ${what} = "L1" | "L2" | "L3"`, v);
    const out: Record<string, AutonomyLevel> = {};
    for (const [k, lv] of Object.entries(v as Record<string, unknown>)) {
      if (!re.test(k)) this.fail(`${key}.${k}`, `named by ${what}`);
      out[k] = this.level(`${key}.${k}`, lv);
    }
    return out;
  }

  table(key: string): Reader {
    const v = this.t[key];
    if (v === undefined) return new Reader(this.file, {}, `${this.prefix}${key}.`);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(key, 'a table', v);
    return new Reader(this.file, v as Record<string, unknown>, `${this.prefix}${key}.`);
  }

  raw(key: string): unknown {
    return this.t[key];
  }
}

async function readToml(file: string): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`, { file });
  }
  if (text.length > 256 * 1024) throw new ConfigError(`${file} is larger than 256 KiB`, { file });
  try {
    return parseToml(text) as Record<string, unknown>;
  } catch (err) {
    // smol-toml says where: keep its position lines, not its code frame.
    const lines = (err as Error).message.split('\n').filter((l) => l.trim() !== '' && !/^\s*\d*\s*[|│]/.test(l));
    throw new ConfigError(`${file} is not valid TOML: ${lines.slice(0, 2).join(' ')}`, { file });
  }
}

/**
 * Reads `<dir>/domain.toml` (absent: every default). The domain's name is its folder's.
 * @throws {ConfigError} naming the file and the key.
 */
export async function readDomainConfig(dir: string, name: string): Promise<DomainConfig> {
  const file = join(dir, 'domain.toml');
  const t = new Reader(file, (await readToml(file)) ?? {});
  t.known(['description', 'enabled', 'subscribe', 'emits', 'timeout_ms', 'max_parallel', 'guardian', 'autonomy']);
  const sub = t.table('subscribe');
  sub.known(['domains', 'events']);
  const g = t.table('guardian');
  g.known(['rules', 'command', 'timeout_ms', 'max_source_bytes']);
  const a = t.table('autonomy');
  a.known(['level', 'cartridges', 'events']);
  const command = g.string('command', '');
  const level = a.raw('level');
  return {
    name,
    description: t.string('description', ''),
    enabled: t.bool('enabled', true),
    subscribeDomains: sub.list('domains', [name], /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'envelope domain names'),
    subscribeEvents: sub.list('events', [], PATTERN, 'event-type patterns such as "build.*"'),
    emits: t.list('emits', defaultDomainEmits(name), PATTERN, 'event-type patterns'),
    timeoutMs: t.int('timeout_ms', 1000, 10, 600_000),
    maxParallel: t.int('max_parallel', 4, 1, 16),
    guardian: {
      rules: g.bool('rules', true),
      ...(command ? { command } : {}),
      timeoutMs: g.int('timeout_ms', 10_000, 100, 600_000),
      maxSourceBytes: g.int('max_source_bytes', 64 * 1024, 1024, 256 * 1024),
    },
    autonomy: {
      ...(level === undefined ? {} : { level: a.level('level', level) }),
      cartridges: a.levels('cartridges', SCOPE_NAME, 'cartridge names'),
      events: a.levels('events', RULE_PATTERN, 'event types or patterns such as "build.*" (the whole domain is `level`)'),
    },
  };
}

/**
 * Reads `<dir>/subscriptions.toml` of a member (absent: every default).
 * @throws {ConfigError} naming the file and the key.
 */
export async function readMemberSubscriptions(dir: string, member: string): Promise<MemberSubscriptions> {
  const file = join(dir, 'subscriptions.toml');
  const t = new Reader(file, (await readToml(file)) ?? {});
  t.known(['domains', 'events', 'emits', 'timeout_ms']);
  return {
    member,
    domains: t.list('domains', [], SCOPE_NAME, 'domain names'),
    events: t.list('events', [], PATTERN, 'event-type patterns'),
    emits: t.list('emits', ['domains.alert'], PATTERN, 'event-type patterns'),
    timeoutMs: t.int('timeout_ms', 1000, 10, 600_000),
  };
}

/** The domain.toml `weft domains create` writes: every key, commented. */
export function domainTemplate(name: string, description = ''): string {
  return `# Domain '${name}'. Every key is optional; the values shown are the defaults.
description = ${JSON.stringify(description)}
enabled = true

# Event types this domain's cartridges may emit (scope: a cartridge declaring more is refused).
emits = ["domains.alert", "domain.${name}.*"]

timeout_ms = 1000      # one cartridge on one event; past it the event fails for that cartridge
max_parallel = 4       # sandbox processes one level of the dependency DAG may use at once

# Which events reach this domain's pipeline (after the system pipeline):
# those whose envelope domain is listed, and those whose type matches a pattern.
[subscribe]
domains = ["${name}"]
events = []            # e.g. ["build.*", "signal.synthesis.ready"]

# Who judges cartridges submitted to this domain.
[guardian]
rules = true           # built-in checks: size, forbidden constructs, emitted types
# command = "my-guardian --domain ${name}"   # reads the cartridge as JSON, answers {"approve": bool, "reason": "..."}
timeout_ms = 10000

# Autonomy of this domain's cartridges: L1 held for an admin, L2 done and admins told, L3 done.
# Most specific wins: event type > cartridge > domain > global (autonomy.domain_default).
[autonomy]
# level = "L3"
[autonomy.cartridges]
# digest = "L2"
[autonomy.events]
# "domains.alert" = "L3"
`;
}
