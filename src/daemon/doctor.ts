import { existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ensureAuditSchema } from '../audit/index.js';
import { readDaemonInfo } from '../config/index.js';
import { isWeftError } from '../errors/index.js';
import { ensureReplayGuardSchema } from '../mesh/index.js';
import { ensureGateSchema, ensurePromotionSchema } from '../sovereignty/index.js';
import { type Db, MIGRATIONS, Store } from '../store/index.js';
import { silentLogger, systemClock } from '../util/index.js';
import { diskProblem, formatBytes, freeBytes, LOW_SPACE_BYTES, privateDirProblem } from './data-dir-check.js';
import { acquireLock } from './lock.js';
import {
  acknowledgeRollbacks,
  describeRollback,
  readCommitMark,
  readRollbacks,
  recordRollback,
  writeCommitMark,
} from './rollback-record.js';

export { commitMarkPath } from './rollback-record.js';

/** What the repair found and recovered of one table. */
export interface TableReport {
  table: string;
  /** Rows the damaged file says it holds; null when even that could not be read. */
  found: number | null;
  recovered: number;
  /** found − recovered; null when unknown (the damaged file could not be counted). */
  lost: number | null;
}

export interface DoctorResult {
  ok: boolean;
  /** `check`: the lock was free; `read-only check`: a daemon runs, so nothing was changed. */
  mode: 'check' | 'read-only check' | 'repair';
  message: string;
  movedTo?: string;
  tables?: TableReport[];
  /** A warning that is not damage (e.g. committed work the file no longer shows). */
  warning?: string;
}

/** Every table a node's file holds, made the way each module makes it. */
function createAllTables(db: Db): void {
  ensureAuditSchema(db);
  ensureReplayGuardSchema(db);
  ensureGateSchema(db);
  ensurePromotionSchema(db);
}

/**
 * Checks the node's SQLite file. With `repair`, a damaged file (and its WAL) is moved aside and
 * kept, a fresh file with every table is created, and every row SQLite can still read is copied
 * into it, table by table (row range by row range, narrowed down to single rows where a range
 * cannot be read; WITHOUT ROWID tables in key order from both ends). The result names, per
 * table, what was found, recovered and lost; anything lost (or uncountable) makes it not ok.
 * While a daemon runs the check is read-only. Rollbacks recorded in `rolled-back.json` make it
 * not ok until `acknowledge` moves the record aside.
 */
