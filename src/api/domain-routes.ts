/**
 * Domain and personal pipelines over HTTP: list and show them (with their DAG and lane state),
 * validate and reload the folders, and install, remove and promote their cartridges. Members
 * reach `/api/domains/<domain>` of their domains and `/api/personal/<themselves>` (the server's
 * hook); admin-only actions are checked here.
 */
import { isAbsolute } from 'node:path';
import { Type } from '@sinclair/typebox';
import type { ApiRequest, HttpApp } from './http.js';
import { checkPipelineLoads, describeProblem, type DomainLifecycle, type DomainRunner, loadPipelineSet, type PipelineDef, type PipelineSetDeps } from '../domains/index.js';
import { ValidationError, WeftError } from '../errors/index.js';
import { type CartridgePackage, readPackageDir } from '../sovereignty/index.js';
import { assertDomainAccess, principalOf } from './member-auth.js';

/** Collaborators of the domain routes. */
export interface DomainRoutesDeps {
  dataDir: string;
  runner: DomainRunner;
  lifecycle: DomainLifecycle;
  /** What validating the folders needs (the catalog, the members' roles). */
  validation: PipelineSetDeps;
}

const NAME = '^[a-z0-9][a-z0-9._-]{0,63}$';
const DomainParams = Type.Object({ domain: Type.String({ pattern: NAME }) });
const CartridgeParams = Type.Object({ domain: Type.String({ pattern: NAME }), name: Type.String({ pattern: NAME }) });
const MemberParams = Type.Object({ member: Type.String({ pattern: NAME }) });
const MemberCartridgeParams = Type.Object({ member: Type.String({ pattern: NAME }), name: Type.String({ pattern: NAME }) });
const PackageBody = Type.Union([
  Type.Object({ path: Type.String({ minLength: 1, maxLength: 4096 }) }, { additionalProperties: false }),
  Type.Object({ manifest: Type.Record(Type.String(), Type.Unknown()), source: Type.String() }, { additionalProperties: false }),
]);
const PromoteBody = Type.Object({ to: Type.String({ minLength: 1, maxLength: 80 }) }, { additionalProperties: false });

/** A pipeline as the API answers it. */
export function pipelineView(p: PipelineDef) {
  return {
    scope: p.scope,
    kind: p.kind,
    name: p.name,
    description: p.domain?.description ?? '',
    enabled: p.domain?.enabled ?? true,
    subscribe: p.domain ? { domains: p.domain.subscribeDomains, events: p.domain.subscribeEvents } : { domains: p.member?.reach ?? [], events: p.member?.events ?? [] },
    emits: p.emits,
    timeoutMs: p.timeoutMs,
    maxParallel: p.maxParallel,
    levels: p.levels,
    cartridges: p.cartridges.map((c) => ({
      name: c.pkg.manifest.name,
      version: c.pkg.manifest.version,
      author: c.pkg.manifest.author,
      dependencies: c.pkg.manifest.dependencies,
      consumes: c.pkg.manifest.consumes,
      emits: c.pkg.manifest.emits,
      outputs: c.pkg.manifest.outputs ?? [],
      sha256: c.sha256,
    })),
  };
}

/**
 * Every pipeline on disk checked, not applied: `GET /api/pipeline/validate`'s answer, and
 * `weft pipeline validate`'s when no daemon answers. Each cartridge the daemon would start is
 * loaded into a throwaway sandbox, so code that does not load is refused as the daemon would.
 */
export async function validatePipelines(dataDir: string, validation: PipelineSetDeps) {
  try {
    const set = await loadPipelineSet(dataDir, validation);
    // The cartridges the daemon would start, loaded as it loads them (a top level that throws
    // passes every manifest check): one it would refuse is refused here, in its words.
    for (const p of [...set.domains, ...set.personal]) if (p.cartridges.length > 0 && (p.domain?.enabled ?? true)) await checkPipelineLoads(p);
    return { ok: set.refused.length === 0, domains: set.domains.map(pipelineView), personal: set.personal.map(pipelineView), refused: [...set.refused] };
  } catch (err) {
    const problem = describeProblem(err);
    if (!problem) throw err;
    return { ok: false, problem };
  }
}

/** The package of a request body: members send it whole; only the node may name a path on this computer. */
async function packageOf(req: ApiRequest): Promise<CartridgePackage> {
  const body = req.body as { path: string } | { manifest: Record<string, unknown>; source: string };
  if ('path' in body) {
    if (principalOf(req).kind !== 'node') throw new WeftError('WEFT_FORBIDDEN', "a member sends the package itself ({manifest, source}); only the node's token may name a path on this computer");
    if (!isAbsolute(body.path)) throw new ValidationError(`body: path must be absolute (the daemon resolves it on its own computer), got '${body.path}'`);
    return readPackageDir(body.path);
  }
  return { manifest: body.manifest as never, source: body.source };
}

