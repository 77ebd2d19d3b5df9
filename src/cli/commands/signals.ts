/** `weft signals`: the feed sources, a poll or a clustering pass now, and re-enabling a source, through the daemon's API. */
import type { ClusterReport, PollReport, SourceStatus } from '../../signals/index.js';
import type { CommandModule } from '../context.js';
import { table } from '../format.js';

const HELP = `
Sources are configured in the config file, one table each (a node with none polls nothing):

  [[signals.sources]]
  type = "rss"                 # rss, atom, json (JSON Feed), youtube, x, opml, csv
  url = "https://example.com/feed.xml"
  label = "example"
  tags = ["databases"]

  [[signals.sources]]
  type = "opml"                # a list of feeds; csv: label,url,type[,tags]
  path = "feeds.opml"          # relative to the config file

Every repeat poll is conditional (ETag / Last-Modified); 429 and Retry-After are honoured; a
feed's interval follows how often it publishes (signals.min_interval .. signals.max_interval);
a feed that keeps failing to parse is given up on with a notification (weft signals enable).
New items become signal.ingest.received, related items signal.cluster.formed, and clusters
worth it signal.synthesis.ready. See docs/signals.md.
`;

const when = (iso: string | null) => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-');

/** Adds `weft signals sources | poll [source] | cluster | enable <source>`. */
export const signalsCommands: CommandModule = (ctx) => {
  const signals = ctx.program.command('signals').description('feeds polled into signals, clustered and synthesised').addHelpText('after', HELP);
  const call = async <T>(method: 'GET' | 'POST', path: string, body?: unknown) => (await ctx.client()).request<T>(method, path, body);

  signals
    .command('sources')
    .description('every source with its interval, next poll, last status, errors and items seen')
    .action(async () => {
      const r = await call<{ running: boolean; sources: SourceStatus[]; lastCluster: ClusterReport | null; summarizer?: string }>('GET', '/api/signals');
      if (!r.running) return ctx.out('no signal source is configured: add [[signals.sources]] to the config (weft signals --help)', r);
      const rows = r.sources.map((s) => ({
        source: s.id,
        kind: s.kind,
        interval: `${Math.round(s.intervalS / 60)} min`,
        'next poll': s.disabledReason ? 'disabled' : when(s.nextPollAt),
        last: s.lastStatus ?? '-',
        errors: s.parseErrors + s.fetchErrors,
        items: s.itemsSeen,
      }));
      const disabled = r.sources.filter((s) => s.disabledReason).map((s) => `${s.id}: ${s.disabledReason}`);
      // Older daemons do not send these fields.
      const flooding = r.sources
        .filter((s) => s.floodingSince || s.budgetSpentUntil)
        .map((s) => `${s.id}: ${[s.floodingSince ? `every item new poll after poll since ${when(s.floodingSince)}, polled less often` : '', s.budgetSpentUntil ? `${s.newToday} new items today, the day's budget; next poll ${when(s.budgetSpentUntil)}` : ''].filter(Boolean).join('; ')}`);
      const c = r.lastCluster;
      ctx.out(
        [table(rows), ...(disabled.length ? ['given up (weft signals enable <source>):', ...disabled.map((d) => `  ${d}`)] : []), ...(flooding.length ? ['flooding (signals.max_new_per_poll, max_new_per_day, flood_polls):', ...flooding.map((d) => `  ${d}`)] : []), `summariser: ${r.summarizer}; last clustering: ${c ? `${c.items} items, ${c.formed} clusters (${c.absorbed} absorbed), ${c.synthesized} syntheses` : 'not yet'}`].join('\n'),
        r,
      );
    });

  signals
    .command('poll [source]')
    .description('poll every source now (or one), whatever its schedule says; Retry-After is still honoured')
    .action(async (source?: string) => {
      const r = await call<{ polls: PollReport[] }>('POST', '/api/signals/poll', source ? { source } : {});
      const detail = (p: PollReport) => (p.status === 'deferred' ? `held until ${when(p.until ?? null)}` : (p.error ?? ''));
      // A table cell is cut at 60 characters: why a source failed or is held gets a line of its own.
      const held = r.polls.filter((p) => p.status === 'deferred').map((p) => `  ${p.source}: until ${when(p.until ?? null)}${p.reason ? `: ${p.reason}` : ''}`);
      const failed = r.polls.filter((p) => p.status === 'failed' && p.error).map((p) => `  ${p.source}: ${p.error}`);
      ctx.out(
        [
          table(r.polls.map((p) => ({ source: p.source, status: p.status, new: p.admitted, duplicates: p.duplicates, ...(r.polls.some((q) => q.skipped) ? { 'over budget': p.skipped ?? 0 } : {}), detail: detail(p) }))),
          ...(failed.length > 0 ? ['failed:', ...failed] : []),
          ...(held.length > 0 ? ['held (no request before the time):', ...held] : []),
        ].join('\n'),
        r,
      );
      // The source asked for was not polled as asked: say so in the exit code too.
      if (source && r.polls.some((p) => p.status === 'failed')) process.exitCode = 1;
    });

  signals
    .command('cluster')
    .description('run a clustering pass now, and write the syntheses it calls for')
    .action(async () => {
      const r = await call<ClusterReport>('POST', '/api/signals/cluster');
      ctx.out(`${r.items} unclustered item(s): ${r.formed} cluster(s) formed (${r.absorbed} absorbed, not surfaced), ${r.synthesized} synthesis(es) written`, r);
    });

  signals
    .command('enable <source>')
    .description('turn a source given up on after repeated parse errors back on (fix its feed or URL first)')
    .action(async (source: string) => {
      const r = await call<{ enabled: string }>('POST', `/api/signals/sources/${encodeURIComponent(source)}/enable`);
      ctx.out(`source ${r.enabled} is polled again`, r);
    });
};
