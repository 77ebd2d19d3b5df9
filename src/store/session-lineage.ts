import type { Statement } from 'better-sqlite3';
import { NotFoundError, ValidationError } from '../errors/index.js';
import type { Store } from './store.js';

/** Bounds of the session index. */
export interface SessionLineageInit {
  /** Sessions the index holds at most (default 1,000,000); a new one past it is counted as refused, never indexed. */
  maxSessions?: number;
  /** Refused parent claims kept per session (default 16); more are only counted. */
  maxClaimsPerSession?: number;
  /** Ancestors a session may have when its parent is set (default 64); a deeper claim is refused as `depth`. */
  maxDepth?: number;
}

/** What one event says about its session, as the lineage stage hands it over. */
export interface SessionSighting {
  session: string;
  parentSession?: string;
  /** The event's time (ms). */
  at: number;
  eventId: string;
  /** The computer and node the event came from. */
  computer?: string;
  node?: string;
}

/**
 * The sighting an event with a `session` makes: where it ran is where the event comes from (the
 * origin computer and node stamped on it), else `here` (a local producer; a peer's ingress).
 * The lineage stage and a Phoenix restore (whose events skip the pipeline) index the same way.
 * @example
 * sightingOf(event, { computer: 'laptop', node: nodeId }, Date.now());
 */
export function sightingOf(
  event: { session: string; parentSession?: string; timestamp: string; id: string; sourceComputer?: string; origin?: string },
  here: { computer: string; node?: string },
  now: number,
): SessionSighting {
  const at = Date.parse(event.timestamp);
  const node = event.origin ?? here.node;
  return {
    session: event.session,
    ...(event.parentSession !== undefined ? { parentSession: event.parentSession } : {}),
    at: Number.isFinite(at) ? at : now,
    eventId: event.id,
    computer: event.sourceComputer ?? here.computer,
    ...(node !== undefined ? { node } : {}),
  };
}

/** Why a parent claim was not taken. */
export type RefusedClaimKind = 'conflict' | 'cycle' | 'depth';

/**
 * What the index did with a sighting: `parent` is `none` (no claim), `same` (the parent it
 * already had), `set` (the first claim, taken), a refused kind, or `full` (the index is full:
 * the session, or the parent it names, was not indexed).
 */
export interface SightingOutcome {
  indexed: boolean;
  parent: 'none' | 'same' | 'set' | RefusedClaimKind | 'full';
  /** True when this sighting added a refused claim the index had not recorded before. */
  newClaim?: boolean;
}

/** A parent claim the index refused. */
export interface RefusedClaim {
  parent: string;
  kind: RefusedClaimKind;
  /** Events that made this claim. */
  count: number;
  /** The first event that made it, and where it came from. */
  eventId: string;
  computer: string | null;
  node: string | null;
  firstAt: string;
  lastAt: string;
}

/** One session as the index knows it. */
export interface SessionRecord {
  session: string;
  parent: string | null;
  /** The computer and node of its first event here; null for a session known only as a parent. */
  computer: string | null;
  node: string | null;
  /** Its events that reached this node (0: known only as a parent). */
  events: number;
  /** Times of its first and last event here (event timestamps), or null. */
  firstSeen: string | null;
  lastSeen: string | null;
}

/** A session with its children, as a tree answer gives it. */
export interface SessionTreeNode extends SessionRecord {
  /** Refused parent claims (conflicting, cyclic, too deep), when there are any. */
  claims?: RefusedClaim[];
  children: SessionTreeNode[];
  /** Children not shown (past the depth or the size limit). */
  more?: number;
}

/** The tree that holds one session. */
export interface SessionTree {
  /** The session asked about. */
  focus: string;
  root: SessionTreeNode;
  /** Levels below the root (and below the focus) shown. */
  depth: number;
  /** Sessions in this answer. */
  sessions: number;
  /** Some sessions were left out (depth, size, or an ancestor chain longer than the index allows). */
  truncated: boolean;
}

