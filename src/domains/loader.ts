/**
 * Reads every domain and personal pipeline from the folder hierarchy and validates each one.
 * Nothing runs here: the runner starts what this answers.
 */
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isWeftError } from '../errors/index.js';
import { type CartridgePackage, readPackageDir, sourceDigest } from '../sovereignty/index.js';
import { type DomainConfig, type MemberSubscriptions, readDomainConfig, readMemberSubscriptions } from './domain-config.js';
import { domainDir, layoutOf, memberDir, RESERVED_DOMAINS, SCOPE_NAME } from './layout.js';
import { PipelineValidationError, validatePipeline } from './validate.js';

/** Most domains one node runs. */
export const MAX_DOMAINS = 64;
/** Most cartridges in one domain or personal pipeline. */
export const MAX_PIPELINE_CARTRIDGES = 64;
/** Most members with a personal pipeline. */
export const MAX_PERSONAL_PIPELINES = 1000;

/** One cartridge read from its folder. */
export interface FolderCartridge {
  readonly pkg: CartridgePackage;
  readonly dir: string;
  readonly sha256: string;
}

/** A validated pipeline: a domain's or a member's. */
export interface PipelineDef {
  readonly kind: 'domain' | 'personal';
  /** The domain, or the member. */
  readonly name: string;
  /** `marketing`, or `personal:alice`. */
  readonly scope: string;
  readonly cartridges: readonly FolderCartridge[];
  /** Cartridge names by DAG level. */
  readonly levels: readonly (readonly string[])[];
  readonly timeoutMs: number;
  readonly maxParallel: number;
  readonly emits: readonly string[];
  /** Domains: its settings. */
  readonly domain?: DomainConfig;
  /** Personal: the member's subscriptions and the domains they reach (granted ∩ subscribed). */
  readonly member?: MemberSubscriptions & { readonly reach: readonly string[] };
}

/** A personal pipeline that does not run, and why. */
export interface RefusedPipeline {
  readonly scope: string;
  readonly code: string;
  readonly problem?: string;
  readonly cartridges: readonly string[];
  readonly message: string;
}

/** Every pipeline of a data directory. */
export interface PipelineSet {
  readonly domains: readonly PipelineDef[];
  readonly personal: readonly PipelineDef[];
  /**
   * Personal pipelines that do not validate (the member was removed, lost a role their
   * subscriptions name, a cartridge is not a leaf...): each is left out on its own, so one
   * member's folder never stops the domains or the node.
   */
  readonly refused: readonly RefusedPipeline[];
}

/** What loading needs to know about the node. */
export interface PipelineSetDeps {
  /** Whether the node's catalog knows an event type (a cartridge may only emit known types). */
  knowsEventType(type: string): boolean;
  /** A member's roles by domain, or undefined when there is no such member. */
  rolesOf(member: string): Readonly<Record<string, string>> | undefined;
}

/** The scope name of a member's pipeline. */
export function personalScope(member: string): string {
  return `personal:${member}`;
}

/** Folder names in `dir` (a link to a folder counts; names starting with '.' are Weft's own staging). */
async function subdirs(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const entries = await readdir(dir, { withFileTypes: true });
  const out: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    if (e.isDirectory() || (e.isSymbolicLink() && (await stat(join(dir, e.name)).then((s) => s.isDirectory(), () => false)))) out.push(e.name);
  }
  return out.sort();
}

async function readCartridges(dir: string, label: string): Promise<FolderCartridge[]> {
  const names = await subdirs(dir);
  if (names.length > MAX_PIPELINE_CARTRIDGES) {
    throw new PipelineValidationError('load', label, [], `${names.length} cartridges; a pipeline holds at most ${MAX_PIPELINE_CARTRIDGES}`);
  }
  const out: FolderCartridge[] = [];
  for (const folder of names) {
    const path = join(dir, folder);
    let pkg: CartridgePackage;
    try {
      pkg = await readPackageDir(path);
    } catch (err) {
      throw new PipelineValidationError('load', label, [folder], `cartridge folder ${path} does not load: ${(err as Error).message}`);
    }
    if (pkg.manifest.name !== folder) {
      throw new PipelineValidationError('load', label, [folder, pkg.manifest.name], `cartridge folder ${path} holds cartridge '${pkg.manifest.name}'; the folder must be named after it`);
    }
    out.push({ pkg, dir: path, sha256: sourceDigest(pkg.source) });
  }
  return out;
}

function checkKnownTypes(cartridges: readonly FolderCartridge[], label: string, deps: PipelineSetDeps): void {
  for (const c of cartridges) {
    const unknown = c.pkg.manifest.emits.filter((t) => !deps.knowsEventType(t));
    if (unknown.length > 0) {
      throw new PipelineValidationError('scope', label, [c.pkg.manifest.name], `cartridge '${c.pkg.manifest.name}' emits ${unknown.map((t) => `'${t}'`).join(', ')}, which this node's event catalog does not know`);
    }
  }
}

/**
 * Reads and validates one domain from `<data_dir>/company/domains/<name>/`.
 * @throws {PipelineValidationError} naming the domain and the cartridges; `ConfigError` for domain.toml.
 */
