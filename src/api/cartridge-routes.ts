import { isAbsolute } from 'node:path';
import { Type } from '@sinclair/typebox';
import type { HttpApp } from './http.js';
import { ValidationError, WeftError } from '../errors/index.js';
import type { EmitResult } from '../pipeline/index.js';
import {
  assertPublishable,
  type CartridgeRuntime,
  type InstalledCartridge,
  LOCAL_ORIGIN,
  publishedPayload,
  readPackageDir,
  validatePackage,
} from '../sovereignty/index.js';

/** Collaborators of the cartridge routes. */
export interface CartridgeRoutesDeps {
  runtime: CartridgeRuntime;
  /**
   * Emits one event and says what became of it (the node's `emitManyReported`); enables
   * `POST /api/cartridges/publish`.
   */
  emit?: (input: unknown) => Promise<EmitResult>;
  /** The event that first claimed an idempotency key (`ns.dedup.eventOf`): names the earlier publication of a duplicate. */
  claimedBy?: (key: string) => string | undefined;
}

/** One cartridge as the API answers it (`GET /api/cartridges` items, and every action's answer). */
export interface CartridgeView {
  name: string;
  version: string;
  author: string;
  description: string;
  status: InstalledCartridge['status'];
  origin: string;
  invocationCount: number;
  lastInvokedAt: string | null;
  /** Events it failed on since this code was installed (they passed on unchanged). */
  failureCount: number;
  lastFailedAt: string | null;
  lastError: string | null;
  installedAt: string;
  activatedAt: string | null;
  statusReason: string | null;
  dependencies: string[];
  consumes: string[];
  emits: string[];
  sha256: string;
}

