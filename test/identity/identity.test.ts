import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
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
import { tempDir } from '../helpers/tmp.js';

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
  const cert = await createNodeCertificate(id, { now: Date.now() });
  const x = new X509Certificate(cert.certPem);
  assert.deepEqual(publicKeyFromCertificate(x.raw), id.publicKey);
  assert.match(x.subject, new RegExp(id.fingerprint));
  assert.equal(x.verify(x.publicKey), true);
  assert.throws(() => publicKeyFromCertificate(new Uint8Array([1, 2, 3])), { code: 'IDENTITY_KEY_INVALID' });
});
