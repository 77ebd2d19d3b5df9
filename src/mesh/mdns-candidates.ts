/**
 * Candidates: nodes discovery saw on the local network that are not peers. A candidate gets no
 * trust and no events, and its frames are refused like any unknown sender's, until a human pins
 * it (`weft peers pin <fingerprint>`) or policy admits it (`privacy.subnet_trust` gives the
 * address its announcement came from a level other than untrusted). Pinning makes it a peer:
 * its key is pinned, the transport dials it, and the pin is kept in `mesh_state` under
 * `pinned:<fingerprint>` so a restart keeps it (peer memory forgets after a week; a pin is a
 * human's decision and does not expire).
 *
 * An announcement is unauthenticated: anyone on the link can send one, under any name, with
 * any TXT and from a spoofed source address. So nothing in it grants anything by itself:
 * - Its TXT `cluster` is shown to the human deciding (`announcedCluster`) and never used. A
 *   peer is in a cluster only when a human said so (`pin --cluster`); policy never grants one.
 * - Subnet policy judges the address the announcement came from, which can be forged. So a
 *   candidate policy would admit is first dialled at that address, and admitted only once a
 *   TLS connection there authenticated its key (an outbound `peer.connected`); it then gets the
 *   subnet's level and no cluster (public events only).
 * - A pinned peer announced from another address is not moved there: that address is tried
 *   (after letting a dial already under way to the saved one end, so the connection is known
 *   to be the new address's), and saved as the pin's address only when an authenticated TLS
 *   connection there succeeded; otherwise the saved address is dialled again.
 *
 * Bounded: at most `maxCandidates` rows (the oldest candidate, then the oldest ignored one, is
 * dropped for a new one; peers are never dropped), at most `maxNewPerMinute` new candidates a
 * minute (checked, with the known fingerprints, in memory before any write), one
 * `mesh.peer.candidate` per new fingerprint, and a sighting of a known candidate writes at most
 * once per `touchEveryMs` (once per `changeEveryMs` while what it announces changes), at most
 * `maxTouchesPerMinute` such writes a minute in all.
 */
import type { Statement } from 'better-sqlite3';
import type { AuditLog } from '../audit/index.js';
import { FEDERATION_EVENTS } from '../catalog/index.js';
import { NotFoundError, WeftError } from '../errors/index.js';
import { fingerprintOfNodeId } from '../identity/index.js';
import { after, type Clock, type Logger } from '../util/index.js';
import { parseAddress } from './discovery.js';
import type { KnownPeer, PeerBook, TrustLevel } from './peers.js';
import { TRUST_LEVELS } from './peers.js';
import type { MeshNode } from './ports.js';

/** Where a candidate stands: found, made a peer by a human or by policy, or set aside. */
export type CandidateState = 'candidate' | 'pinned' | 'admitted' | 'ignored';

/** One row of `peer_candidates`, as `weft peers candidates` lists it. */
export interface PeerCandidate {
  fingerprint: string;
  nodeId: string;
  computer: string;
  /** The cluster a human gave it with `pin --cluster`: the only cluster this node believes it is in. */
  cluster?: string;
  /** The TXT `cluster` it announced: unauthenticated, shown to help a human decide, never used. */
  announcedCluster?: string;
  /** `host:port` of its TLS listener as last announced, the address the announcement came from first. */
  addresses: string[];
  /** Pinned and admitted peers: where the transport dials it (changed only after an authenticated connection there). */
  address?: string;
  /** How it was found (`mdns`). */
  via: string;
  state: CandidateState;
  /** Subnet policy would admit it: it is being dialled and is admitted once its key answers there. */
  admitting?: boolean;
  firstSeen: number;
  lastSeen: number;
}

/** One validated sighting (see `parseAnnouncement` in mdns.ts). */
export interface CandidateSighting {
  computer: string;
  /** The TXT `cluster`: unauthenticated, kept for display only. */
  cluster?: string;
  nodeId: string;
  fingerprint: string;
  /** `host:port`, observed address first; at most 16. */
  addresses: string[];
  /** The IP the announcement came from (what subnet policy judges), when known. */
  observed?: string;
  via: string;
}

/**
 * What became of a sighting: `admitting` means subnet policy would admit it and its observed
 * address is being dialled (it is admitted when its key answers there).
 */
export type SightingOutcome = 'self' | 'peer' | 'new' | 'known' | 'admitting' | 'dropped';

/** What a pin did. */
export interface PinResult {
  candidate: PeerCandidate;
  /** False when it was a peer already and nothing was asked to change. */
  changed: boolean;
  trustLevel: TrustLevel;
  /** The cluster it was pinned into, if one was given. */
  cluster?: string;
}

/** What a pin may say: the trust level (default `share_to`) and the cluster (default none). */
export interface PinOptions {
  trust?: TrustLevel;
  cluster?: string;
}

/** The part of a transport event read here (a provider's `on`). */
export interface CandidateLinkEvent {
  type: string;
  peer?: string | undefined;
  direction?: 'inbound' | 'outbound' | undefined;
}

export interface PeerCandidatesInit {
  /** Rows kept at most (default 1000). */
  maxCandidates?: number;
  /** New candidates recorded per minute at most; more are dropped and logged (default 60). */
  maxNewPerMinute?: number;
  /** A sighting of a known candidate writes `last_seen` at most this often, ms (default 60 s). */
  touchEveryMs?: number;
  /** ... and at most this often while what it announces changes, ms (default 10 s). */
  changeEveryMs?: number;
  /** Writes for sightings of known candidates, all of them together, per minute at most (default 120). */
  maxTouchesPerMinute?: number;
  /**
   * Before another address of a pinned peer is dialled, the transport is left this long without
   * an address, so a dial to the saved one already under way ends first (default 12 s: more
   * than the TLS handshake timeout, 10 s). Then a connection can only be the new address's.
   */
  trialQuietMs?: number;
  /** How long the new address has to answer with the pinned key, ms (default 20 s). */
  trialMs?: number;
  /** One address trial per pinned peer at most this often, ms (default 2 min). */
  trialEveryMs?: number;
  /** An address that did not answer is not tried again for this long, ms (default 10 min). */
  trialRetryMs?: number;
  /** Subnet policy waits this long for an authenticated connection before giving up (until the next announcement), ms (default 5 min). */
  admitWaitMs?: number;
}

