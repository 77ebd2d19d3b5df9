/**
 * `npm run bench -- domains` (issue 19): what domain pipelines cost the node, and how they isolate.
 * - System pipeline cost: events/s of the system pipeline (six stages, then the domain router)
 *   on a node with no domains against the same node with 4 domains of 3 cartridges each (two on
 *   level 0, one depending on both; every cartridge passes the event on, the last alerts on every
 *   100th), timed until `node.idle()` (every event committed by the system pipeline), not until
 *   the domains caught up. Alternating rounds, the median of each. The lanes run on the same
 *   cores while the system pipeline works: that competition is part of the figure. Goal: with
 *   domains ≥ 0.80 × without. The domains' drain afterwards (`runner.idle()`) is reported too.
 * - Isolation: a domain whose cartridge busy-waits 2 s per event and one whose cartridge throws
 *   run next to a fast one; emit → the fast domain's `domains.alert` visible in the
 *   notifications, p50/p99 over events spaced out. Goal < 100 ms.
 * - Level concurrency: two independent 200 ms cartridges on one DAG level; the level's wall
 *   time per event from the alerts' start/end. Goal < 300 ms (one after the other: 400 ms).
 */
import { systemPipeline } from '../src/cartridges/index.js';
import { AutonomyMatrix, createDomainRunner, type DomainRunner } from '../src/domains/index.js';
import { createNode, type WeftNode } from '../src/node/index.js';
import { silentLogger, systemClock } from '../src/util/index.js';
import { alerting, TODO, todo, writeCartridge, writeDomain } from '../test/domains/fixtures.js';
import { tempDir } from '../test/helpers/tmp.js';
import { type BenchSection, fmt, percentile } from './harness.js';

const N = Number(process.env.WEFT_BENCH_DOMAINS_EVENTS ?? 20_000);
const ROUNDS = Number(process.env.WEFT_BENCH_DOMAINS_ROUNDS ?? 5);
const DOMAINS = 4;
const WARMUP = 1000;
const ISOLATION_EVENTS = Number(process.env.WEFT_BENCH_DOMAINS_ISOLATION_EVENTS ?? 20);
const ISOLATION_SPACING_MS = 2000;
const LEVEL_EVENTS = 5;
const verdict = (ok: boolean) => (ok ? 'met' : 'not met');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: readonly number[]) => percentile([...xs].sort((a, b) => a - b), 50);
const SUBSCRIBE = `[subscribe]\ndomains = []\nevents = ["domain.software-development.*"]\n`;

/** Passes the event on; with `alerts`, also alerts on every 100th todo. */
function cheap(alerts: boolean): string {
  if (!alerts) return 'function process(event) { return event; }';
  return `function process(event, ctx) {
  var s = String(event.payload.slug), n = Number(s.slice(s.lastIndexOf('-') + 1));
  if (n % 100 === 0) ctx.emit('domains.alert', { title: 'every 100th todo', body: s });
  return event;
}`;
}

/** Busy-waits `ms`, then alerts with the todo's slug and its start and end times. */
function spin(title: string, ms: number): string {
  return `function process(event, ctx) {
  var start = Date.now(); while (Date.now() - start < ${ms}) {}
  ctx.emit('domains.alert', { title: ${JSON.stringify(title)}, body: JSON.stringify({ slug: String(event.payload.slug), start: start, end: Date.now() }) });
  return event;
}`;
}

interface Rig {
  node: WeftNode;
  runner: DomainRunner;
  close: () => Promise<void>;
}

/** A node as the daemon builds it (system pipeline, the router last, the autonomy matrix at its L3 default), domains written by `setup`. */
async function rig(setup: (dataDir: string) => void): Promise<Rig> {
  const t = tempDir('weft-bench-domains-');
  setup(t.dir);
  // One producer at full speed: a rate it cannot hit, so the limiter runs on every event but throttles nothing.
  const node = await createNode({
    dataDir: t.dir,
    computer: 'bench',
    cartridges: (_defaults, stores) => systemPipeline({ trust: { rate: { perSecond: 1e9, burst: 1e9 } } })(stores),
  });
  await node.start();
  const runner = createDomainRunner(
    { dataDir: t.dir },
    { node, logger: silentLogger, clock: systemClock, autonomy: new AutonomyMatrix(node.ns.store, { globalDefault: 'L3' }), rolesOf: () => undefined },
  );
  node.pipeline.replace([...node.pipeline.cartridges, runner.stage]);
  try {
    await runner.start();
  } catch (err) {
    await node.stop();
    t.cleanup();
    throw err;
  }
  return {
    node,
    runner,
    close: async () => {
      await runner.stop();
      await node.stop();
      t.cleanup();
    },
  };
}

