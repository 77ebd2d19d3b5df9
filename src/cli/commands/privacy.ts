/** CLI: shell observation, trust levels, summaries and aggregate queries (the privacy layer). */
import { type Command, Option } from 'commander';
import { WeftError } from '../../errors/index.js';
import { type CliContext, PAGE_LIMIT } from '../context.js';
import { table } from '../format.js';

type Row = Record<string, unknown>;
const SHELLS = ['bash', 'zsh', 'fish', 'sh'] as const;
const LEVELS = ['untrusted', 'share_to', 'query_from', 'peer', 'supervisor'] as const;
const QUERIES = ['tool-usage', 'safety-posture', 'activity-patterns', 'anomalies', 'node-health'] as const;

/** The privacy module, loaded when a command needs it (the rest of the CLI never pays for it). */
const privacyModule = () => import('../../privacy/index.js');

export function privacyCommands(ctx: CliContext): void {
  const { program, client, out, cfg, int } = ctx;
  const get = async <T>(path: string) => (await client()).request<T>('GET', path);
  const post = async <T>(path: string, body: unknown = {}) => (await client()).request<T>('POST', path, body);
  const home = () => process.env.HOME ?? '';
  const spoolDir = async () => {
    const c = cfg();
    const { defaultSpoolDir } = await privacyModule();
    return { dir: c.observe.spool_dir ?? defaultSpoolDir(process.env, c.data_dir), dataDir: c.data_dir };
  };

  const observe = program
    .command('observe')
    .description('shell observation: a hook records each command you type into a spool the daemon reads (secrets redacted, never shared)');
  observe
    .command('install')
    .description('print the hook for a shell, or with --write add it to the shell\'s rc file (idempotent)')
    .addOption(new Option('--shell <shell>', 'which shell').choices(SHELLS).makeOptionMandatory())
    .option('--write', 'add (or update) the hook block in the rc file instead of printing it')
    .option('--rc-file <path>', 'rc file to edit (default: ~/.bashrc, ~/.zshrc, ~/.config/fish/conf.d/weft-observe.fish, ~/.shrc)')
    .action(async (o: { shell: (typeof SHELLS)[number]; write?: boolean; rcFile?: string }) => {
      const p = await privacyModule();
      const { dir, dataDir } = await spoolDir();
      // Printed or written, this hook writes there: the node reads that spool from now on.
      p.rememberSpoolDir(dataDir, dir);
      if (!o.write) {
        out(p.hookScript(o.shell, { spoolDir: dir }), { shell: o.shell, spoolDir: dir, hook: p.hookScript(o.shell, { spoolDir: dir }) });
        return;
      }
      const r = p.installHook(o.shell, { spoolDir: dir, home: home(), ...(o.rcFile ? { rcFile: o.rcFile } : {}) });
      const next = o.shell === 'fish' ? 'open a new fish' : `open a new ${o.shell} or run: source ${r.rcFile}`;
      out(
        `${r.action}: the weft observe hook in ${r.rcFile}\n  commands go to ${dir} (RAM; the daemon redacts secrets before anything is stored)\n  ${next}; commands starting with a space are never recorded`,
        { ...r, spoolDir: dir },
      );
    });
  observe
    .command('uninstall')
    .description('remove the hook block from a shell\'s rc file')
    .addOption(new Option('--shell <shell>', 'which shell').choices(SHELLS).makeOptionMandatory())
    .option('--rc-file <path>', 'rc file to edit')
    .action(async (o: { shell: (typeof SHELLS)[number]; rcFile?: string }) => {
      const p = await privacyModule();
      const r = p.uninstallHook(o.shell, { home: home(), ...(o.rcFile ? { rcFile: o.rcFile } : {}) });
      out(r.changed ? `removed the weft observe hook from ${r.rcFile} (open a new shell)` : `no weft observe hook in ${r.rcFile}`, r);
    });
  observe
    .command('status')
    .description('which shells are hooked, where they write, and what the daemon has read')
    .action(async () => {
      const p = await privacyModule();
      const hooks = p.hookStatus({ home: home() });
      let daemon: { enabled: boolean; stats: Row | null } | { error: string };
      try {
        daemon = await get<{ enabled: boolean; stats: Row | null }>('/api/privacy/observe');
      } catch (err) {
        daemon = { error: (err as Error).message };
      }
      const rows = hooks.map((h) => ({ shell: h.shell, hooked: h.installed ? (h.differs ? 'yes, not this version\'s' : 'yes') : 'no', rc: h.rcFile, spool: h.spoolDir ?? '-', ...(h.limits ? { note: h.limits } : {}) }));
      let stale = '';
      for (const h of hooks.filter((x) => x.installed && x.differs)) {
        stale += `the ${h.shell} hook in ${h.rcFile} is not the one this Weft installs (an older one, or edited by hand): run 'weft observe install --shell ${h.shell} --write' to replace it, then open a new shell\n`;
      }
      let d = '';
      if ('error' in daemon) d = `daemon: not reachable (${daemon.error}); the spool keeps commands until it runs`;
      else if (!daemon.enabled) d = 'daemon: observation is off (observe.enabled = false)';
      else {
        const s = daemon.stats as Row;
        const dirs = s.spoolDirs as string[];
        d = `daemon: ${dirs.length ? `reading ${dirs.join(', ')}` : "reads no spool yet: no hook was installed for this node ('weft observe install --shell bash --write')"}\n  ingested ${s.ingested}, excluded ${s.excluded}, leading space ${s.leadingSpace}, secrets redacted ${s.redacted}, refused ${s.refused}`;
        for (const p of (s.problems as string[] | undefined) ?? []) d += `\n  problem: ${p}`;
      }
      out(`${table(rows)}\n${stale}${d}`, { hooks, daemon });
    });

  const trust = program.command('trust').description('trust levels of peers: what each may receive from and ask of this node');
  trust
    .command('list')
    .description('each peer\'s level, the rule that set it, and whether it receives summaries or may query')
    .action(async () => {
      const r = await get<{ peers: Row[] }>('/api/privacy/trust');
      out(
        table(r.peers.map((p) => ({ peer: p.computer, fingerprint: p.fingerprint, level: p.level, 'set by': p.rule, summaries: p.receivesSummaries ? 'yes' : 'no', query: p.mayQuery ? 'yes' : 'no' }))),
        r,
      );
    });
  trust
    .command('set <peer> <level>')
    .description(`set a peer's level at run time: <peer> is a name, fingerprint or node id from 'weft trust list', <level> one of ${LEVELS.join(', ')}; stored and audited (TrustChanged)`)
    .option('--reason <text>', 'why, for the audit log')
    .action(async (peer: string, level: string, o: { reason?: string }) => {
      if (!(LEVELS as readonly string[]).includes(level)) throw new WeftError('WEFT_VALIDATION', `trust level '${level}' is not one of ${LEVELS.join(', ')}`);
      const r = await post<Row>('/api/privacy/trust', { peer, level, ...(o.reason ? { reason: o.reason } : {}) });
      out(r.unchanged ? `${String(r.computer)}: already ${r.to} (set at run time); nothing changed` : `${String(r.computer)}: ${r.from} → ${r.to}`, r);
    });
  trust
    .command('reset <peer>')
    .description('forget the level set at run time: the config decides again')
    .action(async (peer: string) => {
      const r = await post<Row>('/api/privacy/trust', { peer, level: null });
      out(r.unchanged ? `${String(r.computer)}: no level set at run time; ${r.to} (${r.rule})` : `${String(r.computer)}: ${r.from} → ${r.to} (${r.rule})`, r);
    });

  const summaries = program.command('summaries').description('signed activity summaries: counts per category, hour and risk — never a command');
  summaries
    .command('show')
    .description('preview exactly what this node would share for a period, and with whom')
    .addOption(new Option('--period <p>', 'hour, day or week').choices(['hour', 'day', 'week']).default('day'))
    .option('--at <iso>', 'a time inside the period (default: now)')
    .action(async (o: { period: string; at?: string }) => {
      const r = await get<{ summary: Row; signer: string; recipients: string[]; sharing: boolean; withheld: string[]; note: string }>(
        `/api/privacy/summaries/preview?period=${o.period}${o.at ? `&at=${encodeURIComponent(o.at)}` : ''}`,
      );
      out(`${formatSummary(r.summary)}\nsigned by ${r.signer}; ${r.note}${r.withheld.length ? `\nwithheld categories: ${r.withheld.join(', ')}` : ''}\n(--json prints it exactly as it would be sent)`, r);
    });
  summaries
    .command('list')
    .description('summaries this node generated, newest first (and whether they were shared)')
    .addOption(new Option('--period <p>', 'only hour, day or week').choices(['hour', 'day', 'week']))
    .option('--limit <n>', 'how many, 1 to 1000', int('--limit', PAGE_LIMIT), 20)
    .action(async (o: { period?: string; limit: number }) => {
      const r = await get<{ items: Array<{ id: string; granularity: string; periodStart: string; summary: { total_commands: number }; sharedAt: number | null }> }>(
        `/api/privacy/summaries?limit=${o.limit}${o.period ? `&period=${o.period}` : ''}`,
      );
      out(table(r.items.map((s) => ({ id: s.id.slice(0, 12), period: s.granularity, start: s.periodStart, commands: s.summary.total_commands, shared: s.sharedAt ? new Date(s.sharedAt).toISOString() : 'no' }))), r);
    });
  summaries
    .command('generate')
    .description('sign and store the summary of a period now (shared if the policy says so and the period has ended)')
    .addOption(new Option('--period <p>', 'hour, day or week').choices(['hour', 'day', 'week']).default('day'))
    .option('--at <iso>', 'a time inside the period (default: now)')
    .action(async (o: { period: string; at?: string }) => {
      const r = await post<{ id: string; granularity: string; periodStart: string; periodEnd: string; summary: { total_commands: number; generated_at: string }; sharedAt: number | null } | null>(
        '/api/privacy/summaries/generate',
        { period: o.period, ...(o.at ? { at: o.at } : {}) },
      );
      if (!r) {
        const { periodAt } = await privacyModule();
        const g = ({ hour: 'hourly', day: 'daily', week: 'weekly' } as const)[o.period as 'hour' | 'day' | 'week'];
        const p = periodAt(g, o.at ? Date.parse(o.at) : Date.now());
        out(`nothing to summarize: 0 commands observed in the ${g} period ${new Date(p.start).toISOString()} .. ${new Date(p.end).toISOString()}`, r);
        return;
      }
      const head = `summary ${r.id} for ${r.periodStart} (${r.granularity}): ${r.summary.total_commands} commands`;
      const state =
        Date.parse(r.summary.generated_at) < Date.parse(r.periodEnd)
          ? `the period runs until ${r.periodEnd}: this count so far is kept on this node and not shared; the complete summary is made (and shared if the policy says so) after it ends`
          : r.sharedAt
            ? `shared ${new Date(r.sharedAt).toISOString()}`
            : 'not shared (see weft summaries show for why)';
      out(`${head}\n${state}`, r);
    });
  summaries
    .command('peers')
    .description('summaries peers shared with this node')
    .option('--peer <name>', 'only from this peer')
    .option('--limit <n>', 'how many, 1 to 1000', int('--limit', PAGE_LIMIT), 20)
    .action(async (o: { peer?: string; limit: number }) => {
      const r = await get<{ items: Array<{ peer: string; summary: { period: { granularity: string; start: string }; total_commands: number } }> }>(
        `/api/privacy/peer-summaries?limit=${o.limit}${o.peer ? `&peer=${encodeURIComponent(o.peer)}` : ''}`,
      );
      out(table(r.items.map((i) => ({ peer: i.peer, period: i.summary.period.granularity, start: i.summary.period.start, commands: i.summary.total_commands }))), r);
    });

  program
    .command('query')
    .description(`an aggregate query over the mesh: ${QUERIES.join(', ')}; each node answers per its policy, small groups are suppressed`)
    .argument('<type>', QUERIES.join(' | '))
    .option('--range <d>', 'a duration ending now: 30m, 24h, 7d, 2w', '7d')
    .addOption(
      new Option('--filter <expr>', '"field op value" (fields: category, risk_level, shell, exit_code, duration_ms, hour; op: = != ~ > < in); repeatable, e.g. --filter "exit_code != 0"')
        .argParser((v: string, acc: string[]) => [...acc, v])
        .default([] as string[], 'none'),
    )
    .option('--timeout <ms>', 'how long to wait for answers, 1 to 600000 ms', int('--timeout', { min: 1, max: 600_000 }))
    .action(async (given: string, o: { range: string; filter: string[]; timeout?: number }, cmd: Command) => {
      // The JSON answers (and the API) name types with '_' (query_type "tool_usage"): both spellings work.
      const type = given.replace(/_/g, '-');
      if (!(QUERIES as readonly string[]).includes(type)) throw new WeftError('WEFT_VALIDATION', `query type '${given}' is not one of ${QUERIES.join(', ')}`);
      if (type === 'node-health' && (o.filter.length > 0 || cmd.getOptionValueSource('range') === 'cli')) {
        throw new WeftError('WEFT_VALIDATION', `node-health takes no ${o.filter.length > 0 ? '--filter' : '--range'}: it reports each node's state now and its command count of the last 24 hours`);
      }
      // Checked here, before any node is asked: a filter every node would refuse is the user's mistake.
      const { parseFilter } = await privacyModule();
      const filters = o.filter.map((f) => parseFilter(f));
      const r = await post<Row>('/api/privacy/query', { type, ...(type === 'node-health' ? {} : { range: o.range, filters }), ...(o.timeout !== undefined ? { timeoutMs: o.timeout } : {}) });
      out(formatQuery(r), r);
      // No node could answer: there is no result, whatever the text shows.
      if (r.status === 'failed') process.exitCode = 1;
    });

  program
    .command('privacy')
    .description('the privacy layer')
    .command('policy')
    .description('the effective sharing policy (max level, trust rules, categories)')
    .action(async () => {
      const r = await get<{ policy: Row; share_summaries: boolean; min_contributors: number }>('/api/privacy/policy');
      out(formatPolicy(r.policy, r.share_summaries, r.min_contributors), r);
    });
}

