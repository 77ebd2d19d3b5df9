/**
 * Installing, removing and promoting domain and personal cartridges: each change is judged
 * (the domain's guardian), decided at the domain's autonomy level for `cartridge.install`,
 * validated with the rest of its pipeline before it runs (a change that would not validate is
 * undone), announced as an event and written to the audit log.
 */
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DOMAIN_EVENTS } from '../catalog/index.js';
import type { EmitInput } from '../envelope/index.js';
import { IllegalTransitionError, WeftError } from '../errors/index.js';
import {
  type AutonomyLevel,
  type CartridgePackage,
  type CartridgeRuntime,
  chainGuardians,
  commandGuardian,
  type Guardian,
  guardianRequest,
  readPackageDir,
  ruleGuardian,
  sourceDigest,
  validatePackage,
  writePackageDir,
} from '../sovereignty/index.js';
import type { DomainConfig, DomainGuardianConfig } from './domain-config.js';
import { domainDir, memberDir, SCOPE_NAME } from './layout.js';
import { personalScope, type PipelineDef } from './loader.js';
import { type Principal, roleIn } from './members.js';
import { type Clock, systemClock } from '../util/index.js';
import type { DomainRunner } from './runner.js';
import { validatePipeline } from './validate.js';

/** Who asks: the node's own token, or a member with their roles. */
export type Requester = Principal;

/** What became of a submission. */
export interface LifecycleResult {
  readonly state: 'installed' | 'submitted' | 'pending_activation';
  readonly scope: string;
  readonly cartridge: string;
  readonly version: string;
  readonly autonomy?: AutonomyLevel;
  readonly guardian?: string;
  readonly message: string;
}

/** Collaborators of the lifecycle. */
export interface DomainLifecycleDeps {
  dataDir: string;
  runner: Pick<DomainRunner, 'pipelines' | 'reload'>;
  /** The node's emit of many events. */
  emitMany(inputs: readonly EmitInput[]): Promise<unknown>;
  knowsEventType(type: string): boolean;
  /** The level of a decision in a domain and the rule that decided it (the autonomy matrix's `resolve`). */
  autonomy(query: { domain: string; cartridge: string; eventType: string }): { level: AutonomyLevel; reason: string; rule: { eventType?: string } | null };
  /** `autonomy.cartridge_install`: the level when no rule of the matrix names the install. */
  installDefault: AutonomyLevel;
  /** The audit log's `record`. */
  audit(kind: string, details: Record<string, unknown>, success: boolean): Promise<unknown>;
  /** The platform's cartridge runtime (promotion domain → platform). */
  platform?: Pick<CartridgeRuntime, 'install'>;
  /** Whether a member of this name exists (a personal pipeline needs one to run). */
  memberExists?(name: string): boolean;
  /** The node's clock (default the system's): the time a submission carries. */
  clock?: Pick<Clock, 'now'>;
}

/** The decision type installs are resolved for in the autonomy matrix. */
export const INSTALL_DECISION = 'cartridge.install';

/**
 * The level a cartridge install into a domain gets: only a rule that names the install decides
 * it (a domain or cartridge rule about actions does not open installs to members); otherwise
 * `autonomy.cartridge_install`. One rule for the install and for `weft config autonomy explain`.
 */
export function installDecision<D extends { level: AutonomyLevel; reason: string; rule: { eventType?: string } | null }>(decision: D, installDefault: AutonomyLevel): D {
  if (decision.rule?.eventType !== undefined) return decision;
  return {
    ...decision,
    level: installDefault,
    rule: null,
    reason: `autonomy.cartridge_install = ${installDefault} (no rule names ${INSTALL_DECISION}${decision.rule ? `; ${decision.reason} is about actions, not installs` : ''})`,
  };
}

function by(r: Requester): string {
  return r.kind === 'node' ? 'node' : r.name;
}

/** The node, or the member's own role in the domain (members.ts's `roleIn`: own keys only). */
function roleOf(r: Requester, domain: string): 'node' | 'admin' | 'member' | undefined {
  return r.kind === 'node' ? 'node' : roleIn(r, domain);
}