/** Emits `n` todos in chunks of 500, 8 chunks in flight. */
async function emitTodos(node: WeftNode, run: string, from: number, n: number): Promise<void> {
  const inflight: Promise<unknown>[] = [];
  for (let i = from; i < from + n; i += 500) {
    const batch = [];
    for (let j = i; j < Math.min(from + n, i + 500); j++) batch.push({ event: TODO, payload: { slug: `${run}-${j}`, title: `Todo number ${j}` }, source: 'bench' });
    inflight.push(node.emitMany(batch));
    if (inflight.length >= 8) await inflight.shift();
  }
  await Promise.all(inflight);
}

interface Round {
  systemPerSec: number;
  /** From the end of the system pipeline's work until every lane had finished. */
  drainMs: number;
  /** From the first emit until every lane had finished. */
  domainsMs: number;
}

async function round(domains: number, run: string): Promise<Round> {
  const r = await rig((dir) => {
    for (let d = 1; d <= domains; d++) {
      const pipe = writeDomain(dir, `d${d}`, SUBSCRIBE);
      writeCartridge(pipe, 'left', cheap(false), { consumes: [TODO] });
      writeCartridge(pipe, 'right', cheap(false), { consumes: [TODO] });
      writeCartridge(pipe, 'join', cheap(true), { consumes: [TODO], dependencies: ['left', 'right'] });
    }
  });
  try {
    // Warm the JITs (and the sandboxes) first, and start from an empty backlog.
    await emitTodos(r.node, run, N, WARMUP);
    await r.node.idle(600_000);
    if (!(await r.runner.idle(600_000))) throw new Error('bench domains: the warm-up did not drain');
    const t0 = performance.now();
    await emitTodos(r.node, run, 0, N);
    if (!(await r.node.idle(600_000))) throw new Error('bench domains: the system pipeline did not catch up');
    const t1 = performance.now();
    if (!(await r.runner.idle(600_000))) throw new Error('bench domains: the domains did not drain');
    const t2 = performance.now();
    const lanes = r.runner.status();
    for (const l of lanes) {
      // Every domain saw every todo and alerted on every 100th: the bench measured real work.
      if (l.processed !== N + WARMUP || l.failures !== 0 || l.emitted !== Math.ceil((N + WARMUP) / 100)) {
        throw new Error(`bench domains: lane ${l.scope} processed ${l.processed}, failed ${l.failures}, emitted ${l.emitted} (${l.lastError ?? 'no error'})`);
      }
    }
    if (lanes.length !== domains) throw new Error(`bench domains: ${lanes.length} lanes running, ${domains} expected`);
    return { systemPerSec: N / ((t1 - t0) / 1000), drainMs: t2 - t1, domainsMs: t2 - t0 };
  } finally {
    await r.close();
  }
}

/** Resolves with the time the fast domain's alert for `slug` became visible. */
function alertSeen(node: WeftNode, domain: string, slug: string, timeoutMs: number): Promise<number> {
  const seen = () => node.ns.notifications.list({ eventType: 'domains.alert', domain, limit: 20 }).items.some((n) => n.payload.body === slug);
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    let poll: NodeJS.Timeout | undefined;
    const done = (err?: Error) => {
      off();
      clearTimeout(timer);
      clearInterval(poll);
      if (err) reject(err);
      else resolve(performance.now());
    };
    // Checked after each commit (where it becomes visible), and polled in case a commit is not ours to hear.
    const off = node.onCommitted(() => {
      if (seen()) done();
    });
    poll = setInterval(() => {
      if (seen()) done();
    }, 5);
    timer = setTimeout(() => done(new Error(`bench domains: no alert from ${domain} for ${slug} within ${timeoutMs} ms`)), timeoutMs);
  });
}