export async function repairStore(
  dataDir: string,
  opts: { repair: boolean; acknowledge?: boolean },
): Promise<DoctorResult> {
  const path = join(dataDir, 'weft.db');
  // What the daemon would refuse to start on, said the same way.
  const dirProblem = privateDirProblem(dataDir);
  if (dirProblem)
    return { ok: false, mode: 'check', message: `${dirProblem} (the daemon refuses to start on it)` };
  if (!existsSync(dataDir))
    return { ok: true, mode: 'check', message: `no data dir at ${dataDir} yet: it is made on first start` };
  // A full disk or a read-only mount: the lock cannot be written, the daemon cannot start or
  // commit, and a repair would have to write a second copy there. Said first, the file checked read-only.
  const disk = diskProblem(dataDir);
  if (disk) {
    const fix = opts.repair ? '; a repair writes a new copy of the database there, so it was not attempted' : '';
    const r = existsSync(path)
      ? readOnlyCheck(dataDir, path, `${disk.message}${fix}`)
      : { mode: 'read-only check' as const, message: `${disk.message}${fix}` };
    return withRollbacks(dataDir, { ...r, ok: false, warning: disk.message });
  }
  const acknowledged = opts.acknowledge ? acknowledgeRollbacks(dataDir) : 0;
  const ackNote = opts.acknowledge
    ? `acknowledged ${acknowledged} recorded rollback(s) (kept as rolled-back.acknowledged-*.json); `
    : '';
  let lock: { release(): void };
  try {
    lock = acquireLock(dataDir);
  } catch (err) {
    if (!isWeftError(err) || err.code !== 'WEFT_LOCKED') throw err;
    if (opts.repair) throw err;
    const r = readOnlyCheck(dataDir, path, err.message);
    return withRollbacks(dataDir, { ...r, message: ackNote + r.message });
  }
  try {
    if (!existsSync(path)) {
      const mark = readCommitMark(dataDir);
      if (mark !== undefined && mark > 0) {
        return withRollbacks(dataDir, {
          ok: false,
          mode: 'check',
          message: `${ackNote}no database at ${path}, but the daemon recorded commits up to log position ${mark} in it (last-commit.json): the file was deleted or moved. A start makes an empty one; look for weft.db.rescued-* or a copy first`,
        });
      }
      return withRollbacks(dataDir, {
        ok: true,
        mode: 'check',
        message: `${ackNote}no database at ${path} yet: a new one is made on first start`,
      });
    }
    // A file in an older Weft's schema is checked as it is: the daemon's next start migrates it.
    // Migrating it here (Store.open does) changed a file the user only asked about, and left it
    // refused by the Weft that wrote it (builds since 2026-12-07 refuse a newer schema), which a
    // service unit still pointing at the older installation then started on.
    const older = opts.repair ? undefined : olderSchemaCheck(path);
    if (older) {
      const warning = older.ok ? rolledBack(dataDir, older.maxSeq) : undefined;
      const repaired = lastRepairNote(dataDir);
      return withRollbacks(dataDir, {
        ok: older.ok && warning === undefined,
        mode: 'check',
        message: `${ackNote}${older.message}${warning ? `; but ${warning}` : ''}${repaired ? `; ${repaired}` : ''}${lowSpaceNote(dataDir)}`,
        ...(warning ? { warning } : {}),
      });
    }
    try {
      const s = Store.open({ path }, { clock: systemClock, logger: silentLogger });
      const counts = {
        events: s.db.prepare('SELECT COUNT(*) FROM events').pluck().get() as number,
        notifications: s.db.prepare('SELECT COUNT(*) FROM notifications').pluck().get() as number,
      };
      const maxSeq = s.db.prepare('SELECT COALESCE(MAX(seq), 0) FROM events').pluck().get() as number;
      await s.close();
      const warning = rolledBack(dataDir, maxSeq);
      const repaired = lastRepairNote(dataDir);
      return withRollbacks(dataDir, {
        ok: warning === undefined,
        mode: 'check',
        message: `${ackNote}database ${path} is healthy (${counts.events} events, ${counts.notifications} notifications)${warning ? `; but ${warning}` : ''}${repaired ? `; ${repaired}` : ''}${lowSpaceNote(dataDir)}`,
        ...(warning ? { warning } : {}),
      });
    } catch (err) {
      // Only a damaged file is moved aside: one written by a newer Weft (or one this user cannot
      // write) is whole, and a repair would copy it into an older schema and lose what it holds.
      if (isWeftError(err) && err.code !== 'WEFT_STORE_CORRUPT') {
        return withRollbacks(dataDir, { ok: false, mode: opts.repair ? 'repair' : 'check', message: `${ackNote}${err.message}` });
      }
      if (!opts.repair) {
        return withRollbacks(dataDir, {
          ok: false,
          mode: 'check',
          message: `${ackNote}database ${path} is damaged: ${(err as Error).message.split(';')[0]}. Run 'weft doctor --repair'.`,
        });
      }
    }
    return withRollbacks(dataDir, await repair(dataDir, path));
  } finally {
    lock.release();
  }
}

/** Adds the rollbacks recorded and not acknowledged: each makes the result not ok. */
function withRollbacks(dataDir: string, r: DoctorResult): DoctorResult {
  const recorded = readRollbacks(dataDir);
  if (recorded.length === 0) return r;
  const lines = recorded.map((x) => `  - ${describeRollback(x)}`);
  const warning = `${recorded.length} recorded rollback(s) in ${join(dataDir, 'rolled-back.json')}; once dealt with (events re-sent, peers asked), run 'weft doctor --acknowledge'`;
  return {
    ...r,
    ok: false,
    message: `${r.message}\nROLLED BACK: ${warning}\n${lines.join('\n')}`,
    warning: r.warning ? `${r.warning}; ${warning}` : warning,
  };
}