function forbidden(message: string): WeftError {
  return new WeftError('WEFT_FORBIDDEN', message);
}

/** Domain and personal cartridges: install, remove, approve, promote. */
export class DomainLifecycle {
  constructor(private readonly deps: DomainLifecycleDeps) {}

  private domain(name: string): PipelineDef {
    const d = this.deps.runner.pipelines.domains.find((x) => x.name === name);
    if (!d?.domain) throw new WeftError('WEFT_NOT_FOUND', `no domain '${name}' (create it: weft domains create ${name})`, { details: { domain: name } });
    return d;
  }

  private guardian(cfg: DomainGuardianConfig, pipeline: PipelineDef): Guardian {
    const names = new Set(pipeline.cartridges.map((c) => c.pkg.manifest.name));
    const list: Guardian[] = [];
    if (cfg.rules) {
      list.push(ruleGuardian({ maxSourceBytes: cfg.maxSourceBytes })({ hasDependency: (n) => names.has(n), knowsEventType: (t) => this.deps.knowsEventType(t) }));
    }
    if (cfg.command) list.push(commandGuardian({ command: cfg.command, timeoutMs: cfg.timeoutMs }));
    return list.length === 0 ? { name: 'none', judge: async () => ({ approve: true, reason: 'no guardian configured', guardian: 'none' }) } : chainGuardians(list);
  }

  /**
   * Submits a cartridge to a domain. Members and admins of the domain may submit. The guardian
   * judges it first (a refusal ends here); then the level for `cartridge.install` decides: at
   * L1 a member's submission waits in `incoming/` for an admin (an admin's own counts as the
   * approval), at L2 and L3 it is installed (L2 tells the admins).
   * @throws {WeftError} `WEFT_FORBIDDEN` without a role, `WEFT_CARTRIDGE_REFUSED` when the
   * guardian refuses (or cannot judge), `WEFT_PIPELINE_INVALID` when the domain would not
   * validate with it.
   */
  async submitToDomain(domain: string, raw: CartridgePackage, requester: Requester): Promise<LifecycleResult> {
    const role = roleOf(requester, domain);
    if (!role) throw forbidden(`'${by(requester)}' holds no role in domain '${domain}'`);
    const pkg = validatePackage(raw);
    const def = this.domain(domain);
    const name = pkg.manifest.name;
    const same = def.cartridges.find((c) => c.pkg.manifest.name === name);
    if (same && same.pkg.manifest.version === pkg.manifest.version && same.sha256 === sourceDigest(pkg.source)) {
      return { state: 'installed', scope: domain, cartridge: name, version: pkg.manifest.version, message: `${name} ${pkg.manifest.version} is already installed in domain ${domain} (same source): nothing changed` };
    }
    // The composition first: a submission that would not validate with its pipeline is refused before anyone judges it.
    const others = def.cartridges.filter((c) => c.pkg.manifest.name !== name).map((c) => c.pkg.manifest);
    const cfg = def.domain as DomainConfig;
    const levels = validatePipeline(
      { label: `domain '${domain}'`, receives: cfg.subscribeDomains.length > 0 ? null : cfg.subscribeEvents, emits: cfg.emits },
      [...others, pkg.manifest],
    );
    // A guardian command also sees the domain and the composition it would join (to judge the whole, not the part).
    const request = {
      ...guardianRequest(pkg, { origin: `member:${by(requester)}` }),
      domain,
      composition: { levels, cartridges: [...others, pkg.manifest].map((m) => ({ name: m.name, version: m.version, dependencies: m.dependencies, consumes: m.consumes, emits: m.emits, outputs: m.outputs ?? [] })) },
    };
    const verdict = await this.guardian(cfg.guardian, def).judge(request);
    const base = { domain, cartridge: name, version: pkg.manifest.version, by: by(requester), sha256: sourceDigest(pkg.source) };
    if (!verdict.approve) {
      await this.deps.audit('domain.cartridge.refused', { ...base, guardian: verdict.reason }, false);
      throw new WeftError('WEFT_CARTRIDGE_REFUSED', `domain '${domain}' guardian (${verdict.guardian}) refused '${name}': ${verdict.reason}`, { details: { domain, cartridge: name, guardian: verdict.guardian } });
    }
    const { level } = installDecision(this.deps.autonomy({ domain, cartridge: name, eventType: INSTALL_DECISION }), this.deps.installDefault);
    if (level === 'L1' && role === 'member') {
      const incoming = join(domainDir(this.deps.dataDir, domain), 'incoming', name);
      await rm(incoming, { recursive: true, force: true });
      await writePackageDir(incoming, pkg);
      // Its time makes each submission a notification: the same package submitted again after
      // an admin refused it must be answerable, not dropped as a repeat of the answered one.
      await this.deps.emitMany([{ event: DOMAIN_EVENTS.cartridgeSubmitted, source: 'domains', domain, payload: { ...base, guardian: verdict.reason.slice(0, 2000), submittedAt: new Date((this.deps.clock ?? systemClock).now()).toISOString() } }]);
      await this.deps.audit('domain.cartridge.submitted', { ...base, autonomy: level }, true);
      return { state: 'submitted', scope: domain, cartridge: name, version: pkg.manifest.version, autonomy: level, guardian: verdict.reason, message: `submitted ${name} ${pkg.manifest.version} to domain ${domain}: an admin of ${domain} approves it (notification domains.cartridge.submitted)` };
    }
    await this.place(domainDir(this.deps.dataDir, domain), pkg);
    await this.deps.emitMany([{ event: DOMAIN_EVENTS.cartridgeInstalled, source: 'domains', domain, payload: { ...base, autonomy: level, guardian: verdict.reason.slice(0, 2000) } }]);
    await this.deps.audit('domain.cartridge.installed', { ...base, autonomy: level }, true);
    return { state: 'installed', scope: domain, cartridge: name, version: pkg.manifest.version, autonomy: level, guardian: verdict.reason, message: `installed ${name} ${pkg.manifest.version} into domain ${domain} (${level}; guardian: ${verdict.reason})` };
  }

