/**
 * Pinned peer keys: which node id each peer computer is trusted to sign with. Feeds
 * `decodeFrame`'s `lookupKey`, and applies endorsed key rotations (after which the old key
 * is no longer accepted).
 */
import { publicKeyFromNodeId } from './node-id.js';
import { type KeyRotationRecord, type RotationCheck, verifyRotationRecord } from './rotation.js';

export class PinnedKeys {
  private readonly byComputer = new Map<string, string>();
  private readonly byNodeId = new Map<string, { computer: string; key: Uint8Array }>();

  /**
   * Pins `nodeId` for `computer` (replacing any earlier pin for that computer).
   * @throws Error when the node id is malformed.
   */
  pin(computer: string, nodeId: string): void {
    const key = publicKeyFromNodeId(nodeId);
    if (!key) throw new Error(`cannot pin ${computer}: ${nodeId} is not a weft:ed25519 node id`);
    const old = this.byComputer.get(computer);
    if (old !== undefined) this.byNodeId.delete(old);
    this.byComputer.set(computer, nodeId);
    this.byNodeId.set(nodeId, { computer, key });
  }

  unpin(computer: string): void {
    const old = this.byComputer.get(computer);
    if (old !== undefined) this.byNodeId.delete(old);
    this.byComputer.delete(computer);
  }

  /**
   * The raw public key for a pinned node id, else undefined. Pass as `lookupKey`.
   * @example
   * decodeFrame(bytes, { lookupKey: pins.lookupKey });
   */
  readonly lookupKey = (nodeId: string): Uint8Array | undefined => this.byNodeId.get(nodeId)?.key;

  /** The computer a node id is pinned for. */
  computerOf(nodeId: string): string | undefined {
    return this.byNodeId.get(nodeId)?.computer;
  }

  nodeIdOf(computer: string): string | undefined {
    return this.byComputer.get(computer);
  }

  /**
   * Applies a rotation announced by a peer: valid only when endorsed by the key currently
   * pinned for that peer. On success the new key replaces the old one, which stops working.
   */
  applyRotation(record: KeyRotationRecord): RotationCheck & { computer?: string } {
    const computer = this.computerOf(record?.oldNodeId);
    if (computer === undefined) {
      return {
        ok: false,
        code: 'ROTATION_UNEXPECTED_OLD_KEY',
        message: `rotation endorsed by ${record?.oldNodeId}, which is not a pinned key`,
      };
    }
    const check = verifyRotationRecord(record, { expectedOldNodeId: this.byComputer.get(computer) });
    if (!check.ok) return check;
    this.pin(computer, record.newNodeId);
    return { ok: true, computer };
  }

  entries(): Array<{ computer: string; nodeId: string }> {
    return [...this.byComputer].map(([computer, nodeId]) => ({ computer, nodeId }));
  }
}
