/**
 * The files a node keeps in its data dir that clients read too: the API token (0600) and the
 * running daemon's address (`daemon.json`).
 */
import { createRequire } from 'node:module';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../errors/index.js';

/** What a running daemon writes to `<data_dir>/daemon.json` so clients find it. */
export interface DaemonInfo {
  pid: number;
  url: string;
  computer: string;
  dataDir: string;
  tokenFile: string;
  logFile: string;
  startedAt: string;
  /** The database file the daemon opened (device and inode): `weft doctor` tells a replaced file from it. */
  dbFile?: { dev: number; ino: number };
}

export function daemonInfoPath(dataDir: string): string {
  return join(dataDir, 'daemon.json');
}

/** Reads the running daemon's address, if one wrote it. */
export function readDaemonInfo(dataDir: string): DaemonInfo | undefined {
  try {
    return JSON.parse(readFileSync(daemonInfoPath(dataDir), 'utf8')) as DaemonInfo;
  } catch {
    return undefined;
  }
}


export function tokenPath(dataDir: string): string {
  return join(dataDir, 'api-token');
}

/** The API token: created on first start as a 0600 file; a looser mode is refused. */
export function loadOrCreateToken(dataDir: string): { token: string; path: string; created: boolean } {
  const path = tokenPath(dataDir);
  if (!existsSync(path)) {
    // node:crypto is loaded here only (a CLI call that reads the token never needs it).
    const { randomBytes } = createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto');
    const token = randomBytes(32).toString('hex');
    writeFileSync(path, `${token}\n`, { mode: 0o600, flag: 'wx' });
    return { token, path, created: true };
  }
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new ConfigError(`token file ${path} has mode ${mode.toString(8)}; it must be 600 (run: chmod 600 ${path})`, { path });
  }
  return { token: readFileSync(path, 'utf8').trim(), path, created: false };
}

/** Reads the token for a client (the CLI). */
export function readToken(dataDir: string): string | undefined {
  try {
    return readFileSync(tokenPath(dataDir), 'utf8').trim();
  } catch {
    return undefined;
  }
}
