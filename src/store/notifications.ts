import type { EventTypeEntry } from '../catalog/index.js';
import type { Envelope, Visibility } from '../envelope/index.js';
import { IllegalTransitionError, NotFoundError, ValidationError } from '../errors/index.js';
import type { Db, Store } from './store.js';
import type { Statement } from 'better-sqlite3';

export type HumanStatus = 'unseen' | 'seen';
export type AgentStatus = 'none' | 'claimed' | 'in_progress' | 'resolved';
export const HUMAN_STATUSES: readonly HumanStatus[] = ['unseen', 'seen'];
export const AGENT_STATUSES: readonly AgentStatus[] = ['none', 'claimed', 'in_progress', 'resolved'];

/** A notification: what humans see and agents claim and resolve. */
export interface Notification {
  id: number;
  eventId: string;
  eventType: string;
  level: number;
  domain: string;
  visibility: Visibility;
  entity: string | null;
  source: string;
  sourceComputer: string | null;
  description: string;
  payload: Record<string, unknown>;
  idempotencyKey: string | null;
  groupKey: string | null;
  actionable: boolean;
  humanStatus: HumanStatus;
  agentStatus: AgentStatus;
  agentId: string | null;
  resolution: Record<string, unknown> | null;
  createdAt: string;
  updatedAt: string;
  seenAt: string | null;
  claimedAt: string | null;
  resolvedAt: string | null;
}

/** What changed, published after the change commits. */
export interface NotificationChange {
  id: number;
  kind: 'created' | 'updated' | 'resolved' | 'seen' | 'claimed' | 'in_progress' | 'released';
  /** True when the change made the notification unseen again (or it is new). */
  meaningful: boolean;
}

/** The row a `created` change was inserted with (`createdBy`); a symbol, so JSON and listings of the change leave it out. */
const CREATED_ROW = Symbol('weft.createdRow');
interface CreatedChange extends NotificationChange {
  [CREATED_ROW]: Omit<NotificationRow, 'id'>;
}

export interface NotificationFilter {
  minLevel?: number;
  domain?: string;
  humanStatus?: HumanStatus;
  agentStatus?: AgentStatus;
  visibility?: Visibility;
  eventType?: string;
  /** ISO time: only notifications created at or after it. */
  since?: string;
  /** Cursor: only ids below this one (pages go newest first). */
  before?: number;
  limit?: number;
}

/** A `notifications` row as SQLite returns it (the recovery journal reads them too). */
export interface NotificationRow {
  id: number;
  event_id: string;
  event_type: string;
  level: number;
  domain: string;
  visibility: Visibility;
  entity: string | null;
  source: string;
  source_computer: string | null;
  description: string;
  payload: string;
  idempotency_key: string | null;
  group_key: string | null;
  actionable: number;
  human_status: HumanStatus;
  agent_status: AgentStatus;
  agent_id: string | null;
  resolution: string | null;
  created_at: string;
  updated_at: string;
  seen_at: string | null;
  claimed_at: string | null;
  resolved_at: string | null;
}

/**
 * The columns in table order. Reads take them as arrays (`raw`) and make the row with one
 * literal (`notificationRowOf`): better-sqlite3's keyed rows cost about 9 µs each for these 23
 * columns, arrays 4. A test checks the list against `SELECT *`.
 */
export const NOTIFICATION_COLUMNS: readonly (keyof NotificationRow)[] = [
  'id', 'event_id', 'event_type', 'level', 'domain', 'visibility', 'entity', 'source', 'source_computer', 'description', 'payload',
  'idempotency_key', 'group_key', 'actionable', 'human_status', 'agent_status', 'agent_id', 'resolution', 'created_at', 'updated_at',
  'seen_at', 'claimed_at', 'resolved_at',
];

/** The SELECT list of NOTIFICATION_COLUMNS, each prefixed by `table.` when given. */
export function notificationColumns(table?: string): string {
  return NOTIFICATION_COLUMNS.map((c) => (table ? `${table}.${c}` : c)).join(', ');
}

