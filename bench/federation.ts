/**
 * `npm run bench -- federation` (issue 17): one section, one part per organ, each in a file of
 * its own (its owner's), so the parts change without touching each other:
 *   - mirror: throughput of a mirror mount vs the same events by visibility push (federation-mirror.ts)
 *   - invoke: round trip p50/p99 on loopback vs NATS request-reply (federation-invoke.ts)
 * `WEFT_BENCH_FEDERATION=mirror` (or `invoke`) runs one part.
 */
import type { BenchSection } from './harness.js';

const PARTS: Array<[string, () => Promise<BenchSection>]> = [
  ['mirror', async () => (await import('./federation-mirror.js')).federationMirrorBench()],
  ['invoke', async () => (await import('./federation-invoke.js')).federationInvokeBench()],
];

export default async function federation(): Promise<BenchSection> {
  const only = process.env.WEFT_BENCH_FEDERATION;
  const rows: BenchSection['rows'] = [];
  const results: Record<string, unknown> = {};
  const titles: string[] = [];
  for (const [name, run] of PARTS) {
    if (only && !only.split(',').includes(name)) continue;
    process.stderr.write(`bench federation: ${name}...\n`);
    const s = await run();
    titles.push(s.title.replace(/^Federation: /, ''));
    rows.push(...s.rows);
    results[name] = s.results;
  }
  return { title: `Federation: ${titles.join('; ')}`, rows, results };
}
