/** Node ids (`weft:ed25519:<base64>`) and fingerprints (first 8 bytes of BLAKE3, hex). */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { blake3 } from '@noble/hashes/blake3.js';
import { IdentityError } from './errors.js';

/** Prefix of every node id. */
export const NODE_ID_PREFIX = 'weft:ed25519:';

/** DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows it. */
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/**
 * The node id for a raw 32-byte Ed25519 public key.
 * @example
 * nodeIdFromPublicKey(identity.publicKey); // 'weft:ed25519:3q2+7w...='
 */
export function nodeIdFromPublicKey(raw: Uint8Array): string {
  if (raw.length !== 32)
    throw new IdentityError('IDENTITY_KEY_INVALID', `an Ed25519 public key has 32 bytes, got ${raw.length}`);
  return NODE_ID_PREFIX + Buffer.from(raw).toString('base64');
}

/**
 * The raw public key inside a node id, or undefined when the id is malformed.
 * @example
 * publicKeyFromNodeId('weft:ed25519:...')?.length; // 32
 */
export function publicKeyFromNodeId(nodeId: string): Uint8Array | undefined {
  if (typeof nodeId !== 'string' || !nodeId.startsWith(NODE_ID_PREFIX)) return undefined;
  const b64 = nodeId.slice(NODE_ID_PREFIX.length);
  if (b64.length !== 44 || !/^[A-Za-z0-9+/]{43}=$/.test(b64)) return undefined;
  const raw = Buffer.from(b64, 'base64');
  if (raw.length !== 32) return undefined;
  // Reject non-canonical encodings so one key has exactly one id.
  if (raw.toString('base64') !== b64) return undefined;
  return new Uint8Array(raw);
}

/** True when `nodeId` is a well-formed Weft node id. */
export function isNodeId(nodeId: unknown): nodeId is string {
  return typeof nodeId === 'string' && publicKeyFromNodeId(nodeId) !== undefined;
}

/**
 * Human-readable fingerprint: first 8 bytes of BLAKE3(public key), hex (16 characters).
 * @example
 * fingerprint(identity.publicKey); // 'a1b2c3d4e5f60718'
 */
export function fingerprint(raw: Uint8Array): string {
  return Buffer.from(blake3(raw).subarray(0, 8)).toString('hex');
}

/** Fingerprint of a node id; undefined when the id is malformed. */
export function fingerprintOfNodeId(nodeId: string): string | undefined {
  const raw = publicKeyFromNodeId(nodeId);
  return raw ? fingerprint(raw) : undefined;
}

/** A node:crypto public KeyObject for a raw 32-byte Ed25519 key. */
export function publicKeyObjectFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== 32)
    throw new IdentityError('IDENTITY_KEY_INVALID', `an Ed25519 public key has 32 bytes, got ${raw.length}`);
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** The raw 32 bytes of an Ed25519 public KeyObject. */
export function rawFromPublicKeyObject(key: KeyObject): Uint8Array {
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new IdentityError(
      'IDENTITY_KEY_INVALID',
      `expected an ed25519 key, got ${key.asymmetricKeyType ?? key.type}`,
    );
  }
  const der = key.export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(der.length - 32));
}
