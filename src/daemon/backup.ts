/**
 * Backups of a node's database (`weft backup create|restore`, docs/reliability.md): a consistent
 * copy made while the daemon runs (through its API, SQLite's online backup) or while it is
 * stopped (here), checked before it is kept; and a restore that puts such a copy back in place
 * of the database with the daemon stopped, keeping the database it replaces.
 *
 * Events the node had after the backup are not in it: a restore records them as a rollback
 * (`weft doctor` says so until acknowledged), and the node's peers still send what they hold
 * for it; its frame sequence starts past anything it used (recovery/frame-sequence.ts).
 */
import { existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { isWeftError, WeftError } from '../errors/index.js';
import { backupDatabase, Store } from '../store/index.js';
import { silentLogger, systemClock } from '../util/index.js';
import { DATABASE_FILES, recordedNodeIdOf } from './identity-check.js';
import { acquireLock } from './lock.js';
import { readCommitMark, type RollbackRecord, recordRollback, writeCommitMark } from './rollback-record.js';

/** What a backup file holds, read from it. */
export interface BackupInfo {
  path: string;
  bytes: number;
  /** Its schema number (`PRAGMA user_version`). */
  schema: number;
  events: number;
  notifications: number;
  /** The last log position in it. */
  lastSeq: number;
  /** The node that wrote it (its audit log), when it says. */
  nodeId: string | undefined;
  /** The computer it belongs to (recovery_state), when it says. */
  computer: string | undefined;
}

const stamp = () => new Date().toISOString().replace(/[:.]/g, '-');

/**
 * Reads a backup (or any node database) read-only and checks it: SQLite's quick check and the
 * tables a node database has. Throws WEFT_VALIDATION naming what is wrong.
 */
export function inspectBackup(path: string): BackupInfo {
  if (!existsSync(path)) throw new WeftError('WEFT_NOT_FOUND', `no file at ${path}`);
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new WeftError(
      'WEFT_VALIDATION',
      `${path} is not a database SQLite can open: ${(err as Error).message}`,
    );
  }
  try {
    let check: string;
    try {
      check = String(db.pragma('quick_check', { simple: true }));
    } catch (err) {
      throw new WeftError('WEFT_VALIDATION', `${path} is not a Weft backup: ${(err as Error).message}`);
    }
    if (check !== 'ok') throw new WeftError('WEFT_VALIDATION', `${path} is damaged: ${check.split('\n')[0]}`);
    const has = (t: string) =>
      db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(t) !== undefined;
    if (!has('events') || !has('notifications') || !has('audit_log'))
      throw new WeftError(
        'WEFT_VALIDATION',
        `${path} is an SQLite file but not a Weft node's database (no events, notifications or audit_log table)`,
      );
    const one = (sql: string) => db.prepare(sql).pluck().get();
    return {
      path,
      bytes: statSync(path).size,
      schema: Number(db.pragma('user_version', { simple: true })),
      events: Number(one('SELECT COUNT(*) FROM events')),
      notifications: Number(one('SELECT COUNT(*) FROM notifications')),
      lastSeq: Number(one('SELECT COALESCE(MAX(seq), 0) FROM events')),
      nodeId: recordedNodeIdOf(db),
      computer: has('recovery_state')
        ? ((one("SELECT value FROM recovery_state WHERE key = 'computer'") as string | undefined) ??
          undefined)
        : undefined,
    };
  } finally {
    db.close();
  }
}

/**
 * A backup of a stopped node's database, written to `dest` (mode 0600). The daemon's lock is
 * held while it is made, so no daemon starts on the file half-way.
 */
export async function backupStopped(dataDir: string, dest: string): Promise<void> {
  const path = join(dataDir, 'weft.db');
  if (!existsSync(path))
    throw new WeftError(
      'WEFT_NOT_FOUND',
      `no database at ${path}: nothing to back up (has the daemon run with this data_dir?)`,
    );
  const lock = acquireLock(dataDir);
  try {
    const db = new Database(path, { readonly: true, fileMustExist: true });
    try {
      await backupDatabase(db, dest);
    } finally {
      db.close();
    }
  } finally {
    lock.release();
  }
}

