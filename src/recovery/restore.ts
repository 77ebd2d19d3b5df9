/**
 * Phoenix restore: a node whose data dir was wiped (its key kept or imported) rebuilds itself
 * from its peers, inside the daemon (`POST /api/recovery/restore`, `weft recovery restore`).
 *
 *  1. query    every peer: its latest beacon of this node, what it holds of it, the highest
 *              frame sequence it accepted from it, its mirror tokens of it;
 *  2. beacon   the newest beacon signed by this node's own key (a peer cannot make one up);
 *  3. pull     each range of the beacon from a peer whose digest of it matches (spread over
 *              them; any one is enough), then what is newer than the beacon from every peer,
 *              into a staging table (`recovery.pull`: the peer's restore serving rule);
 *  4. verify   each range's digest against the beacon; a range that does not match is pulled
 *              again from the next peer that has it;
 *  5. write    the events into the log as this node's own (`direct = 2`: the bus never
 *              delivers them again), numbered past the beacon's high-water mark and every
 *              peer's mirror token of this node, so its mirrors neither miss nor repeat;
 *  6. notifications from the journal, 7. cartridges by the beacon's digests,
 *  8. sequence past the highest frame sequence any peer accepted and the beacon's, so no
 *              frame of the restored node is refused as a replay.
 */
import { RECOVERY_EVENTS } from '../catalog/index.js';
import { type Envelope, envelopeValidator, serializeEnvelope } from '../envelope/index.js';
import type { KnownPeer } from '../mesh/index.js';
import { sourceDigest, validatePackage } from '../sovereignty/index.js';
import { SessionLineage, sightingOf } from '../store/index.js';
import { type BeaconPayload, verifyBeacon } from './beacon.js';
import type { RecoveryMode } from './books.js';
import { contentHash, RunDigest } from './digest.js';
import { resumeFrameSequencePast } from './frame-sequence.js';
import { type NoteEntry, rowOfEntry } from './journal.js';
import type { CartridgePort } from './ports.js';
import type { RecoveryService } from './service.js';
import { MAX_PULL_EVENTS, RECOVERY_PULL, RECOVERY_QUERY, type RecoveryBatch, type RecoveryInfo } from './wire.js';

export interface RestoreOptions {
  /** ms to wait for the peers' answers (default the organ's, 15 s). */
  queryTimeoutMs?: number;
  /** Pulls unanswered per peer at once (default 4; a peer handles 8 messages of one node at once). */
  perPeer?: number;
}

export type RestorePhase = 'query' | 'pull' | 'verify' | 'write' | 'notifications' | 'cartridges' | 'sequence' | 'done';

export interface RestoreProgress {
  id: string;
  state: 'running' | 'done' | 'failed';
  phase: RestorePhase;
  message: string;
  startedAt: number;
  elapsedMs: number;
  /** `supplied`: events from this peer that the log lacked (known once the write phase starts). */
  peers: Array<{ computer: string; answered: boolean; beacon: boolean; holds: number; seqHighWater: number | null; supplied: number }>;
  beacon: { id: string; at: number; from: string; events: number; ranges: number; digest: string } | null;
  /** Events the beacon and the peers' newer holdings add up to. */
  expected: number;
  pulled: number;
  written: number;
  ranges: { total: number; verified: number; failed: number };
  /** Events newer than the beacon: taken from the peers, not covered by a digest. */
  unverified: number;
  /** Earlier beacons restored, each checked against this node's signature. */
  beacons: number;
  /** Events refused: a beacon this node's key did not sign. */
  refused: number;
  notifications: number;
  cartridges: { restored: string[]; missing: string[] };
  frameSequence: { past: number; next: number } | null;
  /** ms each phase took (so far). */
  timings: Partial<Record<RestorePhase, number>>;
  error?: string;
}

interface Task {
  range: number;
  after: string;
  to: string | undefined;
  peers: KnownPeer[];
}