/** '; only 12.0 MiB free on the disk ...' when the data dir's disk is filling up. */
function lowSpaceNote(dataDir: string): string {
  const free = freeBytes(dataDir);
  return free !== undefined && free < LOW_SPACE_BYTES ? `; only ${formatBytes(free)} free on the disk holding ${dataDir}: the node stops taking events when it is full` : '';
}

/** The newest repair report that lost rows, in words (undefined when none). */
function lastRepairNote(dataDir: string): string | undefined {
  let reports: string[];
  try {
    reports = readdirSync(dataDir)
      .filter((f) => /^weft\.db\.damaged-.*\.report\.json$/.test(f))
      .sort();
  } catch {
    return undefined;
  }
  const newest = reports.at(-1);
  if (!newest) return undefined;
  try {
    const r = JSON.parse(readFileSync(join(dataDir, newest), 'utf8')) as
      | { tables?: TableReport[] }
      | TableReport[];
    const tables = Array.isArray(r) ? r : (r.tables ?? []);
    const lost = tables.filter((t) => t.lost !== 0);
    if (lost.length === 0) return undefined;
    return `the last repair lost rows in ${lost.length} table(s) (${lost.map((t) => `${t.table} ${t.lost ?? 'unknown'}`).join(', ')}): see ${join(dataDir, newest)}`;
  } catch {
    return undefined;
  }
}

/** The last commit the daemon recorded outside the file is past what the file holds: committed work was rolled back. */
function rolledBack(dataDir: string, maxSeq: number): string | undefined {
  const mark = readCommitMark(dataDir);
  if (mark !== undefined && mark > maxSeq) {
    return `the daemon last committed log position ${mark} and the file ends at ${maxSeq}: ${mark - maxSeq} acknowledged events were rolled back (a lost -wal file, or the file replaced or truncated?)`;
  }
  return undefined;
}

/**
 * The check of a file an older Weft wrote (its schema number below the newest this one knows),
 * read-only: nothing in it changes. Undefined for a file in this Weft's schema (or a newer one, or
 * one that cannot be read at all): the usual path says what it is.
 */
function olderSchemaCheck(path: string): { ok: boolean; maxSeq: number; message: string } | undefined {
  const newest = Math.max(...MIGRATIONS.map((m) => m.version));
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const schema = Number(db.pragma('user_version', { simple: true }));
    if (!(schema > 0 && schema < newest)) return undefined;
    const check = String(db.pragma('quick_check', { simple: true }));
    if (check !== 'ok') {
      return { ok: false, maxSeq: 0, message: `database ${path} is damaged: ${check.split('\n')[0]}. Run 'weft doctor --repair'.` };
    }
    const events = db.prepare('SELECT COUNT(*) FROM events').pluck().get() as number;
    const notifications = db.prepare('SELECT COUNT(*) FROM notifications').pluck().get() as number;
    const maxSeq = db.prepare('SELECT COALESCE(MAX(seq), 0) FROM events').pluck().get() as number;
    return {
      ok: true,
      maxSeq,
      message: `database ${path} is healthy (${events} events, ${notifications} notifications); it has the schema of an older Weft (${schema}): the daemon's next start migrates it to ${newest}, this check changed nothing`,
    };
  } catch {
    return undefined;
  } finally {
    db?.close();
  }
}

function readOnlyCheck(dataDir: string, path: string, why: string): DoctorResult {
  const info = readDaemonInfo(dataDir);
  let st: ReturnType<typeof statSync> | undefined;
  try {
    st = statSync(path);
  } catch {
    st = undefined;
  }
  const daemonFile = info?.dbFile;
  if (!st || (daemonFile && (st.dev !== daemonFile.dev || st.ino !== daemonFile.ino))) {
    return {
      ok: false,
      mode: 'read-only check',
      message: `${why}, but its database ${path} ${st ? 'was replaced by another file' : 'was deleted'} while it runs: everything it writes goes to a file nothing else can see. Stop it cleanly (weft stops it by SIGTERM): its stop saves what it holds to ${st ? `${path}.rescued-<time>` : path}`,
    };
  }
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const check = String(db.pragma('quick_check', { simple: true }));
    const events = db.prepare('SELECT COUNT(*) FROM events').pluck().get() as number;
    const ok = check === 'ok';
    return {
      ok,
      mode: 'read-only check',
      message: `${why}: checked read-only. database ${path} ${ok ? `looks healthy (${events} events)` : `has problems: ${check.split('\n')[0]}; stop the daemon, then run 'weft doctor --repair'`}`,
    };
  } catch (err) {
    return {
      ok: false,
      mode: 'read-only check',
      message: `${why}: the read-only check of ${path} failed: ${(err as Error).message}`,
    };
  } finally {
    db?.close();
  }
}

