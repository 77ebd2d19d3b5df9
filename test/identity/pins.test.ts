import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRotationRecord, generateIdentity, PinnedKeys } from '../../src/identity/index.js';
import { decodeFrame, encodeFrame } from '../../src/transport/index.js';

const T = Date.UTC(2026, 0, 1);
const frame = (id: ReturnType<typeof generateIdentity>) =>
  encodeFrame({ type: 'events', sequence: 1, timestamp: T, body: { envelopes: [] } }, { identity: id });

test('after an endorsed rotation the new key is accepted and the old key is not', () => {
  const oldKey = generateIdentity();
  const newKey = generateIdentity();
  const pins = new PinnedKeys();
  pins.pin('mars', oldKey.nodeId);
  assert.ok(decodeFrame(frame(oldKey), { lookupKey: pins.lookupKey }).ok);
  assert.equal(decodeFrame(frame(newKey), { lookupKey: pins.lookupKey }).ok, false);

  const r = pins.applyRotation(createRotationRecord(oldKey, newKey, T));
  assert.deepEqual(r, { ok: true, computer: 'mars' });
  assert.ok(decodeFrame(frame(newKey), { lookupKey: pins.lookupKey }).ok);
  const old = decodeFrame(frame(oldKey), { lookupKey: pins.lookupKey });
  assert.equal(old.ok ? '' : old.error.code, 'FRAME_UNKNOWN_SENDER');
  assert.equal(pins.nodeIdOf('mars'), newKey.nodeId);
});

test('a rotation not endorsed by the pinned key changes nothing', () => {
  const pinned = generateIdentity();
  const attacker = generateIdentity();
  const pins = new PinnedKeys();
  pins.pin('mars', pinned.nodeId);
  // Endorsed by a key nobody pinned.
  assert.equal(pins.applyRotation(createRotationRecord(attacker, generateIdentity(), T)).ok, false);
  // Claims to come from the pinned key, signed by the attacker.
  const forged = {
    ...createRotationRecord(attacker, attacker, T),
    oldNodeId: pinned.nodeId,
    newNodeId: attacker.nodeId,
  };
  const r = pins.applyRotation(forged);
  assert.equal(r.ok, false);
  assert.equal(pins.nodeIdOf('mars'), pinned.nodeId);
  assert.throws(() => pins.pin('venus', 'weft:ed25519:nope'));
});
