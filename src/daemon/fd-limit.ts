import { readFileSync } from 'node:fs';

/** The soft open-file limit of this process (`ulimit -n`), where /proc tells; undefined for unlimited or unknown. */
export function openFileLimit(): number | undefined {
  try {
    const soft = /^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1];
    const n = Number(soft);
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Inbound TLS mesh connections at most: the provider's 256, held to a quarter of the open-file
 * limit (the API may take half). Under `ulimit -n 256` a stranger's 256 connections to the mesh
 * port used to take every descriptor the node had.
 */
export function tlsConnectionCap(limit = openFileLimit()): number | undefined {
  if (limit === undefined || limit / 4 >= 256) return undefined;
  return Math.max(8, Math.floor(limit / 4));
}