async function repair(dataDir: string, path: string): Promise<DoctorResult> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const moved = `${path}.damaged-${stamp}`;
  const mark = readCommitMark(dataDir);
  renameSync(path, moved);
  for (const ext of ['-wal', '-shm']) if (existsSync(path + ext)) renameSync(path + ext, moved + ext);
  const fresh = Store.open({ path }, { clock: systemClock, logger: silentLogger });
  createAllTables(fresh.db);
  let old: Database.Database | undefined;
  let unreadable: string | undefined;
  try {
    old = new Database(moved, { readonly: true, fileMustExist: true });
  } catch (err) {
    old = undefined;
    unreadable = (err as Error).message;
  }
  const tables = fresh.db
    .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
    .pluck()
    .all() as string[];
  // The damaged file's own list of tables, when it can still be read.
  let oldTables: string[] | undefined;
  try {
    oldTables = old
      ?.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
      .pluck()
      .all() as string[] | undefined;
  } catch (err) {
    oldTables = undefined;
    unreadable ??= (err as Error).message;
  }
  // A file already behind its commit mark before the damage was repaired: that is a rollback,
  // recorded like the daemon records one, not a loss of this repair.
  let oldMax: number | undefined;
  try {
    oldMax =
      (old?.prepare('SELECT COALESCE(MAX(seq), 0) FROM events').pluck().get() as number | undefined) ??
      undefined;
  } catch {
    oldMax = undefined;
  }
  const rollback =
    mark !== undefined && oldMax !== undefined && mark > oldMax
      ? recordRollback(dataDir, { by: 'doctor --repair', recordedSeq: mark, foundSeq: oldMax })
      : undefined;
  // Triggers stay off while rows are copied: the damaged file's rows are copied as they are
  // (a counter a trigger keeps is copied, not counted again).
  const triggers = fresh.db
    .prepare(`SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND sql IS NOT NULL`)
    .all() as Array<{ name: string; sql: string }>;
  for (const t of triggers) fresh.db.exec(`DROP TRIGGER "${t.name}"`);
  const reports: TableReport[] = [];
  for (const t of tables) {
    if (old && oldTables && !oldTables.includes(t)) {
      // Not made yet when the file was damaged (a module this node never used): nothing to lose.
      reports.push({ table: t, found: 0, recovered: 0, lost: 0 });
      continue;
    }
    const found = old ? countRows(old, t) : null;
    const recovered = old ? copyTable(old, fresh.db, t, found) : 0;
    reports.push({
      table: t,
      found,
      recovered,
      lost: found === null ? null : Math.max(0, found - recovered),
    });
  }
  // Tables only the damaged file knows are reported too: their rows are not carried over.
  if (old && oldTables) {
    for (const t of oldTables) {
      if (tables.includes(t)) continue;
      const found = countRows(old, t);
      reports.push({ table: t, found, recovered: 0, lost: found });
    }
  }
  for (const t of triggers) fresh.db.exec(t.sql);
  old?.close();
  const freshMax = fresh.db.prepare('SELECT COALESCE(MAX(seq), 0) FROM events').pluck().get() as number;
  await fresh.close();
  const report = `${moved}.report.json`;
  // The repair starts a new baseline: events it lost are in its report, not a rollback the next
  // start or check should blame on a lost -wal.
  if (mark !== undefined && mark > freshMax)
    writeCommitMark(dataDir, freshMax, { repairedFrom: mark, report });
  const total = reports.reduce((a, r) => a + r.recovered, 0);
  const lostTables = reports.filter((r) => r.lost !== 0);
  const ok = lostTables.length === 0;
  const lostRows = lostTables.reduce((a, r) => a + (r.lost ?? 0), 0);
  // Named: tables that lost rows, and tables that could not be counted but gave rows. A table
  // that could be neither counted nor read is only counted: it may have been empty.
  const named = lostTables.filter((r) => r.lost !== null || r.recovered > 0);
  const unreadableTables = lostTables.length - named.length;
  const unknown = named.filter((r) => r.lost === null).length;
  let summary: string;
  if (!old || total === 0) {
    summary = `the damaged file cannot be read at all (${(unreadable ?? 'no table gave a row').split('\n')[0]}): nothing was recovered`;
  } else if (ok) {
    summary = `salvaged all ${total} rows`;
  } else {
    const parts = [
      ...(lostRows > 0 || unknown > 0
        ? [
            `${lostRows} rows${unknown > 0 ? ` (and an unknown number in ${unknown} table(s) that could not be counted)` : ''} in ${named.length} table(s): ${named.map((r) => `${r.table} (${r.lost ?? 'unknown'})`).join(', ')}`,
          ]
        : []),
      ...(unreadableTables > 0
        ? [`${unreadableTables} table(s) could not be read or counted at all (empty, or all lost)`]
        : []),
    ];
    summary = `salvaged ${total} rows; LOST ${parts.join('; ')}`;
  }
  const lines =
    total === 0
      ? []
      : named.map(
          (r) =>
            `  ${r.table.padEnd(24)} found ${r.found ?? '?'}, recovered ${r.recovered}, lost ${r.lost ?? 'unknown'}`,
        );
  const rolledNote = rollback
    ? `\nbefore the damage, the file was already behind its last recorded commit: ${describeRollback(rollback)}`
    : '';
  const message =
    `moved the damaged database to ${moved} (kept); ${summary} into a fresh ${path} (every table: ${report})\n${lines.join('\n')}${rolledNote}`.trimEnd();
  writeFileSync(
    report,
    `${JSON.stringify({ movedTo: moved, commitMark: mark ?? null, tables: reports }, null, 2)}\n`,
    { mode: 0o600 },
  );
  return { ok, mode: 'repair', message, movedTo: moved, tables: reports };
}