/** The domain and pipeline routes. */
export function domainRoutes(deps: DomainRoutesDeps): (app: HttpApp) => void {
  const { runner, lifecycle } = deps;
  const lanes = () => new Map(runner.status().map((l) => [l.scope, l]));
  const show = (p: PipelineDef) => ({ ...pipelineView(p), lane: lanes().get(p.scope) ?? null });
  const find = (scope: string) => [...runner.pipelines.domains, ...runner.pipelines.personal].find((p) => p.scope === scope);
  /** Pipelines left out of the running set, with why (a personal pipeline that does not validate). */
  const refused = () => runner.pipelines.refused.map((r) => ({ scope: r.scope, code: r.code, message: r.message, cartridges: [...r.cartridges] }));
  const requireNode = (req: ApiRequest, what: string) => {
    if (principalOf(req).kind !== 'node') throw new WeftError('WEFT_FORBIDDEN', `${what} needs the node's token`);
  };
  return (app) => {
    app.get('/api/domains', async () => ({
      domains: runner.pipelines.domains.map(show),
      personal: runner.pipelines.personal.map(show),
      refused: refused(),
      inbox: runner.inbox(),
    }));

    app.get('/api/domains/:domain', { schema: { params: DomainParams } }, async (req) => {
      const { domain } = req.params as { domain: string };
      assertDomainAccess(req, domain, 'member');
      const p = runner.pipelines.domains.find((d) => d.name === domain);
      if (!p) throw new WeftError('WEFT_NOT_FOUND', `no domain '${domain}' (weft domains list shows them)`, { details: { domain } });
      return show(p);
    });

    app.post('/api/domains/:domain/cartridges', { schema: { params: DomainParams, body: PackageBody } }, async (req, reply) => {
      const { domain } = req.params as { domain: string };
      assertDomainAccess(req, domain, 'member');
      const r = await lifecycle.submitToDomain(domain, await packageOf(req), principalOf(req));
      reply.status(r.state === 'installed' ? 201 : 202);
      return r;
    });

    app.delete('/api/domains/:domain/cartridges/:name', { schema: { params: CartridgeParams } }, async (req) => {
      const { domain, name } = req.params as { domain: string; name: string };
      assertDomainAccess(req, domain, 'admin');
      await lifecycle.remove(domain, name, principalOf(req));
      return { removed: name, domain };
    });

    app.post('/api/domains/:domain/cartridges/:name/promote', { schema: { params: CartridgeParams, body: PromoteBody } }, async (req) => {
      const { domain, name } = req.params as { domain: string; name: string };
      const { to } = req.body as { to: string };
      return lifecycle.promote(domain, name, to, principalOf(req));
    });

    app.get('/api/personal/:member', { schema: { params: MemberParams } }, async (req) => {
      const { member } = req.params as { member: string };
      const p = find(`personal:${member}`);
      if (!p) {
        // Left out is not absent: say why, so the member can fix it.
        const left = runner.pipelines.refused.find((r) => r.scope === `personal:${member}`);
        if (left) throw new WeftError('WEFT_PIPELINE_INVALID', `the personal pipeline of '${member}' is left out: ${left.message} (fix personal/${member}/, then weft domains reload)`, { details: { member, scope: left.scope, code: left.code, cartridges: [...left.cartridges] } });
        throw new WeftError('WEFT_NOT_FOUND', `no personal pipeline of '${member}' runs (it needs cartridges in personal/${member}/cartridges/)`, { details: { member } });
      }
      return show(p);
    });

    app.post('/api/personal/:member/cartridges', { schema: { params: MemberParams, body: PackageBody } }, async (req, reply) => {
      const { member } = req.params as { member: string };
      const r = await lifecycle.installPersonal(member, await packageOf(req), principalOf(req));
      reply.status(201);
      return r;
    });

    app.delete('/api/personal/:member/cartridges/:name', { schema: { params: MemberCartridgeParams } }, async (req) => {
      const { member, name } = req.params as { member: string; name: string };
      await lifecycle.remove(`personal:${member}`, name, principalOf(req));
      return { removed: name, member };
    });

    app.post('/api/personal/:member/cartridges/:name/promote', { schema: { params: MemberCartridgeParams, body: PromoteBody } }, async (req) => {
      const { member, name } = req.params as { member: string; name: string };
      const { to } = req.body as { to: string };
      return lifecycle.promote(`personal:${member}`, name, to, principalOf(req));
    });

    app.get('/api/pipeline/validate', async (req) => {
      requireNode(req, 'validating the pipelines');
      return validatePipelines(deps.dataDir, deps.validation);
    });

    app.post('/api/pipeline/reload', async (req) => {
      requireNode(req, 'reloading the pipelines');
      const set = await runner.reload();
      return { domains: set.domains.map(show), personal: set.personal.map(show), refused: refused() };
    });
  };
}
