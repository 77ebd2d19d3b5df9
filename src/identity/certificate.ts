/** A self-signed X.509 certificate for the node's Ed25519 key, presented in mutual TLS. */
import { webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import type * as X509 from '@peculiar/x509';
import { IdentityError } from './errors.js';
import type { NodeIdentity } from './identity.js';
import { rawFromPublicKeyObject } from './node-id.js';

let x509Module: Promise<typeof X509> | undefined;

/** @peculiar/x509 (and the reflect polyfill it needs) is loaded only by nodes that use TLS. */
function loadX509(): Promise<typeof X509> {
  x509Module ??= (async () => {
    await import('reflect-metadata');
    const x = await import('@peculiar/x509');
    x.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x.cryptoProvider.set>[0]);
    return x;
  })();
  return x509Module;
}

/** PEM certificate and PEM private key, ready for `tls.createServer` / `tls.connect`. */
export interface NodeCertificate {
  readonly certPem: string;
  readonly keyPem: string;
}

/**
 * Makes a self-signed certificate for the identity's key (CN = fingerprint).
 * Peers do not trust the certificate's signature chain; they compare its public key with the
 * key they pinned.
 * @example
 * const { certPem, keyPem } = await createNodeCertificate(identity, { now: Date.now() });
 */
export async function createNodeCertificate(
  identity: NodeIdentity,
  opts: { now: number; validDays?: number },
): Promise<NodeCertificate> {
  const x509 = await loadX509();
  const subtle = webcrypto.subtle;
  const alg = { name: 'Ed25519' };
  const pkcs8 = identity.privateKey.export({ format: 'der', type: 'pkcs8' });
  const privateKey = await subtle.importKey('pkcs8', pkcs8, alg, false, ['sign']);
  const publicKey = await subtle.importKey('raw', identity.publicKey, alg, true, ['verify']);
  const days = opts.validDays ?? 3650;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(identity.publicKey.subarray(0, 8)).toString('hex'),
    name: `CN=weft-${identity.fingerprint}`,
    notBefore: new Date(opts.now - 60_000),
    notAfter: new Date(opts.now + days * 86_400_000),
    keys: { privateKey, publicKey } as unknown as X509.X509CertificateCreateSelfSignedParams['keys'],
    signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(false, undefined, true)],
  });
  return {
    certPem: cert.toString('pem'),
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
