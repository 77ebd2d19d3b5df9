import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { blake3 } from '@noble/hashes/blake3.js';
import {
  createNodeCertificate,
  createRotationRecord,
  fingerprint,
  generateIdentity,
  IdentityError,
  identityFromPrivateKey,
  isNodeId,
  loadIdentity,
  loadOrCreateIdentity,
  nodeIdFromPublicKey,
  publicKeyFromCertificate,
  publicKeyFromNodeId,
  rotateIdentityFile,
  verifyRotationRecord,
  verifySignature,
} from '../../src/identity/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { oid, time, unsignedInteger } from '../../src/identity/der.js';
import { tempDir } from '../helpers/tmp.js';
import { PECULIAR_CERTIFICATES } from './certificate-fixtures.js';

test('a node id carries the raw 32-byte public key and round-trips', () => {
  const id = generateIdentity();
  assert.match(id.nodeId, /^weft:ed25519:[A-Za-z0-9+/]{43}=$/);
  assert.deepEqual(publicKeyFromNodeId(id.nodeId), id.publicKey);
  assert.equal(nodeIdFromPublicKey(id.publicKey), id.nodeId);
  assert.equal(isNodeId(id.nodeId), true);
  for (const bad of [
    '',
    'weft:ed25519:',
    'weft:rsa:AAAA',
    `weft:ed25519:${'A'.repeat(44)}`,
    id.nodeId.slice(0, -2),
    42,
  ]) {
    assert.equal(isNodeId(bad), false, String(bad));
  }
});

test('the fingerprint is the first 8 bytes of BLAKE3 of the public key, in hex', () => {
  const id = generateIdentity();
  assert.equal(id.fingerprint, Buffer.from(blake3(id.publicKey).subarray(0, 8)).toString('hex'));
  assert.equal(fingerprint(id.publicKey), id.fingerprint);
  assert.equal(id.fingerprint.length, 16);
});

test('signatures verify with the signer key only, and a malformed signature is just false', () => {
  const a = generateIdentity();
  const b = generateIdentity();
  const data = new TextEncoder().encode('hello');
  const sig = a.sign(data);
  assert.equal(verifySignature(a.publicKey, data, sig), true);
  assert.equal(verifySignature(a.publicKeyObject, data, sig), true);
  assert.equal(verifySignature(b.publicKey, data, sig), false);
  assert.equal(verifySignature(a.publicKey, new TextEncoder().encode('hellO'), sig), false);
  assert.equal(verifySignature(a.publicKey, data, sig.subarray(0, 10)), false);
  assert.equal(verifySignature(new Uint8Array(5), data, sig), false);
});

test('loadOrCreate makes a 0600 key on first start and loads the same identity after', () => {
  const { dir, cleanup } = tempDir();
  try {
    const path = join(dir, 'keys', 'identity.key');
    const first = loadOrCreateIdentity(path);
    assert.equal(first.created, true);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const second = loadOrCreateIdentity(path);
    assert.equal(second.created, false);
    assert.equal(second.identity.nodeId, first.identity.nodeId);
  } finally {
    cleanup();
  }
});

test('a private key file readable by others is refused with an error naming the file and mode', () => {
  const { dir, cleanup } = tempDir();
  try {
    const path = join(dir, 'identity.key');
    loadOrCreateIdentity(path);
    chmodSync(path, 0o644);
    assert.throws(
      () => loadIdentity(path),
      (err: unknown) =>
        err instanceof IdentityError &&
        err.code === 'IDENTITY_KEY_MODE' &&
        err.message.includes(path) &&
        err.message.includes('0644'),
    );
    assert.throws(() => loadOrCreateIdentity(path), { code: 'IDENTITY_KEY_MODE' });
  } finally {
    cleanup();
  }
});

test('a key file that is not an Ed25519 PEM key is refused', () => {
  const { dir, cleanup } = tempDir();
  try {
    const path = join(dir, 'identity.key');
    writeFileSync(path, 'not a key', { mode: 0o600 });
    assert.throws(() => loadIdentity(path), { code: 'IDENTITY_KEY_INVALID' });
  } finally {
    cleanup();
  }
});

test('a rotation is endorsed by the old key and refused when forged or endorsed by another key', () => {
  const oldId = generateIdentity();
  const newId = generateIdentity();
  const other = generateIdentity();
  const record = createRotationRecord(oldId, newId, 1_700_000_000_000);
  assert.deepEqual(verifyRotationRecord(record, { expectedOldNodeId: oldId.nodeId }), { ok: true });

  // Someone else's key "endorses" a rotation of oldId.
  const forged = { ...createRotationRecord(other, newId, 1), oldNodeId: oldId.nodeId };
  assert.equal(verifyRotationRecord(forged).ok, false);
  assert.equal((verifyRotationRecord(forged) as { code: string }).code, 'ROTATION_BAD_ENDORSEMENT');

  // A valid record by another key is not a rotation of the key we pinned.
  const foreign = createRotationRecord(other, newId, 1);
  assert.equal(
    (verifyRotationRecord(foreign, { expectedOldNodeId: oldId.nodeId }) as { code: string }).code,
    'ROTATION_UNEXPECTED_OLD_KEY',
  );

  // Changing the timestamp or the new key breaks the endorsement.
  assert.equal(verifyRotationRecord({ ...record, timestamp: record.timestamp + 1 }).ok, false);
  assert.equal(verifyRotationRecord({ ...record, newNodeId: other.nodeId }).ok, false);
  assert.equal(
    (verifyRotationRecord({ ...record, proof: record.endorsement }) as { code: string }).code,
    'ROTATION_BAD_PROOF',
  );
  assert.equal((verifyRotationRecord({ oldNodeId: 1 }) as { code: string }).code, 'ROTATION_MALFORMED');
  assert.equal((verifyRotationRecord(null) as { code: string }).code, 'ROTATION_MALFORMED');
});

