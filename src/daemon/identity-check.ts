/**
 * A node's database and its key belong together: the audit log records the key the database
 * was written under (`identity.created`, `key.rotated`). A start with the key gone, or with
 * another node's key, would make the node a stranger to its peers (they pin its key and the
 * sequence of its frames) and to its own history; both are refused before anything opens.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { WeftError } from '../errors/index.js';
import { loadIdentity } from '../identity/index.js';

/** The database files of a data dir, main file first. */
export const DATABASE_FILES = ['weft.db', 'weft.db-wal', 'weft.db-shm'] as const;

/**
 * The node id the data dir's database was last written under, from its audit log (this node's
 * own entries: a peer's rotation is recorded with the peer's name and is not this node's key); undefined
 * when there is no database, it records none, or it cannot be read (a damaged file is left to
 * the start's own check, which names `weft doctor`).
 * @example
 * recordedNodeId('/home/me/.weft/data') // 'weft:ed25519:F7hS…'
 */
export function recordedNodeId(dataDir: string): string | undefined {
  const path = join(dataDir, 'weft.db');
  if (!existsSync(path)) return undefined;
  try {
    const db = new Database(path, { readonly: true, fileMustExist: true });
    try {
      return recordedNodeIdOf(db);
    } finally {
      db.close();
    }
  } catch {
    return undefined;
  }
}

/**
 * Refuses a start whose `identity.key` is missing or is not the key the database was written
 * under, naming both and what to do.
 */
export function checkDatabaseIdentity(dataDir: string): void {
  const had = recordedNodeId(dataDir);
  if (had === undefined) return;
  const keyPath = join(dataDir, 'identity.key');
  const aside = `move ${DATABASE_FILES.join(', ')} aside first`;
  if (!existsSync(keyPath)) {
    throw new WeftError(
      'WEFT_CONFIG',
      `${keyPath} is missing, but this node's database is there and it was ${had}: a new key would make it a different node to its peers and to its own history. Put the key back ('weft identity import <backup>' with the daemon stopped), or to start a new node on purpose ${aside}`,
    );
  }
  let now: string;
  try {
    now = loadIdentity(keyPath).nodeId;
  } catch {
    return; // the start's own load says what is wrong with the file
  }
  if (now !== had) {
    throw new WeftError(
      'WEFT_CONFIG',
      `${keyPath} is the key of ${now}, but this data dir's database was written by ${had}: the two do not belong together (a key imported over another node's database?). To be ${now}, ${aside} and run 'weft recovery restore' after the start; to be ${had} again, put its key back`,
    );
  }
}

/** The node id an open node database was last written under (its audit log), or undefined. */
export function recordedNodeIdOf(db: Database.Database): string | undefined {
  const row = db
    .prepare("SELECT kind, details FROM audit_log WHERE kind IN ('identity.created', 'key.rotated') AND peer IS NULL ORDER BY seq DESC LIMIT 1")
    .get() as { kind: string; details: string } | undefined;
  if (!row) return undefined;
  const d = JSON.parse(row.details) as { nodeId?: string; newNodeId?: string };
  return (row.kind === 'key.rotated' ? d.newNodeId : d.nodeId) ?? undefined;
}
