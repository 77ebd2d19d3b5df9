/** A self-signed X.509 certificate for the node's Ed25519 key, presented in mutual TLS. */
import { X509Certificate as NodeX509, sign } from 'node:crypto';
import {
  bitString,
  boolean,
  directoryString,
  explicit,
  octetString,
  oid,
  sequence,
  set,
  time,
  unsignedInteger,
} from './der.js';
import { IdentityError } from './errors.js';
import type { NodeIdentity } from './identity.js';
import { rawFromPublicKeyObject } from './node-id.js';

/** PEM certificate and PEM private key, ready for `tls.createServer` / `tls.connect`. */
export interface NodeCertificate {
  readonly certPem: string;
  readonly keyPem: string;
}

const ED25519 = sequence(oid('1.3.101.112')); // AlgorithmIdentifier, no parameters (RFC 8410)

/**
 * Makes a self-signed certificate for the identity's key (CN = `weft-<fingerprint>`, valid from
 * a minute before `now` for `validDays`, default 3,650; basic constraints: not a CA, critical).
 * Peers do not trust the certificate's signature chain; they compare its public key with the
 * key they pinned. Encoded here in DER (a few dozen bytes of structure around the key and the
 * signature): an X.509 library cost a mesh node ~220 ms of start and ~18 MB of memory.
 * @example
 * const { certPem, keyPem } = createNodeCertificate(identity, { now: Date.now() });
 */
export function createNodeCertificate(
  identity: NodeIdentity,
  opts: { now: number; validDays?: number },
): NodeCertificate {
  const days = opts.validDays ?? 3650;
  const name = sequence(set(sequence(oid('2.5.4.3'), directoryString(`weft-${identity.fingerprint}`))));
  const tbs = sequence(
    explicit(0, unsignedInteger(Buffer.from([2]))), // version: v3
    unsignedInteger(identity.publicKey.subarray(0, 8)), // serial: the key's first bytes
    ED25519,
    name, // issuer: itself
    sequence(time(opts.now - 60_000), time(opts.now + days * 86_400_000)),
    name,
    sequence(ED25519, bitString(identity.publicKey)),
    explicit(3, sequence(sequence(oid('2.5.29.19'), boolean(true), octetString(sequence())))), // basicConstraints, critical, cA false
  );
  const der = sequence(tbs, ED25519, bitString(sign(null, tbs, identity.privateKey)));
  const b64 = der.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return {
    certPem: `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----`,
    keyPem: identity.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
}

/**
 * The raw Ed25519 public key inside a DER certificate (as given by
 * `socket.getPeerCertificate(true).raw`).
 * @throws IdentityError IDENTITY_KEY_INVALID when the certificate is unreadable or not Ed25519.
 */
export function publicKeyFromCertificate(der: Uint8Array): Uint8Array {
  try {
    return rawFromPublicKeyObject(new NodeX509(der).publicKey);
  } catch (cause) {
    if (cause instanceof IdentityError) throw cause;
    throw new IdentityError('IDENTITY_KEY_INVALID', 'certificate is unreadable', { cause });
  }
}
