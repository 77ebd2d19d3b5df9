/**
 * What a restore needs besides the events: the notifications' states and the cartridges.
 *
 * Notification journal: a trigger (migration 13) marks every cluster or public notification
 * that is created or changes (seen, claimed, resolved, updated by an event); the journal turns
 * this node's own marked rows into `mesh.recovery.notifications` events (cluster visibility: they
 * reach the same peers as the events they are about), one entry per row with its whole state.
 * Fields an entry's event already says (type, level, payload, ...) are left out and read back
 * from the event at restore, and so is the state every new notification has (unseen, no agent,
 * not actionable, not updated since created). A mark goes only once the row is still as journaled, so a change
 * racing the journal is journaled next time; a crash journals a row twice at worst (the
 * restore keeps the last entry of each notification).
 *
 * Cartridge journal: each installed cartridge's package goes out once per source digest as
 * `mesh.recovery.cartridge` (in parts of 48 KiB of base64 when large); the beacon lists the
 * cartridges with their digests and statuses, signed, so a restore installs exactly those.
 */
import { performance } from 'node:perf_hooks';
import { RECOVERY_EVENTS } from '../catalog/index.js';
import type { EmitInput, Envelope } from '../envelope/index.js';
import { NOTIFICATION_COLUMNS, type NotificationRow, notificationColumns, notificationRowOf, type Store } from '../store/index.js';
import { type Logger, Pacer } from '../util/index.js';
import type { BeaconCartridge } from './beacon.js';

/** A notifications row (the store's own shape). */
export type NoteRow = NotificationRow;

/** A journal entry: a notification's whole state, short keys, event-derived fields only when they differ from its event's. */
export type NoteEntry = Record<string, unknown> & { n: number; e: string };

/** Entry key → [row column, the envelope's value]. */
const FROM_EVENT: Array<[string, keyof NoteRow, (e: Envelope) => unknown]> = [
  ['t', 'event_type', (e) => e.event],
  ['l', 'level', (e) => e.level],
  ['d', 'domain', (e) => e.domain],
  ['v', 'visibility', (e) => e.visibility],
  ['en', 'entity', (e) => e.entity ?? null],
  ['s', 'source', (e) => e.source],
  ['sc', 'source_computer', (e) => e.sourceComputer ?? null],
  ['de', 'description', (e) => e.description],
  ['k', 'idempotency_key', (e) => e.idempotencyKey ?? null],
];

/** Entry key → row column, for the state itself. */
const STATE: Array<[string, keyof NoteRow]> = [
  ['g', 'group_key'],
  ['ac', 'actionable'],
  ['hs', 'human_status'],
  ['as', 'agent_status'],
  ['ai', 'agent_id'],
  ['ca', 'created_at'],
  ['ua', 'updated_at'],
  ['sa', 'seen_at'],
  ['cla', 'claimed_at'],
  ['ra', 'resolved_at'],
];

/**
 * State a new notification has, left out of its entry: a fresh row's entry is its id, event
 * and creation time (about 75 bytes instead of 140). Entries written before keep them; both
 * restore alike. `updated_at` equal to `created_at` is left out as well.
 */
const STATE_DEFAULTS: Partial<Record<keyof NoteRow, unknown>> = { actionable: 0, human_status: 'unseen', agent_status: 'none' };

/**
 * The journal entry of a row; `event` is its event when this node originated it (its fields
 * are then left out where equal); `was` the id it had before a restore gave it another.
 */
export function noteEntry(row: NoteRow, event: Envelope | undefined, was?: number): NoteEntry {
  const out: NoteEntry = { n: row.id, e: row.event_id };
  if (was !== undefined) out.w = was;
  for (const [k, col] of STATE) {
    const v = row[col];
    if (v === null || v === undefined || v === STATE_DEFAULTS[col]) continue;
    if (col === 'updated_at' && v === row.created_at) continue;
    out[k] = v;
  }
  if (row.resolution !== null) out.r = JSON.parse(row.resolution) as unknown;
  for (const [k, col, of] of FROM_EVENT) {
    if (!event || of(event) !== row[col]) out[k] = row[col];
  }
  if (!event || JSON.stringify(event.payload) !== row.payload) out.p = JSON.parse(row.payload) as unknown;
  return out;
}

