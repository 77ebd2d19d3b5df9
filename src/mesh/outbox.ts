import type { Store } from '../store/index.js';

/**
 * The durable outbox per peer: the publisher writes in the pipeline's batch transaction; a row
 * leaves only when the peer acknowledged the envelope in a signed ack frame.
 */
export class MeshOutbox {
  private readonly s;

  constructor(private readonly store: Store) {
    const db = store.db;
    this.s = {
      add: db.prepare('INSERT OR IGNORE INTO mesh_outbox (peer, envelope_id, body, created_at) VALUES (?, ?, ?, ?)'),
      peek: db.prepare('SELECT id, envelope_id AS envelopeId, body FROM mesh_outbox WHERE peer = ? AND id > ? ORDER BY id LIMIT ?'),
      del: db.prepare('DELETE FROM mesh_outbox WHERE peer = ? AND envelope_id = ?'),
      depth: store.reader.prepare('SELECT COUNT(*) FROM mesh_outbox WHERE peer = ?').pluck(),
      oldest: db.prepare('SELECT id, created_at AS createdAt FROM mesh_outbox WHERE peer = ? ORDER BY id LIMIT 1'),
      depthAll: store.reader.prepare('SELECT peer, COUNT(*) AS n FROM mesh_outbox GROUP BY peer'),
      getState: db.prepare('SELECT value FROM mesh_state WHERE key = ?').pluck(),
      setState: db.prepare('INSERT INTO mesh_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
    };
  }

  /** Inside the caller's transaction. */
  add(peer: string, envelopeId: string, body: string, now: number): void {
    this.s.add.run(peer, envelopeId, body, now);
  }

  /** Rows for a peer after `afterId`, oldest first (writer connection: sees the latest commits). */
  peek(peer: string, afterId: number, limit: number): Array<{ id: number; envelopeId: string; body: string }> {
    return this.s.peek.all(peer, afterId, limit) as Array<{ id: number; envelopeId: string; body: string }>;
  }

  /**
   * The peer acknowledged these envelopes. The deletions ride in the store's next transaction
   * (or their own after a few milliseconds): losing one in a crash only means the rows are sent
   * again, and the receiver recognises them by id.
   */
  acknowledge(peer: string, envelopeIds: readonly string[]): Promise<void> {
    if (this.store.isClosed) return Promise.resolve();
    return this.store.writeSoon(() => {
      for (const id of envelopeIds) this.s.del.run(peer, id);
    });
  }

  /** The peer's oldest row still waiting for its ack (writer connection), or undefined. */
  oldest(peer: string): { id: number; createdAt: number } | undefined {
    return this.s.oldest.get(peer) as { id: number; createdAt: number } | undefined;
  }

  depth(peer: string): number {
    return this.s.depth.get(peer) as number;
  }

  depths(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.s.depthAll.all() as Array<{ peer: string; n: number }>) out[r.peer] = r.n;
    return out;
  }

  /**
   * Reserves a block of frame sequence numbers, persisted before use, so sequences keep
   * increasing across restarts without a write per frame.
   */
  async reserveSequences(block: number): Promise<{ first: number; last: number }> {
    return this.store.write(() => {
      const cur = Number((this.s.getState.get('sequence') as string | undefined) ?? '0');
      this.s.setState.run('sequence', String(cur + block));
      return { first: cur + 1, last: cur + block };
    });
  }
}
