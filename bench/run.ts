/**
 * `npm run bench`: runs every benchmark section, prints a table per section and writes
 * bench/results.json. `npm run bench -- pipeline` runs only sections whose name matches.
 */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { goalRows } from './goals.js';
import type { BenchModule } from './harness.js';

const SECTIONS: Array<[string, () => Promise<{ default: BenchModule }>]> = [
  ['pipeline', () => import('./pipeline.js')],
  ['sandbox', () => import('./sandbox.js')],
  ['transport', () => import('./transport.js')],
  ['mesh', () => import('./mesh.js')],
  ['api', () => import('./api.js')],
  ['volume', () => import('./volume.js')],
  ['compare', () => import('./compare.js')],
  ['cartridges', () => import('./cartridges.js')],
  ['startup', () => import('./startup.js')],
  ['privacy', () => import('./privacy.js')],
  ['dashboard', () => import('./dashboard.js')],
  ['domains', () => import('./domains.js')],
  ['signals', () => import('./signals.js')],
  ['federation', () => import('./federation.js')],
  ['recovery', () => import('./recovery.js')],
];

const filter = process.argv.slice(2);
const results: Record<string, unknown> = {
  date: new Date().toISOString(),
  node: process.version,
  cores: cpus().length,
  cpu: cpus()[0]?.model,
};
for (const [name, load] of SECTIONS) {
  if (filter.length > 0 && !filter.some((f) => name.includes(f))) continue;
  process.stderr.write(`bench: ${name}...\n`);
  const mod = await load();
  const section = await mod.default();
  console.log(`\n## ${section.title}`);
  console.table(section.rows);
  results[name] = section.results;
}
const goals = goalRows(results);
if (goals.length > 0) {
  console.log('\n## Performance goals (figures of this run; each against its peer or ceiling measured in the same run)');
  console.table(goals);
  results.goals = goals;
}
writeFileSync('bench/results.json', `${JSON.stringify(results, null, 2)}\n`);
console.log('\nwrote bench/results.json');
