/**
 * recovery: what a node tells its cluster so it can be rebuilt from its peers (docs/recovery.md).
 *
 * - `mesh.recovery.beacon`: periodically, signed by the node's key: its public key, its log's
 *   high-water mark, the digest of its cluster events range by range, its frame sequence
 *   high-water mark, which peers hold copies of which ranges, and its cartridges by digest.
 * - `mesh.recovery.notifications`: the journal of its notifications' states (a batch of rows).
 * - `mesh.recovery.cartridge`: one installed cartridge's package (in parts when large).
 * - `mesh.recovery.needed` / `mesh.recovery.restored`: this node's own notices (local).
 * - `mesh.fallback.engaged` / `mesh.fallback.failed`: the git fallback carries a peer's events
 *   (it was unreachable for fallback.after), or the git remote cannot be reached (local).
 *
 * Not to be confused with `sovereign.recovery_beacon` (alias `recovery_beacon`): the Meta FO's
 * session resurrection seed of the mesh roadmap, which stays as it is.
 */
import { Type } from '@sinclair/typebox';
import type { Catalog } from '../catalog.js';

/** Type names, so the organ and the routes do not spell them twice. */
export const RECOVERY_EVENTS = {
  beacon: 'mesh.recovery.beacon',
  notifications: 'mesh.recovery.notifications',
  cartridge: 'mesh.recovery.cartridge',
  needed: 'mesh.recovery.needed',
  restored: 'mesh.recovery.restored',
  settled: 'mesh.recovery.settled',
  fallbackEngaged: 'mesh.fallback.engaged',
  fallbackFailed: 'mesh.fallback.failed',
} as const;

const id = Type.String({ minLength: 1, maxLength: 64 });
const short = (max = 200) => Type.String({ maxLength: max });
const count = Type.Integer({ minimum: 0 });
const digest = Type.String({ pattern: '^[0-9a-f]{32,64}$' });

/** Registers the recovery types. */
export function registerRecoveryTypes(catalog: Catalog): void {
  catalog.register({
    control: true,
    type: RECOVERY_EVENTS.beacon,
    description: 'A recovery beacon: what is needed to rebuild this node from its peers, and which peers hold copies (signed by the node)',
    domain: 'mesh',
    defaultLevel: 'infrastructure',
    defaultVisibility: 'cluster',
    payload: Type.Object({
      node: short(),
      publicKey: short(100),
      computer: short(),
      cluster: Type.Optional(short()),
      at: Type.Integer({ minimum: 0 }),
      mode: Type.Optional(short(50)),
      log: Type.Object({ high: count, prunedBelow: count }),
      events: Type.Object({
        count,
        digest,
        blockEvents: count,
        ranges: Type.Array(
          Type.Object({ from: id, to: id, count, digest, lowSeq: count, highSeq: count, copies: count }),
          { maxItems: 256 },
        ),
      }),
      frameSequence: count,
      holders: Type.Array(
        Type.Object({ computer: short(), node: short(), ranges: count, upToSeq: count, at: count }),
        { maxItems: 256 },
      ),
      cartridges: Type.Array(
        Type.Object({ name: short(), version: short(100), status: short(50), sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }) }),
        { maxItems: 256 },
      ),
      notifications: Type.Object({ journaled: count, pending: count }),
      signature: Type.String({ maxLength: 200 }),
    }),
  });
  catalog.register({
    control: true,
    type: RECOVERY_EVENTS.notifications,
    description: "The journal of this node's notification states (cluster and public ones), so a restore rebuilds them",
    domain: 'mesh',
    defaultLevel: 'infrastructure',
    defaultVisibility: 'cluster',
    payload: Type.Object({
      /** The database the rows are in (a restored node's new one has another): a restore takes only older ones' entries. */
      db: Type.Optional(Type.String({ maxLength: 64 })),
      entries: Type.Array(Type.Record(Type.String(), Type.Unknown()), { maxItems: 2000 }),
    }),
  });
  catalog.register({
    control: true,
    type: RECOVERY_EVENTS.cartridge,
    description: 'One installed cartridge of this node (its package, in parts when large), so a restore re-installs the same cartridge, checked by digest',
    domain: 'mesh',
    defaultLevel: 'infrastructure',
    defaultVisibility: 'cluster',
    payload: Type.Object({
      name: short(),
      version: short(100),
      status: short(50),
      sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
      part: count,
      parts: Type.Integer({ minimum: 1, maximum: 64 }),
      manifest: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
      code: Type.String({ maxLength: 49_152 }),
    }),
  });
  catalog.register({
    control: true,
    type: RECOVERY_EVENTS.needed,
    description: "Peers hold more of this node's history than it has (a wiped data dir?): run 'weft recovery restore'",
    domain: 'mesh',
    defaultLevel: 'operational',
    defaultVisibility: 'local',
    payload: Type.Object({
      node: short(),
      peers: Type.Array(short(), { maxItems: 256 }),
      events: count,
      localEvents: count,
      message: short(2000),
    }),
    idempotencyFields: ['node'],
    // Resolved by mesh.recovery.settled once the node is restored or the restore dismissed.
    lifecycle: { creates: true, groupKey: 'node' },
  });
  catalog.register({
    type: RECOVERY_EVENTS.settled,
    description: "The node no longer waits for a restore (it was restored, or the restore was dismissed): resolves the mesh.recovery.needed notification",
    domain: 'mesh',
    defaultLevel: 'infrastructure',
    defaultVisibility: 'local',
    payload: Type.Object({ node: short(), how: Type.Union([Type.Literal('restored'), Type.Literal('dismissed')]) }),
    lifecycle: { resolves: true, groupKey: 'node' },
  });
  catalog.register({
    control: true,
    type: RECOVERY_EVENTS.restored,
    description: "This node was rebuilt from its peers (weft recovery restore): its cluster events, notification states and cartridges",
    domain: 'mesh',
    defaultLevel: 'operational',
    defaultVisibility: 'local',
    payload: Type.Object({
      events: count,
      verifiedRanges: count,
      ranges: count,
      unverifiedEvents: count,
      notifications: count,
      cartridges: count,
      peers: Type.Array(short(), { maxItems: 256 }),
      frameSequence: count,
      durationMs: count,
    }),
    lifecycle: { creates: true },
  });
  catalog.register({
    control: true,
    type: RECOVERY_EVENTS.fallbackEngaged,
    description: 'A peer was unreachable for fallback.after: what waits for it now also goes through the git fallback remote (signed, sealed commits on this node\'s ref)',
    domain: 'mesh',
    defaultLevel: 'operational',
    defaultVisibility: 'local',
    payload: Type.Object({
      peer: short(),
      waitingSince: count,
      waiting: count,
      remote: short(2000),
    }),
    idempotencyFields: ['peer', 'waitingSince'],
    lifecycle: { creates: true },
  });
  catalog.register({
    control: true,
    type: RECOVERY_EVENTS.fallbackFailed,
    description: 'The git fallback could not fetch from or push to its remote (the mesh is down too: events wait in the outbox)',
    domain: 'mesh',
    defaultLevel: 'operational',
    defaultVisibility: 'local',
    payload: Type.Object({
      step: short(50),
      /** When the run of failed rounds began (ms): a new run is a new notification, its repeats are not. */
      since: Type.Optional(count),
      remote: short(2000),
      error: short(2000),
      failures: count,
    }),
    idempotencyFields: ['step', 'since'],
    lifecycle: { creates: true },
  });
}