test('rotating the key file keeps the old key aside and stores the endorsed new key', () => {
  const { dir, cleanup } = tempDir();
  try {
    const path = join(dir, 'identity.key');
    const { identity: before } = loadOrCreateIdentity(path);
    const clock = new ManualClock();
    const r = rotateIdentityFile(path, clock);
    assert.equal(r.previous.nodeId, before.nodeId);
    assert.notEqual(r.identity.nodeId, before.nodeId);
    assert.equal(loadIdentity(path).nodeId, r.identity.nodeId);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(verifyRotationRecord(r.record, { expectedOldNodeId: before.nodeId }), { ok: true });
    assert.equal(r.record.timestamp, clock.now());
    const archived = readdirSync(dir).filter((f) => f.startsWith('identity.key.rotated-'));
    assert.equal(archived.length, 1);
    assert.equal(existsSync(join(dir, archived[0]!)), true);
  } finally {
    cleanup();
  }
});

test('the node certificate carries the node key, so a peer can compare it with its pin', async () => {
  const id = generateIdentity();
  const cert = createNodeCertificate(id, { now: Date.now() });
  const x = new X509Certificate(cert.certPem);
  assert.deepEqual(publicKeyFromCertificate(x.raw), id.publicKey);
  assert.match(x.subject, new RegExp(id.fingerprint));
  assert.equal(x.verify(x.publicKey), true);
  assert.throws(() => publicKeyFromCertificate(new Uint8Array([1, 2, 3])), { code: 'IDENTITY_KEY_INVALID' });
});

test('the node certificate is byte for byte what the X.509 library made for the same key and time', () => {
  for (const f of PECULIAR_CERTIFICATES) {
    const id = identityFromPrivateKey(createPrivateKey(f.keyPem));
    const cert = createNodeCertificate(id, {
      now: f.now,
      ...(f.validDays !== undefined ? { validDays: f.validDays } : {}),
    });
    assert.equal(cert.certPem, f.certPem, `${f.case} at ${new Date(f.now).toISOString()}`);
    assert.equal(cert.keyPem, f.keyPem);
  }
});

test('the node certificate reads back as a v3, self-signed, non-CA certificate valid from a minute before now', () => {
  const id = generateIdentity();
  const now = Date.UTC(2026, 11, 7, 12, 30, 15, 500);
  const x = new X509Certificate(createNodeCertificate(id, { now, validDays: 10 }).certPem);
  assert.equal(x.subject, `CN=weft-${id.fingerprint}`);
  assert.equal(x.issuer, x.subject);
  assert.equal(x.ca, false);
  assert.equal(x.checkIssued(x), true);
  assert.equal(new Date(x.validFrom).getTime(), Date.UTC(2026, 11, 7, 12, 29, 15));
  assert.equal(new Date(x.validTo).getTime(), Date.UTC(2026, 11, 17, 12, 30, 15));
  assert.equal(x.verify(x.publicKey), true);
  // Signed by this key and no other.
  const other = new X509Certificate(createNodeCertificate(generateIdentity(), { now }).certPem);
  assert.equal(x.verify(other.publicKey), false);
});

test('DER: object identifiers, integers and times are encoded as X.509 needs them', () => {
  assert.equal(oid('2.5.29.19').toString('hex'), '0603551d13');
  assert.equal(oid('1.2.840.113549.1.1.11').toString('hex'), '06092a864886f70d01010b');
  assert.equal(unsignedInteger(Uint8Array.from([0, 0, 0x7f])).toString('hex'), '02017f');
  assert.equal(unsignedInteger(Uint8Array.from([0, 0x80])).toString('hex'), '02020080');
  assert.equal(unsignedInteger(Uint8Array.from([0xff])).toString('hex'), '020200ff');
  assert.equal(unsignedInteger(Uint8Array.from([0, 0])).toString('hex'), '020100');
  assert.equal(
    time(Date.UTC(2049, 11, 31, 23, 59, 59, 999))
      .toString('latin1')
      .slice(2),
    '491231235959Z',
  );
  assert.equal(
    time(Date.UTC(2050, 0, 1))
      .toString('latin1')
      .slice(2),
    '20500101000000Z',
  );
  assert.throws(() => time(Date.UTC(1949, 0, 1)), RangeError);
});