/** Every tree, most recently active root first. */
export interface SessionForest {
  trees: SessionTreeNode[];
  /** Root sessions the index holds (trees shown or not). */
  roots: number;
  depth: number;
  sessions: number;
  truncated: boolean;
}

/** What the index holds and what it refused. */
export interface SessionIndexStats {
  sessions: number;
  /** Sightings not indexed because the index was full. */
  refused: number;
  /** Refused claims counted but not kept (past the per-session limit). */
  claimsDropped: number;
  /** Refused claims kept, by kind. */
  claims: Record<RefusedClaimKind, number>;
  maxSessions: number;
}

/** Limits of a tree answer. */
export interface TreeQuery {
  /** Levels below the root shown (default 16, at most 256). */
  depth?: number;
  /** Sessions in the answer at most (default 2,000, at most 10,000). */
  limit?: number;
  /** Forest: roots shown at most (default 100). */
  roots?: number;
}

interface Row {
  session: string;
  parent: string | null;
  first_seen: number | null;
  last_seen: number | null;
  computer: string | null;
  node: string | null;
  events: number;
}

interface ClaimRow {
  session: string;
  parent: string;
  kind: RefusedClaimKind;
  count: number;
  event_id: string;
  computer: string | null;
  node: string | null;
  first_at: number;
  last_at: number;
}

const COLUMNS = 'session, parent, first_seen, last_seen, computer, node, events';
/** Variables per IN list, well below SQLite's limit. */
const CHUNK = 500;
export const SESSION_TREE_LIMITS = { depth: 16, maxDepth: 256, limit: 2000, maxLimit: 10_000, roots: 100 } as const;

/**
 * The session lineage index (migration 12): one row per session with its parent, where its
 * first event came from, how many of its events reached this node and when. Written by the
 * `session-lineage` stage inside the pipeline's batch transaction, so a session is counted
 * exactly once per applied event, local or from a peer; read on the store's reader.
 *
 * A parent is set once: a later, different claim is kept as a `conflict`, never written over.
 * A claim that would close a loop (`cycle`) or give the session more than `maxDepth`
 * ancestors (`depth`) is refused and kept the same way. A parent not seen yet gets a row of
 * its own (0 events) so the tree shows it.
 * @example
 * const lineage = new SessionLineage(node.ns.store);
 * await node.ns.store.write(() => lineage.record({ session: 'b', parentSession: 'a', at: Date.now(), eventId: 'e1' }));
 * lineage.tree('b').root.session; // 'a'
 */
export class SessionLineage {
  readonly maxSessions: number;
  readonly maxClaimsPerSession: number;
  readonly maxDepth: number;
  private readonly getS: Statement;
  private readonly parentOfS: Statement;
  private readonly insertS: Statement;
  private readonly placeholderS: Statement;
  private readonly touchS: Statement;
  private readonly setParentS: Statement;
  private readonly heightS: Statement;
  private readonly raiseS: Statement;
  private readonly counterS: Statement;
  private readonly bumpS: Statement;
  private readonly claimGetS: Statement;
  private readonly claimCountS: Statement;
  private readonly claimInsertS: Statement;
  private readonly claimTouchS: Statement;
  private readonly reads = new Map<string, Statement>();

