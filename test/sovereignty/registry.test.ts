import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { IllegalTransitionError, NotFoundError, type WeftError } from '../../src/errors/index.js';
import {
  type CartridgeRegistry,
  createCartridgeRegistry,
  ManifestError,
  PackageIoError,
} from '../../src/sovereignty/index.js';
import { type NodeStore, openNodeStore } from '../../src/store/index.js';
import { ManualClock, silentLogger } from '../../src/util/index.js';
import { tempDir } from '../helpers/tmp.js';
import { cartridge } from './fixtures.js';

const V1 = cartridge('tagger', 'function process(e) { return e; }', { version: '1.0.0' });
const V2 = cartridge('tagger', 'function process(e) { return null; }', { version: '2.0.0' });

describe('cartridge registry', () => {
  let t: ReturnType<typeof tempDir>;
  let ns: NodeStore;
  let registry: CartridgeRegistry;

  beforeEach(() => {
    t = tempDir('weft-registry-');
    ns = openNodeStore({ path: join(t.dir, 'weft.db') }, { clock: new ManualClock(1_700_000_000_000), logger: silentLogger });
    registry = createCartridgeRegistry({ dataDir: t.dir }, { store: ns.store });
  });
  afterEach(async () => {
    await ns.store.close();
    t.cleanup();
  });

  const incoming = (f: string) => join(t.dir, 'cartridges', 'incoming', f);
  const active = (f: string) => join(t.dir, 'cartridges', 'active', f);

  it('should install a package as pending_activation with its files in incoming/', async () => {
    const { cartridge: c, changed } = await registry.install(V1, { origin: 'local' });
    assert.equal(changed, true);
    assert.equal(c.status, 'pending_activation');
    assert.equal(c.origin, 'local');
    assert.equal(c.version, '1.0.0');
    assert.equal(c.author, 'test');
    assert.equal(c.invocationCount, 0);
    assert.equal(c.lastInvokedAt, null);
    assert.ok(existsSync(incoming('tagger.js')));
    assert.ok(existsSync(incoming('tagger.manifest.json')));
    assert.deepEqual(
      registry.list().map((x) => [x.name, x.status]),
      [['tagger', 'pending_activation']],
    );
  });

  it('should treat a repeated install of the same version as a no-op and replace a pending one by a new version', async () => {
    await registry.install(V1, { origin: 'weft:ed25519:peer' });
    const again = await registry.install(V1, { origin: 'weft:ed25519:peer' });
    assert.equal(again.changed, false);
    const other = cartridge('tagger', 'function process(e) { return e; } // changed', { version: '1.0.0' });
    await assert.rejects(registry.install(other, { origin: 'local' }), (e: WeftError) => e.code === 'WEFT_CONFLICT');
    const v2 = await registry.install(V2, { origin: 'local' });
    assert.equal(v2.changed, true);
    assert.equal(v2.cartridge.version, '2.0.0');
    assert.equal(v2.cartridge.status, 'pending_activation');
    assert.equal((await registry.readPackage('tagger')).source, V2.source);
  });

  it("should not let a peer's publication replace a pending record of another origin unless the human's approval names it", async () => {
    await registry.install(V1, { origin: 'local' });
    await assert.rejects(registry.install(V2, { origin: 'weft:ed25519:peer', peer: {} }), (e: WeftError) => {
      assert.equal(e.code, 'WEFT_CONFLICT');
      assert.match(e.message, /cartridge 'tagger' 1\.0\.0 \(pending_activation\) came from local; 2\.0\.0 from weft:ed25519:peer would replace it, which only a human may approve/);
      return true;
    });
    assert.deepEqual(registry.wouldReplace('tagger', 'weft:ed25519:peer'), { origin: 'local', version: '1.0.0', status: 'pending_activation' });
    assert.equal(registry.get('tagger').origin, 'local');
    assert.equal((await registry.readPackage('tagger')).source, V1.source, 'the local files are untouched');
    // an approval that named another record does not do
    await assert.rejects(registry.install(V2, { origin: 'weft:ed25519:peer', peer: { replaces: { origin: 'local', version: '0.9.0' } } }), /only a human may approve/);
    const r = await registry.install(V2, { origin: 'weft:ed25519:peer', peer: { replaces: { origin: 'local', version: '1.0.0' } } });
    assert.equal(r.cartridge.origin, 'weft:ed25519:peer');
    assert.equal(r.cartridge.version, '2.0.0');
    // another peer's pending record is protected the same way; the same peer's is not
    await assert.rejects(registry.install(cartridge('tagger', 'function process(e) { return e; }', { version: '3.0.0' }), { origin: 'weft:ed25519:other', peer: {} }), /only a human may approve/);
    assert.equal((await registry.install(cartridge('tagger', 'function process(e) { return e; }', { version: '3.0.0' }), { origin: 'weft:ed25519:peer', peer: {} })).changed, true);
    assert.equal(registry.wouldReplace('tagger', 'weft:ed25519:peer'), undefined);
  });

  it('should refuse an invalid package, naming the field', async () => {
    await assert.rejects(
      registry.install(cartridge('tagger', 'x', { version: 'v1' }), { origin: 'local' }),
      (e: Error) => e instanceof ManifestError && /version/.test(e.message),
    );
  });

  it('should activate: files move to active/ and the status is active; a second activation is illegal', async () => {
    await registry.install(V1, { origin: 'local' });
    const c = await registry.activate('tagger');
    assert.equal(c.status, 'active');
    assert.ok(c.activatedAt);
    assert.ok(existsSync(active('tagger.js')));
    assert.ok(existsSync(active('tagger.manifest.json')));
    assert.ok(!existsSync(incoming('tagger.js')));
    await assert.rejects(registry.activate('tagger'), IllegalTransitionError);
    await assert.rejects(registry.install(V2, { origin: 'local' }), IllegalTransitionError);
  });

  it('should activate as alpha and promote alpha to active, and refuse to promote anything else', async () => {
    await registry.install(V1, { origin: 'local' });
    await assert.rejects(registry.promote('tagger'), IllegalTransitionError);
    assert.equal((await registry.activate('tagger', { alpha: true })).status, 'alpha');
    assert.ok(existsSync(active('tagger.js')));
    assert.equal((await registry.promote('tagger')).status, 'active');
    await assert.rejects(registry.promote('tagger'), /it is active/);
  });

  it('should reject: files removed, record kept; reinstall afterwards starts pending again', async () => {
    await registry.install(V1, { origin: 'local' });
    await registry.activate('tagger');
    const r = await registry.reject('tagger');
    assert.equal(r.status, 'rejected');
    assert.ok(!existsSync(active('tagger.js')));
    assert.ok(!existsSync(incoming('tagger.js')));
    await assert.rejects(registry.reject('tagger'), IllegalTransitionError);
    await assert.rejects(registry.readPackage('tagger'), PackageIoError);
    assert.equal((await registry.install(V2, { origin: 'local' })).cartridge.status, 'pending_activation');
  });

  it('should answer not found for an unknown name', async () => {
    await assert.rejects(registry.activate('ghost'), NotFoundError);
    await assert.rejects(registry.reject('ghost'), /cartridge ghost not found/);
    await assert.rejects(registry.promote('ghost'), NotFoundError);
  });

  it('should suspend an active cartridge and let activate bring it back', async () => {
    await registry.install(V1, { origin: 'local' });
    await registry.activate('tagger');
    const s = await registry.suspend('tagger', 'WEFT_SANDBOX_TIMEOUT: too slow');
    assert.equal(s.status, 'suspended');
    assert.equal(s.statusReason, 'WEFT_SANDBOX_TIMEOUT: too slow');
    assert.equal((await registry.activate('tagger')).status, 'active');
  });

  it('should refuse a source changed on disk after installation', async () => {
    await registry.install(V1, { origin: 'local' });
    await registry.activate('tagger');
    writeFileSync(active('tagger.js'), 'function process(e) { return null; }');
    await assert.rejects(registry.readPackage('tagger'), /does not match the installed source/);
  });

  it('should restore files changed or lost behind its back when the same package is installed again, as its refusal says', async () => {
    await registry.install(V1, { origin: 'local' });
    await registry.activate('tagger');
    await registry.suspend('tagger', 'PACKAGE_IO: tampered');
    writeFileSync(active('tagger.js'), 'function process(e) { return null; }');
    await assert.rejects(registry.readPackage('tagger'), /does not match the installed source \(SHA-256 differs\); install the same package again to restore it \(weft cartridges install <its directory>\), then weft cartridges activate tagger/);
    const r = await registry.install(V1, { origin: 'local' });
    assert.deepEqual([r.changed, r.repaired, r.cartridge.status], [false, true, 'suspended']);
    assert.equal((await registry.readPackage('tagger')).source, V1.source, 'the file is the installed source again');
    // nothing to restore: a plain repeat
    assert.equal((await registry.install(V1, { origin: 'local' })).repaired, undefined);
    // a lost manifest is written again too
    rmSync(active('tagger.manifest.json'));
    assert.equal((await registry.install(V1, { origin: 'local' })).repaired, true);
    assert.ok(existsSync(active('tagger.manifest.json')));
    assert.equal((await registry.activate('tagger')).status, 'active');
  });

  it('should list invocation counts from cartridge_stats', async () => {
    await registry.install(V1, { origin: 'local' });
    await ns.store.write(() => ns.stats.add('tagger', 3, '2026-01-01T00:00:00.000Z'));
    const [c] = registry.list();
    assert.equal(c?.invocationCount, 3);
    assert.equal(c?.lastInvokedAt, '2026-01-01T00:00:00.000Z');
  });
});