function countRows(db: Database.Database, table: string): number | null {
  try {
    return db.prepare(`SELECT COUNT(*) FROM "${table}"`).pluck().get() as number;
  } catch {
    return null;
  }
}

/** Rows one table's copy may look up one by one where its range reads came back short. */
const MAX_PROBES = 1_000_000;

/**
 * Copies what can be read of one table; returns the rows written. Rows are read in rowid
 * ranges of 1,000, keeping what a range gave before an error. A damaged page can also end a
 * range read early without an error (a garbage key past the range's end), so while fewer rows
 * came over than the table counts, every rowid the ranges did not bring is looked up on its
 * own (at most MAX_PROBES a table): one bad page costs its own unreadable rows only. Rowids are
 * kept. The damaged file's rows replace rows the fresh file was made with (a counter's seed),
 * so they count as recovered and keep their values.
 */
function copyTable(old: Database.Database, fresh: Db, table: string, found: number | null): number {
  let cols: string[];
  try {
    cols = (old.prepare(`PRAGMA table_info("${table}")`).all() as Array<{ name: string }>).map((c) => c.name);
  } catch {
    return 0;
  }
  const newCols = new Set(
    (fresh.prepare(`PRAGMA table_info("${table}")`).all() as Array<{ name: string }>).map((c) => c.name),
  );
  const shared = cols.filter((c) => newCols.has(c));
  if (shared.length === 0) return 0;
  const list = shared.map((c) => `"${c}"`).join(',');
  const values = shared.map(() => '?').join(',');
  let written = 0;
  // Row by row inside one transaction: a row the fresh schema refuses costs that row only.
  const writeWith = (insert: Database.Statement) => (rows: unknown[][]) =>
    fresh.transaction(() => {
      for (const r of rows) {
        try {
          written += insert.run(...r).changes;
        } catch {
          // refused by the fresh schema: not recovered, counted as lost
        }
      }
    })();
  const write = writeWith(fresh.prepare(`INSERT OR REPLACE INTO "${table}" (${list}) VALUES (${values})`));
  const rowidOf = (db: Database.Database | Db) => {
    try {
      db.prepare(`SELECT rowid FROM "${table}" LIMIT 0`).all();
      return true;
    } catch {
      return false;
    }
  };
  if (rowidOf(old) && rowidOf(fresh)) {
    const writeRows = writeWith(
      fresh.prepare(`INSERT OR REPLACE INTO "${table}" (rowid, ${list}) VALUES (?, ${values})`),
    );
    let maxRowid: number;
    let maxKnown = true;
    try {
      maxRowid = (old.prepare(`SELECT MAX(rowid) FROM "${table}"`).pluck().get() as number | null) ?? 0;
    } catch {
      maxRowid = 10_000_000;
      maxKnown = false;
    }
    let highest = 0;
    const range = old
      .prepare(`SELECT rowid, ${list} FROM "${table}" WHERE rowid > ? AND rowid <= ? ORDER BY rowid`)
      .raw();
    for (let lo = 0; lo <= maxRowid; lo += 1000) {
      const rows: unknown[][] = [];
      try {
        for (const r of range.iterate(lo, lo + 1000) as IterableIterator<unknown[]>) rows.push(r);
      } catch {
        // an unreadable part: keep what came before it; the lookups below try the rest
      }
      const last = rows.at(-1)?.[0];
      if (typeof last === 'number' && last > highest) highest = last;
      writeRows(rows);
    }
    if (found !== null && written >= found) return written;
    // The largest rowid unreadable (the last page damaged): rows past the highest one any range
    // read are on that page, which a lookup cannot read either. Looking up to 10,000,000 one by
    // one took the repair of a 50-row table 40 s.
    if (!maxKnown) maxRowid = highest;
    const one = old.prepare(`SELECT rowid, ${list} FROM "${table}" WHERE rowid = ?`).raw();
    const have = fresh.prepare(`SELECT rowid FROM "${table}" WHERE rowid > ? AND rowid <= ?`).pluck();
    let probes = 0;
    for (let lo = 0; lo <= maxRowid && probes < MAX_PROBES; lo += 1000) {
      const got = new Set(have.all(lo, lo + 1000) as number[]);
      const rows: unknown[][] = [];
      for (let id = lo + 1; id <= lo + 1000 && probes < MAX_PROBES; id++) {
        if (got.has(id)) continue;
        probes++;
        try {
          const r = one.get(id) as unknown[] | undefined;
          if (r) rows.push(r);
        } catch {
          // this row cannot be read: lost
        }
      }
      writeRows(rows);
      if (found !== null && written >= found) break;
    }
    return written;
  }
  // WITHOUT ROWID: in key order up to the first unreadable row, then from the last key back
  // down to it; what lies between two unreadable rows is lost with them.
  const pkCols = (old.prepare(`PRAGMA table_info("${table}")`).all() as Array<{ name: string; pk: number }>)
    .filter((c) => c.pk > 0)
    .sort((a, b) => a.pk - b.pk)
    .map((c) => `"${c.name}"`);
  if (pkCols.length === 0) return written;
  const keys = pkCols.join(',');
  const chunk: unknown[][] = [];
  const flush = () => write(chunk.splice(0));
  let lastKey: unknown[] | undefined;
  try {
    for (const r of old
      .prepare(`SELECT ${keys}, ${list} FROM "${table}" ORDER BY ${keys}`)
      .raw()
      .iterate() as IterableIterator<unknown[]>) {
      lastKey = r.slice(0, pkCols.length);
      chunk.push(r.slice(pkCols.length));
      if (chunk.length >= 500) flush();
    }
    flush();
    return written;
  } catch {
    flush();
  }
  const after = lastKey ? `WHERE (${keys}) > (${pkCols.map(() => '?').join(',')})` : '';
  try {
    const desc = old
      .prepare(`SELECT ${list} FROM "${table}" ${after} ORDER BY ${pkCols.map((c) => `${c} DESC`).join(',')}`)
      .raw();
    for (const r of desc.iterate(...(lastKey ?? [])) as IterableIterator<unknown[]>) {
      chunk.push(r);
      if (chunk.length >= 500) flush();
    }
  } catch {
    // the other end of the unreadable part
  }
  flush();
  return written;
}
