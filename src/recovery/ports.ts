/**
 * What the recovery organ needs from the node, the mesh and the federation organs: narrow
 * ports, so recovery/ depends on their types, never on the daemon.
 */
import type { AuditLog } from '../audit/index.js';
import type { EmitInput, Envelope } from '../envelope/index.js';
import type { FederationNode, MountBook } from '../federation/index.js';
import type { NodeIdentity } from '../identity/index.js';
import type { MeshService, PeerBook } from '../mesh/index.js';
import type { NodeStore } from '../store/index.js';
import type { Clock, Logger } from '../util/index.js';

export interface RecoveryNode extends Omit<FederationNode, 'ns'> {
  readonly ns: Pick<NodeStore, 'store' | 'log' | 'deadLetters' | 'rejections' | 'notifications'>;
  emitMany(inputs: readonly EmitInput[]): Promise<Envelope[]>;
}

/** User options of the recovery organ (the config's `recovery.*`). */
export interface RecoveryInit {
  /** Beacons and journals on (default true); a restore works either way. */
  enabled?: boolean;
  /** ms between beacons (`recovery.beacon_interval`, default 5 min). */
  beaconIntervalMs?: number;
  /** Copies each range should have (`recovery.min_copies`, default 2). */
  minCopies?: number;
  /** Events per digest range (`recovery.block_events`, default 10,000). */
  blockEvents?: number;
  /** The node's key was made at this start: a new node, nothing to restore (no check of its peers). */
  identityCreated: boolean;
  /**
   * Start a database made under an older key at the clock's sequence floor (default true;
   * frame-sequence.ts). Without it a wiped node's first frames may be refused as replays.
   */
  sequenceFloor?: boolean;
  /** The node's data dir: the cartridge journal reads the installed packages from it. */
  dataDir?: string;
  /** ms between journal passes (default 2 s). */
  journalEveryMs?: number;
  /** ms a restore waits for its peers' answers (default 15 s). */
  queryTimeoutMs?: number;
}

export interface RecoveryDeps {
  node: RecoveryNode;
  mesh: MeshService;
  peers: PeerBook;
  /** The federation's mounts (mirror tokens of a restoring node). */
  mounts: MountBook;
  audit: AuditLog;
  /** The current identity (a key rotation replaces it). */
  identity: () => NodeIdentity;
  clock: Clock;
  logger: Logger;
}

/** What a restore needs to re-install cartridges: the node's cartridge runtime (sovereignty). */
export interface CartridgePort {
  list(): Array<{ name: string; version: string; status: string; sha256: string }>;
  install(pkg: { manifest: unknown; source: string }, options: { origin: string }): Promise<unknown>;
  activate(name: string, options?: { alpha?: boolean }): Promise<unknown>;
}
