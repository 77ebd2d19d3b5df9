import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ensureAuditSchema } from '../audit/index.js';
import { isWeftError } from '../errors/index.js';
import { ensureReplayGuardSchema } from '../mesh/index.js';
import { ensureGateSchema, ensurePromotionSchema } from '../sovereignty/index.js';
import { type Db, Store } from '../store/index.js';
import { silentLogger, systemClock } from '../util/index.js';
import { acquireLock } from './lock.js';

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

/** Where the daemon records its last committed log position outside the database. */
export function commitMarkPath(dataDir: string): string {
  return join(dataDir, 'last-commit.json');
}

/**
 * Checks the node's SQLite file. With `repair`, a damaged file (and its WAL) is moved aside and
 * kept, a fresh file with every table is created, and every row SQLite can still read is copied
 * into it, table by table (row range by row range; WITHOUT ROWID tables page by key). The
 * result names, per table, what was found, recovered and lost; anything lost (or uncountable)
 * makes it not ok. While a daemon runs the check is read-only.
 */
export async function repairStore(dataDir: string, opts: { repair: boolean }): Promise<DoctorResult> {
  const path = join(dataDir, 'weft.db');
  if (!existsSync(path)) return { ok: true, mode: 'check', message: `no database at ${path} yet: a new one is made on first start` };
  let lock: { release(): void };
  try {
    lock = acquireLock(dataDir);
  } catch (err) {
    if (!isWeftError(err) || err.code !== 'WEFT_LOCKED') throw err;
    if (opts.repair) throw err;
    return readOnlyCheck(path, err.message);
  }
  try {
    try {
      const s = Store.open({ path }, { clock: systemClock, logger: silentLogger });
      const counts = {
        events: s.db.prepare('SELECT COUNT(*) FROM events').pluck().get() as number,
        notifications: s.db.prepare('SELECT COUNT(*) FROM notifications').pluck().get() as number,
      };
      const maxSeq = s.db.prepare('SELECT COALESCE(MAX(seq), 0) FROM events').pluck().get() as number;
      await s.close();
      const warning = rolledBack(dataDir, maxSeq);
      return {
        ok: warning === undefined,
        mode: 'check',
        message: `database ${path} is healthy (${counts.events} events, ${counts.notifications} notifications)${warning ? `; but ${warning}` : ''}`,
        ...(warning ? { warning } : {}),
      };
    } catch (err) {
      if (!opts.repair) {
        return { ok: false, mode: 'check', message: `database ${path} is damaged: ${(err as Error).message.split(';')[0]}. Run 'weft doctor --repair'.` };
      }
    }
    return await repair(path);
  } finally {
    lock.release();
  }
}

/** The last commit the daemon recorded outside the file is past what the file holds: committed work was rolled back. */
function rolledBack(dataDir: string, maxSeq: number): string | undefined {
  try {
    const mark = JSON.parse(readFileSync(commitMarkPath(dataDir), 'utf8')) as { seq?: number };
    if (typeof mark.seq === 'number' && mark.seq > maxSeq) {
      return `the daemon last committed log position ${mark.seq} and the file ends at ${maxSeq}: ${mark.seq - maxSeq} acknowledged events were rolled back (a lost -wal file?)`;
    }
  } catch {
    // no mark yet
  }
  return undefined;
}

function readOnlyCheck(path: string, why: string): DoctorResult {
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
    return { ok: false, mode: 'read-only check', message: `${why}: the read-only check of ${path} failed: ${(err as Error).message}` };
  } finally {
    db?.close();
  }
}

