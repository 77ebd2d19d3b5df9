/** What every benchmark module returns; bench/run.ts prints the rows and saves `results`. */
export interface BenchSection {
  title: string;
  /** Rows of a printed table. */
  rows: Array<Record<string, string | number>>;
  /** Machine-readable figures, written to bench/results.json under the section's key. */
  results: Record<string, unknown>;
}

export type BenchModule = () => Promise<BenchSection>;

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}