export interface RestoreResult {
  backup: BackupInfo;
  /** Where the database it replaced is kept (its files), empty when there was none. */
  keptAs: string[];
  /** Events the node had recorded as committed past the backup's end: recorded as a rollback. */
  rolledBack: RollbackRecord | undefined;
}

/**
 * Puts a backup in place of the node's database; the daemon must be stopped (its lock is taken).
 * The backup is checked, copied and opened as a store (an older schema migrated, a newer one
 * refused) before anything is moved; the database it replaces is kept beside it.
 */
export async function restoreBackup(
  dataDir: string,
  file: string,
  expect: { nodeId: string | undefined; force?: boolean },
): Promise<RestoreResult> {
  const backup = inspectBackup(file);
  if (
    expect.nodeId !== undefined &&
    backup.nodeId !== undefined &&
    backup.nodeId !== expect.nodeId &&
    expect.force !== true
  ) {
    throw new WeftError(
      'WEFT_CONFLICT',
      `${file} is a backup of node ${backup.nodeId}${backup.computer ? ` ('${backup.computer}')` : ''}, and this data dir's key is node ${expect.nodeId}: a backup from before a key rotation, or of another computer. The daemon would refuse to start on it; add --force only if you will put that node's key back too ('weft identity import')`,
    );
  }
  let lock: { release(): void };
  try {
    lock = acquireLock(dataDir);
  } catch (err) {
    if (isWeftError(err) && err.code === 'WEFT_LOCKED')
      throw new WeftError(
        'WEFT_CONFLICT',
        `the daemon of ${dataDir} is running: stop it first (a restore replaces its database)`,
      );
    throw err;
  }
  const at = stamp();
  const target = join(dataDir, 'weft.db');
  const staging = join(dataDir, `weft.db.restoring-${at}`);
  try {
    // SQLite's own copy, not the file's bytes: a copy of a data dir taken with `cp` may have its
    // last commits in a -wal beside it, which a byte copy would leave behind.
    const src = new Database(file, { readonly: true, fileMustExist: true });
    try {
      await backupDatabase(src, staging);
    } finally {
      src.close();
    }
    // Opened as the daemon opens it: migrated when older, refused unchanged when newer.
    try {
      const store = Store.open({ path: staging }, { clock: systemClock, logger: silentLogger });
      await store.close();
    } catch (err) {
      throw new WeftError(
        isWeftError(err) && err.code === 'WEFT_STORE_TOO_NEW' ? 'WEFT_STORE_TOO_NEW' : 'WEFT_VALIDATION',
        `${file}: ${(err as Error).message.replace(`database ${staging}`, 'it')}`,
      );
    }
    // What the node had: its commit mark (written every second while the daemon ran), or the
    // database being replaced when that holds more (the last second before a stop).
    let had = readCommitMark(dataDir);
    if (existsSync(target)) {
      try {
        const cur = new Database(target, { readonly: true, fileMustExist: true });
        try {
          had = Math.max(
            had ?? 0,
            Number(cur.prepare('SELECT COALESCE(MAX(seq), 0) FROM events').pluck().get()),
          );
        } finally {
          cur.close();
        }
      } catch {
        // A damaged file: the mark alone says what the node had.
      }
    }
    const keptAs: string[] = [];
    for (const f of DATABASE_FILES) {
      const p = join(dataDir, f);
      if (!existsSync(p)) continue;
      renameSync(p, `${p}.before-restore-${at}`);
      keptAs.push(`${p}.before-restore-${at}`);
    }
    renameSync(staging, target);
    let rolledBack: RollbackRecord | undefined;
    if (had !== undefined && had > backup.lastSeq)
      rolledBack = recordRollback(dataDir, {
        by: 'backup restore',
        recordedSeq: had,
        foundSeq: backup.lastSeq,
      });
    writeCommitMark(dataDir, backup.lastSeq, { restoredFrom: file });
    return { backup, keptAs, rolledBack };
  } finally {
    for (const f of [staging, `${staging}-wal`, `${staging}-shm`]) rmSync(f, { force: true });
    lock.release();
  }
}
