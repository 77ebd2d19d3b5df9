/**
 * The recovery beacon's payload (`mesh.recovery.beacon`), signed by the node's own key over its
 * canonical JSON: a peer keeps it and hands it back to a restoring node, which checks the
 * signature with its own key, so no peer can make up what the node had.
 */
import { type NodeIdentity, nodeIdFromPublicKey, verifySignature } from '../identity/index.js';
import { canonicalJson } from '../util/index.js';
import type { DigestRange } from './digest.js';

/** One range of the beacon: a block of the node's events with how many peers hold it whole. */
export interface BeaconRange extends DigestRange {
  /** Peers whose last report had the same range with the same digest. */
  copies: number;
}

/** A peer holding copies of the node's events, as the node knows from the peer's reports. */
export interface BeaconHolder {
  computer: string;
  node: string;
  /** Ranges it holds whole. */
  ranges: number;
  /** It holds every range whole up to this log position of the node (0: not the first). */
  upToSeq: number;
  /** When it reported, ms. */
  at: number;
}

export interface BeaconCartridge {
  name: string;
  version: string;
  status: string;
  sha256: string;
}

export interface BeaconPayload {
  /** The node's id and its raw Ed25519 public key (base64). */
  node: string;
  publicKey: string;
  computer: string;
  cluster?: string;
  /** When it was made, ms. */
  at: number;
  /** The node's recovery mode when it was made (normal after a restore too). */
  mode?: string;
  /** Its log: the newest position and the lowest still kept. */
  log: { high: number; prunedBelow: number };
  /** Its cluster and public events: count, digest of all, and the ranges. */
  events: { count: number; digest: string; blockEvents: number; ranges: BeaconRange[] };
  /** The highest frame sequence it may have used (reserved): a restore resumes past it. */
  frameSequence: number;
  holders: BeaconHolder[];
  cartridges: BeaconCartridge[];
  notifications: { journaled: number; pending: number };
  /** Ed25519 over the canonical JSON of everything else, base64. */
  signature: string;
}

/** Signs a beacon with the node's identity. */
export function signBeacon(p: Omit<BeaconPayload, 'signature'>, identity: NodeIdentity): BeaconPayload {
  const bytes = new TextEncoder().encode(canonicalJson(p));
  return { ...p, signature: Buffer.from(identity.sign(bytes)).toString('base64') };
}

/**
 * The beacon if it is well-formed and signed by the key it names (and, with `node`, that key is
 * `node`'s); undefined otherwise.
 * @example
 * const b = verifyBeacon(JSON.parse(row.body).payload, myNodeId);
 */
export function verifyBeacon(payload: unknown, node?: string): BeaconPayload | undefined {
  const p = payload as Partial<BeaconPayload> | null;
  if (!p || typeof p !== 'object' || typeof p.node !== 'string' || typeof p.publicKey !== 'string' || typeof p.signature !== 'string') return undefined;
  if (node !== undefined && p.node !== node) return undefined;
  const key = Buffer.from(p.publicKey, 'base64');
  if (key.length !== 32) return undefined;
  let id: string;
  try {
    id = nodeIdFromPublicKey(new Uint8Array(key));
  } catch {
    return undefined;
  }
  if (id !== p.node) return undefined;
  const { signature, ...rest } = p;
  const ok = verifySignature(new Uint8Array(key), new TextEncoder().encode(canonicalJson(rest)), new Uint8Array(Buffer.from(signature, 'base64')));
  if (!ok || !p.events || !Array.isArray(p.events.ranges) || !p.log || typeof p.frameSequence !== 'number') return undefined;
  return p as BeaconPayload;
}