  constructor(
    private readonly store: Store,
    init: SessionLineageInit = {},
  ) {
    this.maxSessions = init.maxSessions ?? 1_000_000;
    this.maxClaimsPerSession = init.maxClaimsPerSession ?? 16;
    this.maxDepth = init.maxDepth ?? 64;
    const db = store.db;
    this.getS = db.prepare('SELECT parent, height FROM sessions WHERE session = ?');
    this.parentOfS = db.prepare('SELECT parent FROM sessions WHERE session = ?').pluck();
    this.insertS = db.prepare(
      'INSERT INTO sessions (session, first_seen, last_seen, computer, node, events, indexed_at) VALUES (?, ?, ?, ?, ?, 1, ?)',
    );
    this.placeholderS = db.prepare('INSERT OR IGNORE INTO sessions (session, events, indexed_at) VALUES (?, 0, ?)');
    // A session known only as a parent takes the computer and node of its first own event.
    this.touchS = db.prepare(
      `UPDATE sessions SET events = events + 1,
         first_seen = min(coalesce(first_seen, @at), @at), last_seen = max(coalesce(last_seen, @at), @at),
         computer = coalesce(computer, @computer), node = coalesce(node, @node)
       WHERE session = @session`,
    );
    this.setParentS = db.prepare('UPDATE sessions SET parent = ?, parent_event = ? WHERE session = ? AND parent IS NULL');
    this.heightS = db.prepare('SELECT parent, height FROM sessions WHERE session = ?');
    this.raiseS = db.prepare('UPDATE sessions SET height = ? WHERE session = ?');
    this.counterS = db.prepare('SELECT value FROM session_counters WHERE key = ?').pluck();
    this.bumpS = db.prepare('UPDATE session_counters SET value = value + 1 WHERE key = ?');
    this.claimGetS = db.prepare('SELECT 1 FROM session_claims WHERE session = ? AND parent = ? AND kind = ?').pluck();
    this.claimCountS = db.prepare('SELECT COUNT(*) FROM session_claims WHERE session = ?').pluck();
    this.claimInsertS = db.prepare(
      'INSERT INTO session_claims (session, parent, kind, count, event_id, computer, node, first_at, last_at) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?)',
    );
    this.claimTouchS = db.prepare(
      'UPDATE session_claims SET count = count + 1, last_at = max(last_at, ?) WHERE session = ? AND parent = ? AND kind = ?',
    );
  }

  /**
   * Indexes one event's session and parent claim. Must run inside a write transaction (the
   * pipeline's batch): it commits or rolls back with the event.
   */
  record(s: SessionSighting): SightingOutcome {
    const existing = this.getS.get(s.session) as { parent: string | null; height: number } | undefined;
    if (existing) {
      this.touchS.run({ at: s.at, computer: s.computer ?? null, node: s.node ?? null, session: s.session });
    } else {
      if (!this.hasRoom()) return this.refuseFull();
      this.insertS.run(s.session, s.at, s.at, s.computer ?? null, s.node ?? null, this.store.clock.now());
    }
    const claimed = s.parentSession;
    if (claimed === undefined) return { indexed: true, parent: 'none' };
    const current = existing?.parent ?? null;
    if (current === claimed) return { indexed: true, parent: 'same' };
    if (current !== null) return { indexed: true, parent: 'conflict', newClaim: this.refuseClaim(s, claimed, 'conflict') };
    const height = existing?.height ?? 0;
    const problem = this.chainProblem(s.session, claimed, height);
    if (problem) return { indexed: true, parent: problem, newClaim: this.refuseClaim(s, claimed, problem) };
    if (this.getS.get(claimed) === undefined) {
      if (!this.hasRoom()) return { ...this.refuseFull(), indexed: true };
      this.placeholderS.run(claimed, this.store.clock.now());
    }
    this.setParentS.run(claimed, s.eventId, s.session);
    this.raiseHeights(claimed, height + 1);
    return { indexed: true, parent: 'set' };
  }

  /**
   * After a link: `parent` and its ancestors are at least `height`, `height + 1`, … high. Stops
   * at the first one already that high (those above it are higher still): at most `maxDepth`
   * updates.
   */
  private raiseHeights(parent: string, height: number): void {
    let cur: string | null = parent;
    for (let h = height, steps = 0; cur !== null && steps <= this.maxDepth; h++, steps++) {
      const row = this.heightS.get(cur) as { parent: string | null; height: number } | undefined;
      if (!row || row.height >= h) return;
      this.raiseS.run(h, cur);
      cur = row.parent;
    }
  }

