/** identity: the node's Ed25519 key pair, node id, fingerprint, key rotation and TLS certificate. */
export { createNodeCertificate, type NodeCertificate, publicKeyFromCertificate } from './certificate.js';
export { IdentityError, type IdentityErrorCode } from './errors.js';
export {
  generateIdentity,
  identityFromPrivateKey,
  loadIdentity,
  loadOrCreateIdentity,
  type NodeIdentity,
  type PublicKeyLike,
  saveIdentity,
  savePrivateKeyFile,
  signWith,
  verifySignature,
} from './identity.js';
export {
  fingerprint,
  fingerprintOfNodeId,
  isNodeId,
  NODE_ID_PREFIX,
  nodeIdFromPublicKey,
  publicKeyFromNodeId,
  publicKeyObjectFromRaw,
  rawFromPublicKeyObject,
} from './node-id.js';
export {
  createRotationRecord,
  type KeyRotationRecord,
  type RotationCheck,
  rotateIdentityFile,
  verifyRotationRecord,
} from './rotation.js';
export { PinnedKeys } from './pins.js';