export interface PeerCandidatesDeps {
  node: Pick<MeshNode, 'self' | 'ns' | 'emit'>;
  /** This node's current node id (it changes with a key rotation). */
  selfNodeId: () => string;
  peers: PeerBook;
  audit: AuditLog;
  /**
   * Makes the transport accept and dial a peer at an address, or (without host) only accept it
   * and stop dialling (the TLS provider's `addPeer`). Absent for brokered providers, which
   * reach a peer by its name.
   */
  dial?: (peer: { computer: string; nodeId: string; host?: string; port?: number }) => void;
  /**
   * The transport's link events (the provider's `on`). An outbound `peer.connected` is an
   * authenticated TLS connection to where it was dialled: what confirms a subnet admission and
   * a pinned peer's new address. Without it neither happens.
   */
  onLink?: (fn: (e: CandidateLinkEvent) => void) => () => void;
  /** Whether frames to a peer can flow now (an outbound link is up). */
  linked?: (computer: string) => Promise<boolean>;
  /** The level `privacy.subnet_trust` gives an IP, undefined when no CIDR matches. */
  subnetTrust?: (host: string) => { level: TrustLevel; rule: string } | undefined;
  clock: Clock;
  logger: Logger;
}

/** What `pinned:<fingerprint>` in `mesh_state` holds. */
interface PinRecord {
  /** 2: `cluster` was given by a human. Older records took it from the announcement and it is dropped. */
  v?: 2;
  computer: string;
  nodeId: string;
  cluster?: string;
  address?: string;
  trustLevel: TrustLevel;
  trustSet: boolean;
  by: 'human' | 'policy';
  rule?: string;
  at: number;
}

interface Row {
  fingerprint: string;
  node_id: string;
  computer: string;
  cluster: string | null;
  addresses: string;
  via: string;
  state: CandidateState;
  first_seen: number;
  last_seen: number;
}

/** A subnet admission waiting for the authenticated connection. */
interface Admitting {
  computer: string;
  nodeId: string;
  address: string;
  level: TrustLevel;
  rule: string;
  cancel: () => void;
}

/** Another address of a pinned peer being tried. */
interface Trial {
  computer: string;
  nodeId: string;
  address: string;
  /** `quiet`: nothing dialled, waiting for a dial under way to end; `dial`: the new address is dialled. */
  phase: 'quiet' | 'dial';
  /** A link came up during the quiet phase: the saved address answered. */
  sawLink: boolean;
  cancel: () => void;
}

const PIN_KEY = 'pinned:';
const FINGERPRINT = /^[0-9a-f]{16}$/;
/** A cluster name, as mDNS and `mesh.peers` accept it. */
const CLUSTER = /^[A-Za-z0-9._-]{1,63}$/;
/** Subnet admissions waiting at once, at most. */
const MAX_ADMITTING = 32;
/** Bookkeeping maps (trials, attempts, failed addresses) are kept to this many entries. */
const MAX_MEMO = 1024;

/**
 * The candidate book.
 * @example
 * const c = new PeerCandidates({}, { node, selfNodeId: () => id.nodeId, peers, audit, dial: (p) => tls.addPeer(p), onLink: (fn) => tls.on(fn), clock, logger });
 * c.restore(); // pinned peers back into the PeerBook and the transport
 * await c.seen({ computer: 'venus', nodeId, fingerprint, addresses: ['10.0.0.2:9238'], observed: '10.0.0.2', via: 'mdns' });
 * await c.pin(fingerprint, { cluster: 'home' });
 */
export class PeerCandidates {
  private readonly max: number;
  private readonly maxNewPerMinute: number;
  private readonly touchEveryMs: number;
  private readonly changeEveryMs: number;
  private readonly maxTouchesPerMinute: number;
  private readonly trialQuietMs: number;
  private readonly trialMs: number;
  private readonly trialEveryMs: number;
  private readonly trialRetryMs: number;
  private readonly admitWaitMs: number;
  private readonly s: Record<
    'get' | 'insert' | 'touch' | 'touchPeer' | 'state' | 'rekey' | 'count' | 'victim' | 'del' | 'list' | 'listState' | 'known' | 'pins' | 'putPin' | 'delPin',
    Statement
  >;
  /** Every row's state by fingerprint: a sighting is judged here, before any write. */
  private readonly known = new Map<string, CandidateState>();
  /** Every pin, by fingerprint (what `mesh_state` holds). */
  private readonly pins = new Map<string, PinRecord>();
  /** Last write per fingerprint and what it wrote, oldest first. */
  private readonly touched = new Map<string, { at: number; shape: string }>();
  private newWindow = { start: 0, count: 0, warned: false };
  private touchWindow = { start: 0, count: 0 };
  private readonly admitting = new Map<string, Admitting>();
  /** When subnet admission last dialled a fingerprint. */
  private readonly admitTried = new Map<string, number>();
  private readonly trials = new Map<string, Trial>();
  /** When each pinned peer's last address trial started. */
  private readonly trialAt = new Map<string, number>();
  /** `<fingerprint> <address>` → when it failed a trial. */
  private readonly trialFailed = new Map<string, number>();
  private unsub: (() => void) | undefined;
  private readonly unsubLink: (() => void) | undefined;
  private stopped = false;
  /** Counters for status and tests. */
  readonly stats = { sightings: 0, created: 0, dropped: 0, evicted: 0, admitted: 0, pinned: 0, touchesSkipped: 0, trials: 0, moved: 0 };

