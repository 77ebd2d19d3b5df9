/**
 * `weft identity export --encrypted` / `weft identity import`: the key backup a Phoenix
 * restore starts from. Round trip, a wrong passphrase refused, weak passphrases refused, a
 * changed file refused, 0600 files, an import that would replace another key refused.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isWeftError } from '../../src/errors/index.js';
import { generateIdentity, loadIdentity, loadOrCreateIdentity } from '../../src/identity/index.js';
import { checkPassphrase, decryptIdentity, encryptIdentity, type KeyBackup } from '../../src/recovery/index.js';
import { startDaemonProcess, weft } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const t = tempDir('weft-key-backup-');
after(() => t.cleanup());

const GOOD = 'correct horse battery staple';
/** Cheap scrypt for the unit tests (the CLI uses the real cost). */
const KDF = { N: 2 ** 14, r: 8, p: 1 };

const code = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    return isWeftError(err) ? err.code : `not a WeftError: ${(err as Error).message}`;
  }
  return 'no error';
};

describe('key backup (functions)', () => {
  test('should give back the same key with the right passphrase', () => {
    const id = generateIdentity();
    const b = encryptIdentity(id, GOOD, { computer: 'laptop', kdf: KDF });
    assert.equal(b.nodeId, id.nodeId);
    assert.equal(b.kdf.name, 'scrypt');
    assert.equal(b.cipher, 'aes-256-gcm');
    assert.ok(!JSON.stringify(b).includes('PRIVATE KEY'), 'no plaintext key in the file');
    const back = decryptIdentity(JSON.parse(JSON.stringify(b)), GOOD);
    assert.equal(back.nodeId, id.nodeId);
    const data = new TextEncoder().encode('hello');
    assert.deepEqual(back.sign(data), id.sign(data));
  });

  test('should refuse a wrong passphrase', () => {
    const b = encryptIdentity(generateIdentity(), GOOD, { kdf: KDF });
    assert.equal(code(() => decryptIdentity(b, 'correct horse battery stapler')), 'WEFT_FORBIDDEN');
    assert.equal(code(() => decryptIdentity(b, '')), 'WEFT_VALIDATION');
  });

  test('should refuse a file whose header or ciphertext was changed', () => {
    const b = encryptIdentity(generateIdentity(), GOOD, { kdf: KDF });
    const other = generateIdentity();
    assert.equal(code(() => decryptIdentity({ ...b, nodeId: other.nodeId }, GOOD)), 'WEFT_FORBIDDEN');
    const ct = Buffer.from(b.ciphertext, 'base64');
    ct[5] = (ct[5] as number) ^ 1;
    assert.equal(code(() => decryptIdentity({ ...b, ciphertext: ct.toString('base64') }, GOOD)), 'WEFT_FORBIDDEN');
    assert.equal(code(() => decryptIdentity({ ...b, format: 'something-else' }, GOOD)), 'WEFT_VALIDATION');
    assert.equal(code(() => decryptIdentity({ ...b, kdf: { ...b.kdf, N: 2 ** 30 } } as KeyBackup, GOOD)), 'WEFT_VALIDATION');
  });

  test('should refuse empty and weak passphrases', () => {
    for (const p of ['', 'short', 'aaaaaaaaaaaaaaaa', 'abababababababab', 'password12345', 'passwordpassword!']) {
      assert.equal(code(() => checkPassphrase(p)), 'WEFT_VALIDATION', `'${p}' refused`);
      assert.equal(code(() => encryptIdentity(generateIdentity(), p, { kdf: KDF })), 'WEFT_VALIDATION');
    }
    assert.equal(code(() => checkPassphrase(GOOD)), 'no error');
    assert.equal(code(() => checkPassphrase('tulpen-aus-amsterdam-7')), 'no error');
  });
});