  /**
   * Answers a `domains.cartridge.submitted` notification: approving installs what waits in
   * `incoming/`, refusing deletes it. Only an admin of the domain (or the node) may answer.
   */
  async answerSubmission(payload: Record<string, unknown>, approve: boolean, requester: Requester): Promise<LifecycleResult | undefined> {
    const domain = String(payload.domain ?? '');
    const name = String(payload.cartridge ?? '');
    const role = roleOf(requester, domain);
    if (role !== 'admin' && role !== 'node') throw forbidden(`only an admin of domain '${domain}' may answer a submission to it`);
    const incoming = join(domainDir(this.deps.dataDir, domain), 'incoming', name);
    if (!SCOPE_NAME.test(name) || !existsSync(incoming)) throw new WeftError('WEFT_NOT_FOUND', `nothing of '${name}' waits in domain '${domain}' (answered already?)`, { details: { domain, cartridge: name } });
    const base = { domain, cartridge: name, by: by(requester) };
    // The answer is about the package the notification named: a newer submission of the same
    // name waits for its own answer.
    const pkg = await readPackageDir(incoming);
    if (typeof payload.sha256 === 'string' && sourceDigest(pkg.source) !== payload.sha256) {
      throw new WeftError('WEFT_CONFLICT', `'${name}' in domain '${domain}' was submitted again since this notification; answer the newer one`, { details: { domain, cartridge: name } });
    }
    if (!approve) {
      await rm(incoming, { recursive: true, force: true });
      await this.deps.audit('domain.cartridge.rejected', base, true);
      return undefined;
    }
    await this.place(domainDir(this.deps.dataDir, domain), pkg);
    await rm(incoming, { recursive: true, force: true });
    const payloadOut = { ...base, version: pkg.manifest.version, sha256: sourceDigest(pkg.source), autonomy: 'L1' as const };
    await this.deps.emitMany([{ event: DOMAIN_EVENTS.cartridgeInstalled, source: 'domains', domain, payload: payloadOut }]);
    await this.deps.audit('domain.cartridge.installed', payloadOut, true);
    return { state: 'installed', scope: domain, cartridge: name, version: pkg.manifest.version, autonomy: 'L1', message: `installed ${name} ${pkg.manifest.version} into domain ${domain} (approved by ${by(requester)})` };
  }