  /**
   * `cycle` when `session` is `parent` or one of its ancestors, `depth` when `session`, or the
   * deepest of the sessions below it (`height` levels), would have more than `maxDepth`
   * ancestors; undefined when the link may be made. At most `maxDepth` lookups, each by
   * primary key.
   */
  private chainProblem(session: string, parent: string, height: number): RefusedClaimKind | undefined {
    if (parent === session) return 'cycle';
    let cur: string | null | undefined = parent;
    for (let ancestors = 1; ; ancestors++) {
      if (ancestors > this.maxDepth) return 'depth';
      cur = this.parentOfS.get(cur) as string | null | undefined;
      if (cur === null || cur === undefined) return ancestors + height > this.maxDepth ? 'depth' : undefined;
      if (cur === session) return 'cycle';
    }
  }

  private hasRoom(): boolean {
    return (this.counterS.get('sessions') as number) < this.maxSessions;
  }

  private refuseFull(): SightingOutcome {
    this.bumpS.run('refused');
    return { indexed: false, parent: 'full' };
  }

  /** Keeps (or counts) a refused claim; true when it is new. */
  private refuseClaim(s: SessionSighting, parent: string, kind: RefusedClaimKind): boolean {
    if (this.claimGetS.get(s.session, parent, kind) !== undefined) {
      this.claimTouchS.run(s.at, s.session, parent, kind);
      return false;
    }
    if ((this.claimCountS.get(s.session) as number) >= this.maxClaimsPerSession) {
      this.bumpS.run('claims_dropped');
      return false;
    }
    this.claimInsertS.run(s.session, parent, kind, s.eventId, s.computer ?? null, s.node ?? null, s.at, s.at);
    return true;
  }

  // --- reads (committed data, on the reader connection) ---

  /** A cached statement on the reader; `cache: false` for SQL that varies (IN lists of any length). */
  private read(sql: string, cache = true): Statement {
    if (!cache) return this.store.reader.prepare(sql);
    let st = this.reads.get(sql);
    if (!st) {
      st = this.store.reader.prepare(sql);
      this.reads.set(sql, st);
    }
    return st;
  }

  /** One session, or NotFoundError. */
  get(session: string): SessionRecord {
    const row = this.read(`SELECT ${COLUMNS} FROM sessions WHERE session = ?`).get(session) as Row | undefined;
    if (!row) throw new NotFoundError('session', session);
    return toRecord(row);
  }

  /** Sessions, most recently active first (sessions known only as parents last). */
  list(q: { limit?: number; offset?: number; computer?: string } = {}): { items: SessionRecord[]; nextOffset: number | null } {
    const limit = Math.min(Math.max(q.limit ?? 50, 1), 1000);
    const offset = Math.max(q.offset ?? 0, 0);
    const rows = (
      q.computer !== undefined
        ? this.read(`SELECT ${COLUMNS} FROM sessions WHERE computer = ? ORDER BY last_seen IS NULL, last_seen DESC, session LIMIT ? OFFSET ?`).all(q.computer, limit + 1, offset)
        : this.read(`SELECT ${COLUMNS} FROM sessions ORDER BY last_seen IS NULL, last_seen DESC, session LIMIT ? OFFSET ?`).all(limit + 1, offset)
    ) as Row[];
    const more = rows.length > limit;
    return { items: rows.slice(0, limit).map(toRecord), nextOffset: more ? offset + limit : null };
  }

  /** Refused parent claims of a session, oldest first. */
  claims(session: string): RefusedClaim[] {
    const rows = this.read('SELECT * FROM session_claims WHERE session = ? ORDER BY first_at, parent').all(session) as ClaimRow[];
    return rows.map(toClaim);
  }

  stats(): SessionIndexStats {
    const counters = Object.fromEntries(
      (this.read('SELECT key, value FROM session_counters').all() as Array<{ key: string; value: number }>).map((r) => [r.key, r.value]),
    );
    const claims: Record<RefusedClaimKind, number> = { conflict: 0, cycle: 0, depth: 0 };
    for (const r of this.read('SELECT kind, COUNT(*) AS n FROM session_claims GROUP BY kind').all() as Array<{ kind: RefusedClaimKind; n: number }>) claims[r.kind] = r.n;
    return {
      sessions: counters.sessions ?? 0,
      refused: counters.refused ?? 0,
      claimsDropped: counters.claims_dropped ?? 0,
      claims,
      maxSessions: this.maxSessions,
    };
  }

