/**
 * `npm run bench -- privacy`: what observation and queries cost.
 * - Hook overhead per command in bash and zsh: the hook's own per-command work (PS0 expansion
 *   and the prompt function in bash; preexec and precmd in zsh) timed inside the shell with
 *   EPOCHREALTIME, against the same loop without the hook, in the same run. Goal p99 < 2 ms
 *   (Caro's target is 10 ms; atuin's hooks cost 20+ ms because they fork).
 * - Ingest: spool records to committed `terminal.command` events per second (100,000 records).
 * - Summary of a day holding 100,000 commands (goal < 1 s).
 * - Query round trip over 10 daemons on loopback TLS, through the HTTP API as `weft query`
 *   sends it (goal p99 < 50 ms; Caro's target is 500 ms).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assembleNode } from '../src/daemon/assemble.js';
import { hookScript, PrivacyPolicy, summarize } from '../src/privacy/index.js';
import { type ClusterNode, eventually, startCluster } from '../test/helpers/cluster.js';
import { writeSpool } from '../test/helpers/privacy-mesh.js';
import { tempDir } from '../test/helpers/tmp.js';
import { type BenchSection, fmt, percentile } from './harness.js';

const HOOK_ITERATIONS = Number(process.env.WEFT_PRIVACY_HOOK_RUNS ?? 3000);
const INGEST = Number(process.env.WEFT_PRIVACY_INGEST ?? 100_000);
const QUERIES = Number(process.env.WEFT_PRIVACY_QUERIES ?? 200);
const verdict = (ok: boolean) => (ok ? 'met' : 'not met');

/** Per-iteration µs of a loop in a shell, with and without the hook's per-command work. */
function hookCost(shell: 'bash' | 'zsh', dir: string): { withUs: number[]; withoutUs: number[] } | undefined {
  const spool = join(dir, `${shell}-spool`);
  mkdirSync(spool, { recursive: true, mode: 0o700 });
  const hook = join(dir, `${shell}-hook.sh`);
  writeFileSync(hook, hookScript(shell, { spoolDir: spool }));
  const script =
    shell === 'bash'
      ? `
set -o history; HISTFILE=/dev/null
source ${JSON.stringify(hook)}
_weft_bash_precmd   # the first prompt primes it
for ((i = 0; i < ${HOOK_ITERATIONS}; i++)); do
  t0=$EPOCHREALTIME; history -s "echo cmd $i"; : "\${PS0@P}"; : ; _weft_bash_precmd; t1=$EPOCHREALTIME
  printf 'w %s\\n' $(( 10#\${t1//[!0-9]/} - 10#\${t0//[!0-9]/} ))
  t0=$EPOCHREALTIME; history -s "echo cmd $i"; : ; t1=$EPOCHREALTIME
  printf 'o %s\\n' $(( 10#\${t1//[!0-9]/} - 10#\${t0//[!0-9]/} ))
done`
      : `
source ${JSON.stringify(hook)}
zmodload zsh/datetime
for ((i = 0; i < ${HOOK_ITERATIONS}; i++)); do
  t0=$EPOCHREALTIME; _weft_zsh_preexec "echo cmd $i" "echo cmd $i" "echo cmd $i"; : ; _weft_zsh_precmd; t1=$EPOCHREALTIME
  printf 'w %d\\n' $(( (t1 - t0) * 1000000 ))
  t0=$EPOCHREALTIME; : ; t1=$EPOCHREALTIME
  printf 'o %d\\n' $(( (t1 - t0) * 1000000 ))
done`;
  const args = shell === 'bash' ? ['--norc', '--noprofile', '-i', '-c', script] : ['-f', '-i', '-c', script];
  const r = spawnSync(shell, args, { encoding: 'utf8', env: { ...process.env, HOME: dir }, timeout: 120_000 });
  if (r.error || r.status !== 0) {
    process.stderr.write(`bench privacy: ${shell} hook loop failed: ${r.error?.message ?? r.stderr.slice(0, 300)}\n`);
    return undefined;
  }
  const withUs: number[] = [];
  const withoutUs: number[] = [];
  for (const line of r.stdout.split('\n')) {
    const [k, v] = line.split(' ');
    if (k === 'w') withUs.push(Number(v));
    else if (k === 'o') withoutUs.push(Number(v));
  }
  return { withUs: withUs.sort((a, b) => a - b), withoutUs: withoutUs.sort((a, b) => a - b) };
}