describe('weft identity export --encrypted / import', () => {
  const src = join(t.dir, 'src');
  const dst = join(t.dir, 'dst');
  const env = (dir: string, pass?: string): NodeJS.ProcessEnv => ({ HOME: dir, WEFT_DATA_DIR: dir, WEFT_COMPUTER_NAME: 'laptop', ...(pass !== undefined ? { WEFT_PASSPHRASE: pass } : {}) });
  const { identity } = loadOrCreateIdentity(join(src, 'identity.key'));
  const file = join(t.dir, 'laptop.weftkey');

  test('should write a 0600 file that only the passphrase opens', () => {
    const plain = weft(['identity', 'export', '--out', file], env(src, GOOD));
    assert.equal(plain.code, 2, 'an unencrypted export is refused');
    assert.match(plain.stderr, /--encrypted/);
    const weak = weft(['identity', 'export', '--encrypted', '--out', file], env(src, 'letmein'));
    assert.equal(weak.code, 2, weak.stderr);
    assert.match(weak.stderr, /passphrase is too/);
    assert.equal(existsSync(file), false);
    const none = weft(['identity', 'export', '--encrypted', '--out', file], env(src));
    assert.notEqual(none.code, 0, 'no passphrase and no terminal: refused');
    const r = weft(['--json', 'identity', 'export', '--encrypted', '--out', file], env(src, GOOD));
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { nodeId: string }).nodeId, identity.nodeId);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const text = readFileSync(file, 'utf8');
    assert.ok(!text.includes('PRIVATE KEY'));
    assert.equal((JSON.parse(text) as KeyBackup).nodeId, identity.nodeId);
    const again = weft(['identity', 'export', '--encrypted', '--out', file], env(src, GOOD));
    assert.equal(again.code, 1, 'an existing file is kept');
    assert.match(again.stderr, /--force/);
  });

  test('should refuse a wrong passphrase on import and write nothing', () => {
    const r = weft(['identity', 'import', file], env(dst, 'not the right passphrase'));
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /wrong passphrase/);
    assert.equal(existsSync(join(dst, 'identity.key')), false);
  });

  test('should put the same key back with the right passphrase', () => {
    const r = weft(['identity', 'import', file], env(dst, GOOD));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /weft recovery restore/);
    const key = join(dst, 'identity.key');
    assert.equal(statSync(key).mode & 0o777, 0o600);
    assert.equal(loadIdentity(key).nodeId, identity.nodeId);
    const twice = weft(['identity', 'import', file], env(dst, GOOD));
    assert.equal(twice.code, 0);
    assert.match(twice.stdout, /in place already/);
  });

  test('should not replace another key without --force, and keep it aside with it', () => {
    const other = join(t.dir, 'other');
    const { identity: theirs } = loadOrCreateIdentity(join(other, 'identity.key'));
    const r = weft(['identity', 'import', file], env(other, GOOD));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /another key/);
    assert.equal(loadIdentity(join(other, 'identity.key')).nodeId, theirs.nodeId);
    const f = weft(['identity', 'import', '--force', file], env(other, GOOD));
    assert.equal(f.code, 0, f.stderr);
    assert.equal(loadIdentity(join(other, 'identity.key')).nodeId, identity.nodeId);
    const kept = readdirSync(other).filter((n) => n.startsWith('identity.key.replaced-'));
    assert.equal(kept.length, 1);
    assert.equal(loadIdentity(join(other, kept[0] as string)).nodeId, theirs.nodeId);
  });

  test('should refuse an import while the daemon of the data dir runs', () => {
    const running = join(t.dir, 'running');
    loadOrCreateIdentity(join(running, 'identity.key'));
    writeFileSync(join(running, 'daemon.json'), JSON.stringify({ pid: process.pid, url: 'http://127.0.0.1:1' }));
    const r = weft(['identity', 'import', file], env(running, GOOD));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /is running/);
  });

  test('a daemon started before the import (a new key, a new database): the import moves that database aside, and a start never runs one node\'s database under another\'s key', async () => {
    // The worst day's slip: the disk is wiped, `weft daemon` runs first and makes a key and a database.
    const slip = join(t.dir, 'slip');
    const d = await startDaemonProcess({ ...env(slip), WEFT_API_PORT: '0' });
    d.proc.kill('SIGTERM');
    await d.exited;
    const accidental = loadIdentity(join(slip, 'identity.key')).nodeId;
    const plain = weft(['identity', 'import', file], env(slip, GOOD));
    assert.equal(plain.code, 1);
    assert.match(plain.stderr, /the database in .* was written by another node \(weft:ed25519:.*add --force to move it aside/);
    // Put the backup's key in by hand, as a user might: the start refuses the mix.
    const byHand = join(t.dir, 'byhand');
    const d2 = await startDaemonProcess({ ...env(byHand), WEFT_API_PORT: '0' });
    d2.proc.kill('SIGTERM');
    await d2.exited;
    writeFileSync(join(byHand, 'identity.key'), readFileSync(join(src, 'identity.key')), { mode: 0o600 });
    const mixed = weft(['daemon'], { ...env(byHand), WEFT_API_PORT: '0' });
    assert.equal(mixed.code, 2, mixed.stderr);
    assert.match(mixed.stderr, new RegExp(`identity\\.key is the key of ${identity.nodeId.replace(/[+/]/g, '\\$&')}, but this data dir's database was written by weft:ed25519:`));
    // With --force, the key and the database that belongs to the accidental one go aside together.
    const f = weft(['identity', 'import', '--force', file], env(slip, GOOD));
    assert.equal(f.code, 0, f.stderr);
    assert.match(f.stdout, /the other node's database is kept as .*weft\.db\.replaced-/);
    assert.equal(existsSync(join(slip, 'weft.db')), false);
    const kept = readdirSync(slip).filter((n) => n.startsWith('weft.db.replaced-'));
    assert.equal(kept.length, 1);
    const started = await startDaemonProcess({ ...env(slip), WEFT_API_PORT: '0' });
    try {
      assert.match(started.output(), /running/);
      assert.equal(loadIdentity(join(slip, 'identity.key')).nodeId, identity.nodeId);
      assert.notEqual(identity.nodeId, accidental);
    } finally {
      started.proc.kill('SIGTERM');
      await started.exited;
    }
  });
});
