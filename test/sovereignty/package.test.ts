import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  consumesEventType,
  MAX_SOURCE_BYTES,
  ManifestError,
  PackageIoError,
  readPackageDir,
  validateManifest,
  validatePackage,
  writePackageDir,
} from '../../src/sovereignty/index.js';
import { tempDir } from '../helpers/tmp.js';
import { cartridge, manifest } from './fixtures.js';

function manifestError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ManifestError, `expected ManifestError, got ${String(err)}`);
    assert.equal(err.code, 'WEFT_VALIDATION');
    assert.equal(err.reason, 'WEFT_CARTRIDGE_MANIFEST_INVALID');
    assert.match(err.message, pattern);
    return true;
  });
}

describe('cartridge manifest', () => {
  it('should accept a complete manifest', () => {
    const m = manifest({
      dependencies: ['base'],
      consumes: ['build.*', 'deploy.done'],
      emits: ['build.tagged'],
    });
    assert.deepEqual(validateManifest(m), m);
  });

  it('should name a missing field', () => {
    const { author: _author, ...rest } = manifest();
    manifestError(() => validateManifest(rest), /manifest\.author is missing/);
  });

  it('should name an unknown field', () => {
    manifestError(
      () => validateManifest({ ...manifest(), permissions: ['fs'] }),
      /unknown field 'permissions'/,
    );
  });

  it('should name the failing field and say what it must be', () => {
    manifestError(
      () => validateManifest(manifest({ version: 'v1' })),
      /manifest\.version is invalid \(got "v1"\).*semantic version/,
    );
    manifestError(() => validateManifest(manifest({ name: 'Bad Name' })), /manifest\.name is invalid/);
    manifestError(() => validateManifest(manifest({ name: '../escape' })), /manifest\.name is invalid/);
    manifestError(
      () => validateManifest(manifest({ entryPoint: 'not-an-id' })),
      /manifest\.entryPoint.*JavaScript identifier/,
    );
    manifestError(
      () => validateManifest(manifest({ emits: ['ok.type', 'bad type'] })),
      /manifest\.emits\[1\] is invalid/,
    );
    manifestError(
      () => validateManifest(manifest({ emits: ['build.*'] })),
      /manifest\.emits\[0\] is invalid/,
    );
    manifestError(() => validateManifest(manifest({ dependencies: ['a', 'a'] })), /manifest\.dependencies/);
  });

  it('should refuse a cartridge that depends on itself', () => {
    manifestError(
      () => validateManifest(manifest({ name: 'loop', dependencies: ['loop'] })),
      /cannot depend on itself/,
    );
  });

  it('should refuse a manifest that is not an object', () => {
    manifestError(() => validateManifest([]), /must be a JSON object/);
    manifestError(() => validateManifest(null), /must be a JSON object/);
  });

  it('should refuse an empty or oversized source', () => {
    manifestError(() => validatePackage({ manifest: manifest(), source: '  ' }), /source must be non-empty/);
    manifestError(() => validatePackage({ manifest: manifest(), source: 7 }), /source must be non-empty/);
    const big = `// ${'x'.repeat(MAX_SOURCE_BYTES)}`;
    manifestError(
      () => validatePackage({ manifest: manifest(), source: big }),
      /more than the 262144 allowed/,
    );
  });
});

describe('cartridge package directory', () => {
  it('should read back what it wrote', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const pkg = cartridge('tagger', 'function process(e) { return e; } // é', { emits: ['build.tagged'] });
      await writePackageDir(join(dir, 'tagger'), pkg);
      assert.deepEqual(await readPackageDir(join(dir, 'tagger')), pkg);
    } finally {
      cleanup();
    }
  });

  it('should report a missing directory as an I/O error', async () => {
    await assert.rejects(readPackageDir('/nonexistent/weft-cartridge'), PackageIoError);
  });

  it('should name the file when the manifest is not JSON or the source not UTF-8', async () => {
    const { dir, cleanup } = tempDir();
    try {
      await writePackageDir(dir, cartridge('ok', 'function process(e) { return e; }'));
      await writeFile(join(dir, 'cartridge.js'), Buffer.from([0x66, 0xff, 0xfe]));
      await assert.rejects(readPackageDir(dir), /cartridge\.js is not valid UTF-8/);
      await writeFile(join(dir, 'manifest.json'), '{ not json');
      await assert.rejects(readPackageDir(dir), /manifest\.json is not valid JSON/);
    } finally {
      cleanup();
    }
  });

  it('should refuse to write an invalid package', async () => {
    const { dir, cleanup } = tempDir();
    try {
      await assert.rejects(writePackageDir(dir, cartridge('x', 'f()', { version: 'one' })), ManifestError);
    } finally {
      cleanup();
    }
  });
});

describe('consumed event types', () => {
  it('should match exact types, one-segment wildcards and trailing wildcards', () => {
    const m = { consumes: ['deploy.done', 'build.*', 'ci.*.failed'] };
    assert.equal(consumesEventType(m, 'deploy.done'), true);
    assert.equal(consumesEventType(m, 'deploy.done.late'), false);
    assert.equal(consumesEventType(m, 'deploy'), false);
    assert.equal(consumesEventType(m, 'build.failed'), true);
    assert.equal(consumesEventType(m, 'build.step.failed'), true);
    assert.equal(consumesEventType(m, 'build'), false);
    assert.equal(consumesEventType(m, 'ci.lint.failed'), true);
    assert.equal(consumesEventType(m, 'ci.lint.passed'), false);
    assert.equal(consumesEventType({ consumes: ['*'] }, 'anything.at.all'), true);
    assert.equal(consumesEventType({ consumes: [] }, 'build.failed'), false);
  });
});