  constructor(
    init: PeerCandidatesInit,
    private readonly deps: PeerCandidatesDeps,
  ) {
    this.max = init.maxCandidates ?? 1000;
    this.maxNewPerMinute = init.maxNewPerMinute ?? 60;
    this.touchEveryMs = init.touchEveryMs ?? 60_000;
    this.changeEveryMs = init.changeEveryMs ?? 10_000;
    this.maxTouchesPerMinute = init.maxTouchesPerMinute ?? 120;
    this.trialQuietMs = init.trialQuietMs ?? 12_000;
    this.trialMs = init.trialMs ?? 20_000;
    this.trialEveryMs = init.trialEveryMs ?? 120_000;
    this.trialRetryMs = init.trialRetryMs ?? 600_000;
    this.admitWaitMs = init.admitWaitMs ?? 300_000;
    const db = deps.node.ns.store.db;
    this.s = {
      get: db.prepare('SELECT * FROM peer_candidates WHERE fingerprint = ?'),
      insert: db.prepare(
        `INSERT INTO peer_candidates (fingerprint, node_id, computer, cluster, addresses, via, state, first_seen, last_seen)
         VALUES (?, ?, ?, ?, ?, ?, 'candidate', ?, ?)`,
      ),
      touch: db.prepare('UPDATE peer_candidates SET computer = ?, cluster = ?, addresses = ?, last_seen = ? WHERE fingerprint = ?'),
      // A peer keeps the name it was pinned under; only what it announces and where it is seen move.
      touchPeer: db.prepare('UPDATE peer_candidates SET cluster = ?, addresses = ?, last_seen = ? WHERE fingerprint = ?'),
      state: db.prepare('UPDATE peer_candidates SET state = ? WHERE fingerprint = ?'),
      rekey: db.prepare('UPDATE peer_candidates SET fingerprint = ?, node_id = ? WHERE fingerprint = ?'),
      count: db.prepare('SELECT COUNT(*) FROM peer_candidates').pluck(),
      // Candidates go first, then ignored ones; peers (pinned, admitted) are never dropped.
      victim: db
        .prepare(
          `SELECT fingerprint FROM peer_candidates WHERE state IN ('candidate', 'ignored')
           ORDER BY state = 'ignored', last_seen ASC LIMIT 1`,
        )
        .pluck(),
      del: db.prepare('DELETE FROM peer_candidates WHERE fingerprint = ?'),
      list: db.prepare('SELECT * FROM peer_candidates ORDER BY last_seen DESC LIMIT ?'),
      listState: db.prepare('SELECT * FROM peer_candidates WHERE state = ? ORDER BY last_seen DESC LIMIT ?'),
      known: db.prepare('SELECT fingerprint, state FROM peer_candidates'),
      pins: db.prepare(`SELECT key, value FROM mesh_state WHERE key >= '${PIN_KEY}' AND key < '${PIN_KEY}\uffff'`),
      putPin: db.prepare('INSERT INTO mesh_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
      delPin: db.prepare('DELETE FROM mesh_state WHERE key = ?'),
    };
    for (const r of this.s.known.all() as Array<{ fingerprint: string; state: CandidateState }>) this.known.set(r.fingerprint, r.state);
    this.unsubLink = deps.onLink?.((e) => this.onLink(e));
  }

  /**
   * Puts every pinned peer back into the PeerBook and the transport. Call it once before the
   * mesh starts, so nothing emitted at start misses a pinned peer. Returns how many.
   */
  restore(): number {
    let n = 0;
    for (const row of this.s.pins.all() as Array<{ key: string; value: string }>) {
      const fp = row.key.slice(PIN_KEY.length);
      try {
        const r = JSON.parse(row.value) as PinRecord;
        if (typeof r.computer !== 'string' || fingerprintOfNodeId(r.nodeId) !== fp) continue;
        if (!TRUST_LEVELS.includes(r.trustLevel)) continue;
        const rec = r.v === 2 ? r : this.legacy(fp, r);
        this.pins.set(fp, rec);
        this.apply(rec);
        n++;
      } catch (err) {
        this.deps.logger.warn({ key: row.key, err: (err as Error).message }, 'a pinned peer could not be restored; pin it again');
      }
    }
    return n;
  }

  /** A pin made before clusters had to be given: its cluster came from the announcement, so it goes (and a default `peer` level with it). */
  private legacy(fp: string, r: PinRecord): PinRecord {
    const { cluster, ...rest } = r;
    const rec: PinRecord = { ...rest, v: 2, ...(r.trustSet ? {} : { trustLevel: 'share_to' as TrustLevel }) };
    if (cluster !== undefined) {
      this.deps.logger.warn(
        { computer: r.computer, fingerprint: fp, announcedCluster: cluster },
        `a pin made by an older version took its cluster from the mDNS announcement, which proves nothing: restored without a cluster; to put it in one: weft peers pin ${fp} --cluster <name>`,
      );
    }
    return rec;
  }

  /** Follows endorsed key rotations of pinned peers, so a restart restores the new key. Idempotent. */
  start(): void {
    this.unsub ??= this.deps.peers.onRekeyed((p, oldNodeId) => void this.rekeyed(p, oldNodeId));
  }

  /** Ends the link subscription, the address trials and the admissions under way. */
  stop(): void {
    this.stopped = true;
    this.unsub?.();
    this.unsub = undefined;
    this.unsubLink?.();
    for (const t of this.trials.values()) t.cancel();
    this.trials.clear();
    for (const a of this.admitting.values()) a.cancel();
    this.admitting.clear();
  }

  /**
   * Records a sighting: a new fingerprint becomes a candidate (one `mesh.peer.candidate`), a
   * known one is refreshed; a candidate whose observed address policy trusts is dialled there
   * and admitted when its key answers; a pinned peer seen elsewhere has that address tried.
   * Never throws.
   */
  async seen(s: CandidateSighting): Promise<SightingOutcome> {
    this.stats.sightings++;
    try {
      return await this.record(s);
    } catch (err) {
      this.deps.logger.warn({ fingerprint: s.fingerprint, err: (err as Error).message }, 'recording a discovered node failed');
      return 'dropped';
    }
  }

  private async record(s: CandidateSighting): Promise<SightingOutcome> {
    const selfId = this.deps.selfNodeId();
    if (s.nodeId === selfId || s.fingerprint === fingerprintOfNodeId(selfId)) return 'self';
    const now = this.deps.clock.now();
    const state = this.known.get(s.fingerprint);
    if (state === undefined) {
      // Judged in memory first: a flood of made-up keys costs no write.
      if (this.deps.peers.get(s.nodeId)) return 'peer';
      if (!this.allowNew(now)) {
        this.stats.dropped++;
        return 'dropped';
      }
      return this.create(s, now);
    }
    await this.refresh(s, state, now);
    if (state === 'pinned' || state === 'admitted') {
      await this.maybeTrial(s.fingerprint, s.addresses[0], now);
      return 'known';
    }
    if (state === 'candidate' && this.maybeAdmit(s, now)) return 'admitting';
    return 'known';
  }

  private async create(s: CandidateSighting, now: number): Promise<SightingOutcome> {
    const r = await this.deps.node.ns.store.write(() => {
      const row = this.s.get.get(s.fingerprint) as Row | undefined;
      if (row) return { kind: 'known' as const, state: row.state };
      let evicted: string | undefined;
      if ((this.s.count.get() as number) >= this.max) {
        evicted = this.s.victim.get() as string | undefined;
        if (evicted === undefined) {
          this.deps.logger.warn({ max: this.max, computer: s.computer }, 'peer candidates table is full of peers: a new candidate was dropped');
          return { kind: 'dropped' as const };
        }
        this.s.del.run(evicted);
      }
      this.s.insert.run(s.fingerprint, s.nodeId, s.computer, s.cluster ?? null, JSON.stringify(s.addresses), s.via, now, now);
      return { kind: 'new' as const, evicted };
    });
    if (r.kind === 'dropped') {
      this.stats.dropped++;
      return 'dropped';
    }
    if (r.kind === 'known') {
      this.known.set(s.fingerprint, r.state);
      return 'known';
    }
    if (r.evicted !== undefined) {
      this.stats.evicted++;
      this.known.delete(r.evicted);
      this.touched.delete(r.evicted);
      this.cancelAdmitting(r.evicted, true);
    }
    this.known.set(s.fingerprint, 'candidate');
    this.remember(this.touched, s.fingerprint, { at: now, shape: shapeOf(s) });
    this.stats.created++;
    this.deps.logger.info({ computer: s.computer, fingerprint: s.fingerprint, addresses: s.addresses, via: s.via }, 'a node was discovered: a candidate until it is pinned');
    await this.deps.node
      .emit({
        event: FEDERATION_EVENTS.candidateFound,
        payload: { computer: s.computer, fingerprint: s.fingerprint, nodeId: s.nodeId, addresses: s.addresses.slice(0, 16), via: s.via },
      })
      .catch((err) => this.deps.logger.warn({ err: (err as Error).message }, 'raising mesh.peer.candidate failed'));
    return this.maybeAdmit(s, now) ? 'admitting' : 'new';
  }

  /** Refreshes a known row: at most once per `touchEveryMs` (`changeEveryMs` when it changed), and within the minute's budget. */
  private async refresh(s: CandidateSighting, state: CandidateState, now: number): Promise<void> {
    const shape = shapeOf(s);
    const last = this.touched.get(s.fingerprint);
    if (last && now - last.at < (last.shape === shape ? this.touchEveryMs : this.changeEveryMs)) return;
    if (now - this.touchWindow.start >= 60_000) this.touchWindow = { start: now, count: 0 };
    if (this.touchWindow.count >= this.maxTouchesPerMinute) {
      this.stats.touchesSkipped++;
      return;
    }
    this.touchWindow.count++;
    this.remember(this.touched, s.fingerprint, { at: now, shape });
    const addresses = JSON.stringify(s.addresses);
    await this.deps.node.ns.store.write(() => {
      if (state === 'pinned' || state === 'admitted') this.s.touchPeer.run(s.cluster ?? null, addresses, now, s.fingerprint);
      else this.s.touch.run(s.computer, s.cluster ?? null, addresses, now, s.fingerprint);
    });
  }

  /** Whether one more new candidate fits this minute's budget. */
  private allowNew(now: number): boolean {
    if (now - this.newWindow.start >= 60_000) this.newWindow = { start: now, count: 0, warned: false };
    if (this.newWindow.count >= this.maxNewPerMinute) {
      if (!this.newWindow.warned) this.deps.logger.warn({ perMinute: this.maxNewPerMinute }, 'too many new nodes announced this minute: the rest are dropped until the next one');
      this.newWindow.warned = true;
      return false;
    }
    this.newWindow.count++;
    return true;
  }

  /** Candidates, most recently seen first; `state` narrows them. */
  list(opts: { state?: CandidateState; limit?: number } = {}): PeerCandidate[] {
    const limit = Math.min(Math.max(opts.limit ?? 200, 1), this.max);
    const rows = (opts.state ? this.s.listState.all(opts.state, limit) : this.s.list.all(limit)) as Row[];
    return rows.map((r) => this.candidate(r));
  }

  /** One candidate by its fingerprint; throws WEFT_NOT_FOUND. */
  get(fingerprint: string): PeerCandidate {
    const row = this.s.get.get(normalizeFingerprint(fingerprint)) as Row | undefined;
    if (!row) throw new NotFoundError('peer candidate', fingerprint);
    return this.candidate(row);
  }

  private candidate(r: Row): PeerCandidate {
    const pin = r.state === 'pinned' || r.state === 'admitted' ? this.pins.get(r.fingerprint) : undefined;
    return toCandidate(r, pin, this.admitting.has(r.fingerprint));
  }

  /**
   * A human makes a candidate a peer (an ignored one too): its key is pinned, the transport
   * dials it, the pin is kept across restarts, audited and raised as `mesh.peer.pinned`.
   * `trust` defaults to `share_to` (the sharing policy may still decide it, as for any
   * discovered node); `cluster` is the only way a discovered node joins a cluster, whatever it
   * announced. On a peer already pinned or admitted, `trust` and `cluster` change its pin.
   * @throws WeftError WEFT_NOT_FOUND (no such candidate), WEFT_VALIDATION (bad trust or cluster), WEFT_CONFLICT (its name belongs to another key).
   */
  async pin(fingerprint: string, opts: PinOptions = {}): Promise<PinResult> {
    const fp = normalizeFingerprint(fingerprint);
    if (opts.cluster !== undefined && !CLUSTER.test(opts.cluster)) {
      throw new WeftError('WEFT_VALIDATION', `'${opts.cluster}' is not a cluster name (letters, digits, . _ -, at most 63)`);
    }
    return this.admit(fp, { by: 'human', ...(opts.trust ? { trust: opts.trust } : {}), ...(opts.cluster ? { cluster: opts.cluster } : {}) });
  }

  /**
   * Sets a candidate aside: no more `mesh.peer.candidate` for it and policy never admits it
   * (`pin` still can). A peer cannot be ignored.
   * @throws WeftError WEFT_NOT_FOUND, WEFT_CONFLICT (it is a peer already).
   */
  async ignore(fingerprint: string): Promise<PeerCandidate> {
    const fp = normalizeFingerprint(fingerprint);
    const row = await this.deps.node.ns.store.write(() => {
      const r = this.s.get.get(fp) as Row | undefined;
      if (!r) throw new NotFoundError('peer candidate', fingerprint);
      if (r.state === 'pinned' || r.state === 'admitted') {
        throw new WeftError('WEFT_CONFLICT', `${r.computer} (${fp}) is a peer already (${r.state}); ignoring applies to candidates only`);
      }
      if (r.state === 'ignored') return r;
      this.s.state.run('ignored', fp);
      this.deps.audit.recordIn('peer.ignored', r.computer, { fingerprint: fp, nodeId: r.node_id, via: r.via }, true);
      return { ...r, state: 'ignored' as const };
    });
    this.known.set(fp, 'ignored');
    this.cancelAdmitting(fp, true);
    return this.candidate(row);
  }

  private async admit(
    fp: string,
    o: { by: 'human' | 'policy'; trust?: TrustLevel; cluster?: string; rule?: string; address?: string; computer?: string },
  ): Promise<PinResult> {
    if (o.trust !== undefined && !TRUST_LEVELS.includes(o.trust)) {
      throw new WeftError('WEFT_VALIDATION', `trust '${o.trust}' is not one of ${TRUST_LEVELS.join(', ')}`);
    }
    const self = this.deps.node.self;
    const now = this.deps.clock.now();
    const r = await this.deps.node.ns.store.write(() => {
      const row = this.s.get.get(fp) as Row | undefined;
      if (!row) throw new NotFoundError('peer candidate', fp);
      if (row.state === 'pinned' || row.state === 'admitted') {
        const old = this.pins.get(fp);
        const known = this.deps.peers.get(row.node_id);
        // A human may change a peer's pin (its cluster, its level); anything else changes nothing.
        if (o.by === 'policy' || !old || (o.trust === undefined && o.cluster === undefined)) {
          return { changed: false as const, row, level: known?.trustLevel ?? old?.trustLevel ?? 'share_to', cluster: old?.cluster };
        }
        const record: PinRecord = {
          ...old,
          v: 2,
          ...(o.cluster !== undefined ? { cluster: o.cluster } : {}),
          ...(o.trust !== undefined ? { trustLevel: o.trust, trustSet: true } : {}),
          by: 'human',
          at: now,
        };
        delete record.rule;
        this.s.state.run('pinned', fp);
        this.s.putPin.run(PIN_KEY + fp, JSON.stringify(record));
        this.deps.audit.recordIn(
          'peer.pinned',
          row.computer,
          { fingerprint: fp, nodeId: row.node_id, by: 'human', trustLevel: record.trustLevel, cluster: record.cluster ?? null, changed: true },
          true,
        );
        return { changed: true as const, fresh: false, row: { ...row, state: 'pinned' as const }, level: record.trustLevel, record };
      }
      // Policy admits candidates only; an ignored node waits for a human.
      // (nor one that now announces another name than the one the transport dialled).
      if (o.by === 'policy' && (row.state !== 'candidate' || (o.computer !== undefined && o.computer !== row.computer))) {
        return { changed: false as const, row, level: 'untrusted' as TrustLevel, cluster: undefined };
      }
      const named = this.deps.peers.byName(row.computer);
      if (row.computer === self.computer || (named && named.nodeId !== row.node_id)) {
        throw new WeftError(
          'WEFT_CONFLICT',
          `${row.computer} (${fp}) announces the name of ${row.computer === self.computer ? 'this node' : `a known peer with another key (${fingerprintOfNodeId(named!.nodeId)})`}; it cannot be pinned under that name`,
        );
      }
      const address = o.address ?? (JSON.parse(row.addresses) as string[])[0];
      // Never the announced cluster: only a human's --cluster puts a discovered node in one.
      const level = o.trust ?? 'share_to';
      const record: PinRecord = {
        v: 2,
        computer: row.computer,
        nodeId: row.node_id,
        ...(o.cluster !== undefined ? { cluster: o.cluster } : {}),
        ...(address ? { address } : {}),
        trustLevel: level,
        // A level a human or a subnet rule chose stays; without one, the sharing policy decides as for any discovered node.
        trustSet: o.trust !== undefined,
        by: o.by,
        ...(o.rule ? { rule: o.rule } : {}),
        at: now,
      };
      const state: CandidateState = o.by === 'human' ? 'pinned' : 'admitted';
      this.s.state.run(state, fp);
      this.s.putPin.run(PIN_KEY + fp, JSON.stringify(record));
      this.deps.audit.recordIn(
        'peer.pinned',
        row.computer,
        {
          fingerprint: fp,
          nodeId: row.node_id,
          by: o.by,
          trustLevel: level,
          cluster: record.cluster ?? null,
          address: record.address ?? null,
          ...(o.rule ? { rule: o.rule } : {}),
        },
        true,
      );
      return { changed: true as const, fresh: true, row: { ...row, state }, level, record };
    });
    if (!r.changed) return { candidate: this.candidate(r.row), changed: false, trustLevel: r.level, ...(r.cluster ? { cluster: r.cluster } : {}) };
    this.known.set(fp, r.row.state);
    this.pins.set(fp, r.record);
    if (o.by === 'human') this.cancelAdmitting(fp, false);
    if (!r.fresh) {
      // A trial of another address would take a connection at the saved one for its own.
      this.cancelTrial(fp);
      this.apply(r.record);
      this.deps.logger.info({ computer: r.record.computer, fingerprint: fp, trust: r.level, cluster: r.record.cluster }, 'a pinned peer was pinned again: its cluster and level are what the human gave');
      return { candidate: this.candidate(r.row), changed: true, trustLevel: r.level, ...(r.record.cluster ? { cluster: r.record.cluster } : {}) };
    }
    this.stats[o.by === 'human' ? 'pinned' : 'admitted']++;
    this.apply(r.record);
    this.deps.logger.info(
      { computer: r.record.computer, fingerprint: fp, by: o.by, trust: r.level, cluster: r.record.cluster, address: r.record.address },
      'a discovered node is a peer now',
    );
    await this.deps.node
      .emit({
        event: FEDERATION_EVENTS.peerPinned,
        payload: { computer: r.record.computer, fingerprint: fp, by: o.by, ...(r.record.address ? { address: r.record.address } : {}) },
      })
      .catch((err) => this.deps.logger.warn({ err: (err as Error).message }, 'raising mesh.peer.pinned failed'));
    return { candidate: this.candidate(r.row), changed: true, trustLevel: r.level, ...(r.record.cluster ? { cluster: r.record.cluster } : {}) };
  }

  /** Into the transport first (so the first send finds it), then the PeerBook (the mesh pins and starts a sender). */
  private apply(r: PinRecord): void {
    const a = r.address ? parseAddress(r.address) : undefined;
    try {
      this.deps.dial?.({ computer: r.computer, nodeId: r.nodeId, ...(a ? { host: a.host, port: a.port } : {}) });
    } catch (err) {
      this.deps.logger.error({ computer: r.computer, err: (err as Error).message }, 'the transport refused a pinned peer');
      return;
    }
    this.deps.peers.upsert({
      computer: r.computer,
      nodeId: r.nodeId,
      ...(r.cluster ? { cluster: r.cluster } : {}),
      ...(r.address ? { address: r.address } : {}),
      trustLevel: r.trustLevel,
      ...(r.trustSet ? { trustSet: true } : {}),
      origin: 'discovered',
      lastSeen: r.at,
    });
  }

  // ---- subnet admission: dial the observed address, admit when the key answers there ----

  /**
   * Starts a subnet admission when policy trusts the address the announcement came from: the
   * transport accepts the key and dials that address (the announced port); the candidate is
   * admitted when that connection authenticates (`onLink`). Returns whether one started.
   */
  private maybeAdmit(s: CandidateSighting, now: number): boolean {
    if (this.stopped || s.observed === undefined || !this.deps.subnetTrust) return false;
    const rule = this.deps.subnetTrust(s.observed);
    if (!rule || rule.level === 'untrusted') return false;
    const fp = s.fingerprint;
    if (this.admitting.has(fp)) return false;
    const tried = this.admitTried.get(fp);
    if (tried !== undefined && now - tried < this.admitWaitMs) return false;
    if (!this.deps.dial || !this.deps.onLink) {
      this.deps.logger.debug({ computer: s.computer }, 'subnet policy admits only over a transport that reports authenticated links (tls)');
      return false;
    }
    if (this.admitting.size >= MAX_ADMITTING) {
      this.deps.logger.warn({ computer: s.computer, max: MAX_ADMITTING }, 'too many subnet admissions under way: this one waits for a later announcement');
      return false;
    }
    // The address dialled is the one policy judged, nothing the records claim.
    const address = s.addresses[0];
    const a = address ? parseAddress(address) : undefined;
    if (!address || !a || a.host !== s.observed) return false;
    const named = this.deps.peers.byName(s.computer);
    if (s.computer === this.deps.node.self.computer || (named && named.nodeId !== s.nodeId)) {
      this.deps.logger.warn({ computer: s.computer, fingerprint: fp }, 'subnet policy does not admit a node announcing the name of this node or of a peer with another key');
      return false;
    }
    try {
      this.deps.dial({ computer: s.computer, nodeId: s.nodeId, host: a.host, port: a.port });
    } catch (err) {
      this.deps.logger.warn({ computer: s.computer, err: (err as Error).message }, 'the transport refused a node subnet policy would admit');
      return false;
    }
    this.remember(this.admitTried, fp, now);
    const cancel = after(this.deps.clock, this.admitWaitMs, () => this.admitExpired(fp), { unref: true });
    this.admitting.set(fp, { computer: s.computer, nodeId: s.nodeId, address, level: rule.level, rule: rule.rule, cancel });
    this.deps.logger.info(
      { computer: s.computer, fingerprint: fp, address, rule: rule.rule },
      'subnet policy would admit a discovered node: dialling the address it announced from, admitted once its key answers there',
    );
    return true;
  }

  private async admitConfirmed(fp: string): Promise<void> {
    const p = this.admitting.get(fp);
    if (!p) return;
    p.cancel();
    this.admitting.delete(fp);
    try {
      const r = await this.admit(fp, { by: 'policy', trust: p.level, rule: p.rule, address: p.address, computer: p.computer });
      if (r.changed) {
        this.deps.logger.info({ computer: p.computer, address: p.address, rule: p.rule }, 'admitted by subnet policy: its key answered at the address it announced from');
        return;
      }
    } catch (err) {
      this.deps.logger.warn({ fingerprint: fp, err: (err as Error).message }, 'admitting a candidate by subnet policy failed');
    }
    if (this.known.get(fp) === 'candidate' || this.known.get(fp) === 'ignored') this.stopDialling(p.computer, p.nodeId);
  }

  private admitExpired(fp: string): void {
    const p = this.admitting.get(fp);
    if (!p) return;
    this.admitting.delete(fp);
    this.deps.logger.info(
      { computer: p.computer, address: p.address, waitedMs: this.admitWaitMs },
      'no authenticated connection at the address a candidate announced from: not admitted (tried again at a later announcement)',
    );
    this.stopDialling(p.computer, p.nodeId);
  }

  /** Drops an admission under way (a human decided, or the row went); `stop` also stops the dialling. */
  private cancelAdmitting(fp: string, stop: boolean): void {
    const p = this.admitting.get(fp);
    if (!p) return;
    p.cancel();
    this.admitting.delete(fp);
    if (stop) this.stopDialling(p.computer, p.nodeId);
  }

  /** The transport keeps the key (its frames are still refused: not in the PeerBook) but dials nowhere. */
  private stopDialling(computer: string, nodeId: string): void {
    try {
      this.deps.dial?.({ computer, nodeId });
    } catch {
      // the name is another key's in the transport now: nothing of ours to stop
    }
  }

  // ---- a pinned peer seen at another address ----

  /**
   * A pinned peer was announced from an address other than its saved one. Unless it is linked
   * (it answers where it is), that address is tried: the transport stops dialling, waits
   * `trialQuietMs` for a dial already under way to end, then dials the new address for
   * `trialMs`. An authenticated connection then can only be there: it is saved. Otherwise the
   * saved address is dialled again and the new one is not tried for `trialRetryMs`.
   */
  private async maybeTrial(fp: string, address: string | undefined, now: number): Promise<void> {
    const rec = this.pins.get(fp);
    if (this.stopped || !rec || !address || address === rec.address || !this.deps.dial || !this.deps.onLink) return;
    if (this.trials.has(fp)) return;
    const last = this.trialAt.get(fp);
    if (last !== undefined && now - last < this.trialEveryMs) return;
    const failed = this.trialFailed.get(`${fp} ${address}`);
    if (failed !== undefined && now - failed < this.trialRetryMs) return;
    const a = parseAddress(address);
    if (!a) return;
    this.remember(this.trialAt, fp, now);
    if (this.deps.linked && (await this.deps.linked(rec.computer).catch(() => false))) {
      this.deps.logger.debug({ computer: rec.computer, saved: rec.address, announced: address }, 'a pinned peer announced another address while linked: not redialled');
      return;
    }
    if (this.stopped || this.trials.has(fp)) return;
    this.stats.trials++;
    const t: Trial = { computer: rec.computer, nodeId: rec.nodeId, address, phase: 'quiet', sawLink: false, cancel: () => undefined };
    this.trials.set(fp, t);
    this.deps.logger.info({ computer: rec.computer, saved: rec.address, announced: address }, 'a pinned peer announced another address: trying it; saved only if its key answers there');
    if (!rec.address) {
      this.trialDial(fp, t, a);
      return;
    }
    this.stopDialling(rec.computer, rec.nodeId);
    t.cancel = after(this.deps.clock, this.trialQuietMs, () => void this.quietOver(fp, t, a), { unref: true });
  }

  private async quietOver(fp: string, t: Trial, a: { host: string; port: number }): Promise<void> {
    if (this.trials.get(fp) !== t) return;
    if (t.sawLink || (this.deps.linked && (await this.deps.linked(t.computer).catch(() => false)))) {
      this.deps.logger.info({ computer: t.computer, announced: t.address }, 'a pinned peer answered at its saved address: the other address is not tried');
      this.trialEnd(fp, t, false);
      return;
    }
    if (this.trials.get(fp) !== t) return;
    this.trialDial(fp, t, a);
  }

  private trialDial(fp: string, t: Trial, a: { host: string; port: number }): void {
    t.phase = 'dial';
    try {
      this.deps.dial?.({ computer: t.computer, nodeId: t.nodeId, host: a.host, port: a.port });
    } catch (err) {
      this.deps.logger.warn({ computer: t.computer, err: (err as Error).message }, 'the transport refused another address of a pinned peer');
      this.trialEnd(fp, t, true);
      return;
    }
    t.cancel = after(this.deps.clock, this.trialMs, () => this.trialEnd(fp, t, true), { unref: true });
  }

  private cancelTrial(fp: string): void {
    const t = this.trials.get(fp);
    if (!t) return;
    t.cancel();
    this.trials.delete(fp);
  }

  /** The trial is over without a connection at the new address: back to the saved one. */
  private trialEnd(fp: string, t: Trial, failed: boolean): void {
    if (this.trials.get(fp) !== t) return;
    t.cancel();
    this.trials.delete(fp);
    const rec = this.pins.get(fp);
    if (failed) {
      this.remember(this.trialFailed, `${fp} ${t.address}`, this.deps.clock.now());
      this.deps.logger.info(
        { computer: t.computer, announced: t.address, saved: rec?.address, retryMs: this.trialRetryMs },
        'a pinned peer did not answer with its key at the address announced for it: dialling its saved address again',
      );
    }
    if (this.stopped || !rec) return;
    const a = rec.address ? parseAddress(rec.address) : undefined;
    try {
      this.deps.dial?.({ computer: rec.computer, nodeId: rec.nodeId, ...(a ? { host: a.host, port: a.port } : {}) });
    } catch (err) {
      this.deps.logger.warn({ computer: rec.computer, err: (err as Error).message }, 'could not dial a pinned peer at its saved address again');
    }
  }

  /** The new address answered with the pinned key: it is the pin's address from now on. */
  private async trialConnected(fp: string, t: Trial): Promise<void> {
    t.cancel();
    this.trials.delete(fp);
    const rec = this.pins.get(fp);
    if (!rec || this.stopped) return;
    const next: PinRecord = { ...rec, address: t.address };
    try {
      await this.deps.node.ns.store.write(() => {
        this.s.putPin.run(PIN_KEY + fp, JSON.stringify(next));
        this.deps.audit.recordIn('peer.moved', rec.computer, { fingerprint: fp, nodeId: rec.nodeId, from: rec.address ?? null, to: t.address }, true);
      });
    } catch (err) {
      this.deps.logger.warn({ computer: rec.computer, err: (err as Error).message }, 'saving a pinned peer\'s new address failed; it is dialled there until the restart');
    }
    this.pins.set(fp, next);
    this.stats.moved++;
    const known = this.deps.peers.get(rec.nodeId);
    if (known) known.address = t.address;
    this.deps.logger.info({ computer: rec.computer, from: rec.address, to: t.address }, 'a pinned peer answered with its key at its new address: saved');
  }

  private onLink(e: CandidateLinkEvent): void {
    if (e.type !== 'peer.connected' || e.direction !== 'outbound' || e.peer === undefined) return;
    for (const [fp, p] of this.admitting) if (p.computer === e.peer) void this.admitConfirmed(fp);
    for (const [fp, t] of this.trials) {
      if (t.computer !== e.peer) continue;
      if (t.phase === 'quiet') t.sawLink = true;
      else void this.trialConnected(fp, t);
    }
  }

  /**
   * A pinned (or admitted) peer rotated its key: the pin and its row move to the new key, so
   * `weft peers candidates` lists it under the fingerprint `weft identity show` prints there,
   * with its cluster, and `weft peers pin <new fingerprint>` finds it. (Only the pin moved
   * before: the row stayed under the old fingerprint, shown without its cluster, the new one
   * was not found, and a pin of the old one with --trust or --cluster changed nothing.)
   */
  private async rekeyed(p: KnownPeer, oldNodeId: string): Promise<void> {
    const oldFp = fingerprintOfNodeId(oldNodeId);
    const newFp = fingerprintOfNodeId(p.nodeId);
    if (!oldFp || !newFp || oldFp === newFp) return;
    try {
      const r = await this.deps.node.ns.store.write(() => {
        const rec = this.pins.get(oldFp);
        if (!rec) return undefined;
        const next: PinRecord = { ...rec, nodeId: p.nodeId };
        this.s.delPin.run(PIN_KEY + oldFp);
        this.s.putPin.run(PIN_KEY + newFp, JSON.stringify(next));
        const row = this.s.get.get(oldFp) as Row | undefined;
        if (row) {
          // A row of the new key (announced before the rotation reached us) gives way to the peer's.
          this.s.del.run(newFp);
          this.s.rekey.run(newFp, p.nodeId, oldFp);
        }
        return { next, state: row?.state };
      });
      if (r) {
        this.pins.delete(oldFp);
        this.pins.set(newFp, r.next);
        this.cancelTrial(oldFp);
        this.touched.delete(oldFp);
        this.touched.delete(newFp);
        this.known.delete(oldFp);
        if (r.state !== undefined) this.known.set(newFp, r.state);
      }
    } catch (err) {
      this.deps.logger.warn({ computer: p.computer, err: (err as Error).message }, 'moving a pin to a rotated key failed');
    }
  }

  /** Sets `key` as the newest entry of a bounded map (the oldest goes when it is full). */
  private remember<V>(m: Map<string, V>, key: string, value: V): void {
    m.delete(key);
    if (m.size >= Math.max(MAX_MEMO, this.max)) {
      const oldest = m.keys().next();
      if (!oldest.done) m.delete(oldest.value);
    }
    m.set(key, value);
  }
}

/** What a sighting says, to tell a repeat from a change. */
function shapeOf(s: CandidateSighting): string {
  return `${s.computer}|${s.cluster ?? ''}|${s.addresses.join(',')}`;
}

/** Lower case, and a WEFT_VALIDATION error for anything but 16 hex digits. */
function normalizeFingerprint(fp: string): string {
  const f = fp.trim().toLowerCase();
  if (!FINGERPRINT.test(f)) throw new WeftError('WEFT_VALIDATION', `'${fp}' is not a fingerprint (16 hex digits, as 'weft peers candidates' shows)`);
  return f;
}

function toCandidate(r: Row, pin: PinRecord | undefined, admitting: boolean): PeerCandidate {
  let addresses: string[] = [];
  try {
    const a = JSON.parse(r.addresses) as unknown;
    if (Array.isArray(a)) addresses = a.filter((x): x is string => typeof x === 'string');
  } catch {
    // a damaged row lists no address; the next sighting writes them again
  }
  return {
    fingerprint: r.fingerprint,
    nodeId: r.node_id,
    computer: r.computer,
    ...(pin?.cluster !== undefined ? { cluster: pin.cluster } : {}),
    ...(r.cluster !== null ? { announcedCluster: r.cluster } : {}),
    addresses,
    ...(pin?.address !== undefined ? { address: pin.address } : {}),
    via: r.via,
    state: r.state,
    ...(admitting ? { admitting: true } : {}),
    firstSeen: r.first_seen,
    lastSeen: r.last_seen,
  };
}
