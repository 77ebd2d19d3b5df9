import { readFileSync } from 'node:fs';
/** What every benchmark module returns; bench/run.ts prints the rows and saves `results`. */
export interface BenchSection {
  title: string;
  /** Rows of a printed table. */
  rows: Array<Record<string, string | number>>;
  /** Machine-readable figures, written to bench/results.json under the section's key. */
  results: Record<string, unknown>;
}

export type BenchModule = () => Promise<BenchSection>;

/** Resident memory of a running process, MiB (from /proc). */
export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/**
 * Emits `n` events in chunks of 500 (8 chunks in flight) and resolves with events/s once
 * `done()` reports that all of them were processed.
 */
export async function driveThroughput(
  node: { emitMany(inputs: readonly unknown[]): Promise<unknown>; onCommitted(fn: (b: { entries: number; changes: unknown[] }) => void): () => void },
  n: number,
  input: (i: number) => unknown,
  count: (b: { entries: number; changes: unknown[] }) => number,
): Promise<number> {
  let done = 0;
  let resolveDone: () => void = () => undefined;
  const allDone = new Promise<void>((r) => {
    resolveDone = r;
  });
  const off = node.onCommitted((b) => {
    done += count(b);
    if (done >= n) resolveDone();
  });
  const t0 = performance.now();
  const inflight: Promise<unknown>[] = [];
  for (let i = 0; i < n; i += 500) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 500); j++) batch.push(input(j));
    inflight.push(node.emitMany(batch));
    if (inflight.length >= 8) await inflight.shift();
  }
  await Promise.all(inflight);
  await allDone;
  off();
  return n / ((performance.now() - t0) / 1000);
}