export default async function privacyBench(): Promise<BenchSection> {
  const t = tempDir('weft-bench-privacy-');
  const rows: BenchSection['rows'] = [];
  const results: Record<string, unknown> = {};
  try {
    for (const shell of ['bash', 'zsh'] as const) {
      const c = hookCost(shell, t.dir);
      if (!c) {
        rows.push({ measure: `${shell} hook per command`, value: 'not measured (shell missing or failed)', goal: '', verdict: '' });
        continue;
      }
      const base = percentile(c.withoutUs, 50);
      const p50 = (percentile(c.withUs, 50) - base) / 1000;
      const p99 = (percentile(c.withUs, 99) - base) / 1000;
      results[`${shell}Hook`] = { iterations: c.withUs.length, p50Ms: p50, p99Ms: p99, loopWithoutHookP50Us: base };
      rows.push({ measure: `${shell} hook per command p50 (loop without hook: ${fmt(base)} µs, same run)`, value: `${fmt(p50, 3)} ms`, goal: '', verdict: '' });
      rows.push({ measure: `${shell} hook per command p99`, value: `${fmt(p99, 3)} ms`, goal: shell === 'bash' ? '< 2 ms' : '', verdict: shell === 'bash' ? verdict(p99 < 2) : '' });
    }

    // Ingest and summary, on the daemon's own assembly.
    const dataDir = join(t.dir, 'node');
    mkdirSync(dataDir, { recursive: true });
    const spoolDir = join(t.dir, 'spool');
    const node = await assembleNode({
      dataDir,
      computer: 'bench',
      system: { trust: { overrides: { 'weft-observe': { rate: false } } } },
      privacy: { policy: new PrivacyPolicy(), observe: { spoolDirs: [spoolDir], scanEveryMs: 60_000 }, summarizeEveryMs: 0 },
    });
    await node.start();
    const dayStart = Math.floor(Date.now() / 86_400_000) * 86_400_000 - 86_400_000;
    const cmds = ['git status', 'git commit -m "x"', 'docker ps', 'kubectl get pods', 'npm test', 'cargo build', 'ls -la', 'curl https://example.test', 'vim notes.md', 'rm -rf ./build'];
    for (let f = 0; f < 10; f++) {
      writeSpool(
        spoolDir,
        `bash-${90_000 + f}-1.spool`,
        Array.from({ length: INGEST / 10 }, (_, i) => ({ command: `${cmds[(i + f) % cmds.length]} ${i}`, ts: dayStart + ((f * INGEST) / 10 + i) * (86_000_000 / INGEST), exit: i % 17 === 0 ? 1 : 0, durationMs: i % 500 })),
      );
    }
    const t0 = performance.now();
    await node.privacy.observer?.scan();
    await node.node.idle(600_000);
    const ingestS = (performance.now() - t0) / 1000;
    const stored = (node.node.ns.store.reader.prepare('SELECT COUNT(*) AS n FROM terminal_commands').get() as { n: number }).n;
    const ingestRate = stored / ingestS;
    rows.push({ measure: `ingest: spool → committed terminal.command (${fmt(stored)} records)`, value: `${fmt(ingestRate)} /s`, goal: '', verdict: '' });
    const times: number[] = [];
    let total = 0;
    for (let i = 0; i < 5; i++) {
      const s0 = performance.now();
      total = summarize(node.node.ns.store.reader, { nodeId: node.identity.nodeId, granularity: 'daily', start: dayStart, end: dayStart + 86_400_000, now: Date.now() }).total_commands;
      times.push(performance.now() - s0);
    }
    const summaryMs = percentile(times.sort((a, b) => a - b), 50);
    rows.push({ measure: `daily summary of ${fmt(total)} commands (median of 5)`, value: `${fmt(summaryMs, 1)} ms`, goal: '< 1000 ms', verdict: verdict(summaryMs < 1000) });
    results.ingest = { records: stored, perSecond: ingestRate };
    results.summary = { commands: total, medianMs: summaryMs };
    await node.stop();

    // Query round trip over 10 real daemons.
    const names = Array.from({ length: 10 }, (_, i) => `b${i + 1}`);
    // 210 queries in well under a minute: above the shipped 120 per peer per minute, so the bench raises it (said in the row).
    const c = await startCluster(
      join(t.dir, 'fleet'),
      names.map((computer) => ({ computer, cluster: 'bench', env: { WEFT_OBSERVE_SPOOL_DIR: join(t.dir, 'fleet', computer, 'spool'), WEFT_PRIVACY_QUERIES_PER_MINUTE: '10000' } })),
      { provider: 'tls' },
    );
    try {
      const nodes = names.map((n) => c.nodes[n] as ClusterNode);
      for (const [i, n] of nodes.entries()) {
        writeSpool(join(n.dataDir, 'spool'), `bash-${100 + i}-1.spool`, Array.from({ length: 500 }, (_, k) => ({ command: `${cmds[k % cmds.length]} ${k}`, ts: Date.now() - 3_600_000 + k * 1000 })));
        await eventually(async () => (await n.api.request<{ ingested: number }>('POST', '/api/privacy/observe/scan')) !== undefined && ((await n.api.request<{ stats: { ingested: number } }>('GET', '/api/privacy/observe')).stats.ingested === 500), 60_000, `${n.computer} ingested`);
      }
      const q = nodes[0] as ClusterNode;
      await eventually(async () => (await q.api.request<{ peers: Array<{ state: string }> }>('GET', '/api/mesh/status')).peers.filter((p) => p.state === 'connected').length === 9, 60_000, 'links up');
      const rtt: number[] = [];
      const inner: number[] = [];
      for (let i = 0; i < QUERIES + 10; i++) {
        const s0 = performance.now();
        const r = await q.api.request<{ answered: number; elapsed_ms: number }>('POST', '/api/privacy/query', { type: i % 2 ? 'tool_usage' : 'safety_posture', range: '1d' });
        const ms = performance.now() - s0;
        if (r.answered !== 10) throw new Error(`query ${i}: ${r.answered} of 10 answered`);
        if (i >= 10) {
          rtt.push(ms);
          inner.push(r.elapsed_ms);
        }
      }
      rtt.sort((a, b) => a - b);
      inner.sort((a, b) => a - b);
      rows.push({ measure: `query over 10 daemons (TLS), HTTP round trip p50 (${QUERIES} queries back to back; privacy.queries_per_minute raised from 120)`, value: `${fmt(percentile(rtt, 50), 1)} ms`, goal: '', verdict: '' });
      rows.push({ measure: 'query over 10 daemons, HTTP round trip p99', value: `${fmt(percentile(rtt, 99), 1)} ms`, goal: '< 50 ms', verdict: verdict(percentile(rtt, 99) < 50) });
      rows.push({ measure: 'query over 10 daemons, fan-out + merge inside the node p99', value: `${fmt(percentile(inner, 99), 1)} ms`, goal: '', verdict: '' });
      results.query = { nodes: 10, queries: QUERIES, p50Ms: percentile(rtt, 50), p99Ms: percentile(rtt, 99), innerP50Ms: percentile(inner, 50), innerP99Ms: percentile(inner, 99) };
    } finally {
      await c.stopAll();
    }
    results.goals = { hookP99Ms: 2, summaryMs: 1000, queryP99Ms: 50 };
    return { title: 'Privacy: hook overhead, ingest, summaries, mesh queries', rows, results };
  } finally {
    t.cleanup();
  }
}
