/** The node's Ed25519 key pair: made on first start, kept in a 0600 file, loaded after. */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import {
  chmodSync,
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { IdentityError } from './errors.js';
import {
  fingerprint,
  nodeIdFromPublicKey,
  publicKeyObjectFromRaw,
  rawFromPublicKeyObject,
} from './node-id.js';

/** A node's identity: its key pair, node id and fingerprint. */
export interface NodeIdentity {
  /** `weft:ed25519:<base64 raw public key>`. */
  readonly nodeId: string;
  /** First 8 bytes of BLAKE3(public key), hex. */
  readonly fingerprint: string;
  /** Raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  readonly publicKeyObject: KeyObject;
  readonly privateKey: KeyObject;
  /** Signs `data` with this node's private key (64-byte Ed25519 signature). */
  sign(data: Uint8Array): Uint8Array;
}

/** Wraps a private KeyObject as a NodeIdentity. */
export function identityFromPrivateKey(privateKey: KeyObject): NodeIdentity {
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new IdentityError(
      'IDENTITY_KEY_INVALID',
      `expected an ed25519 private key, got ${privateKey.asymmetricKeyType}`,
    );
  }
  const publicKeyObject = createPublicKey(privateKey);
  const publicKey = rawFromPublicKeyObject(publicKeyObject);
  return {
    nodeId: nodeIdFromPublicKey(publicKey),
    fingerprint: fingerprint(publicKey),
    publicKey,
    publicKeyObject,
    privateKey,
    sign: (data) => new Uint8Array(sign(null, data, privateKey)),
  };
}

/**
 * A fresh identity that lives only in memory (tests, ephemeral nodes).
 * @example
 * const id = generateIdentity(); id.nodeId.startsWith('weft:ed25519:'); // true
 */
export function generateIdentity(): NodeIdentity {
  const { privateKey } = generateKeyPairSync('ed25519');
  return identityFromPrivateKey(privateKey);
}

/** A public key given as raw bytes, a KeyObject, or a node id's raw key. */
export type PublicKeyLike = Uint8Array | KeyObject;

const keyCache = new Map<string, KeyObject>();

function toKeyObject(key: PublicKeyLike): KeyObject {
  if (!(key instanceof Uint8Array)) return key;
  const k = Buffer.from(key).toString('base64');
  let obj = keyCache.get(k);
  if (!obj) {
    obj = publicKeyObjectFromRaw(key);
    if (keyCache.size > 4096) keyCache.clear();
    keyCache.set(k, obj);
  }
  return obj;
}

/**
 * Checks an Ed25519 signature; false (never throws) for any malformed key or signature.
 * @example
 * verifySignature(id.publicKey, data, id.sign(data)); // true
 */
export function verifySignature(publicKey: PublicKeyLike, data: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  try {
    return verify(null, data, toKeyObject(publicKey), signature);
  } catch {
    return false;
  }
}

/** Signs `data` with a private key. */
export function signWith(privateKey: KeyObject, data: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, data, privateKey));
}

/**
 * Loads the identity stored at `path`. Refuses a file readable or writable by group or others.
 * @throws IdentityError IDENTITY_KEY_MODE when the mode is looser than 0600,
 *   IDENTITY_KEY_INVALID when the file is not an Ed25519 private key.
 */
export function loadIdentity(path: string): NodeIdentity {
  const st = statSync(path);
  const mode = st.mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new IdentityError(
      'IDENTITY_KEY_MODE',
      `private key file ${path} has mode ${mode.toString(8).padStart(4, '0')}; it must be 0600 (run: chmod 600 ${path})`,
      { details: { path, mode: mode.toString(8).padStart(4, '0') } },
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: readFileSync(path), format: 'pem' });
  } catch (cause) {
    const what = st.isDirectory() ? 'is a directory, not a key file' : 'is not a PEM private key (damaged or overwritten?)';
    throw new IdentityError('IDENTITY_KEY_INVALID', `private key file ${path} ${what}: put this node's key back from a backup ('weft identity import <file>', daemon stopped)`, {
      cause,
      details: { path },
    });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new IdentityError(
      'IDENTITY_KEY_INVALID',
      `private key file ${path} holds a ${key.asymmetricKeyType} key, not ed25519`,
      {
        details: { path },
      },
    );
  }
  return identityFromPrivateKey(key);
}

/** Writes the identity's private key to `path` (PKCS#8 PEM, mode 0600) atomically. */
export function saveIdentity(path: string, identity: NodeIdentity): void {
  savePrivateKeyFile(path, identity.privateKey);
}

/** Writes a private key to `path` as PKCS#8 PEM, mode 0600, atomically (fsync, then rename). */
export function savePrivateKeyFile(path: string, privateKey: KeyObject): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, pem);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/**
 * Loads the identity at `path`, or makes and saves one when the file does not exist.
 * @example
 * const { identity, created } = loadOrCreateIdentity('/home/me/.weft/identity.key');
 */
export function loadOrCreateIdentity(path: string): { identity: NodeIdentity; created: boolean } {
  try {
    statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const identity = generateIdentity();
    saveIdentity(path, identity);
    return { identity, created: true };
  }
  return { identity: loadIdentity(path), created: false };
}
