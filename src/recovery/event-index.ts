/**
 * The recovery index: every cluster or public event in this node's log, by the node that
 * originated it, with its content hash (`recovery_index`). It is filled incrementally from the
 * log (a cursor in `recovery_state`), in short paced slices whose rows ride in the next commit, so a beacon or a
 * peer's question costs a read of the index, never a pass over the log.
 *
 * What counts as a node's event: its `origin` field; for this node's own events also that no
 * hop stamped it (an event this node received carries the sender's id). Raw-class types never
 * leave a node, so they are never counted; nor are beacons (each is signed on its own, and a
 * beacon that counted itself would change the newest range it describes).
 */
import { performance } from 'node:perf_hooks';
import { type Catalog, RECOVERY_EVENTS } from '../catalog/index.js';
import { PRUNE_MARK, type Store } from '../store/index.js';
import { type Logger, Pacer } from '../util/index.js';
import { contentHash } from './digest.js';

export interface EventIndexDeps {
  store: Store;
  catalog: Catalog;
  /** This node's current node id. */
  nodeId: () => string;
  logger: Logger;
  /** Paces the passes so they give way to the node's traffic (one made from the store's commits when not given). */
  pacer?: Pacer;
}

/** Log positions read at a time; a slice (util/pacer.ts) reads pages until its time is up (each event parsed and hashed costs ~25 µs). */
const PAGE = 50;
const CURSOR = 'index_seq';
/** Index rows read at a time by `eachRow` (each is hashed twice: ~2 µs). */
const ROW_PAGE = 250;

export interface IndexRow {
  id: string;
  hash: Buffer;
  seq: number;
}

export class EventIndex {
  private running: Promise<number> | undefined;
  private readonly s;
  private readonly raw = new Map<string, boolean>();
  private readonly pacer: Pacer;