describe('cartridge.published payloads', () => {
  it('should carry a package to a peer and back unchanged, and refuse bad code', async () => {
    const { createDefaultCatalog } = await import('../../src/catalog/index.js');
    const { packageFromPublished, publishedPayload } = await import('../../src/sovereignty/index.js');
    const pkg = cartridge('tagger', "function process(e) { return e; } // ünïcode", { consumes: ['build.*'] });
    const payload = publishedPayload(pkg);
    assert.equal(payload.event_type, 'build.*');
    createDefaultCatalog().validatePayload('cartridge.published', payload);
    assert.deepEqual(packageFromPublished(payload), pkg);
    assert.throws(() => packageFromPublished({ ...payload, code: '!!!' }), /code must be base64/);
    assert.throws(() => packageFromPublished({ ...payload, code: Buffer.from([0xff, 0xfe]).toString('base64') }), ManifestError);
  });

  it('should key a publication on what identifies the code: name, version and source SHA-256', async () => {
    const { createDefaultCatalog } = await import('../../src/catalog/index.js');
    const { packageFromPublished, publishedPayload, sourceDigest } = await import('../../src/sovereignty/index.js');
    const catalog = createDefaultCatalog();
    const key = (p: ReturnType<typeof publishedPayload>) => catalog.idempotencyKey('cartridge.published', p as unknown as Record<string, unknown>);
    const a = publishedPayload(cartridge('first', 'function process(e) { return e; }', { consumes: ['build.*'] }));
    const b = publishedPayload(cartridge('second', 'function process(e) { return null; }', { consumes: ['build.*'] }));
    const a2 = publishedPayload(cartridge('first', 'function process(e) { return e; } // fixed', { consumes: ['build.*'] }));
    assert.equal(a.sha256, sourceDigest('function process(e) { return e; }'));
    assert.equal(new Set([key(a), key(b), key(a2)]).size, 3, 'another cartridge, or another source under one version, is another publication');
    assert.equal(key(a), key(publishedPayload(cartridge('first', 'function process(e) { return e; }', { consumes: ['build.*'] }))));
    assert.throws(() => packageFromPublished({ ...a, sha256: a2.sha256 }), /sha256 [0-9a-f]+ is not the SHA-256 of code/);
  });

  it('should say how large a source may be to publish, and let one of that size through the payload limit', async () => {
    const { payloadProblem } = await import('../../src/envelope/index.js');
    const { assertPublishable, publishedPayload } = await import('../../src/sovereignty/index.js');
    const sized = (bytes: number) => publishedPayload(cartridge('big', `function process(e) { return e; }\n//${'x'.repeat(bytes - 36)}`, { consumes: ['build.*'] }));
    let max = 0;
    assert.throws(() => assertPublishable(sized(60 * 1024)), (e: Error & { code?: string; details?: { maxSourceBytes: number } }) => {
      assert.equal(e.code, 'WEFT_TOO_LARGE');
      assert.match(e.message, /^cartridge source too large to publish: 60 KiB, at most ~4\d(\.\d)? KiB \(a publication is one event: the source travels base64-encoded/);
      max = e.details?.maxSourceBytes ?? 0;
      return true;
    });
    assert.ok(max > 40 * 1024 && max < 48 * 1024, `${max}`);
    // what it names fits: no payload refusal for a source of that size
    assert.doesNotThrow(() => assertPublishable(sized(max)));
    assert.equal(payloadProblem(sized(max)), undefined);
    assert.ok(payloadProblem(sized(max + 3)), 'a little more does not');
  });
});