async function isolation(): Promise<{ samples: number[]; slowDone: number; brokenFailures: number; brokenSuspended: boolean }> {
  const r = await rig((dir) => {
    writeCartridge(writeDomain(dir, 'slow', `timeout_ms = 5000\n${SUBSCRIBE}`), 'sleeper', spin('slow done', 2000));
    writeCartridge(writeDomain(dir, 'broken', SUBSCRIBE), 'boom', `function process() { throw new Error('kaboom'); }`);
    writeCartridge(writeDomain(dir, 'fast', SUBSCRIBE), 'quick', alerting('fast saw it'));
  });
  try {
    const samples: number[] = [];
    for (let i = 0; i <= ISOLATION_EVENTS; i++) {
      const slug = `iso-${i}`;
      const t0 = performance.now();
      const seen = alertSeen(r.node, 'fast', slug, 10_000);
      await r.node.emitMany([todo(slug)]);
      const at = await seen;
      if (i > 0) samples.push(at - t0); // the first one warms up
      await sleep(Math.max(0, ISOLATION_SPACING_MS - (performance.now() - t0)));
    }
    const broken = r.runner.status().find((l) => l.scope === 'broken');
    const slowDone = r.node.ns.notifications.list({ eventType: 'domains.alert', domain: 'slow', limit: 500 }).items.length;
    return {
      samples: samples.sort((a, b) => a - b),
      slowDone,
      brokenFailures: broken?.failures ?? 0,
      brokenSuspended: r.node.ns.notifications.list({ eventType: 'system.cartridge.failed', limit: 200 }).items.some((n) => n.payload.suspended === true),
    };
  } finally {
    // Stopping waits for the slow domain's batch in flight (at most a few of its 2 s events).
    await r.close();
  }
}

async function levelConcurrency(): Promise<{ levelMs: number[]; overlapped: boolean }> {
  const r = await rig((dir) => {
    const d = writeDomain(dir, 'par', `timeout_ms = 2000\n${SUBSCRIBE}`);
    writeCartridge(d, 'left', spin('left', 200));
    writeCartridge(d, 'right', spin('right', 200));
  });
  try {
    const levelMs: number[] = [];
    let overlapped = true;
    for (let i = 0; i <= LEVEL_EVENTS; i++) {
      const slug = `par-${i}`;
      await r.node.emitMany([todo(slug)]);
      const spans = () =>
        r.node.ns.notifications
          .list({ eventType: 'domains.alert', domain: 'par', limit: 50 })
          .items.map((n) => JSON.parse(String(n.payload.body)) as { slug: string; start: number; end: number })
          .filter((s) => s.slug === slug);
      const deadline = Date.now() + 10_000;
      let got = spans();
      while (got.length < 2) {
        if (Date.now() > deadline) throw new Error(`bench domains: the level did not finish ${slug}`);
        await sleep(5);
        got = spans();
      }
      const a = got[0] as { start: number; end: number };
      const b = got[1] as { start: number; end: number };
      if (i === 0) continue; // the first one warms up
      overlapped &&= a.start < b.end && b.start < a.end;
      levelMs.push(Math.max(a.end, b.end) - Math.min(a.start, b.start));
    }
    return { levelMs, overlapped };
  } finally {
    await r.close();
  }
}