  /** Installs a cartridge into a member's personal pipeline: the member or the node may; the rule guardian judges. */
  async installPersonal(member: string, raw: CartridgePackage, requester: Requester): Promise<LifecycleResult> {
    if (requester.kind === 'member' && requester.name !== member) throw forbidden(`'${requester.name}' may not install into the personal pipeline of '${member}'`);
    if (!SCOPE_NAME.test(member)) throw new WeftError('WEFT_VALIDATION', `'${member}' is not a member name`);
    // Installed for nobody it would never run, and the install would say it worked.
    if (this.deps.memberExists && !this.deps.memberExists(member))
      throw new WeftError('WEFT_NOT_FOUND', `there is no member '${member}': add one first ('weft members add ${member} --role <domain>:member')`);
    const pkg = validatePackage(raw);
    const verdict = await ruleGuardian()({ hasDependency: () => false, knowsEventType: (t) => this.deps.knowsEventType(t) }).judge(guardianRequest(pkg, { origin: `member:${member}` }));
    const scope = personalScope(member);
    const base = { domain: scope, cartridge: pkg.manifest.name, version: pkg.manifest.version, by: by(requester), sha256: sourceDigest(pkg.source) };
    if (!verdict.approve) {
      await this.deps.audit('domain.cartridge.refused', { ...base, guardian: verdict.reason }, false);
      throw new WeftError('WEFT_CARTRIDGE_REFUSED', `the rule guardian refused '${pkg.manifest.name}': ${verdict.reason}`, { details: { scope, cartridge: pkg.manifest.name, guardian: verdict.guardian } });
    }
    await this.place(memberDir(this.deps.dataDir, member), pkg);
    await this.deps.emitMany([{ event: DOMAIN_EVENTS.cartridgeInstalled, source: 'domains', payload: { ...base, guardian: verdict.reason } }]);
    await this.deps.audit('domain.cartridge.installed', base, true);
    return { state: 'installed', scope, cartridge: pkg.manifest.name, version: pkg.manifest.version, guardian: verdict.reason, message: `installed ${pkg.manifest.name} ${pkg.manifest.version} into the personal pipeline of ${member}` };
  }

  /**
   * Removes a cartridge from a domain (its admins or the node) or a personal pipeline (its
   * member or the node). Refused when another cartridge of the pipeline depends on it.
   */
  async remove(scope: string, name: string, requester: Requester): Promise<void> {
    const member = scope.startsWith('personal:') ? scope.slice('personal:'.length) : undefined;
    if (member !== undefined) {
      if (requester.kind === 'member' && requester.name !== member) throw forbidden(`'${requester.name}' may not change the personal pipeline of '${member}'`);
    } else {
      const role = roleOf(requester, scope);
      if (role !== 'admin' && role !== 'node') throw forbidden(`only an admin of domain '${scope}' may remove its cartridges`);
    }
    const root = member !== undefined ? memberDir(this.deps.dataDir, member) : domainDir(this.deps.dataDir, scope);
    const dir = join(root, 'cartridges', name);
    if (!SCOPE_NAME.test(name) || !existsSync(dir)) throw new WeftError('WEFT_NOT_FOUND', `no cartridge '${name}' in ${scope}`, { details: { scope, cartridge: name } });
    const pipeline = [...this.deps.runner.pipelines.domains, ...this.deps.runner.pipelines.personal].find((p) => p.scope === scope);
    const dependents = (pipeline?.cartridges ?? []).filter((c) => c.pkg.manifest.dependencies.includes(name)).map((c) => c.pkg.manifest.name);
    if (dependents.length > 0) {
      throw new IllegalTransitionError(`cannot remove '${name}' from ${scope}: ${dependents.map((d) => `'${d}'`).join(', ')} depend on it; remove them first`, { scope, cartridge: name, dependents });
    }
    const trash = join(root, `.removed-${name}-${Date.now()}`);
    await rename(dir, trash);
    try {
      await this.deps.runner.reload();
    } catch (err) {
      await rename(trash, dir);
      throw err;
    }
    await rm(trash, { recursive: true, force: true });
    await this.deps.emitMany([{ event: DOMAIN_EVENTS.cartridgeRemoved, source: 'domains', ...(member ? {} : { domain: scope }), payload: { domain: scope, cartridge: name, by: by(requester) } }]);
    await this.deps.audit('domain.cartridge.removed', { scope, cartridge: name, by: by(requester) }, true);
  }