async function repair(path: string): Promise<DoctorResult> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const moved = `${path}.damaged-${stamp}`;
  renameSync(path, moved);
  for (const ext of ['-wal', '-shm']) if (existsSync(path + ext)) renameSync(path + ext, moved + ext);
  const fresh = Store.open({ path }, { clock: systemClock, logger: silentLogger });
  createAllTables(fresh.db);
  let old: Database.Database | undefined;
  try {
    old = new Database(moved, { readonly: true, fileMustExist: true });
  } catch {
    old = undefined;
  }
  const tables = fresh.db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).pluck().all() as string[];
  // The damaged file's own list of tables, when it can still be read.
  let oldTables: string[] | undefined;
  try {
    oldTables = old?.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`).pluck().all() as string[] | undefined;
  } catch {
    oldTables = undefined;
  }
  const reports: TableReport[] = [];
  for (const t of tables) {
    if (old && oldTables && !oldTables.includes(t)) {
      // Not made yet when the file was damaged (a module this node never used): nothing to lose.
      reports.push({ table: t, found: 0, recovered: 0, lost: 0 });
      continue;
    }
    const found = old ? countRows(old, t) : null;
    const recovered = old ? copyTable(old, fresh.db, t) : 0;
    reports.push({ table: t, found, recovered, lost: found === null ? null : Math.max(0, found - recovered) });
  }
  // Tables only the damaged file knows are reported too: their rows are not carried over.
  if (old && oldTables) {
    for (const t of oldTables) {
      if (tables.includes(t)) continue;
      const found = countRows(old, t);
      reports.push({ table: t, found, recovered: 0, lost: found });
    }
  }
  old?.close();
  await fresh.close();
  const total = reports.reduce((a, r) => a + r.recovered, 0);
  const lostTables = reports.filter((r) => r.lost !== 0);
  const ok = lostTables.length === 0;
  const lines = reports.map((r) => `  ${r.table.padEnd(24)} found ${r.found ?? '?'}, recovered ${r.recovered}, lost ${r.lost ?? 'unknown'}`);
  const summary = ok
    ? `salvaged all ${total} rows`
    : `salvaged ${total} rows; LOST rows in ${lostTables.length} table(s): ${lostTables.map((r) => `${r.table} (${r.lost ?? 'unknown'})`).join(', ')}`;
  const message = `moved the damaged database to ${moved} (kept); ${summary} into a fresh ${path}\n${lines.join('\n')}`;
  writeFileSync(`${moved}.report.json`, `${JSON.stringify(reports, null, 2)}\n`, { mode: 0o600 });
  return { ok, mode: 'repair', message, movedTo: moved, tables: reports };
}

function countRows(db: Database.Database, table: string): number | null {
  try {
    return db.prepare(`SELECT COUNT(*) FROM "${table}"`).pluck().get() as number;
  } catch {
    return null;
  }
}

/** Copies what can be read of one table; returns the rows written. */
function copyTable(old: Database.Database, fresh: Db, table: string): number {
  let cols: string[];
  try {
    cols = (old.prepare(`PRAGMA table_info("${table}")`).all() as Array<{ name: string }>).map((c) => c.name);
  } catch {
    return 0;
  }
  const newCols = new Set((fresh.prepare(`PRAGMA table_info("${table}")`).all() as Array<{ name: string }>).map((c) => c.name));
  const shared = cols.filter((c) => newCols.has(c));
  if (shared.length === 0) return 0;
  const list = shared.map((c) => `"${c}"`).join(',');
  const insert = fresh.prepare(`INSERT OR IGNORE INTO "${table}" (${list}) VALUES (${shared.map(() => '?').join(',')})`);
  let written = 0;
  const write = (rows: unknown[][]) =>
    fresh.transaction(() => {
      for (const r of rows) written += insert.run(...r).changes;
    })();
  let hasRowid = true;
  try {
    old.prepare(`SELECT rowid FROM "${table}" LIMIT 1`).all();
  } catch {
    hasRowid = false;
  }
  if (hasRowid) {
    let maxRowid: number;
    try {
      maxRowid = (old.prepare(`SELECT MAX(rowid) FROM "${table}"`).pluck().get() as number | null) ?? 0;
    } catch {
      maxRowid = 10_000_000;
    }
    const step = 1000;
    for (let lo = 0; lo <= maxRowid; lo += step) {
      try {
        write(old.prepare(`SELECT ${list} FROM "${table}" WHERE rowid > ? AND rowid <= ?`).raw().all(lo, lo + step) as unknown[][]);
      } catch {
        // an unreadable range: skip it, keep the rest
      }
    }
    return written;
  }
  // WITHOUT ROWID: page in key order; a page that cannot be read is skipped.
  const pk = (old.prepare(`PRAGMA table_info("${table}")`).all() as Array<{ name: string; pk: number }>)
    .filter((c) => c.pk > 0)
    .sort((a, b) => a.pk - b.pk)
    .map((c) => `"${c.name}"`)
    .join(',');
  const page = 500;
  for (let offset = 0, misses = 0; misses < 20; offset += page) {
    try {
      const rows = old.prepare(`SELECT ${list} FROM "${table}" ORDER BY ${pk || list} LIMIT ? OFFSET ?`).raw().all(page, offset) as unknown[][];
      if (rows.length === 0) break;
      write(rows);
      misses = 0;
    } catch {
      misses++;
    }
  }
  return written;
}
