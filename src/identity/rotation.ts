/**
 * Key rotation: the old key endorses the new one. A peer that pinned the old key accepts
 * the new key only with a valid endorsement, then stops accepting the old key.
 */
import { existsSync, renameSync } from 'node:fs';
import type { Clock } from '../util/index.js';
import { IdentityError } from './errors.js';
import {
  generateIdentity,
  loadIdentity,
  type NodeIdentity,
  saveIdentity,
  verifySignature,
} from './identity.js';
import { publicKeyFromNodeId } from './node-id.js';

/** Signed statement "old key hands over to new key at timestamp". */
export interface KeyRotationRecord {
  readonly oldNodeId: string;
  readonly newNodeId: string;
  /** Milliseconds since the epoch when the rotation was made. */
  readonly timestamp: number;
  /** Ed25519 signature by the OLD key over the rotation statement, base64. */
  readonly endorsement: string;
  /** Ed25519 signature by the NEW key over the same statement (proof it holds the key), base64. */
  readonly proof: string;
}

export type RotationCheck =
  | { ok: true }
  | {
      ok: false;
      code:
        | 'ROTATION_MALFORMED'
        | 'ROTATION_BAD_ENDORSEMENT'
        | 'ROTATION_BAD_PROOF'
        | 'ROTATION_UNEXPECTED_OLD_KEY';
      message: string;
    };

function statement(oldNodeId: string, newNodeId: string, timestamp: number): Uint8Array {
  return new TextEncoder().encode(`weft-key-rotation/v1\n${oldNodeId}\n${newNodeId}\n${timestamp}`);
}

/**
 * Makes the rotation record in which `oldIdentity` endorses `newIdentity`.
 * @example
 * const record = createRotationRecord(oldId, newId, clock.now());
 */
export function createRotationRecord(
  oldIdentity: NodeIdentity,
  newIdentity: NodeIdentity,
  timestamp: number,
): KeyRotationRecord {
  const msg = statement(oldIdentity.nodeId, newIdentity.nodeId, timestamp);
  return {
    oldNodeId: oldIdentity.nodeId,
    newNodeId: newIdentity.nodeId,
    timestamp,
    endorsement: Buffer.from(oldIdentity.sign(msg)).toString('base64'),
    proof: Buffer.from(newIdentity.sign(msg)).toString('base64'),
  };
}

/**
 * Checks a rotation record; never throws. Pass `expectedOldNodeId` (the key you pinned) so a
 * record endorsed by some other key is refused.
 * @example
 * verifyRotationRecord(record, { expectedOldNodeId: pinned }).ok; // true
 */
export function verifyRotationRecord(
  record: unknown,
  opts: { expectedOldNodeId?: string } = {},
): RotationCheck {
  const r = record as Partial<KeyRotationRecord> | null;
  if (
    typeof r !== 'object' ||
    r === null ||
    typeof r.oldNodeId !== 'string' ||
    typeof r.newNodeId !== 'string' ||
    typeof r.timestamp !== 'number' ||
    !Number.isSafeInteger(r.timestamp) ||
    typeof r.endorsement !== 'string' ||
    typeof r.proof !== 'string'
  ) {
    return {
      ok: false,
      code: 'ROTATION_MALFORMED',
      message: 'rotation record is missing fields or has wrong types',
    };
  }
  const oldKey = publicKeyFromNodeId(r.oldNodeId);
  const newKey = publicKeyFromNodeId(r.newNodeId);
  if (!oldKey || !newKey)
    return { ok: false, code: 'ROTATION_MALFORMED', message: 'rotation record holds a malformed node id' };
  if (r.oldNodeId === r.newNodeId)
    return { ok: false, code: 'ROTATION_MALFORMED', message: 'rotation record rotates a key to itself' };
  if (opts.expectedOldNodeId !== undefined && opts.expectedOldNodeId !== r.oldNodeId) {
    return {
      ok: false,
      code: 'ROTATION_UNEXPECTED_OLD_KEY',
      message: `rotation record is endorsed by ${r.oldNodeId}, not by the pinned key ${opts.expectedOldNodeId}`,
    };
  }
  const msg = statement(r.oldNodeId, r.newNodeId, r.timestamp);
  if (!verifySignature(oldKey, msg, Buffer.from(r.endorsement, 'base64'))) {
    return { ok: false, code: 'ROTATION_BAD_ENDORSEMENT', message: 'the old key did not sign this rotation' };
  }
  if (!verifySignature(newKey, msg, Buffer.from(r.proof, 'base64'))) {
    return { ok: false, code: 'ROTATION_BAD_PROOF', message: 'the new key did not sign this rotation' };
  }
  return { ok: true };
}

/**
 * Rotates the key stored at `path`: makes a new key, endorses it with the old one, keeps the
 * old key file as `<path>.rotated-<timestamp>` and saves the new key at `path`.
 * @throws IdentityError when the current key cannot be loaded.
 */
export function rotateIdentityFile(
  path: string,
  clock: Clock,
): { previous: NodeIdentity; identity: NodeIdentity; record: KeyRotationRecord } {
  const previous = loadIdentity(path);
  const identity = generateIdentity();
  const record = createRotationRecord(previous, identity, clock.now());
  const check = verifyRotationRecord(record);
  if (!check.ok) throw new IdentityError('IDENTITY_ROTATION_INVALID', check.message);
  let archived = `${path}.rotated-${record.timestamp}`;
  for (let i = 1; existsSync(archived); i++) archived = `${path}.rotated-${record.timestamp}-${i}`;
  renameSync(path, archived);
  saveIdentity(path, identity);
  return { previous, identity, record };
}