/**
 * The row an entry stands for, with the fields left out read from its event (undefined when
 * one is needed and the event is not there).
 */
export function rowOfEntry(x: NoteEntry, event: Envelope | undefined): Omit<NoteRow, 'id'> | undefined {
  const row: Record<string, unknown> = { event_id: x.e };
  for (const [k, col, of] of FROM_EVENT) {
    if (k in x) row[col] = x[k];
    else if (event) row[col] = of(event);
    else return undefined;
  }
  if ('p' in x) row.payload = JSON.stringify(x.p);
  else if (event) row.payload = JSON.stringify(event.payload);
  else return undefined;
  for (const [k, col] of STATE) row[col] = k in x ? x[k] : (STATE_DEFAULTS[col] ?? null);
  if (!('ua' in x)) row.updated_at = row.created_at;
  row.resolution = 'r' in x ? JSON.stringify(x.r) : null;
  if (typeof row.human_status !== 'string' || typeof row.agent_status !== 'string' || typeof row.created_at !== 'string' || typeof row.updated_at !== 'string') return undefined;
  return row as Omit<NoteRow, 'id'>;
}

export interface NotificationJournalDeps {
  store: Store;
  /** This database's id: entries name it, so a restore tells the old rows from the new. */
  db: () => string;
  self: () => { computer: string; nodeId: string };
  emitMany(inputs: readonly EmitInput[]): Promise<unknown>;
  logger: Logger;
  /** Paces the passes so they give way to the node's traffic (one made from the store's commits when not given). */
  pacer?: Pacer;
}

/**
 * Bytes of entries one journal event carries at most. Small, so that no journal event holds
 * either node's loop for long: each crosses the origin's pipeline, a frame and the peer's
 * pipeline at once. Eight alternating compare runs over TLS at 1,000 events/s, p99: 20–23 ms
 * with 8 KiB against 18–59 ms (median 31) with 48 KiB (docs/performance.md).
 */
export const JOURNAL_EVENT_BYTES = 8 * 1024;
/** Entry bytes gathered before they are emitted (a few full events at once). */
const FLUSH_BYTES = 4 * JOURNAL_EVENT_BYTES;
/** Marks gathered at most before they are cleared. */
const FLUSH_MARKS = 5000;
const SOURCE = 'weft.recovery';

export class NotificationJournal {
  private readonly s;
  private flushing: Promise<number> | undefined;
  private readonly pacer: Pacer;

