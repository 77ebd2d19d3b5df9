import { existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Store } from '../store/index.js';
import { systemClock } from '../util/clock.js';
import { silentLogger } from '../util/logger.js';
import { acquireLock } from './lock.js';

export interface DoctorResult {
  ok: boolean;
  message: string;
  movedTo?: string;
  salvaged?: Record<string, number>;
}

/**
 * Checks the node's SQLite file. With `repair`, a damaged file (and its WAL) is moved aside,
 * a fresh one is created, and every row SQLite can still read is copied into it, table by
 * table and row range by row range, skipping what is unreadable.
 */
export async function repairStore(dataDir: string, opts: { repair: boolean }): Promise<DoctorResult> {
  const path = join(dataDir, 'weft.db');
  if (!existsSync(path)) return { ok: true, message: `no database at ${path} yet: a new one is made on first start` };
  const lock = acquireLock(dataDir);
  try {
    try {
      const s = Store.open({ path }, { clock: systemClock, logger: silentLogger });
      const counts = {
        events: s.db.prepare('SELECT COUNT(*) FROM events').pluck().get() as number,
        notifications: s.db.prepare('SELECT COUNT(*) FROM notifications').pluck().get() as number,
      };
      await s.close();
      return { ok: true, message: `database ${path} is healthy (${counts.events} events, ${counts.notifications} notifications)` };
    } catch (err) {
      if (!opts.repair) {
        return { ok: false, message: `database ${path} is damaged: ${(err as Error).message.split(';')[0]}. Run 'weft doctor --repair'.` };
      }
    }
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const moved = `${path}.damaged-${stamp}`;
    renameSync(path, moved);
    for (const ext of ['-wal', '-shm']) if (existsSync(path + ext)) renameSync(path + ext, moved + ext);
    const fresh = Store.open({ path }, { clock: systemClock, logger: silentLogger });
    const salvaged: Record<string, number> = {};
    let old: Database.Database | undefined;
    try {
      old = new Database(moved, { readonly: true, fileMustExist: true });
    } catch {
      old = undefined;
    }
    if (old) {
      const tables = fresh.db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`).pluck().all() as string[];
      for (const t of tables) {
        salvaged[t] = 0;
        let cols: string[];
        try {
          cols = (old.prepare(`PRAGMA table_info(${t})`).all() as Array<{ name: string }>).map((c) => c.name);
          if (cols.length === 0) continue;
        } catch {
          continue;
        }
        const newCols = new Set((fresh.db.prepare(`PRAGMA table_info(${t})`).all() as Array<{ name: string }>).map((c) => c.name));
        const shared = cols.filter((c) => newCols.has(c));
        const insert = fresh.db.prepare(`INSERT OR IGNORE INTO ${t} (${shared.join(',')}) VALUES (${shared.map(() => '?').join(',')})`);
        let maxRowid = 0;
        try {
          maxRowid = (old.prepare(`SELECT MAX(rowid) FROM ${t}`).pluck().get() as number | null) ?? 0;
        } catch {
          maxRowid = 1_000_000;
        }
        const step = 1000;
        for (let lo = 0; lo <= maxRowid; lo += step) {
          try {
            const rows = old.prepare(`SELECT ${shared.join(',')} FROM ${t} WHERE rowid > ? AND rowid <= ?`).raw().all(lo, lo + step) as unknown[][];
            fresh.db.transaction(() => {
              for (const r of rows) salvaged[t] = (salvaged[t] ?? 0) + insert.run(...r).changes;
            })();
          } catch {
            // an unreadable range: skip it, keep the rest
          }
        }
      }
      old.close();
    }
    await fresh.close();
    const total = Object.values(salvaged).reduce((a, b) => a + b, 0);
    return {
      ok: true,
      message: `moved the damaged database to ${moved}; salvaged ${total} rows into a fresh ${path}`,
      movedTo: moved,
      salvaged,
    };
  } finally {
    lock.release();
  }
}
