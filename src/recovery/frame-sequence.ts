/**
 * A restored node must never send a frame sequence it used before: its peers' replay guards
 * refuse a sequence they accepted already (REPLAY_SEQUENCE_SEEN, while its nonce is kept) and
 * one more than 4,096 below the highest they accepted (REPLAY_SEQUENCE_STALE), and both would be
 * recorded as rejections. A wiped node's sequence would start again at 1.
 *
 * Two steps keep it clear of both:
 * 1. Before the mesh starts, the sequence is moved up to a floor taken from the clock
 *    (microseconds since the epoch) when it is below it: a database made under a key that
 *    existed before it (a wiped data dir with its key kept, or an imported key), and an older
 *    copy of the database (a backup restored) would otherwise reuse or fall behind numbers its
 *    peers have seen. A node's earlier life cannot have used that many
 *    sequences (it would need a thousand frames a millisecond, every millisecond since it was
 *    made), so its very first frames (hellos, the restore's questions) are fresh.
 * 2. The restore asks every peer for the highest sequence it accepted from this node, reads the
 *    one its last beacon said it had reserved, and moves the sequence past both.
 */
import type { Store } from '../store/index.js';
import type { Clock } from '../util/index.js';

/** The mesh's persisted sequence reservation (mesh_state `sequence`: the highest number reserved). */
const KEY = 'sequence';

/** Sequences the floor leaves per millisecond of the node's earlier life. */
export const FLOOR_PER_MS = 1000;

/** The sequence reserved so far (0 when the mesh never reserved one). */
export function reservedSequence(store: Store): number {
  return Number((store.reader.prepare('SELECT value FROM mesh_state WHERE key = ?').pluck().get(KEY) as string | undefined) ?? '0');
}

/**
 * Moves the sequence up to the clock floor (step 1) when it is below it: a never-used sequence,
 * and one an older copy of the database brings back (a file-level backup restored, a VM
 * snapshot: its reservation is from the day of the copy, and the peers remember the far higher
 * sequences used since, so every frame would be refused as stale). Safe at every start: the
 * node's earlier life cannot have gone past the floor (it would take a thousand frames a
 * millisecond since the floor it last started from). Resolves to the floor set, or undefined
 * when the sequence is at or past it already.
 * @example
 * await raiseFrameSequenceToFloor(node.ns.store, clock);
 */
export async function raiseFrameSequenceToFloor(store: Store, clock: Clock): Promise<number | undefined> {
  return store.write(() => {
    const cur = Number((store.db.prepare('SELECT value FROM mesh_state WHERE key = ?').pluck().get(KEY) as string | undefined) ?? '0');
    const floor = Math.floor(clock.now()) * FLOOR_PER_MS;
    if (cur >= floor) return undefined;
    store.db.prepare('INSERT INTO mesh_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(KEY, String(floor));
    return floor;
  });
}

/**
 * Moves the frame sequence past `past` (step 2): the persisted reservation first, then the
 * block the mesh holds in memory is used up until a number beyond it comes (at most one block).
 * Resolves to the first sequence the mesh will use after it.
 * @example
 * const next = await resumeFrameSequencePast(store, mesh, Math.max(beacon.frameSequence, ...peerHighWaters));
 */
export async function resumeFrameSequencePast(store: Store, mesh: { nextSequence(): Promise<number> }, past: number): Promise<number> {
  await store.write(() => {
    const cur = Number((store.db.prepare('SELECT value FROM mesh_state WHERE key = ?').pluck().get(KEY) as string | undefined) ?? '0');
    if (cur < past) store.db.prepare('INSERT INTO mesh_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(KEY, String(past));
  });
  let s = await mesh.nextSequence();
  for (let i = 0; s <= past && i < 1_000_000; i++) s = await mesh.nextSequence();
  return s + 1;
}