/** A raw row (NOTIFICATION_COLUMNS first, in order) as a NotificationRow. */
export function notificationRowOf(a: readonly unknown[]): NotificationRow {
  return {
    id: a[0] as number,
    event_id: a[1] as string,
    event_type: a[2] as string,
    level: a[3] as number,
    domain: a[4] as string,
    visibility: a[5] as Visibility,
    entity: a[6] as string | null,
    source: a[7] as string,
    source_computer: a[8] as string | null,
    description: a[9] as string,
    payload: a[10] as string,
    idempotency_key: a[11] as string | null,
    group_key: a[12] as string | null,
    actionable: a[13] as number,
    human_status: a[14] as HumanStatus,
    agent_status: a[15] as AgentStatus,
    agent_id: a[16] as string | null,
    resolution: a[17] as string | null,
    created_at: a[18] as string,
    updated_at: a[19] as string,
    seen_at: a[20] as string | null,
    claimed_at: a[21] as string | null,
    resolved_at: a[22] as string | null,
  };
}

/**
 * A row as the record the API, the hub and delivery send: one object literal (every list, push
 * and delivery runs it per row; the generic column renaming it replaced cost 3.1 µs a row
 * against 0.4).
 */
function toNotification(r: NotificationRow): Notification {
  return {
    id: r.id,
    eventId: r.event_id,
    eventType: r.event_type,
    level: r.level,
    domain: r.domain,
    visibility: r.visibility,
    entity: r.entity,
    source: r.source,
    sourceComputer: r.source_computer,
    description: r.description,
    payload: JSON.parse(r.payload) as Record<string, unknown>,
    idempotencyKey: r.idempotency_key,
    groupKey: r.group_key,
    actionable: r.actionable === 1,
    humanStatus: r.human_status,
    agentStatus: r.agent_status,
    agentId: r.agent_id,
    resolution: r.resolution === null ? null : (JSON.parse(r.resolution) as Record<string, unknown>),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    seenAt: r.seen_at,
    claimedAt: r.claimed_at,
    resolvedAt: r.resolved_at,
  };
}

/** The group a notification belongs to: domain, group field and its value. */
export function groupKeyOf(entry: EventTypeEntry, payload: Record<string, unknown>, domain: string = entry.domain): string | null {
  const field = entry.lifecycle?.groupKey;
  if (!field) return null;
  const v = payload[field];
  if (v === undefined || v === null) return null;
  // The event's own domain (its type's by default): one key in two domains is two groups.
  return `${domain}:${field}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`;
}

/**
 * Notification rows and their state machine.
 *   human: unseen → seen (a meaningful update makes it unseen again)
 *   agent: none → claimed → in_progress → resolved; resolved is final
 * Projection methods (`*FromEvent`) run inside the pipeline's batch transaction; the action
 * methods (`markSeen`, `claim`, ...) take the store's write lock themselves.
 */
export class NotificationStore {
  private readonly s;
  private readonly lists = new Map<string, Statement>();
  /** This node's computer as the recovery journal named it (recovery_state), read once per commit count. */
  private journalComputer: { at: number; value: string | undefined } | undefined;