  /**
   * The tree that holds `session`: its root (the top of its ancestor chain) and the root's
   * descendants, `depth` levels deep; the path from the root to the session is always shown,
   * and so are `depth` levels below the session itself.
   */
  tree(session: string, q: TreeQuery = {}): SessionTree {
    const { depth, limit } = treeLimits(q);
    const focus = this.read(`SELECT ${COLUMNS} FROM sessions WHERE session = ?`).get(session) as Row | undefined;
    if (!focus) throw new NotFoundError('session', session);
    // Up: bounded, and safe even if a loop were ever stored.
    const path: Row[] = [focus];
    const onPath = new Set([focus.session]);
    let truncated = false;
    for (let cur = focus; cur.parent !== null; ) {
      if (path.length > SESSION_TREE_LIMITS.maxDepth || onPath.has(cur.parent)) {
        truncated = true;
        break;
      }
      const up = this.read(`SELECT ${COLUMNS} FROM sessions WHERE session = ?`).get(cur.parent) as Row | undefined;
      if (!up) break;
      path.push(up);
      onPath.add(up.session);
      cur = up;
    }
    const root = path[path.length - 1] as Row;
    const rows = new Map<string, Row>(path.map((r) => [r.session, r]));
    const cut = { value: truncated };
    this.descend([root.session], depth, limit, rows, cut);
    if (focus.session !== root.session) this.descend([focus.session], depth, limit, rows, cut);
    const built = this.assemble([root.session], rows);
    return { focus: session, root: built.trees[0] as SessionTreeNode, depth, sessions: rows.size, truncated: cut.value || built.more };
  }

  /** Every tree: roots most recently active first, each `depth` levels deep, `limit` sessions in all. */
  forest(q: TreeQuery = {}): SessionForest {
    const { depth, limit } = treeLimits(q);
    const maxRoots = Math.min(Math.max(q.roots ?? SESSION_TREE_LIMITS.roots, 1), limit);
    const total = this.read('SELECT COUNT(*) FROM sessions WHERE parent IS NULL').pluck().get() as number;
    const roots = this.read(`SELECT ${COLUMNS} FROM sessions WHERE parent IS NULL ORDER BY last_seen IS NULL, last_seen DESC, session LIMIT ?`).all(maxRoots) as Row[];
    const rows = new Map<string, Row>(roots.map((r) => [r.session, r]));
    const cut = { value: total > roots.length };
    this.descend(
      roots.map((r) => r.session),
      depth,
      limit,
      rows,
      cut,
    );
    const built = this.assemble(
      roots.map((r) => r.session),
      rows,
    );
    return { trees: built.trees, roots: total, depth, sessions: rows.size, truncated: cut.value || built.more };
  }

  /** Adds the descendants of `from`, level by level, to `rows`, until `depth` levels or `limit` rows. */
  private descend(from: string[], depth: number, limit: number, rows: Map<string, Row>, cut: { value: boolean }): void {
    let level = from;
    // Sessions already collected (the path to the focus) are expanded here all the same.
    const expanded = new Set(from);
    for (let d = 0; d < depth && level.length > 0; d++) {
      const next: string[] = [];
      for (let i = 0; i < level.length; i += CHUNK) {
        const part = level.slice(i, i + CHUNK);
        // Iterated, not loaded: a session with a million children costs the rows shown, not a
        // million objects (and seconds of the node's one thread).
        const found = this.read(`SELECT ${COLUMNS} FROM sessions WHERE parent IN (${part.map(() => '?').join(',')}) ORDER BY first_seen IS NULL, first_seen, session`, false).iterate(...part) as IterableIterator<Row>;
        for (const r of found) {
          if (expanded.has(r.session)) continue;
          expanded.add(r.session);
          if (rows.has(r.session)) {
            next.push(r.session);
            continue;
          }
          if (rows.size >= limit) {
            cut.value = true;
            return;
          }
          rows.set(r.session, r);
          next.push(r.session);
        }
      }
      level = next;
    }
  }

