/** Per-link AEAD keys: X25519 key agreement, then HKDF-SHA256. */
import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
} from 'node:crypto';

const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

/** An ephemeral X25519 key pair; `publicKey` is the raw 32 bytes a hello frame carries. */
export interface LinkKeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: Uint8Array;
}

/** Makes an ephemeral X25519 key pair for one link. */
export function generateLinkKeyPair(): LinkKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return { privateKey, publicKey: new Uint8Array(der.subarray(der.length - 32)) };
}

/**
 * Derives the 32-byte AEAD key both ends of a link share. Both sides pass the two node ids;
 * they are sorted so the result does not depend on who calls.
 * @example
 * const key = deriveLinkKey(mine.privateKey, theirHello.x25519, myNodeId, theirNodeId);
 */
export function deriveLinkKey(
  myPrivate: KeyObject,
  theirPublicRaw: Uint8Array,
  nodeIdA: string,
  nodeIdB: string,
): Uint8Array {
  const theirs = createPublicKey({
    key: Buffer.concat([X25519_SPKI_PREFIX, theirPublicRaw]),
    format: 'der',
    type: 'spki',
  });
  const shared = diffieHellman({ privateKey: myPrivate, publicKey: theirs });
  const [a, b] = [nodeIdA, nodeIdB].sort();
  return new Uint8Array(
    hkdfSync('sha256', shared, Buffer.from('weft-link-v1'), Buffer.from(`${a}\n${b}`), 32),
  );
}

/** Re-creates an X25519 private key from its PKCS#8 DER (to persist a link key pair). */
export function linkPrivateKeyFromDer(der: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' });
}
