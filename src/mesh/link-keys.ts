/**
 * The link keys of a node's peers: each peer's static X25519 public key and the caps it
 * announced in its last signed `hello`, kept in `peer_link_keys` so a restart needs no new
 * exchange, and the AEAD key of each link, derived on first use and cached.
 */
import type { Statement } from 'better-sqlite3';
import type { Store } from '../store/index.js';
import { deriveLinkKey, type LinkKeyPair } from '../transport/index.js';
import type { Logger } from '../util/index.js';

/** What a peer's hello told us. */
export interface PeerLinkInfo {
  computer: string;
  x25519: Uint8Array;
  caps: string[];
}

/** What changed when a hello was remembered. */
export interface HelloChange {
  /** The peer's public key is new or different: frames sealed for it before are unreadable. */
  keyChanged: boolean;
  capsChanged: boolean;
}

export interface LinkKeysDeps {
  store: Store;
  /** This node's static X25519 key pair (`<dataDir>/link.key`). */
  pair: LinkKeyPair;
  /** This node's current node id (a key rotation changes it, and with it every link key). */
  nodeId: () => string;
  logger: Logger;
}

/** Peers known at most; a hello is only taken from a pinned peer, so this is a safety bound. */
const MAX_PEERS = 10_000;

/** Every peer's link key material; see the module comment. */
export class LinkKeys {
  private readonly peers = new Map<string, PeerLinkInfo>();
  /** Derived keys by `myNodeId|theirNodeId`. */
  private readonly derived = new Map<string, Uint8Array>();
  private readonly s: { all: Statement; put: Statement; rekey: Statement };

  constructor(private readonly deps: LinkKeysDeps) {
    const db = deps.store.db;
    this.s = {
      all: db.prepare('SELECT node_id, computer, x25519, caps FROM peer_link_keys LIMIT ?'),
      put: db.prepare(
        `INSERT INTO peer_link_keys (node_id, computer, x25519, caps, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(node_id) DO UPDATE SET computer = excluded.computer, x25519 = excluded.x25519, caps = excluded.caps, updated_at = excluded.updated_at`,
      ),
      rekey: db.prepare('UPDATE OR REPLACE peer_link_keys SET node_id = ? WHERE node_id = ?'),
    };
  }

  /** Reads what earlier hellos taught (call once, at start). */
  load(): void {
    for (const r of this.s.all.all(MAX_PEERS) as Array<{ node_id: string; computer: string; x25519: Buffer; caps: string }>) {
      if (!(r.x25519 instanceof Uint8Array) || r.x25519.length !== 32) continue;
      let caps: string[] = [];
      try {
        const c = JSON.parse(r.caps) as unknown;
        if (Array.isArray(c)) caps = c.filter((x): x is string => typeof x === 'string');
      } catch {
        // a damaged caps column only loses the narrowing; the next hello writes it again
      }
      this.peers.set(r.node_id, { computer: r.computer, x25519: new Uint8Array(r.x25519), caps });
    }
  }

  /** This node's public link key, for its hellos. */
  get publicKey(): Uint8Array {
    return this.deps.pair.publicKey;
  }

  /** What the peer with this node id announced last, if it ever sent a hello. */
  info(nodeId: string): PeerLinkInfo | undefined {
    return this.peers.get(nodeId);
  }

  /** The AEAD key of the link to this peer, or undefined while its public key is unknown. */
  keyFor(nodeId: string): Uint8Array | undefined {
    const p = this.peers.get(nodeId);
    if (!p) return undefined;
    const me = this.deps.nodeId();
    const id = `${me}|${nodeId}`;
    let k = this.derived.get(id);
    if (!k) {
      try {
        k = deriveLinkKey(this.deps.pair.privateKey, p.x25519, me, nodeId);
      } catch (err) {
        this.deps.logger.warn({ peer: p.computer, err: (err as Error).message }, 'no link key can be derived from this peer\'s public key');
        return undefined;
      }
      if (this.derived.size >= MAX_PEERS) this.derived.clear();
      this.derived.set(id, k);
    }
    return k;
  }

  /**
   * Remembers a verified hello, in one transaction with `alsoInTx` (the replay guard's record).
   * A public key no link key can be derived from (a low-order point) is not stored.
   * @throws Error when the public key is unusable; nothing is written then.
   */
  async remember(nodeId: string, info: PeerLinkInfo, now: number, alsoInTx: () => void): Promise<HelloChange> {
    // Derive first: an unusable key must not replace a good one.
    deriveLinkKey(this.deps.pair.privateKey, info.x25519, this.deps.nodeId(), nodeId);
    const before = this.peers.get(nodeId);
    const keyChanged = !before || !Buffer.from(before.x25519).equals(Buffer.from(info.x25519));
    const capsChanged = !before || before.caps.join(',') !== info.caps.join(',');
    await this.deps.store.write(() => {
      alsoInTx();
      this.s.put.run(nodeId, info.computer, Buffer.from(info.x25519), JSON.stringify(info.caps), now);
    });
    if (!this.peers.has(nodeId) && this.peers.size >= MAX_PEERS) this.peers.delete(this.peers.keys().next().value as string);
    this.peers.set(nodeId, { computer: info.computer, x25519: new Uint8Array(info.x25519), caps: [...info.caps] });
    if (keyChanged) for (const id of [...this.derived.keys()]) if (id.endsWith(`|${nodeId}`)) this.derived.delete(id);
    return { keyChanged, capsChanged };
  }

  /**
   * A peer rotated its identity key: its link key material moves to the new node id (inside
   * the caller's transaction; the memory follows once it committed, with `rekeyed`).
   */
  rekeyIn(oldNodeId: string, newNodeId: string): void {
    this.s.rekey.run(newNodeId, oldNodeId);
  }

  rekeyed(oldNodeId: string, newNodeId: string): void {
    const p = this.peers.get(oldNodeId);
    if (!p) return;
    this.peers.delete(oldNodeId);
    this.peers.set(newNodeId, p);
  }
}