  /** Builds the nested answer from the collected rows, with each node's claims and its children left out. */
  private assemble(roots: string[], rows: Map<string, Row>): { trees: SessionTreeNode[]; more: boolean } {
    const nodes = new Map<string, SessionTreeNode>();
    for (const r of rows.values()) nodes.set(r.session, { ...toRecord(r), children: [] });
    const ids = [...rows.keys()];
    // Children each session has in the index, to say how many were not shown.
    const childCount = new Map<string, number>();
    const claimsOf = new Map<string, RefusedClaim[]>();
    for (let i = 0; i < ids.length; i += CHUNK) {
      const part = ids.slice(i, i + CHUNK);
      const marks = part.map(() => '?').join(',');
      for (const c of this.read(`SELECT parent, COUNT(*) AS n FROM sessions WHERE parent IN (${marks}) GROUP BY parent`, false).all(...part) as Array<{ parent: string; n: number }>) {
        childCount.set(c.parent, c.n);
      }
      for (const c of this.read(`SELECT * FROM session_claims WHERE session IN (${marks}) ORDER BY first_at, parent`, false).all(...part) as ClaimRow[]) {
        const list = claimsOf.get(c.session) ?? [];
        list.push(toClaim(c));
        claimsOf.set(c.session, list);
      }
    }
    const rootSet = new Set(roots);
    for (const r of rows.values()) {
      const n = nodes.get(r.session) as SessionTreeNode;
      const claims = claimsOf.get(r.session);
      if (claims) n.claims = claims;
      if (rootSet.has(r.session) || r.parent === null) continue;
      nodes.get(r.parent)?.children.push(n);
    }
    let more = false;
    for (const n of nodes.values()) {
      // Oldest first, by the events' own times: every node that holds the same events answers alike.
      n.children.sort(byFirstSeen);
      const missing = (childCount.get(n.session) ?? 0) - n.children.length;
      if (missing > 0) {
        n.more = missing;
        more = true;
      }
    }
    return { trees: roots.map((id) => nodes.get(id)).filter((n): n is SessionTreeNode => n !== undefined), more };
  }
}

function treeLimits(q: TreeQuery): { depth: number; limit: number } {
  const depth = q.depth ?? SESSION_TREE_LIMITS.depth;
  const limit = q.limit ?? SESSION_TREE_LIMITS.limit;
  if (!Number.isInteger(depth) || depth < 0 || depth > SESSION_TREE_LIMITS.maxDepth) {
    throw new ValidationError(`depth must be a whole number from 0 to ${SESSION_TREE_LIMITS.maxDepth} (got ${depth})`, { field: 'depth' });
  }
  if (!Number.isInteger(limit) || limit < 1 || limit > SESSION_TREE_LIMITS.maxLimit) {
    throw new ValidationError(`limit must be a whole number from 1 to ${SESSION_TREE_LIMITS.maxLimit} (got ${limit})`, { field: 'limit' });
  }
  return { depth, limit };
}

function byFirstSeen(a: SessionRecord, b: SessionRecord): number {
  if (a.firstSeen !== b.firstSeen) {
    if (a.firstSeen === null) return 1;
    if (b.firstSeen === null) return -1;
    return a.firstSeen < b.firstSeen ? -1 : 1;
  }
  return a.session < b.session ? -1 : a.session > b.session ? 1 : 0;
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

function toRecord(r: Row): SessionRecord {
  return {
    session: r.session,
    parent: r.parent,
    computer: r.computer,
    node: r.node,
    events: r.events,
    firstSeen: iso(r.first_seen),
    lastSeen: iso(r.last_seen),
  };
}

function toClaim(c: ClaimRow): RefusedClaim {
  return {
    parent: c.parent,
    kind: c.kind,
    count: c.count,
    eventId: c.event_id,
    computer: c.computer,
    node: c.node,
    firstAt: new Date(c.first_at).toISOString(),
    lastAt: new Date(c.last_at).toISOString(),
  };
}