export async function loadDomain(dataDir: string, name: string, deps: PipelineSetDeps): Promise<PipelineDef> {
  const label = `domain '${name}'`;
  if (!SCOPE_NAME.test(name)) {
    throw new PipelineValidationError('load', label, [], `folder name '${name}' is not a domain name (lowercase letters, digits, '.', '_', '-'; at most 64)`);
  }
  if (RESERVED_DOMAINS.has(name)) {
    throw new PipelineValidationError('load', label, [], `'${name}' is one of the node's own event domains and cannot be a domain: remove the folder ${domainDir(dataDir, name)} (or rename it, to a name not reserved: ${[...RESERVED_DOMAINS].join(', ')}), then start or reload again`);
  }
  const dir = domainDir(dataDir, name);
  const config = await readDomainConfig(dir, name);
  const cartridges = await readCartridges(join(dir, 'cartridges'), label);
  checkKnownTypes(cartridges, label, deps);
  const levels = validatePipeline(
    { label, receives: config.subscribeDomains.length > 0 ? null : config.subscribeEvents, emits: config.emits },
    cartridges.map((c) => c.pkg.manifest),
  );
  return { kind: 'domain', name, scope: name, cartridges, levels, timeoutMs: config.timeoutMs, maxParallel: config.maxParallel, emits: config.emits, domain: config };
}

/**
 * Reads and validates a member's personal pipeline from `<data_dir>/personal/<member>/`.
 * @throws {PipelineValidationError} when the member does not exist, subscribes to a domain
 * they hold no role in, or a cartridge is not a leaf or out of scope.
 */
export async function loadPersonal(dataDir: string, member: string, deps: PipelineSetDeps): Promise<PipelineDef> {
  const label = `personal pipeline of '${member}'`;
  const roles = SCOPE_NAME.test(member) ? deps.rolesOf(member) : undefined;
  if (roles === undefined) {
    throw new PipelineValidationError('scope', label, [], `there is no member '${member}' (weft members add ${member}), so ${memberDir(dataDir, member)} cannot run`);
  }
  const dir = memberDir(dataDir, member);
  const subs = await readMemberSubscriptions(dir, member);
  const granted = Object.keys(roles);
  const foreign = subs.domains.filter((d) => !granted.includes(d));
  if (foreign.length > 0) {
    throw new PipelineValidationError('scope', label, [], `subscribes to ${foreign.map((d) => `'${d}'`).join(', ')}, where '${member}' holds no role (weft members grant ${member} <domain> member)`);
  }
  const reach = subs.domains.length > 0 ? subs.domains : granted;
  const cartridges = await readCartridges(join(dir, 'cartridges'), label);
  checkKnownTypes(cartridges, label, deps);
  const levels = validatePipeline(
    { label, receives: subs.events.length > 0 ? subs.events : null, emits: subs.emits, leavesOnly: true },
    cartridges.map((c) => c.pkg.manifest),
  );
  return {
    kind: 'personal',
    name: member,
    scope: personalScope(member),
    cartridges,
    levels,
    timeoutMs: subs.timeoutMs,
    maxParallel: 1,
    emits: subs.emits,
    member: { ...subs, reach },
  };
}

/**
 * Reads every domain and every member folder that holds cartridges, validating each.
 * @throws {PipelineValidationError} on the first pipeline that does not validate.
 * @example
 * const set = await loadPipelineSet(cfg.data_dir, { knowsEventType: (t) => catalog.has(t), rolesOf });
 */
export async function loadPipelineSet(dataDir: string, deps: PipelineSetDeps): Promise<PipelineSet> {
  const layout = layoutOf(dataDir);
  const domainNames = await subdirs(layout.domains);
  if (domainNames.length > MAX_DOMAINS) {
    throw new PipelineValidationError('load', 'company/domains', [], `${domainNames.length} domains; a node runs at most ${MAX_DOMAINS}`);
  }
  const domains: PipelineDef[] = [];
  for (const name of domainNames) domains.push(await loadDomain(dataDir, name, deps));
  const personal: PipelineDef[] = [];
  const refused: RefusedPipeline[] = [];
  const members = await subdirs(layout.personal);
  for (const member of members) {
    // A member folder without cartridges is only settings: nothing runs for it.
    if ((await subdirs(join(layout.personal, member, 'cartridges'))).length === 0) continue;
    if (personal.length + refused.length >= MAX_PERSONAL_PIPELINES) {
      refused.push({ scope: personalScope(member), code: 'WEFT_LIMIT', cartridges: [], message: `more than ${MAX_PERSONAL_PIPELINES} members have cartridges: '${member}' is left out` });
      continue;
    }
    try {
      personal.push(await loadPersonal(dataDir, member, deps));
    } catch (err) {
      if (!isWeftError(err)) throw err;
      const v = err instanceof PipelineValidationError ? err : undefined;
      refused.push({ scope: personalScope(member), code: err.code, ...(v ? { problem: v.problem } : {}), cartridges: [...(v?.cartridges ?? [])], message: err.message });
    }
  }
  return { domains, personal, refused };
}

/** A validation problem as an answer (for `weft pipeline validate`), or undefined for other errors. */
export function describeProblem(err: unknown): { code: string; scope?: string; problem?: string; cartridges?: string[]; message: string } | undefined {
  if (err instanceof PipelineValidationError) {
    return { code: err.code, scope: err.scope, problem: err.problem, cartridges: [...err.cartridges], message: err.message };
  }
  if (isWeftError(err)) return { code: err.code, message: err.message };
  return undefined;
}
