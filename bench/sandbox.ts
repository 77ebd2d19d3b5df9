/**
 * Per-event overhead of a trivial sandboxed cartridge against the same logic as a plain
 * in-process function, with events batched across the process boundary (issue 6: goal
 * ≤ 20 µs per event at batch 256).
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createSandbox } from '../src/sovereignty/index.js';
import { silentLogger, systemClock } from '../src/util/index.js';
import { type BenchSection, fmt } from './harness.js';

const SOURCE = 'function process(event, ctx) { event.payload.n = (event.payload.n | 0) + 1; return event; }';

function builtIn(event: { payload: { n: number } }): { payload: { n: number } } {
  event.payload.n = (event.payload.n | 0) + 1;
  return event;
}

function envelope(i: number) {
  return {
    id: `evt-${i}`,
    event: 'build.finished',
    version: 1,
    source: 'bench',
    timestamp: '2026-01-01T00:00:00.000Z',
    level: 2,
    domain: 'dev',
    entity: `build:${i}`,
    description: `build ${i} finished`,
    visibility: 'local',
    payload: { n: i },
  };
}

const GOAL_US = 20;

export default async function bench(): Promise<BenchSection> {
  const rows: BenchSection['rows'] = [];
  const results: Record<string, unknown> = {};

  // The built-in baseline: the same logic, called in process.
  const events = Array.from({ length: 4096 }, (_, i) => envelope(i));
  for (let i = 0; i < 100_000; i++) builtIn(events[i % events.length] as (typeof events)[number]);
  const n = 1_000_000;
  let t0 = performance.now();
  for (let i = 0; i < n; i++) builtIn(events[i % events.length] as (typeof events)[number]);
  const builtInUs = ((performance.now() - t0) * 1000) / n;
  rows.push({
    mode: 'built-in function',
    batch: '-',
    'µs/event': fmt(builtInUs, 3),
    'events/s': fmt(1e6 / builtInUs),
    goal: '',
  });
  results.builtInUsPerEvent = builtInUs;

  const sandbox = createSandbox({ timeoutMs: 1000 }, { logger: silentLogger, clock: systemClock });
  await sandbox.start();
  try {
    t0 = performance.now();
    await sandbox.load({
      manifest: {
        name: 'bench-trivial',
        version: '1.0.0',
        author: 'bench',
        description: 'adds one',
        entryPoint: 'process',
        dependencies: [],
        consumes: ['*'],
        emits: [],
      },
      source: SOURCE,
    });
    const coldStartMs = performance.now() - t0;
    const status = sandbox.status();
    results.coldStartMs = coldStartMs;
    results.childRssMb = status.type === 'running' ? status.rss / 1048576 : null;

    for (const batch of [1, 16, 256]) {
      const input = Array.from({ length: batch }, (_, i) => envelope(i));
      const deadline = performance.now() + 300;
      while (performance.now() < deadline) await sandbox.process('bench-trivial', input);
      const rounds = Math.max(20, Math.ceil(40_000 / batch));
      const started = performance.now();
      let failed = 0;
      for (let r = 0; r < rounds; r++) {
        for (const res of await sandbox.process('bench-trivial', input)) if (!res.ok) failed++;
      }
      const us = ((performance.now() - started) * 1000) / (rounds * batch);
      const overhead = us - builtInUs;
      rows.push({
        mode: 'sandboxed',
        batch,
        'µs/event': fmt(us, 2),
        'events/s': fmt(1e6 / us),
        goal:
          batch === 256 ? (overhead <= GOAL_US ? `ok (≤ ${GOAL_US} µs)` : `MISSED (> ${GOAL_US} µs)`) : '',
      });
      results[`batch${batch}`] = { usPerEvent: us, overheadUs: overhead, roundTripUs: us * batch, failed };
    }
    rows.push({
      mode: 'cold start (load → first answer)',
      batch: '-',
      'µs/event': `${fmt(coldStartMs, 0)} ms`,
      'events/s': '',
      goal: `child RSS ${fmt(Number(results.childRssMb ?? 0), 0)} MB`,
    });
  } finally {
    await sandbox.stop();
  }
  return { title: 'Sandboxed cartridge overhead (isolated-vm in a child process)', rows, results };
}

// Run directly: `node --import tsx bench/sandbox.ts` or `node dist/bench/sandbox.js`.
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const section = await bench();
  console.log(section.title);
  console.table(section.rows);
  console.log(JSON.stringify(section.results));
}