  /**
   * Promotes a cartridge one step: from a member's personal pipeline into a domain (a
   * submission, judged and decided like any), or from a domain to the platform (installed as
   * `pending_activation`: `weft cartridges activate` runs it in the system pipeline; node only).
   */
  async promote(from: string, name: string, to: string, requester: Requester): Promise<LifecycleResult> {
    const member = from.startsWith('personal:') ? from.slice('personal:'.length) : undefined;
    const fromRoot = member !== undefined ? memberDir(this.deps.dataDir, member) : domainDir(this.deps.dataDir, from);
    const dir = join(fromRoot, 'cartridges', name);
    if (!SCOPE_NAME.test(name) || !existsSync(dir)) throw new WeftError('WEFT_NOT_FOUND', `no cartridge '${name}' in ${from}`, { details: { scope: from, cartridge: name } });
    const pkg = await readPackageDir(dir);
    let result: LifecycleResult;
    if (to === 'platform') {
      if (member !== undefined) throw new IllegalTransitionError(`a personal cartridge goes to a domain first, then to the platform`, { from, to });
      if (requester.kind !== 'node') throw forbidden('only the node (its own token) promotes to the platform');
      if (!this.deps.platform) throw new WeftError('WEFT_STOPPED', 'the platform cartridge runtime is not running');
      const r = await this.deps.platform.install(pkg, { origin: `domain:${from}` });
      result = { state: 'pending_activation', scope: 'platform', cartridge: name, version: pkg.manifest.version, message: `${name} ${pkg.manifest.version} is installed on the platform, pending activation: weft cartridges activate ${r.cartridge.name}` };
    } else {
      if (member === undefined) throw new IllegalTransitionError(`promotion goes personal → domain → platform; '${from}' → '${to}' is not a step up`, { from, to });
      if (requester.kind === 'member' && requester.name !== member) throw forbidden(`'${requester.name}' may not promote cartridges of '${member}'`);
      result = await this.submitToDomain(to, pkg, requester);
    }
    await this.deps.emitMany([
      { event: DOMAIN_EVENTS.cartridgePromoted, source: 'domains', payload: { cartridge: name, from, to, by: by(requester), state: result.state } },
    ]);
    await this.deps.audit('domain.cartridge.promoted', { cartridge: name, from, to, by: by(requester), state: result.state }, true);
    return result;
  }

  /** Writes a package into `<root>/cartridges/<name>/` and reloads; a change that does not validate is undone. */
  private async place(root: string, pkg: CartridgePackage): Promise<void> {
    const name = pkg.manifest.name;
    const dir = join(root, 'cartridges', name);
    await mkdir(join(root, 'cartridges'), { recursive: true });
    const stamp = Date.now();
    const staged = join(root, `.incoming-${name}-${stamp}`);
    await writePackageDir(staged, pkg);
    const previous = existsSync(dir) ? join(root, `.replaced-${name}-${stamp}`) : undefined;
    if (previous) await rename(dir, previous);
    await rename(staged, dir);
    try {
      await this.deps.runner.reload();
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      if (previous) await rename(previous, dir);
      throw err;
    }
    if (previous) await rm(previous, { recursive: true, force: true });
  }
}