export default async function domainsBench(): Promise<BenchSection> {
  const rows: BenchSection['rows'] = [];
  const results: Record<string, unknown> = {};

  // 1. The system pipeline's cost, alternating rounds.
  const without: Round[] = [];
  const withDomains: Round[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    // A pause lets the previous round's sandbox processes exit and its files go before the next one is timed.
    await sleep(1000);
    without.push(await round(0, `none${i}`));
    await sleep(1000);
    withDomains.push(await round(DOMAINS, `dom${i}`));
    process.stderr.write(`bench domains: round ${i + 1}/${ROUNDS}: ${fmt(without[i]?.systemPerSec ?? 0)} vs ${fmt(withDomains[i]?.systemPerSec ?? 0)} events/s, domains drained ${fmt(withDomains[i]?.drainMs ?? 0)} ms later\n`);
  }
  const base = median(without.map((x) => x.systemPerSec));
  const loaded = median(withDomains.map((x) => x.systemPerSec));
  const ratio = loaded / base;
  const drainMs = median(withDomains.map((x) => x.drainMs));
  const domainsMs = median(withDomains.map((x) => x.domainsMs));
  const perDomain = N / (domainsMs / 1000);
  rows.push({ measure: `system pipeline, no domains: ${fmt(N)} todos until node.idle() (median of ${ROUNDS})`, value: `${fmt(base)} events/s`, goal: '', verdict: '' });
  rows.push({ measure: `system pipeline with ${DOMAINS} domains × 3 cartridges (lanes running on the same cores), same run`, value: `${fmt(loaded)} events/s`, goal: '', verdict: '' });
  // Each round's pair, to show how far the noise of this machine moves the figure.
  const pairs = withDomains.map((x, i) => x.systemPerSec / (without[i] as Round).systemPerSec);
  rows.push({ measure: `with domains / without (medians; the ${ROUNDS} rounds' own pairs ${fmt(Math.min(...pairs), 2)}–${fmt(Math.max(...pairs), 2)})`, value: `${fmt(ratio, 2)} (cost ${fmt((1 - ratio) * 100, 1)}%)`, goal: '≥ 0.80', verdict: verdict(ratio >= 0.8) });
  rows.push({ measure: 'domains: backlog left when the system pipeline was idle, drained in (median)', value: `${fmt(drainMs)} ms`, goal: '', verdict: '' });
  rows.push({ measure: `domains: each domain's ${fmt(N)} todos through its 3 cartridges, emit → runner.idle()`, value: `${fmt(perDomain)} events/s per domain (${fmt(perDomain * DOMAINS)} domain events/s)`, goal: '', verdict: '' });
  results.systemPipeline = {
    events: N,
    warmup: WARMUP,
    rounds: ROUNDS,
    domains: DOMAINS,
    cartridgesPerDomain: 3,
    withoutEventsPerSec: base,
    withEventsPerSec: loaded,
    ratio,
    drainMs,
    domainsMs,
    domainEventsPerSecPerDomain: perDomain,
    pairRatios: pairs,
    without: without.map((x) => x.systemPerSec),
    with: withDomains.map((x) => x.systemPerSec),
    drains: withDomains.map((x) => x.drainMs),
  };

  // 2. Isolation.
  const iso = await isolation();
  const p50 = percentile(iso.samples, 50);
  const p99 = percentile(iso.samples, 99);
  rows.push({ measure: `isolation: emit → fast domain's alert visible, next to a 2 s domain and a throwing one, p50 (${iso.samples.length} events, ${ISOLATION_SPACING_MS / 1000} s apart)`, value: `${fmt(p50, 1)} ms`, goal: '', verdict: '' });
  rows.push({ measure: `isolation: the same, p99 (of ${iso.samples.length}: the slowest)`, value: `${fmt(p99, 1)} ms`, goal: '< 100 ms', verdict: verdict(p99 < 100) });
  rows.push({ measure: 'isolation: meanwhile the slow domain finished / the broken one failed (suspended after 5 in a row)', value: `${iso.slowDone} of ${iso.samples.length + 1} / ${iso.brokenFailures} failures${iso.brokenSuspended ? ', suspended' : ''}`, goal: '', verdict: '' });
  results.isolation = { events: iso.samples.length, spacingMs: ISOLATION_SPACING_MS, p50Ms: p50, p99Ms: p99, samples: iso.samples, slowDone: iso.slowDone, brokenFailures: iso.brokenFailures, brokenSuspended: iso.brokenSuspended };

  // 3. Level concurrency.
  const lv = await levelConcurrency();
  const lvMed = median(lv.levelMs);
  const lvMax = Math.max(...lv.levelMs);
  rows.push({ measure: `level of two independent 200 ms cartridges, wall time per event, median (${lv.levelMs.length} events; one after the other: 400 ms)`, value: `${fmt(lvMed)} ms`, goal: '', verdict: '' });
  rows.push({ measure: `level wall time, slowest${lv.overlapped ? '' : ' (the two did NOT overlap every time)'}`, value: `${fmt(lvMax)} ms`, goal: '< 300 ms', verdict: verdict(lvMax < 300 && lv.overlapped) });
  results.level = { events: lv.levelMs.length, medianMs: lvMed, maxMs: lvMax, samples: lv.levelMs, overlapped: lv.overlapped };

  results.goals = { ratioMin: 0.8, isolationP99Ms: 100, levelMs: 300 };
  return { title: 'Domains: system pipeline cost, isolation, level concurrency', rows, results };
}
