import type { Store } from '../store/index.js';

/**
 * The durable outbox per peer: the publisher writes in the pipeline's batch transaction; a row
 * leaves only when the peer acknowledged the envelope in a signed ack frame. An event for
 * several peers is stored once (`mesh_bodies`, with a count of the rows pointing to it) and
 * each peer's row is a cursor with an empty body: a public event to 16 peers costs one body and
 * 16 small rows, not 16 copies. The last acknowledgement deletes the body.
 */
export class MeshOutbox {
  private readonly s;
  /** Peers rows were queued for since the last `takeQueued()` (the senders to wake after a commit). */
  private readonly queuedFor = new Set<string>();

  constructor(private readonly store: Store) {
    const db = store.db;
    this.s = {
      add: db.prepare('INSERT OR IGNORE INTO mesh_outbox (peer, envelope_id, body, created_at) VALUES (?, ?, ?, ?)'),
      addBody: db.prepare('INSERT INTO mesh_bodies (envelope_id, body, refs) VALUES (?, ?, ?) ON CONFLICT (envelope_id) DO UPDATE SET refs = refs + excluded.refs'),
      peek: db.prepare(
        `SELECT o.id, o.envelope_id AS envelopeId, CASE WHEN o.body = '' THEN COALESCE(b.body, '') ELSE o.body END AS body
         FROM mesh_outbox o LEFT JOIN mesh_bodies b ON o.body = '' AND b.envelope_id = o.envelope_id
         WHERE o.peer = ? AND o.id > ? ORDER BY o.id LIMIT ?`,
      ),
      // No RETURNING on the acknowledgement's path: with it the delete cost 1-2 us a row more
      // (docs/performance.md, seventh session).
      delOwn: db.prepare("DELETE FROM mesh_outbox WHERE peer = ? AND envelope_id = ? AND body != ''"),
      del: db.prepare('DELETE FROM mesh_outbox WHERE peer = ? AND envelope_id = ?'),
      unref: db.prepare('UPDATE mesh_bodies SET refs = refs - 1 WHERE envelope_id = ?'),
      dropSpent: db.prepare('DELETE FROM mesh_bodies WHERE envelope_id = ? AND refs <= 0'),
      depth: store.reader.prepare('SELECT COUNT(*) FROM mesh_outbox WHERE peer = ?').pluck(),
      oldest: db.prepare('SELECT id, created_at AS createdAt FROM mesh_outbox WHERE peer = ? ORDER BY id LIMIT 1'),
      depthAll: store.reader.prepare('SELECT peer, COUNT(*) AS n FROM mesh_outbox GROUP BY peer'),
      getState: db.prepare('SELECT value FROM mesh_state WHERE key = ?').pluck(),
      setState: db.prepare('INSERT INTO mesh_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
    };
  }

  /**
   * Queues one envelope for several peers, inside the caller's transaction: its body once,
   * a row per peer (a peer that has it queued already is skipped).
   */
  addFor(peers: readonly string[], envelopeId: string, body: string, now: number): void {
    for (const p of peers) this.queuedFor.add(p);
    if (peers.length === 1) {
      this.s.add.run(peers[0], envelopeId, body, now);
      return;
    }
    let rows = 0;
    for (const p of peers) rows += this.s.add.run(p, envelopeId, '', now).changes;
    if (rows > 0) this.s.addBody.run(envelopeId, body, rows);
  }

  /** Rows for a peer after `afterId`, oldest first (writer connection: sees the latest commits). */
  peek(peer: string, afterId: number, limit: number): Array<{ id: number; envelopeId: string; body: string }> {
    const rows = this.s.peek.all(peer, afterId, limit) as Array<{ id: number; envelopeId: string; body: string }>;
    if (rows.every((r) => r.body !== '')) return rows;
    // A row whose shared body is gone cannot be sent, and must not stop the link: it goes.
    const lost = rows.filter((r) => r.body === '');
    this.store.logger.error({ peer, events: lost.map((r) => r.envelopeId).slice(0, 20), count: lost.length }, 'outbox rows without a body were dropped');
    void this.store.writeSoon(() => {
      for (const r of lost) this.s.del.run(peer, r.envelopeId);
    });
    return rows.filter((r) => r.body !== '');
  }

  /**
   * The peer acknowledged these envelopes. The deletions ride in the store's next transaction
   * (or their own after a few milliseconds): losing one in a crash only means the rows are sent
   * again, and the receiver recognises them by id.
   */
  acknowledge(peer: string, envelopeIds: readonly string[]): Promise<void> {
    if (this.store.isClosed) return Promise.resolve();
    return this.store.writeSoon(() => {
      for (const id of envelopeIds) {
        // A row with its own body (an event for one peer): gone in one statement.
        if (this.s.delOwn.run(peer, id).changes === 1) continue;
        // A row whose body is shared: one reference fewer; the last one takes the body along.
        if (this.s.del.run(peer, id).changes === 0) continue;
        if (this.s.unref.run(id).changes === 1) this.s.dropSpent.run(id);
      }
    });
  }

  /** The peer's oldest row still waiting for its ack (writer connection), or undefined. */
  oldest(peer: string): { id: number; createdAt: number } | undefined {
    return this.s.oldest.get(peer) as { id: number; createdAt: number } | undefined;
  }

  /**
   * The peers rows were queued for since the last call (and forgets them): after a commit,
   * only their senders have something new. A batch that rolled back leaves a peer here that
   * gets nothing new: its sender wakes, finds nothing, sleeps again.
   */
  takeQueued(): string[] {
    if (this.queuedFor.size === 0) return [];
    const out = [...this.queuedFor];
    this.queuedFor.clear();
    return out;
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
