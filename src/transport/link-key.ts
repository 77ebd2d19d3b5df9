/**
 * Per-link AEAD keys: X25519 key agreement, then HKDF-SHA256. Each node has one static X25519
 * key pair (`<dataDir>/link.key`, PKCS#8 PEM, 0600); its public half travels in signed `hello`
 * frames, and the key of a link is derived from our private half, the peer's public half and
 * both node ids, so both ends get the same 32 bytes without ever sending them.
 */
import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
} from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { IdentityError, savePrivateKeyFile } from '../identity/index.js';

const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

/** An X25519 key pair; `publicKey` is the raw 32 bytes a hello frame carries. */
export interface LinkKeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: Uint8Array;
}

function rawPublic(publicKey: KeyObject): Uint8Array {
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(der.length - 32));
}

/** Makes an X25519 key pair (a node's static link key, or an ephemeral one in tests). */
export function generateLinkKeyPair(): LinkKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return { privateKey, publicKey: rawPublic(publicKey) };
}

/** The key pair of an X25519 private key. */
export function linkKeyPairOf(privateKey: KeyObject): LinkKeyPair {
  return { privateKey, publicKey: rawPublic(createPublicKey(privateKey)) };
}

/**
 * Derives the 32-byte AEAD key both ends of a link share. Both sides pass the two node ids;
 * they are sorted so the result does not depend on who calls.
 * @throws Error when `theirPublicRaw` is not a usable X25519 public key (a low-order point).
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
  // A low-order public key makes the shared secret all zeros: anyone could compute it.
  if (shared.every((b) => b === 0)) throw new Error('the peer\'s X25519 public key is a low-order point');
  const [a, b] = [nodeIdA, nodeIdB].sort();
  return new Uint8Array(
    hkdfSync('sha256', shared, Buffer.from('weft-link-v1'), Buffer.from(`${a}\n${b}`), 32),
  );
}

/** Re-creates an X25519 private key from its PKCS#8 DER (to persist a link key pair). */
export function linkPrivateKeyFromDer(der: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' });
}

/**
 * Loads the node's static link key pair from `path` (PKCS#8 PEM), or makes one and writes it
 * atomically with mode 0600 when the file does not exist. A file readable by group or others,
 * or one that holds another kind of key, is refused: the key opens every sealed frame.
 * @throws IdentityError IDENTITY_KEY_MODE, IDENTITY_KEY_INVALID.
 * @example
 * const { pair, created } = loadOrCreateLinkKeyPair(join(dataDir, 'link.key'));
 */
export function loadOrCreateLinkKeyPair(path: string): { pair: LinkKeyPair; created: boolean } {
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const pair = generateLinkKeyPair();
    saveLinkKey(path, pair.privateKey);
    return { pair, created: true };
  }
  if ((mode & 0o077) !== 0) {
    const m = mode.toString(8).padStart(4, '0');
    throw new IdentityError('IDENTITY_KEY_MODE', `link key file ${path} has mode ${m}; it must be 0600 (run: chmod 600 ${path})`, { details: { path, mode: m } });
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: readFileSync(path), format: 'pem' });
  } catch (cause) {
    throw new IdentityError('IDENTITY_KEY_INVALID', `link key file ${path} is not a PEM private key (delete it and a new one is made; peers learn it from the next hello)`, {
      cause,
      details: { path },
    });
  }
  if (key.asymmetricKeyType !== 'x25519') {
    throw new IdentityError('IDENTITY_KEY_INVALID', `link key file ${path} holds a ${key.asymmetricKeyType} key, not x25519`, { details: { path } });
  }
  return { pair: linkKeyPairOf(key), created: false };
}

function saveLinkKey(path: string, privateKey: KeyObject): void {
  savePrivateKeyFile(path, privateKey);
}