/** The sharing policy for people: one line per setting, the trust rules as lines of their own. */
function formatPolicy(p: Row, share: boolean, k: number): string {
  const list = (v: unknown) => (Array.isArray(v) && v.length > 0 ? v.join(', ') : '(none)');
  const rules = (v: unknown) => Object.entries((v as Record<string, unknown>) ?? {}).map(([who, level]) => `  ${who}: ${String(level)}`);
  const nodes = rules(p.node_trust);
  const subnets = rules(p.subnet_trust);
  const peers = Array.isArray(p.static_peers) ? (p.static_peers as Row[]).map((x) => `  ${String(x.computer ?? JSON.stringify(x))}`) : [];
  return [
    `max level shared:     ${String(p.max_level)}`,
    `share summaries:      ${share ? 'yes' : 'no (privacy.share_summaries = false)'}`,
    `min contributors:     ${k} (an aggregate from fewer nodes is withheld)`,
    `default trust:        ${String(p.default_trust)}`,
    `allowed categories:   ${Array.isArray(p.allowed_categories) && p.allowed_categories.length > 0 ? list(p.allowed_categories) : '(all)'}`,
    `denied categories:    ${list(p.denied_categories)}`,
    `mDNS:                 ${p.enable_mdns ? 'on' : 'off'}`,
    `trust by node:${nodes.length ? `\n${nodes.join('\n')}` : ' (none)'}`,
    `trust by subnet:${subnets.length ? `\n${subnets.join('\n')}` : ' (none)'}`,
    `static peers:${peers.length ? `\n${peers.join('\n')}` : ' (none)'}`,
  ].join('\n');
}

