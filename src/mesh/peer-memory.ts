import type { Statement } from 'better-sqlite3';
import type { Store } from '../store/index.js';
import type { KnownPeer } from './peers.js';

const KEY = 'discovered:';

/**
 * The peers discovery found, remembered in the node's file (`mesh_state`), so a node that
 * restarts while the registry is empty (Redis restarted too) still routes its cluster and
 * public events to them: the outbox keeps what they have not acknowledged until they return.
 * Peers unseen for longer than `forgetAfterMs` (default 7 days) are forgotten.
 */
export class PeerMemory {
  private readonly s: { all: Statement; put: Statement };
  /** When each peer was last written, so an unchanged peer costs a write once a minute at most. */
  private readonly written = new Map<string, { at: number; shape: string }>();

  constructor(
    private readonly store: Store,
    private readonly forgetAfterMs = 7 * 24 * 3600_000,
  ) {
    const db = store.db;
    this.s = {
      all: db.prepare(`SELECT key, value FROM mesh_state WHERE key >= '${KEY}' AND key < '${KEY}\uffff'`),
      put: db.prepare('INSERT INTO mesh_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
    };
  }

  /** The remembered peers seen within `forgetAfterMs` of `now`. */
  load(now: number): KnownPeer[] {
    const out: KnownPeer[] = [];
    for (const row of this.s.all.all() as Array<{ key: string; value: string }>) {
      try {
        const p = JSON.parse(row.value) as KnownPeer;
        if (typeof p.computer !== 'string' || typeof p.nodeId !== 'string') continue;
        if (now - (p.lastSeen ?? 0) > this.forgetAfterMs) continue;
        this.written.set(p.computer, { at: p.lastSeen ?? 0, shape: shapeOf(p) });
        out.push({ ...p, origin: 'discovered' });
      } catch {
        // a damaged row is skipped; discovery writes it again
      }
    }
    return out;
  }

  /** Remembers what discovery reported (one transaction; unchanged peers at most once a minute). */
  async remember(peers: readonly KnownPeer[], now: number): Promise<void> {
    const due = peers.filter((p) => {
      if (p.origin !== 'discovered') return false;
      const w = this.written.get(p.computer);
      return !w || w.shape !== shapeOf(p) || now - w.at > 60_000;
    });
    if (due.length === 0) return;
    await this.store.write(() => {
      for (const p of due) this.s.put.run(KEY + p.computer, JSON.stringify({ ...p, lastSeen: p.lastSeen ?? now }));
    });
    for (const p of due) this.written.set(p.computer, { at: now, shape: shapeOf(p) });
  }
}

function shapeOf(p: KnownPeer): string {
  return `${p.nodeId}|${p.cluster ?? ''}|${p.address ?? ''}|${(p.caps ?? []).join(',')}`;
}