const NameParams = Type.Object({ name: Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' }) });
const InstallBody = Type.Union([
  Type.Object({ path: Type.String({ minLength: 1, maxLength: 4096 }) }, { additionalProperties: false }),
  Type.Object(
    { manifest: Type.Record(Type.String(), Type.Unknown()), source: Type.String() },
    { additionalProperties: false },
  ),
]);

/** The API form of an installed cartridge. */
export function cartridgeView(c: InstalledCartridge): CartridgeView {
  return {
    name: c.name,
    version: c.version,
    author: c.author,
    description: c.description,
    status: c.status,
    origin: c.origin,
    invocationCount: c.invocationCount,
    lastInvokedAt: c.lastInvokedAt,
    failureCount: c.failureCount,
    lastFailedAt: c.lastFailedAt,
    lastError: c.lastError,
    installedAt: c.installedAt,
    activatedAt: c.activatedAt,
    statusReason: c.statusReason,
    dependencies: [...c.manifest.dependencies],
    consumes: [...c.manifest.consumes],
    emits: [...c.manifest.emits],
    sha256: c.sha256,
  };
}

/**
 * Adds the cartridge routes to the node's API (the server's bearer-token hook covers them):
 * `GET /api/cartridges`, `POST /api/cartridges/install` (`{path}` of a package directory on
 * this computer, or `{manifest, source}`), `POST /api/cartridges/publish` (same body; emits
 * `cartridge.published` with visibility public), and `POST /api/cartridges/:name/activate`
 * (`{alpha?}`), `/reject`, `/promote`. Errors are `WeftError`s, answered `{error: {code, message}}`.
 * @example
 * const api = await buildApi({ token }, { node, logger, extraRoutes: [(app) => registerCartridgeRoutes(app, { runtime })] });
 */
export function registerCartridgeRoutes(app: HttpApp, deps: CartridgeRoutesDeps): void {
  const { runtime } = deps;

  app.get('/api/cartridges', async () => ({
    items: runtime.list().map(cartridgeView),
    runtime: runtime.status(),
  }));

  app.post('/api/cartridges/install', { schema: { body: InstallBody } }, async (req, reply) => {
    const body = req.body as { path: string } | { manifest: Record<string, unknown>; source: string };
    let result: Awaited<ReturnType<CartridgeRuntime['install']>>;
    if ('path' in body) {
      if (!isAbsolute(body.path)) {
        throw new ValidationError(`body: path must be absolute (the daemon resolves it on its own computer), got '${body.path}'`);
      }
      result = await runtime.installDir(body.path, { origin: LOCAL_ORIGIN });
    } else {
      result = await runtime.install(
        { manifest: body.manifest as never, source: body.source },
        { origin: LOCAL_ORIGIN },
      );
    }
    reply.status(result.changed ? 201 : 200);
    return { cartridge: cartridgeView(result.cartridge), changed: result.changed, ...(result.repaired ? { repaired: true } : {}) };
  });

  // Publishing emits `cartridge.published` (visibility public): peers decide through their gate.
  app.post('/api/cartridges/publish', { schema: { body: InstallBody } }, async (req, reply) => {
    const emit = deps.emit;
    if (!emit) throw new ValidationError('publishing is not available on this node');
    const body = req.body as { path: string } | { manifest: Record<string, unknown>; source: string };
    let pkg: Awaited<ReturnType<typeof readPackageDir>>;
    if ('path' in body) {
      if (!isAbsolute(body.path)) {
        throw new ValidationError(`body: path must be absolute (the daemon resolves it on its own computer), got '${body.path}'`);
      }
      pkg = await readPackageDir(body.path);
    } else {
      pkg = validatePackage({ manifest: body.manifest, source: body.source });
    }
    const payload = publishedPayload(pkg);
    assertPublishable(payload);
    const { envelope, outcome } = await emit({ event: 'cartridge.published', visibility: 'public', payload });
    const what = `${pkg.manifest.name} ${pkg.manifest.version}`;
    // Stored either way, but peers get only what the pipeline passed: a stopped publication is not one.
    if (outcome.state === 'dropped') {
      const key = envelope.idempotencyKey ?? '';
      const earlier = outcome.by === 'dedup' ? deps.claimedBy?.(key) : undefined;
      const why =
        outcome.by === 'dedup'
          ? `this exact package (name, version and source SHA-256) was published before${earlier ? ` as event ${earlier}` : ''}, so the dedup stage dropped it; peers already had their copy. To publish changed code, change the source (or the version)`
          : `the ${outcome.by} stage dropped it${outcome.trust ? ` (${outcome.trust}${outcome.reason ? `: ${String(outcome.reason)}` : ''})` : ''}`;
      throw new WeftError('WEFT_CONFLICT', `${what} was not published (event ${envelope.id}): ${why}`, {
        details: { id: envelope.id, by: outcome.by, idempotencyKey: key, ...(earlier ? { earlier } : {}) },
      });
    }
    if (outcome.state === 'failed') {
      throw new WeftError('WEFT_CONFLICT', `${what} was not published (event ${envelope.id}): the ${outcome.by} stage failed on it: ${outcome.error}`, {
        details: { id: envelope.id, by: outcome.by },
      });
    }
    reply.status(201);
    return { id: envelope.id, name: pkg.manifest.name, version: pkg.manifest.version, visibility: envelope.visibility, outcome: outcome.state };
  });

  app.post('/api/cartridges/:name/activate', { schema: { params: NameParams } }, async (req) => {
    const alpha = (req.body as { alpha?: unknown } | undefined)?.alpha;
    if (alpha !== undefined && typeof alpha !== 'boolean') throw new ValidationError('body: field \'/alpha\' must be a boolean');
    return cartridgeView(await runtime.activate((req.params as { name: string }).name, { alpha: alpha === true }));
  });
  app.post('/api/cartridges/:name/reject', { schema: { params: NameParams } }, async (req) =>
    cartridgeView(await runtime.reject((req.params as { name: string }).name)),
  );
  app.post('/api/cartridges/:name/promote', { schema: { params: NameParams } }, async (req) =>
    cartridgeView(await runtime.promote((req.params as { name: string }).name)),
  );
}
