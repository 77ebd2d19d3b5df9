import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** One time the database was found behind the last commit the daemon recorded outside it. */
export interface RollbackRecord {
  /** ISO time it was found. */
  detectedAt: string;
  /** Who found it: the daemon at its start, `weft doctor --repair` in the damaged file, or `weft backup restore` (the events after the backup). */
  by: 'daemon start' | 'doctor --repair' | 'backup restore';
  /** The last log position the daemon recorded as committed (`last-commit.json`). */
  recordedSeq: number;
  /** Where the file ended when it was found. */
  foundSeq: number;
  /** recordedSeq − foundSeq: acknowledged events the file no longer holds. */
  lost: number;
}

/** Where the daemon records its last committed log position outside the database. */
export function commitMarkPath(dataDir: string): string {
  return join(dataDir, 'last-commit.json');
}

/** The commit mark's log position, or undefined when there is none (first start) or it cannot be read. */
export function readCommitMark(dataDir: string): number | undefined {
  try {
    const mark = JSON.parse(readFileSync(commitMarkPath(dataDir), 'utf8')) as { seq?: unknown };
    return typeof mark.seq === 'number' ? mark.seq : undefined;
  } catch {
    return undefined;
  }
}

/** Writes the commit mark (0600). */
export function writeCommitMark(dataDir: string, seq: number, extra: Record<string, unknown> = {}): void {
  writeFileSync(
    commitMarkPath(dataDir),
    `${JSON.stringify({ seq, at: new Date().toISOString(), ...extra })}\n`,
    { mode: 0o600 },
  );
}

/**
 * `<dataDir>/rolled-back.json`: every rollback found and not yet acknowledged. The commit mark
 * moves on with the file after a rollback (a clean stop rewrites it), so this record is what
 * keeps the evidence: `weft doctor` reports it until `weft doctor --acknowledge`.
 */
export function rollbackRecordPath(dataDir: string): string {
  return join(dataDir, 'rolled-back.json');
}

/** The rollbacks found and not acknowledged yet (empty when none, or when the record cannot be read). */
export function readRollbacks(dataDir: string): RollbackRecord[] {
  try {
    const r = JSON.parse(readFileSync(rollbackRecordPath(dataDir), 'utf8')) as unknown;
    return Array.isArray(r) ? (r as RollbackRecord[]) : [];
  } catch {
    return [];
  }
}

/** Adds one rollback to the record (0600). */
export function recordRollback(
  dataDir: string,
  r: Omit<RollbackRecord, 'lost' | 'detectedAt'>,
): RollbackRecord {
  const entry: RollbackRecord = {
    detectedAt: new Date().toISOString(),
    ...r,
    lost: r.recordedSeq - r.foundSeq,
  };
  writeFileSync(
    rollbackRecordPath(dataDir),
    `${JSON.stringify([...readRollbacks(dataDir), entry], null, 2)}\n`,
    { mode: 0o600 },
  );
  return entry;
}

/** Moves the record aside (`rolled-back.acknowledged-<time>.json`, kept); returns how many rollbacks it held. */
export function acknowledgeRollbacks(dataDir: string): number {
  const path = rollbackRecordPath(dataDir);
  if (!existsSync(path)) return 0;
  const n = readRollbacks(dataDir).length;
  renameSync(
    path,
    join(dataDir, `rolled-back.acknowledged-${new Date().toISOString().replace(/[:.]/g, '-')}.json`),
  );
  return n;
}

/** One line for a person: what was rolled back and when. */
export function describeRollback(r: RollbackRecord): string {
  return `${r.lost} acknowledged events were rolled back (found by the ${r.by} at ${r.detectedAt}: the database ended at log position ${r.foundSeq}, the last recorded commit was ${r.recordedSeq})`;
}