  constructor(private readonly deps: NotificationJournalDeps) {
    this.pacer = deps.pacer ?? new Pacer(() => deps.store.commits);
    const rd = deps.store.reader;
    const db = deps.store.db;
    this.s = {
      pending: rd.prepare('SELECT COUNT(*) FROM recovery_notes_dirty').pluck(),
      // Stepped row by row (a slice stops when its time is up: nothing is read that it does not
      // use), as arrays: the row's columns, its mark, the id it had before a restore moved it,
      // and its event's body only for this node's own rows (another's are only cleared).
      take: rd
        .prepare(
          `SELECT ${notificationColumns('n')}, d.v, (SELECT m.orig_id FROM recovery_notes_moved m WHERE m.id = n.id AND m.orig_id != m.id LIMIT 1),
             CASE WHEN n.source_computer IS NULL OR n.source_computer = @self THEN e.body END
           FROM recovery_notes_dirty d JOIN notifications n ON n.id = d.id LEFT JOIN events e ON e.id = n.event_id WHERE d.id > @after ORDER BY d.id`,
        )
        .raw(),
      orphans: db.prepare('DELETE FROM recovery_notes_dirty WHERE id NOT IN (SELECT id FROM notifications)'),
      clear: db.prepare('DELETE FROM recovery_notes_dirty WHERE id = ? AND v = ?'),
      count: db.prepare("SELECT value FROM recovery_state WHERE key = 'journaled'").pluck(),
      computer: db.prepare("SELECT value FROM recovery_state WHERE key = 'computer'").pluck(),
      setComputer: db.prepare("INSERT INTO recovery_state (key, value) VALUES ('computer', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
      setCount: db.prepare("INSERT INTO recovery_state (key, value) VALUES ('journaled', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
    };
  }

  /** Names this node's computer to the store, so only its own notifications are marked (migration 18). */
  async ownComputer(computer: string): Promise<void> {
    if ((this.s.computer.get() as string | undefined) !== computer) await this.deps.store.write(() => this.s.setComputer.run(computer));
  }

  /** Notifications whose state is not journaled yet. */
  pending(): number {
    return this.s.pending.get() as number;
  }

  /** Entries journaled so far by this database. */
  journaled(): number {
    return Number((this.s.count.get() as string | undefined) ?? '0');
  }

  /** Journals every marked row; concurrent callers share one run. Resolves to the entries emitted. */
  flush(): Promise<number> {
    this.flushing ??= this.run().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private isOwn(row: NoteRow): boolean {
    return row.source_computer === null || row.source_computer === this.deps.self().computer;
  }

  /** The row's event (its stored body, this node's own log) when this node originated it: its fields then need not be journaled. */
  private ownEvent(body: string | null): Envelope | undefined {
    if (body === null) return undefined;
    let e: Envelope;
    try {
      e = JSON.parse(body) as Envelope;
    } catch {
      return undefined;
    }
    if (e.origin !== this.deps.self().nodeId || (e.hops ?? 0) > 0) return undefined;
    return e;
  }

  private async run(): Promise<number> {
    const { store } = this.deps;
    let total = 0;
    let after = 0;
    // Clearing marks rides in the next transaction anyone opens: lost in a crash, a row is
    // journaled twice at worst (the restore keeps the last entry of each notification).
    let cleared = store.writeSoon(() => this.s.orphans.run());
    // Entries gathered over slices, emitted a few full events at a time (each event costs the
    // whole emit path and goes to every peer: fewer, fuller ones).
    let entries: Array<{ entry: NoteEntry; json: string }> = [];
    let marks: Array<[number, number]> = [];
    let bytes = 0;
    for (;;) {
      if (store.isClosed) return total;
      const slice = await this.pacer.slice((until) => this.take(after, until));
      if (slice) {
        after = slice.after;
        entries.push(...slice.entries);
        marks.push(...slice.marks);
        for (const x of slice.entries) bytes += x.json.length + 1;
        // Emitted when a few events' worth is gathered, or when many marks are (rows of
        // another computer, marked before migration 18, only need clearing).
        if (bytes < FLUSH_BYTES && marks.length < FLUSH_MARKS) continue;
      }
      if (entries.length > 0) {
        const t0 = performance.now();
        await this.deps.emitMany(this.events(entries));
        // The events' way through the pipeline and to the peers is the journal's cost too.
        this.pacer.charge(performance.now() - t0);
      }
      // A mark goes only if the row did not change since it was read (its count moved
      // otherwise): a change since is journaled next pass.
      const done = { marks, n: entries.length };
      if (marks.length > 0) {
        cleared = store.writeSoon(() => {
          for (const [id, v] of done.marks) this.s.clear.run(id, v);
          this.s.setCount.run(String(this.journaled() + done.n));
        });
      }
      total += done.n;
      entries = [];
      marks = [];
      bytes = 0;
      if (!slice) {
        await cleared;
        return total;
      }
    }
  }

  /** The next marked rows after `after`, until `until` (performance.now() time); undefined when none is left. */
  private take(after: number, until: number): { after: number; entries: Array<{ entry: NoteEntry; json: string }>; marks: Array<[number, number]> } | undefined {
    const entries: Array<{ entry: NoteEntry; json: string }> = [];
    const marks: Array<[number, number]> = [];
    let last = after;
    const at = NOTIFICATION_COLUMNS.length;
    for (const a of this.s.take.iterate({ self: this.deps.self().computer, after }) as IterableIterator<unknown[]>) {
      const row = notificationRowOf(a);
      last = row.id;
      marks.push([row.id, a[at] as number]);
      if (this.isOwn(row)) {
        const entry = noteEntry(row, this.ownEvent(a[at + 2] as string | null), (a[at + 1] as number | null) ?? undefined);
        entries.push({ entry, json: JSON.stringify(entry) });
      }
      // Leaving the loop ends the statement (the iterator's return).
      if (performance.now() >= until) break;
    }
    return marks.length > 0 ? { after: last, entries, marks } : undefined;
  }

  /** Entries as journal events of at most JOURNAL_EVENT_BYTES (and 1,000 entries) each. */
  private events(entries: ReadonlyArray<{ entry: NoteEntry; json: string }>): EmitInput[] {
    const inputs: EmitInput[] = [];
    let batch: NoteEntry[] = [];
    let bytes = 0;
    for (const x of entries) {
      if (batch.length > 0 && (bytes + x.json.length + 1 > JOURNAL_EVENT_BYTES || batch.length >= 1000)) {
        inputs.push({ event: RECOVERY_EVENTS.notifications, source: SOURCE, payload: { db: this.deps.db(), entries: batch } });
        batch = [];
        bytes = 0;
      }
      batch.push(x.entry);
      bytes += x.json.length + 1;
    }
    if (batch.length > 0) inputs.push({ event: RECOVERY_EVENTS.notifications, source: SOURCE, payload: { db: this.deps.db(), entries: batch } });
    return inputs;
  }
}

/** What the cartridge journal reads: the registry of installed cartridges. */
export interface CartridgeSource {
  list(): Array<{ name: string; version: string; status: string; sha256: string }>;
  readPackage(name: string): Promise<{ manifest: unknown; source: string }>;
}

/** Base64 characters per part of a journaled package. */
const PART = 48 * 1024;

export class CartridgeJournal {
  private readonly s;
  private flushing: Promise<number> | undefined;

  constructor(
    private readonly deps: { store: Store; source: CartridgeSource | undefined; emitMany(inputs: readonly EmitInput[]): Promise<unknown>; now: () => number; logger: Logger },
  ) {
    this.s = {
      sent: deps.store.reader.prepare('SELECT 1 FROM recovery_cartridges_sent WHERE name = ? AND sha256 = ?').pluck(),
      mark: deps.store.db.prepare('INSERT OR IGNORE INTO recovery_cartridges_sent (name, sha256, at) VALUES (?, ?, ?)'),
    };
  }

  /** Installed cartridges (not rejected) as a beacon lists them. */
  list(): BeaconCartridge[] {
    if (!this.deps.source) return [];
    return this.deps.source
      .list()
      .filter((c) => c.status !== 'rejected')
      .slice(0, 256)
      .map((c) => ({ name: c.name, version: c.version, status: c.status, sha256: c.sha256 }));
  }

  /** Journals the packages not journaled yet; resolves to how many. */
  flush(): Promise<number> {
    this.flushing ??= this.run().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async run(): Promise<number> {
    let n = 0;
    for (const c of this.list()) {
      if (this.s.sent.get(c.name, c.sha256) !== undefined) continue;
      let pkg: { manifest: unknown; source: string };
      try {
        pkg = await (this.deps.source as CartridgeSource).readPackage(c.name);
      } catch (err) {
        this.deps.logger.warn({ cartridge: c.name, err: (err as Error).message }, 'cartridge not journaled for recovery');
        continue;
      }
      const code = Buffer.from(pkg.source, 'utf8').toString('base64');
      const parts = Math.max(1, Math.ceil(code.length / PART));
      const inputs: EmitInput[] = [];
      for (let i = 0; i < parts; i++) {
        inputs.push({
          event: RECOVERY_EVENTS.cartridge,
          source: SOURCE,
          payload: { name: c.name, version: c.version, status: c.status, sha256: c.sha256, part: i, parts, ...(i === 0 ? { manifest: pkg.manifest as Record<string, unknown> } : {}), code: code.slice(i * PART, (i + 1) * PART) },
        });
      }
      await this.deps.emitMany(inputs);
      await this.deps.store.write(() => this.s.mark.run(c.name, c.sha256, this.deps.now()));
      n++;
    }
    return n;
  }
}