  constructor(private readonly deps: EventIndexDeps) {
    this.pacer = deps.pacer ?? new Pacer(() => deps.store.commits);
    const db = deps.store.db;
    const rd = deps.store.reader;
    this.s = {
      cursor: db.prepare('SELECT value FROM recovery_state WHERE key = ?').pluck(),
      setCursor: db.prepare('INSERT INTO recovery_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
      chunk: rd.prepare("SELECT seq, id, event, body FROM events WHERE seq > ? AND seq <= ? AND json_extract(body, '$.visibility') IN ('cluster', 'public') ORDER BY seq"),
      chunkEnd: rd.prepare('SELECT MAX(seq) FROM (SELECT seq FROM events WHERE seq > ? ORDER BY seq LIMIT ?)').pluck(),
      insert: db.prepare('INSERT OR REPLACE INTO recovery_index (node, id, seq, hash) VALUES (?, ?, ?, ?)'),
      mark: rd.prepare('SELECT value FROM log_marks WHERE key = ?').pluck(),
      count: rd.prepare('SELECT COUNT(*) FROM recovery_index WHERE node = ? AND seq >= ?').pluck(),
      rows: rd.prepare('SELECT id, hash, seq FROM recovery_index WHERE node = ? AND seq >= ? ORDER BY id'),
      page: rd.prepare('SELECT id, hash, seq FROM recovery_index WHERE node = ? AND seq >= ? AND id > ? ORDER BY id LIMIT ?'),
      nodes: rd.prepare('SELECT node, COUNT(*) AS n FROM recovery_index WHERE seq >= ? GROUP BY node'),
    };
  }

  /** The lowest log position still kept (1 when nothing was pruned): index rows below it are stale. */
  prunedBelow(): number {
    return (this.s.mark.get(PRUNE_MARK) as number | undefined) ?? 1;
  }

  /**
   * Indexes what the log gained since the last call. Concurrent callers share one pass.
   * Resolves to the rows added.
   */
  catchUp(): Promise<number> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Events of `node` held here (not pruned). */
  count(node: string): number {
    return this.s.count.get(node, this.prunedBelow()) as number;
  }

  /** Events of `node` held here, in id order. */
  rows(node: string): Iterable<IndexRow> {
    return this.s.rows.iterate(node, this.prunedBelow()) as Iterable<IndexRow>;
  }

  /**
   * Events of `node` held here, in id order, handed to `fn` in paced slices (util/pacer.ts):
   * for a pass over many events (a beacon's ranges, a holding) that must not hold the loop. Rows
   * indexed meanwhile are included when their id comes after the pass's position.
   */
  async eachRow(node: string, fn: (row: IndexRow) => void): Promise<void> {
    let after = '';
    for (;;) {
      const more = await this.pacer.slice((until) => {
        for (;;) {
          const rows = this.s.page.all(node, this.prunedBelow(), after, ROW_PAGE) as IndexRow[];
          for (const r of rows) fn(r);
          if (rows.length < ROW_PAGE) return false;
          after = (rows[rows.length - 1] as IndexRow).id;
          if (performance.now() >= until) return true;
        }
      });
      if (!more) return;
    }
  }

  /** How many events of each node are held here. */
  nodes(): Array<{ node: string; n: number }> {
    return this.s.nodes.all(this.prunedBelow()) as Array<{ node: string; n: number }>;
  }

  /** Adds an event's row inside the caller's store write (a restore writes the rows of what it restores). */
  addIn(node: string, id: string, seq: number, hash: Uint8Array): void {
    this.s.insert.run(node, id, seq, hash);
  }

  private isRaw(type: string): boolean {
    let r = this.raw.get(type);
    if (r === undefined) {
      r = this.deps.catalog.get(type)?.dataClass === 'raw';
      if (this.raw.size < 10_000) this.raw.set(type, r);
    }
    return r;
  }

  private async pass(): Promise<number> {
    const { store } = this.deps;
    let added = 0;
    // Where this pass has read to; its rows ride in the next transaction anyone opens (lost
    // in a crash, they are indexed again: the inserts replace).
    let from = Number((this.s.cursor.get(CURSOR) as string | undefined) ?? '0');
    let written: Promise<void> = Promise.resolve();
    for (;;) {
      if (store.isClosed) return added;
      const slice = await this.pacer.slice((until) => this.take(from, until));
      if (!slice) {
        await written;
        return added;
      }
      from = slice.end;
      written = store.writeSoon(() => {
        for (const o of slice.out) this.s.insert.run(...o);
        this.s.setCursor.run(CURSOR, String(slice.end));
      });
      added += slice.out.length;
    }
  }

  /** The index rows of the log after `from`, until `until` (performance.now() time); undefined at the log's end. */
  private take(from: number, until: number): { end: number; out: Array<[string, string, number, Buffer]> } | undefined {
    const self = this.deps.nodeId();
    const out: Array<[string, string, number, Buffer]> = [];
    let end = from;
    // Small pages of log positions, so a slice that runs out of time has read little it did not use.
    for (;;) {
      const pageEnd = this.s.chunkEnd.get(end, PAGE) as number | null;
      if (pageEnd === null) return end > from ? { end, out } : undefined;
      for (const r of this.s.chunk.all(end, pageEnd) as Array<{ seq: number; id: string; event: string; body: string }>) {
        const hash = this.rowOf(r, self);
        if (hash) out.push(hash);
        if (performance.now() >= until) return { end: r.seq, out };
      }
      end = pageEnd;
    }
  }

  /** A log row's index row, or undefined when it is not counted. */
  private rowOf(r: { seq: number; id: string; event: string; body: string }, self: string): [string, string, number, Buffer] | undefined {
    // A beacon is signed on its own and describes the events before it: never part of them.
    if (r.event === RECOVERY_EVENTS.beacon || this.isRaw(r.event)) return undefined;
    let env: Record<string, unknown>;
    try {
      env = JSON.parse(r.body) as Record<string, unknown>;
    } catch {
      return undefined;
    }
    const origin = env.origin;
    if (typeof origin !== 'string' || origin.length === 0) return undefined;
    const hops = typeof env.hops === 'number' ? env.hops : 0;
    // An event carrying our id but stamped by a hop is not ours (it cannot be: no re-forwarding).
    if (origin === self && hops > 0) return undefined;
    return [origin, r.id, r.seq, contentHash(env)];
  }
}