/** A summary for people: every field of it, arrays on one line. */
function formatSummary(x: Row): string {
  const period = x.period as Row;
  const stats = x.category_stats as Row[];
  const safety = x.safety_stats as Row;
  return [
    `summary ${x.id} of ${period.granularity} ${period.start} .. ${period.end} (node ${x.node_id})`,
    stats.length === 0 ? '(no commands)' : table(stats.map((c) => ({ category: c.category, commands: c.count, 'avg ms': c.avg_duration_ms, 'failure rate': c.failure_rate }))),
    `hourly (UTC 0..23): ${(x.hourly_activity as number[]).join(' ')}`,
    `daily (Mon..Sun):   ${(x.daily_activity as number[]).join(' ')}`,
    `risk: ${Object.entries(safety.by_risk as Row).map(([k, v]) => `${k} ${v}`).join(', ')}; blocked ${safety.blocked_count}, confirmed risky ${safety.user_confirmed_risky}, assistant-generated ${safety.caro_generated} (executed ${safety.caro_executed})`,
    `total ${x.total_commands} commands, ${x.unique_patterns} distinct command shapes`,
  ].join('\n');
}

/** A query result for people: the data, then who answered and what was left out. */
function formatQuery(r: Row): string {
  const lines: string[] = [];
  const data = r.data as Row | Row[] | null;
  const type = r.query_type as string;
  if (r.status === 'failed') lines.push('(no result: no node could answer the query; each one\'s reason is under failed)');
  else if (data === null) lines.push(`(no aggregate: ${r.with_data ?? (r.contributors as string[]).length} of the nodes that answered had counts, fewer than min_contributors)`);
  else if (type === 'tool_usage') {
    const by = (data as Row).by_category as Record<string, Row>;
    lines.push(table(Object.entries(by).map(([category, a]) => ({ category, commands: a.count, nodes: a.node_count, 'avg ms': a.avg_duration_ms }))));
    lines.push(`total: ${(data as Row).total_commands} commands`);
  } else if (type === 'anomalies') {
    const list = data as Row[];
    lines.push(list.length === 0 ? 'no anomalies' : table(list.map((a) => ({ node: a.node_fingerprint, type: a.anomaly_type, severity: a.severity, what: a.description }))));
  } else if (type === 'node_health') {
    lines.push(table((data as Row[]).map((h) => ({ node: h.fingerprint, online: h.online ? 'yes' : 'no', uptime: `${h.uptime_seconds}s`, 'commands 24h': h.event_count_24h, protocol: h.protocol_version }))));
  } else if (type === 'safety_posture') {
    const d = data as Row;
    lines.push(`risk: ${Object.entries(d.risk_distribution as Row).map(([k, v]) => `${k} ${v}%`).join(', ')}; blocked ${d.blocked_count}, confirmed risky ${d.confirmed_risky}; coverage ${d.coverage}%`);
  } else if (type === 'activity_patterns') {
    const d = data as Row;
    lines.push(`peak hours (UTC): ${(d.peak_hours as number[]).join(', ') || '-'}; active nodes ${d.active_nodes}`);
    lines.push(`hourly (UTC 0..23, 1 = busiest): ${(d.hourly_pattern as number[]).map((v) => v.toFixed(2)).join(' ')}`);
    lines.push(`daily (Mon..Sun):                ${(d.daily_pattern as number[]).map((v) => v.toFixed(2)).join(' ')}`);
  } else lines.push(JSON.stringify(data, null, 2));
  const who = (list: unknown) => (list as Row[]).map((x) => `${x.computer} (${x.fingerprint}): ${x.reason}`).join('; ');
  const failedN = (r.failed as Row[]).length;
  lines.push(
    `${r.status}: ${r.answered} of ${r.asked} nodes answered (coverage ${r.coverage}%)${failedN ? `, ${failedN} failed` : ''}, ${(r.contributors as string[]).length} contributed${r.with_data !== undefined && r.with_data !== (r.contributors as string[]).length ? ` (${r.with_data} with counts)` : ''}; min_contributors ${r.min_contributors}`,
  );
  if ((r.missing as Row[]).length) lines.push(`missing: ${who(r.missing)}`);
  if ((r.denied as Row[]).length) lines.push(`ACCESS_DENIED: ${who(r.denied)}`);
  if ((r.failed as Row[]).length) lines.push(`failed: ${(r.failed as Row[]).map((x) => `${x.computer}: ${x.status} ${x.reason}`).join('; ')}`);
  if ((r.suppressed as string[]).length) lines.push(`suppressed (fewer than ${r.min_contributors} nodes): ${(r.suppressed as string[]).join('; ')}`);
  return lines.join('\n');
}