const SOURCE = 'weft.recovery';
/** Staged rows written to the log per transaction. */
const WRITE_CHUNK = 5000;
/** The staging range of beacons: each verified by its own signature, none in a range digest. */
const BEACONS = -2;

class Aborted extends Error {}

export class RestoreJob {
  readonly done: Promise<void>;
  private resolveDone: () => void = () => undefined;
  private aborted = false;
  private readonly p: RestoreProgress;
  private beacon: BeaconPayload | undefined;
  private infos = new Map<string, { peer: KnownPeer; info: RecoveryInfo }>();
  private phaseAt: number;

  constructor(
    private readonly opts: RestoreOptions,
    private readonly deps: { service: RecoveryService; previousMode: RecoveryMode; cartridges?: CartridgePort },
  ) {
    const now = deps.service.deps.clock.now();
    this.p = {
      id: deps.service.req(),
      state: 'running',
      phase: 'query',
      message: 'asking the peers what they hold of this node',
      startedAt: now,
      elapsedMs: 0,
      peers: [],
      beacon: null,
      expected: 0,
      pulled: 0,
      written: 0,
      ranges: { total: 0, verified: 0, failed: 0 },
      unverified: 0,
      beacons: 0,
      refused: 0,
      notifications: 0,
      cartridges: { restored: [], missing: [] },
      frameSequence: null,
      timings: {},
    };
    this.phaseAt = now;
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  progress(): RestoreProgress {
    const elapsedMs = this.p.state === 'running' ? this.deps.service.deps.clock.now() - this.p.startedAt : this.p.elapsedMs;
    return structuredClone({ ...this.p, elapsedMs });
  }

  abort(): void {
    this.aborted = true;
  }

  start(): void {
    void this.run().finally(() => this.resolveDone());
  }

  private get svc(): RecoveryService {
    return this.deps.service;
  }

  private check(): void {
    if (this.aborted) throw new Aborted('the restore was stopped (the daemon is stopping)');
  }

  private phase(phase: RestorePhase, message: string): void {
    this.check();
    const now = this.svc.deps.clock.now();
    this.p.timings[this.p.phase] = (this.p.timings[this.p.phase] ?? 0) + (now - this.phaseAt);
    this.phaseAt = now;
    this.p.phase = phase;
    this.p.message = message;
    this.svc.deps.logger.info({ phase, message }, 'restore');
  }

  private async run(): Promise<void> {
    const { store } = this.svc.deps.node.ns;
    try {
      await this.svc.state.set('mode', 'restoring');
      await this.query();
      const tasks = this.plan();
      await this.pull(tasks);
      await this.verify(tasks);
      await this.write();
      await this.notifications();
      await this.cartridges();
      await this.sequence();
      this.phase('done', 'restored');
      this.p.state = 'done';
      this.p.elapsedMs = this.svc.deps.clock.now() - this.p.startedAt;
      const s = this.p;
      await this.svc.deps.audit
        .record('recovery.restored', null, { events: s.written, ranges: s.ranges, unverified: s.unverified, notifications: s.notifications, cartridges: s.cartridges, frameSequence: s.frameSequence, durationMs: s.elapsedMs }, s.ranges.failed === 0)
        .catch(() => undefined);
      await this.svc.deps.node
        .emit({
          event: RECOVERY_EVENTS.restored,
          source: SOURCE,
          payload: {
            events: s.written,
            verifiedRanges: s.ranges.verified,
            ranges: s.ranges.total,
            unverifiedEvents: s.unverified,
            notifications: s.notifications,
            cartridges: s.cartridges.restored.length,
            peers: s.peers.filter((x) => x.supplied > 0).map((x) => x.computer),
            frameSequence: s.frameSequence?.next ?? 0,
            durationMs: s.elapsedMs,
          },
        })
        .catch(() => undefined);
      await store.write(() => store.db.prepare('DELETE FROM recovery_staging').run());
      await this.svc.restored();
    } catch (err) {
      this.p.state = 'failed';
      this.p.error = (err as Error).message;
      this.p.message = `restore failed: ${(err as Error).message}`;
      this.p.elapsedMs = this.svc.deps.clock.now() - this.p.startedAt;
      this.svc.deps.logger.error({ err: (err as Error).message, phase: this.p.phase }, 'restore failed');
      if (!store.isClosed) await this.svc.state.set('mode', this.deps.previousMode).catch(() => undefined);
    }
  }

  // ---- 1, 2: query and beacon ----

  private async query(): Promise<void> {
    const { clock } = this.svc.deps;
    const timeout = this.opts.queryTimeoutMs ?? this.svc.init.queryTimeoutMs ?? 15_000;
    const deadline = clock.now() + timeout;
    // Discovered peers (the Redis registry) may take a moment to show up.
    while (this.svc.weftPeers().length === 0 && clock.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    const peers = this.svc.weftPeers();
    if (peers.length === 0) throw new Error('no peers known: configure mesh.peers (or the Redis registry) as before the loss, then restore');
    const self = this.svc.deps.identity().nodeId;
    const ask = async (p: KnownPeer, until: number, ranges?: Array<{ from: string; to: string }>): Promise<RecoveryInfo | undefined> => {
      while (!this.aborted && clock.now() < until) {
        const info = await this.svc.ask<RecoveryInfo>(p, RECOVERY_QUERY, { req: this.svc.req(), ...(ranges ? { ranges } : {}) }, Math.min(5000, Math.max(500, until - clock.now())));
        if (info) return info;
        // A link that fails at once (no provider, a peer not up yet) is not asked in a tight loop.
        await new Promise((r) => setTimeout(r, 500));
      }
      return undefined;
    };
    const answers = await Promise.all(peers.map(async (p) => ({ p, info: await ask(p, deadline) })));
    this.check();
    for (const a of answers) if (a.info) this.infos.set(a.p.computer, { peer: a.p, info: a.info });
    if (this.infos.size === 0) throw new Error(`no peer answered within ${timeout} ms (${peers.map((p) => p.computer).join(', ')}): are they running and linked?`);
    // The newest beacon our own key signed.
    let best: { b: BeaconPayload; id: string; from: string } | undefined;
    for (const [computer, { info }] of this.infos) {
      if (!info.beacon) continue;
      let env: Envelope;
      try {
        env = JSON.parse(info.beacon) as Envelope;
      } catch {
        continue;
      }
      const b = verifyBeacon(env.payload, self);
      if (!b) {
        this.svc.deps.logger.warn({ peer: computer }, 'a beacon of this node that its key did not sign was ignored');
        continue;
      }
      if (!best || b.at > best.b.at) best = { b, id: env.id, from: computer };
    }
    if (best) {
      this.beacon = best.b;
      const ranges = best.b.events.ranges.map((r) => ({ from: r.from, to: r.to }));
      // Peers that answered about another beacon: their digests over this one's ranges.
      const again = [...this.infos.values()].filter(({ info }) => {
        if (!info.beacon) return true;
        try {
          return (JSON.parse(info.beacon) as Envelope).id !== best.id;
        } catch {
          return true;
        }
      });
      const until = clock.now() + timeout;
      const redone = await Promise.all(again.map(async ({ peer }) => ({ peer, info: await ask(peer, until, ranges) })));
      for (const r of redone) {
        if (r.info) this.infos.set(r.peer.computer, { peer: r.peer, info: r.info });
        else this.infos.delete(r.peer.computer);
      }
      this.p.beacon = { id: best.id, at: best.b.at, from: best.from, events: best.b.events.count, ranges: best.b.events.ranges.length, digest: best.b.events.digest };
    }
    this.p.peers = peers.map((p) => {
      const i = this.infos.get(p.computer)?.info;
      return { computer: p.computer, answered: i !== undefined, beacon: i?.beacon != null, holds: i?.held.count ?? 0, seqHighWater: i?.seqHighWater ?? null, supplied: 0 };
    });
  }

  // ---- 3: plan and pull ----

  private plan(): Task[] {
    const ranges = this.beacon?.events.ranges ?? [];
    const infos = [...this.infos.values()];
    const tasks: Task[] = [];
    ranges.forEach((r, i) => {
      const whole: KnownPeer[] = [];
      const some: KnownPeer[] = [];
      for (const { peer, info } of infos) {
        const x = info.ranges?.[i];
        if (x?.digest === r.digest && x.count === r.count) whole.push(peer);
        else if ((x?.count ?? 0) > 0) some.push(peer);
      }
      // Spread the ranges over the peers that hold them whole; the others are the fallback.
      const rot = whole.length > 0 ? i % whole.length : 0;
      tasks.push({ range: i, after: i === 0 ? '' : (ranges[i - 1] as { to: string }).to, to: r.to, peers: [...whole.slice(rot), ...whole.slice(0, rot), ...some] });
    });
    // Newer than the beacon (or everything, without one): from every peer (the beacons there are not in its counts).
    const after = ranges.length > 0 ? (ranges[ranges.length - 1] as { to: string }).to : '';
    const tailFrom = infos;
    for (const { peer } of tailFrom) tasks.push({ range: -1, after, to: undefined, peers: [peer] });
    this.p.ranges.total = ranges.length;
    this.p.expected = (this.beacon?.events.count ?? 0) + Math.max(0, ...tailFrom.map(({ info }) => (ranges.length > 0 ? info.tail : info.held.count)));
    this.phase('pull', `pulling ${this.p.expected} events from ${new Set(tasks.flatMap((t) => t.peers.slice(0, 1).map((p) => p.computer))).size} peer(s)`);
    return tasks;
  }

  private async pull(tasks: Task[]): Promise<void> {
    const perPeer = Math.max(1, Math.min(8, this.opts.perPeer ?? 4));
    const busy = new Map<string, number>();
    const queue = tasks.filter((t) => t.peers.length > 0);
    const running = new Set<Promise<void>>();
    while (queue.length > 0 || running.size > 0) {
      this.check();
      // Start every task whose first peer has room.
      for (let i = 0; i < queue.length; i++) {
        const t = queue[i] as Task;
        const peer = t.peers[0] as KnownPeer;
        if ((busy.get(peer.computer) ?? 0) >= perPeer) continue;
        queue.splice(i--, 1);
        busy.set(peer.computer, (busy.get(peer.computer) ?? 0) + 1);
        const run: Promise<void> = this.pullTask(t).finally(() => {
          busy.set(peer.computer, (busy.get(peer.computer) ?? 1) - 1);
          running.delete(run);
        });
        running.add(run);
      }
      if (running.size === 0) break;
      await Promise.race(running);
    }
  }

  /** Pulls one range (or the tail) from its first peer, moving to the next one after repeated failures. */
  private async pullTask(t: Task): Promise<void> {
    let after = t.after;
    let failures = 0;
    for (let k = 0; k < t.peers.length; ) {
      this.check();
      const peer = t.peers[k] as KnownPeer;
      const b = await this.svc.ask<RecoveryBatch>(peer, RECOVERY_PULL, { req: this.svc.req(), after, ...(t.to !== undefined ? { to: t.to } : {}), max: MAX_PULL_EVENTS }, 30_000);
      if (!b || b.error) {
        failures++;
        this.svc.deps.logger.warn({ peer: peer.computer, range: t.range, err: b?.error?.message ?? 'no answer' }, 'restore pull failed');
        if (b?.error || failures >= 3) {
          k++;
          failures = 0;
        } else await new Promise((r) => setTimeout(r, 250 * failures));
        continue;
      }
      failures = 0;
      await this.stage(peer.computer, t.range, b.events, after, t.to);
      if (!b.more || b.last === null) return;
      after = b.last;
    }
  }

  /**
   * Writes a batch's events to the staging table: ours only, within the asked range. Beacons
   * are checked one by one against their own signature (range BEACONS: outside every range's
   * digest, as the index leaves them out); one our key did not sign is dropped.
   */
  private async stage(peer: string, range: number, events: RecoveryBatch['events'], after: string, to: string | undefined): Promise<void> {
    const { store } = this.svc.deps.node.ns;
    const self = this.svc.deps.identity().nodeId;
    const rows: Array<[string, string, number, string, string, Buffer]> = [];
    for (const e of events) {
      if (e.id <= after || (to !== undefined && e.id > to)) continue;
      let env: Record<string, unknown>;
      try {
        env = JSON.parse(e.envelope) as Record<string, unknown>;
      } catch {
        continue;
      }
      if (env.origin !== self || env.id !== e.id || typeof env.event !== 'string') continue;
      if (env.event === RECOVERY_EVENTS.beacon) {
        if (verifyBeacon(env.payload, self)) rows.push([e.id, peer, BEACONS, env.event, e.envelope, contentHash(env)]);
        else this.p.refused++;
        continue;
      }
      rows.push([e.id, peer, range, env.event, e.envelope, contentHash(env)]);
    }
    const ins = store.db.prepare('INSERT OR IGNORE INTO recovery_staging (id, peer, range, event, body, hash) VALUES (?, ?, ?, ?, ?, ?)');
    const added = await store.write(() => rows.reduce((n, r) => n + ins.run(...r).changes, 0));
    this.p.pulled += added;
  }

  // ---- 4: verify ----

  private rangeDigest(range: number): { count: number; digest: string } {
    const d = new RunDigest();
    for (const r of this.svc.deps.node.ns.store.reader.prepare('SELECT id, hash FROM recovery_staging WHERE range = ? ORDER BY id').iterate(range) as Iterable<{ id: string; hash: Buffer }>) d.add(r.id, r.hash);
    return { count: d.count, digest: d.hex() };
  }

  private async verify(tasks: Task[]): Promise<void> {
    this.phase('verify', 'checking each range against the beacon');
    const ranges = this.beacon?.events.ranges ?? [];
    const { store } = this.svc.deps.node.ns;
    for (const t of tasks) {
      if (t.range < 0) continue;
      const want = ranges[t.range] as { count: number; digest: string };
      let got = this.rangeDigest(t.range);
      // Another peer's copy, for a range the first did not give whole.
      for (let k = 1; (got.digest !== want.digest || got.count !== want.count) && k < t.peers.length; k++) {
        this.svc.deps.logger.warn({ range: t.range, got, want }, 'a restored range does not match the beacon; trying the next peer');
        await store.write(() => store.db.prepare('DELETE FROM recovery_staging WHERE range = ?').run(t.range));
        await this.pullTask({ ...t, peers: t.peers.slice(k) });
        got = this.rangeDigest(t.range);
      }
      if ((got.digest !== want.digest || got.count !== want.count) && t.peers.length > 1) {
        // No peer has it whole: what they have together may be.
        for (const peer of t.peers) await this.pullTask({ ...t, peers: [peer] });
        got = this.rangeDigest(t.range);
      }
      if (got.digest === want.digest && got.count === want.count) this.p.ranges.verified++;
      else {
        this.p.ranges.failed++;
        this.svc.deps.logger.error({ range: t.range, got, want }, 'a restored range does not match the beacon on any peer; its events are kept as found');
      }
    }
    this.p.unverified = store.reader.prepare('SELECT COUNT(*) FROM recovery_staging WHERE range = -1').pluck().get() as number;
    this.p.beacons = store.reader.prepare('SELECT COUNT(*) FROM recovery_staging WHERE range = ?').pluck().get(BEACONS) as number;
  }

  // ---- 5: write ----

  private async write(): Promise<void> {
    const { store } = this.svc.deps.node.ns;
    const self = { nodeId: this.svc.deps.identity().nodeId, computer: this.svc.deps.node.self.computer };
    // What is in the log already (a second run, or pushed since) stays as it is.
    await store.write(() => store.db.prepare('DELETE FROM recovery_staging WHERE id IN (SELECT id FROM events)').run());
    for (const r of store.reader.prepare('SELECT peer, COUNT(*) AS n FROM recovery_staging GROUP BY peer').all() as Array<{ peer: string; n: number }>) {
      const peer = this.p.peers.find((x) => x.computer === r.peer);
      if (peer) peer.supplied = r.n;
    }
    const n = store.reader.prepare('SELECT COUNT(*) FROM recovery_staging').pluck().get() as number;
    this.phase('write', `writing ${n} events to the log`);
    if (n === 0) return;
    const floor = Math.max(this.beacon?.log.high ?? 0, ...[...this.infos.values()].map((x) => x.info.mirrorToken));
    const ins = store.db.prepare('INSERT OR IGNORE INTO events (seq, id, event, timestamp, source, causation_id, correlation_id, direct, body) VALUES (?, ?, ?, ?, ?, ?, ?, 2, ?)');
    // The restored events skip the pipeline, so their sessions are indexed here, as its lineage stage would have.
    const lineage = new SessionLineage(store);
    const read = store.reader.prepare('SELECT id, body, hash FROM recovery_staging WHERE id > ? ORDER BY id LIMIT ?');
    const restore = (row: { id: string; body: string }): Envelope | undefined => {
      const raw = JSON.parse(row.body) as Record<string, unknown>;
      delete raw.hops;
      delete raw.flags;
      delete raw.context;
      raw.origin = self.nodeId;
      raw.sourceComputer = self.computer;
      return envelopeValidator.firstError(raw) ? undefined : (raw as unknown as Envelope);
    };
    const put = (seq: number, row: { id: string; body: string; hash: Buffer }): void => {
      const env = restore(row);
      if (!env) return;
      if (ins.run(seq, env.id, env.event, env.timestamp, env.source, env.causationId ?? null, env.correlationId ?? null, serializeEnvelope(env)).changes === 1) {
        if (env.event !== RECOVERY_EVENTS.beacon) this.svc.index.addIn(self.nodeId, env.id, seq, row.hash);
        if (env.session !== undefined) lineage.record(sightingOf(env as Envelope & { session: string }, { computer: self.computer, node: self.nodeId }, this.svc.deps.clock.now()));
        this.p.written++;
      }
    };
    // The numbering: past the beacon's high-water mark and every mirror token of this node, so a
    // peer mirroring this node finds new events after its token. The newest goes in first: it
    // takes the top position, and events logged meanwhile come after it.
    const lastRow = store.reader.prepare('SELECT id, body, hash FROM recovery_staging ORDER BY id DESC LIMIT 1').get() as { id: string; body: string; hash: Buffer };
    const start = await store.write(() => {
      const cur = store.db.prepare('SELECT COALESCE(MAX(seq), 0) FROM events').pluck().get() as number;
      const s = Math.max(cur + 1, floor - n + 1);
      put(s + n - 1, lastRow);
      return s;
    });
    let after = '';
    let i = 0;
    for (;;) {
      this.check();
      const rows = read.all(after, WRITE_CHUNK) as Array<{ id: string; body: string; hash: Buffer }>;
      if (rows.length === 0) break;
      after = (rows[rows.length - 1] as { id: string }).id;
      await store.write(() => {
        for (const r of rows) {
          if (r.id !== lastRow.id) put(start + i, r);
          i++;
        }
      });
      await new Promise((r) => setImmediate(r));
    }
  }

  // ---- 6: notifications ----

  private async notifications(): Promise<void> {
    this.phase('notifications', 'rebuilding notification states from the journal');
    const { store, log } = this.svc.deps.node.ns;
    // The journal, oldest first; the last entry of each notification wins.
    const latest = new Map<number, NoteEntry>();
    // From the log (all written by now: a second run finds them there too), but this database's
    // own entries: they are about rows here already, whose ids may be an old one's.
    const self = this.svc.deps.identity().nodeId;
    const thisDb = this.svc.dbId();
    const journal = store.reader.prepare("SELECT body FROM events WHERE event = ? AND json_extract(body, '$.origin') = ? ORDER BY id").iterate(RECOVERY_EVENTS.notifications, self) as Iterable<{ body: string }>;
    for (const r of journal) {
      const env = JSON.parse(r.body) as Envelope;
      const p = env.payload as { db?: string; entries?: NoteEntry[] };
      if (p.db !== undefined && p.db === thisDb) continue;
      for (const x of p.entries ?? []) {
        if (typeof x?.n !== 'number' || typeof x.e !== 'string') continue;
        // An entry of a notification that moved to another id on an earlier restore.
        if (typeof x.w === 'number') latest.delete(x.w);
        latest.set(x.n, x);
      }
    }
    if (latest.size === 0) return;
    const db = store.db;
    const { notifications } = this.svc.deps.node.ns;
    const s = {
      exists: db.prepare('SELECT 1 FROM notifications WHERE id = ?').pluck(),
      byKey: db.prepare('SELECT id FROM notifications WHERE idempotency_key = ?').pluck(),
      restored: db.prepare('SELECT id FROM recovery_notes_moved WHERE orig_id = ?').pluck(),
      record: db.prepare('INSERT OR REPLACE INTO recovery_notes_moved (orig_id, id) VALUES (?, ?)'),
      clean: db.prepare('DELETE FROM recovery_notes_dirty WHERE id = ?'),
    };
    const cols = ['event_id', 'event_type', 'level', 'domain', 'visibility', 'entity', 'source', 'source_computer', 'description', 'payload', 'idempotency_key', 'group_key', 'actionable', 'human_status', 'agent_status', 'agent_id', 'resolution', 'created_at', 'updated_at', 'seen_at', 'claimed_at', 'resolved_at'] as const;
    const insert = db.prepare(`INSERT INTO notifications (id, ${cols.join(', ')}) VALUES (@id, ${cols.map((c) => `@${c}`).join(', ')})`);
    const update = db.prepare(`UPDATE notifications SET ${cols.map((c) => `${c} = @${c}`).join(', ')} WHERE id = @id`);
    const entries = [...latest.values()];
    // A notification whose id the new node gave away already gets one past every id restored and
    // every id in use, so no restored notification ever lands on another.
    let next = entries.reduce((m, x) => Math.max(m, x.n), db.prepare('SELECT COALESCE(MAX(id), 0) FROM notifications').pluck().get() as number) + 1;
    let missing = 0;
    for (let i = 0; i < entries.length; i += 2000) {
      this.check();
      const part = entries.slice(i, i + 2000).map((x) => ({ x, row: rowOfEntry(x, log.get(x.e)?.envelope) }));
      await store.write(() => {
        for (const { x, row } of part) {
          if (!row) {
            missing++;
            continue;
          }
          // Restored before (a second run): that row is brought up to the journal's state.
          const before = s.restored.get(x.n) as number | undefined;
          const byKey = row.idempotency_key !== null ? (s.byKey.get(row.idempotency_key) as number | undefined) : undefined;
          let id: number;
          if (before !== undefined && s.exists.get(before) !== undefined) {
            id = before;
            update.run({ ...row, id });
          } else if (byKey !== undefined) {
            id = byKey;
            update.run({ ...row, id });
          } else {
            id = s.exists.get(x.n) === undefined ? x.n : next++;
            insert.run({ ...row, id });
            // One that had to take another id is journaled again under it (below).
            if (id !== x.n) notifications.markNew(id, row.visibility, row.source_computer);
          }
          s.record.run(x.n, id);
          // Journaled already under its own id; one that moved is journaled again under the new one.
          if (id === x.n) s.clean.run(id);
          this.p.notifications++;
        }
      });
    }
    if (missing > 0) this.svc.deps.logger.warn({ missing }, 'journal entries whose event was not restored were skipped');
  }

  // ---- 7: cartridges ----

  private async cartridges(): Promise<void> {
    const list = this.beacon?.cartridges ?? [];
    if (list.length === 0) return;
    this.phase('cartridges', `re-installing ${list.length} cartridge(s), checked by digest`);
    const port = this.deps.cartridges;
    if (!port) {
      this.p.cartridges.missing = list.map((c) => `${c.name}: no cartridge runtime on this node`);
      return;
    }
    const { store } = this.svc.deps.node.ns;
    const parts = new Map<string, Array<{ part: number; parts: number; code: string; manifest?: unknown }>>();
    // From the log: all written by now (a second run finds them there too).
    const self = this.svc.deps.identity().nodeId;
    for (const r of store.reader.prepare("SELECT body FROM events WHERE event = ? AND json_extract(body, '$.origin') = ? ORDER BY id").iterate(RECOVERY_EVENTS.cartridge, self) as Iterable<{ body: string }>) {
      const p = (JSON.parse(r.body) as Envelope).payload as { sha256: string; part: number; parts: number; code: string; manifest?: unknown };
      const l = parts.get(p.sha256) ?? [];
      if (!l.some((x) => x.part === p.part)) l.push(p);
      parts.set(p.sha256, l);
    }
    const installed = new Map(port.list().map((c) => [c.name, c]));
    const toActivate: Array<{ name: string; alpha: boolean }> = [];
    for (const c of list) {
      const have = installed.get(c.name);
      if (have && have.sha256 === c.sha256 && have.status === c.status) {
        this.p.cartridges.restored.push(c.name);
        continue;
      }
      const got = (parts.get(c.sha256) ?? []).sort((a, b) => a.part - b.part);
      const whole = got.length > 0 && got.length === got[0]?.parts && got.every((x, i) => x.part === i);
      if (!whole) {
        this.p.cartridges.missing.push(`${c.name}: its package is not held by the peers that answered`);
        continue;
      }
      const source = Buffer.from(got.map((x) => x.code).join(''), 'base64').toString('utf8');
      if (sourceDigest(source) !== c.sha256) {
        this.p.cartridges.missing.push(`${c.name}: the package found does not match the beacon's digest`);
        continue;
      }
      try {
        const pkg = validatePackage({ manifest: got[0]?.manifest as never, source });
        await port.install(pkg, { origin: 'restore' });
        if (c.status === 'active' || c.status === 'alpha') toActivate.push({ name: c.name, alpha: c.status === 'alpha' });
        else this.p.cartridges.restored.push(c.name);
      } catch (err) {
        this.p.cartridges.missing.push(`${c.name}: ${(err as Error).message}`);
      }
    }
    // Dependencies first: activate what can be, again, until nothing more can.
    let left = toActivate;
    for (let round = 0; left.length > 0 && round < left.length + 1; round++) {
      const next: typeof left = [];
      const errors = new Map<string, string>();
      for (const a of left) {
        try {
          await port.activate(a.name, a.alpha ? { alpha: true } : {});
          this.p.cartridges.restored.push(a.name);
        } catch (err) {
          next.push(a);
          errors.set(a.name, (err as Error).message);
        }
      }
      if (next.length === left.length) {
        for (const a of next) this.p.cartridges.missing.push(`${a.name}: installed, not activated: ${errors.get(a.name) ?? ''}`);
        break;
      }
      left = next;
    }
  }

  // ---- 8: frame sequence ----

  private async sequence(): Promise<void> {
    const marks = [...this.infos.values()].map((x) => x.info.seqHighWater ?? 0);
    const past = Math.max(this.beacon?.frameSequence ?? 0, ...marks);
    this.phase('sequence', `frame sequence past ${past} (the highest any peer accepted, and the beacon's)`);
    const next = await resumeFrameSequencePast(this.svc.deps.node.ns.store, this.svc.deps.mesh, past);
    this.p.frameSequence = { past, next };
  }
}