  constructor(private readonly store: Store) {
    const db: Db = store.db;
    this.s = {
      insert: db.prepare(
        `INSERT OR IGNORE INTO notifications (event_id, event_type, level, domain, visibility, entity, source, source_computer,
          description, payload, idempotency_key, group_key, actionable, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      refreshByKey: db.prepare(
        'UPDATE notifications SET description = ?, payload = ?, event_id = ?, updated_at = ? WHERE idempotency_key = ?',
      ),
      idByKey: db.prepare('SELECT id FROM notifications WHERE idempotency_key = ?').pluck(),
      openByGroup: db.prepare(
        `SELECT id, payload FROM notifications WHERE group_key = ? AND agent_status != 'resolved' ORDER BY id DESC LIMIT 1`,
      ),
      update: db.prepare(
        `UPDATE notifications SET description = @description, payload = @payload, event_id = @eventId, updated_at = @now,
          human_status = CASE WHEN @meaningful = 1 THEN 'unseen' ELSE human_status END,
          seen_at = CASE WHEN @meaningful = 1 THEN NULL ELSE seen_at END
         WHERE id = @id`,
      ),
      resolve: db.prepare(
        `UPDATE notifications SET agent_status = 'resolved', resolution = ?, resolved_at = ?, updated_at = ? WHERE id = ?`,
      ),
      get: db.prepare('SELECT * FROM notifications WHERE id = ?'),
      getReader: store.reader.prepare(`SELECT ${notificationColumns()} FROM notifications WHERE id = ?`).raw(),
      getManyReader: store.reader.prepare(`SELECT ${notificationColumns()} FROM notifications WHERE id IN (SELECT value FROM json_each(?))`).raw(),
      setSeen: db.prepare(`UPDATE notifications SET human_status = 'seen', seen_at = ?, updated_at = ? WHERE id = ?`),
      setClaimed: db.prepare(
        `UPDATE notifications SET agent_status = 'claimed', agent_id = ?, claimed_at = ?, updated_at = ? WHERE id = ?`,
      ),
      setInProgress: db.prepare(
        `UPDATE notifications SET agent_status = 'in_progress', updated_at = ? WHERE id = ?`,
      ),
      setReleased: db.prepare(
        `UPDATE notifications SET agent_status = 'none', agent_id = NULL, claimed_at = NULL, updated_at = ? WHERE id = ?`,
      ),
      setResolved: db.prepare(
        `UPDATE notifications SET agent_status = 'resolved', agent_id = COALESCE(?, agent_id), resolution = ?, resolved_at = ?, updated_at = ? WHERE id = ?`,
      ),
      countAll: store.reader.prepare('SELECT COUNT(*) FROM notifications').pluck(),
      journalComputer: db.prepare("SELECT value FROM recovery_state WHERE key = 'computer'").pluck(),
      markJournal: db.prepare('INSERT INTO recovery_notes_dirty (id) VALUES (?) ON CONFLICT (id) DO UPDATE SET v = v + 1'),
    };
  }

  /**
   * Marks a new notification for the recovery journal (recovery/journal.ts) when it is this
   * node's own and shared: cluster or public, from no other computer than the one the journal
   * named (every computer's, until it named one). Inside the caller's transaction. Changes to
   * a row are marked by a trigger (recovery_notes_updated); a new row is marked here, which
   * costs a statement only for the rows marked (migration 19).
   */
  markNew(id: number, visibility: Visibility, sourceComputer: string | null): void {
    if (visibility !== 'cluster' && visibility !== 'public') return;
    if (sourceComputer !== null) {
      // The journal names the computer when it starts (a commit): read again after any commit.
      const at = this.store.commits;
      if (this.journalComputer?.at !== at) this.journalComputer = { at, value: this.s.journalComputer.get() as string | undefined };
      const own = this.journalComputer.value;
      if (own !== undefined && own !== sourceComputer) return;
    }
    this.s.markJournal.run(id);
  }

  // ---- projection (inside the pipeline transaction) ----

  /** Creates a notification for the event; with an existing idempotency key it refreshes that one. */
  createFromEvent(env: Envelope, entry: EventTypeEntry, now: string, idempotencyKey = env.idempotencyKey): NotificationChange {
    // The row's values, taken once: the insert writes them, and a push of the new notification
    // is made from them later (createdBy), whatever happens to the envelope meanwhile.
    const row: Omit<NotificationRow, 'id'> = {
      event_id: env.id,
      event_type: env.event,
      level: env.level,
      domain: env.domain,
      visibility: env.visibility,
      entity: env.entity ?? null,
      source: env.source,
      source_computer: env.sourceComputer ?? null,
      description: env.description,
      payload: JSON.stringify(env.payload),
      idempotency_key: idempotencyKey ?? null,
      group_key: groupKeyOf(entry, env.payload, env.domain),
      actionable: entry.actionable ? 1 : 0,
      // The columns' defaults (migrations.ts); a test compares the whole row with the one read back.
      human_status: 'unseen',
      agent_status: 'none',
      agent_id: null,
      resolution: null,
      created_at: now,
      updated_at: now,
      seen_at: null,
      claimed_at: null,
      resolved_at: null,
    };
    const r = this.s.insert.run(
      row.event_id,
      row.event_type,
      row.level,
      row.domain,
      row.visibility,
      row.entity,
      row.source,
      row.source_computer,
      row.description,
      row.payload,
      row.idempotency_key,
      row.group_key,
      row.actionable,
      row.created_at,
      row.updated_at,
    );
    if (r.changes === 1) {
      const id = Number(r.lastInsertRowid);
      this.markNew(id, row.visibility, row.source_computer);
      // What the new notification is, known from its insert: read only if someone pushes it. On
      // the change itself (a WeakMap entry and a closure cost 1-2 us an event, in the collector).
      const change: CreatedChange = { id, kind: 'created', meaningful: true, [CREATED_ROW]: row };
      return change;
    }
    this.s.refreshByKey.run(row.description, row.payload, row.event_id, now, row.idempotency_key);
    return { id: this.s.idByKey.get(row.idempotency_key) as number, kind: 'updated', meaningful: false };
  }

  /** The newest unresolved notification of a group. */
  findOpenByGroup(groupKey: string): { id: number; payload: Record<string, unknown> } | undefined {
    const r = this.s.openByGroup.get(groupKey) as { id: number; payload: string } | undefined;
    return r ? { id: r.id, payload: JSON.parse(r.payload) as Record<string, unknown> } : undefined;
  }

  /**
   * Merges the event's payload into the open notification. It becomes unseen again when a
   * meaningful field changed value (or, without declared meaningful fields, any non-silent one).
   */
  updateFromEvent(
    id: number,
    current: Record<string, unknown>,
    env: Envelope,
    entry: EventTypeEntry,
    now: string,
  ): NotificationChange {
    const lc = entry.lifecycle ?? {};
    const merged = { ...current, ...env.payload };
    const changed = Object.keys(env.payload).filter((k) => !sameJson(current[k], env.payload[k]));
    const meaningful =
      lc.meaningfulFields && lc.meaningfulFields.length > 0
        ? changed.some((k) => lc.meaningfulFields?.includes(k))
        : changed.some((k) => !(lc.silentFields ?? []).includes(k));
    this.s.update.run({
      id,
      description: env.description,
      payload: JSON.stringify(merged),
      eventId: env.id,
      now,
      meaningful: meaningful ? 1 : 0,
    });
    return { id, kind: 'updated', meaningful };
  }

  /** Resolves by event: the lifecycle says this event ends the group's notification. */
  resolveFromEvent(id: number, env: Envelope, now: string): NotificationChange {
    this.s.resolve.run(JSON.stringify(env.payload), now, now, id);
    return { id, kind: 'resolved', meaningful: true };
  }

  // ---- reads (committed data only) ----

  get(id: number): Notification {
    const r = this.s.getReader.get(id) as unknown[] | undefined;
    if (!r) throw new NotFoundError('notification', id);
    return toNotification(notificationRowOf(r));
  }

  /**
   * The notification as its `created` change made it (no read: the insert's own values), or
   * undefined for any other change. A push of a created notification needs nothing more; later
   * changes in the same batch come with changes of their own.
   */
  createdBy(change: NotificationChange): Notification | undefined {
    const row = (change as Partial<CreatedChange>)[CREATED_ROW];
    return row ? toNotification({ id: change.id, ...row }) : undefined;
  }

  /**
   * Committed notifications by id, one query for the lot (the WebSocket hub reads the
   * changed notifications of a batch that it cannot take from createdBy); ids not found are left out.
   */
  getMany(ids: readonly number[]): Map<number, Notification> {
    const out = new Map<number, Notification>();
    for (let i = 0; i < ids.length; i += 1000) {
      for (const a of this.s.getManyReader.all(JSON.stringify(ids.slice(i, i + 1000))) as unknown[][]) {
        const r = toNotification(notificationRowOf(a));
        out.set(r.id, r);
      }
    }
    return out;
  }

  count(): number {
    return this.s.countAll.get() as number;
  }

  /** Newest first; page with `before` = the last id of the previous page. */
  list(filter: NotificationFilter = {}): { items: Notification[]; nextCursor: number | null } {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.minLevel !== undefined) where.push('level >= ?') && params.push(filter.minLevel);
    if (filter.domain !== undefined) where.push('domain = ?') && params.push(filter.domain);
    if (filter.humanStatus !== undefined) where.push('human_status = ?') && params.push(filter.humanStatus);
    if (filter.agentStatus !== undefined) where.push('agent_status = ?') && params.push(filter.agentStatus);
    if (filter.visibility !== undefined) where.push('visibility = ?') && params.push(filter.visibility);
    if (filter.eventType !== undefined) where.push('event_type = ?') && params.push(filter.eventType);
    if (filter.since !== undefined) where.push('created_at >= ?') && params.push(utcSince(filter.since));
    if (filter.before !== undefined) where.push('id < ?') && params.push(filter.before);
    const limit = Math.min(Math.max(filter.limit ?? 50, 1), 1000);
    const sql = `SELECT ${notificationColumns()} FROM notifications ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    const rows = this.listStatement(sql).all(...params, limit + 1) as unknown[][];
    const more = rows.length > limit;
    const items = (more ? rows.slice(0, limit) : rows).map((a) => toNotification(notificationRowOf(a)));
    return { items, nextCursor: more ? (items[items.length - 1]?.id ?? null) : null };
  }

  /** A list query's statement, prepared once per filter combination (at most 2^8 of them). */
  private listStatement(sql: string): Statement {
    let st = this.lists.get(sql);
    if (!st) {
      st = this.store.reader.prepare(sql).raw();
      this.lists.set(sql, st);
    }
    return st;
  }

  // ---- actions (each its own transaction) ----

  /** unseen → seen; seeing a seen notification again is a no-op. */
  async markSeen(id: number): Promise<{ notification: Notification; change: NotificationChange | null }> {
    return this.act(id, (row, now) => {
      if (row.human_status === 'seen') return null;
      this.s.setSeen.run(now, now, id);
      return { id, kind: 'seen', meaningful: false };
    });
  }

  /** none → claimed by an agent. Claiming again by the same agent is a no-op; by another is refused. */
  async claim(id: number, agentId: string): Promise<{ notification: Notification; change: NotificationChange | null }> {
    if (!agentId) throw new ValidationError('claim: agentId is required', { field: 'agentId' });
    return this.act(id, (row, now) => {
      if (row.agent_status === 'none') {
        this.s.setClaimed.run(agentId, now, now, id);
        return { id, kind: 'claimed', meaningful: false };
      }
      if (row.agent_status === 'claimed' && row.agent_id === agentId) return null;
      throw illegal(row, `claim by '${agentId}'`);
    });
  }

  /** claimed → in_progress, by the agent holding the claim. */
  async setInProgress(id: number, agentId: string): Promise<{ notification: Notification; change: NotificationChange | null }> {
    return this.act(id, (row, now) => {
      if (row.agent_status === 'in_progress' && row.agent_id === agentId) return null;
      if (row.agent_status !== 'claimed') throw illegal(row, 'start (in_progress)');
      if (row.agent_id !== agentId) throw illegal(row, `start by '${agentId}' (claimed by '${row.agent_id}')`);
      this.s.setInProgress.run(now, id);
      return { id, kind: 'in_progress', meaningful: false };
    });
  }

  /**
   * claimed / in_progress → none: the claim is given back, and any agent may claim it again.
   * By the agent holding it, or by anyone with `force` (an agent that died holding it). A
   * notification nobody holds is left as it is; a resolved one cannot be released.
   */
  async release(id: number, opts: { agentId?: string; force?: boolean }): Promise<{ notification: Notification; change: NotificationChange | null }> {
    if (!opts.agentId && !opts.force) throw new ValidationError('release: agentId is required (or force)', { field: 'agentId' });
    return this.act(id, (row, now) => {
      if (row.agent_status === 'none') return null;
      if (row.agent_status === 'resolved') throw illegal(row, 'release');
      if (!opts.force && row.agent_id !== opts.agentId) {
        throw new IllegalTransitionError(
          `notification ${id} is ${row.agent_status} by '${row.agent_id}', not '${opts.agentId}': only the holder releases it (or release --force)`,
          { id, from: row.agent_status, action: 'release' },
        );
      }
      this.s.setReleased.run(now, id);
      return { id, kind: 'released', meaningful: false };
    });
  }

  /**
   * → resolved, with a resolution matching the type's resolutionShape when it has one.
   * From `none` only when the type does not require a claim; resolved is final.
   */
  async resolve(
    id: number,
    opts: { agentId?: string; resolution?: Record<string, unknown>; entry?: EventTypeEntry },
  ): Promise<{ notification: Notification; change: NotificationChange | null }> {
    const resolution = opts.resolution ?? {};
    return this.act(id, (row, now) => {
      checkResolvable(row, opts, resolution);
      this.s.setResolved.run(opts.agentId ?? null, JSON.stringify(resolution), now, now, id);
      return { id, kind: 'resolved', meaningful: true };
    });
  }

  /**
   * Throws what `resolve` would throw now (unknown, already resolved, wrong resolution shape,
   * not claimed, claimed by another agent), without writing: for a caller that must do what
   * the resolution stands for (install a cartridge) before it commits it.
   */
  assertResolvable(id: number, opts: { agentId?: string; resolution?: Record<string, unknown>; entry?: EventTypeEntry }): void {
    const r = this.s.getReader.get(id) as unknown[] | undefined;
    if (!r) throw new NotFoundError('notification', id);
    checkResolvable(notificationRowOf(r), opts, opts.resolution ?? {});
  }

  private async act(
    id: number,
    fn: (row: NotificationRow, now: string) => NotificationChange | null,
  ): Promise<{ notification: Notification; change: NotificationChange | null }> {
    const change = await this.store.write(() => {
      const row = this.s.get.get(id) as NotificationRow | undefined;
      if (!row) throw new NotFoundError('notification', id);
      return fn(row, this.store.nowIso());
    });
    return { notification: this.get(id), change };
  }
}

/**
 * `since` as the rows' own form (UTC, `…Z`), so the text comparison means what the time says:
 * `2026-12-07T12:00:00+02:00` is 10:00Z. A date alone, or a time without a zone, is UTC already.
 */
function utcSince(since: string): string {
  if (!/T.*([+-]\d{2}:\d{2}|Z)$/.test(since)) return since;
  const t = Date.parse(since);
  return Number.isNaN(t) ? since : new Date(t).toISOString();
}

function illegal(row: NotificationRow, action: string): IllegalTransitionError {
  return new IllegalTransitionError(`notification ${row.id} is ${row.agent_status}: cannot ${action}`, {
    id: row.id,
    from: row.agent_status,
    action,
  });
}

function checkResolvable(
  row: NotificationRow,
  opts: { agentId?: string; entry?: EventTypeEntry },
  resolution: Record<string, unknown>,
): void {
  // The state first: resolving a resolved notification is a conflict whatever the body says.
  if (row.agent_status === 'resolved') throw illegal(row, 'resolve');
  if (opts.entry?.resolutionShape) checkResolutionShape(opts.entry, resolution);
  if (row.agent_status === 'none' && opts.entry?.lifecycle?.requiresClaim) {
    throw new IllegalTransitionError(`notification ${row.id} (${row.event_type}) must be claimed before it is resolved`, {
      id: row.id,
      from: row.agent_status,
      action: 'resolve',
    });
  }
  // A claim is the holder's: nobody else resolves it, and no caller without a name does
  // (it would be recorded under the holder's name). `release --force` frees a stuck one.
  if (row.agent_status !== 'none' && row.agent_id && row.agent_id !== opts.agentId) {
    throw new IllegalTransitionError(
      `notification ${row.id} is ${row.agent_status} by '${row.agent_id}': only '${row.agent_id}' can resolve it${opts.agentId ? ` (not '${opts.agentId}')` : ' (resolve with --agent)'}, or release it first (release --force)`,
      { id: row.id, from: row.agent_status, action: 'resolve' },
    );
  }
}

function checkResolutionShape(entry: EventTypeEntry, resolution: Record<string, unknown>): void {
  for (const [field, kind] of Object.entries(entry.resolutionShape ?? {})) {
    const v = resolution[field];
    const actual = Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v;
    if (actual !== kind) {
      throw new ValidationError(
        `resolution for '${entry.type}': field '${field}' must be ${kind}${v === undefined ? ' (missing)' : `, got ${actual}`}`,
        { field: `resolution.${field}` },
      );
    }
  }
}

function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}
