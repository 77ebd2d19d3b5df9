/** recovery: recovery beacons, the notification and cartridge journals, Phoenix restore from peers, and the encrypted identity backup (docs/recovery.md). */
export { type BeaconCartridge, type BeaconHolder, type BeaconPayload, type BeaconRange, signBeacon, verifyBeacon } from './beacon.js';
export type { RecoveryMode } from './books.js';
export { blockSizeFor, buildRanges, contentHash, type DigestRange, type Holding, holdingOver, NOT_CONTENT, RunDigest } from './digest.js';
export { FLOOR_PER_MS, raiseFrameSequenceToFloor, resumeFrameSequencePast, reservedSequence } from './frame-sequence.js';
export { BACKUP_FORMAT, checkPassphrase, DEFAULT_KDF, decryptIdentity, encryptIdentity, type KdfParams, type KeyBackup, MIN_PASSPHRASE, readBackupFile, writeBackupFile } from './key-backup.js';
export type { CartridgePort, RecoveryDeps, RecoveryInit, RecoveryNode } from './ports.js';
export type { RestoreOptions, RestorePhase, RestoreProgress } from './restore.js';
export { type NodeView, type RangeView, RecoveryService, type RecoveryStatus } from './service.js';
export { RECOVERY_BATCH, RECOVERY_HOLDING, RECOVERY_INFO, RECOVERY_PULL, RECOVERY_QUERY } from './wire.js';
export { type FallbackInit, type FallbackPeerView, type FallbackRound, type FallbackStatus, GitFallback, isGitRefSafe, splitFrames } from './fallback.js';
export { Git, GitError, redactUrls } from './git.js';
