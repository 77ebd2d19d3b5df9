/** `weft events prune`: the local log's retention, through the daemon's API (added under `weft events`). */
import type { PruneAnswer } from '../../api/index.js';
import { WeftError } from '../../errors/index.js';
import type { CommandModule } from '../context.js';

const HELP = `
Removes old events from this node's local log (its history; notifications stay). Never the
newest event (the log's positions continue from it), nothing the pipeline has not consumed,
nothing a domain lane still reads. A peer mirroring this node that had not reached the
removed positions yet is told exactly which ones it missed (a mirror.gap notification there).
The removed events' ids are kept (about 40 bytes each): an event that arrives again later is
still recognised as a duplicate. --older-than takes the log's timestamps as rising with its
positions (they do, up to clock skew); at most 100 years (36500d).

Examples:
  weft events prune --older-than 30d
  weft events prune --before-seq 1000000 --dry-run
  weft events prune --older-than 12h --json
`;

const WHY: Record<PruneAnswer['limitedBy'], string> = {
  none: '',
  newest: 'the newest event is always kept',
  pipeline: 'the pipeline has not consumed the rest yet',
  domains: 'a domain lane still reads the rest',
  already: 'nothing below it was left',
};

export const eventsCommands: CommandModule = (ctx) => {
  const events = ctx.program.commands.find((c) => c.name() === 'events');
  if (!events) throw new WeftError('WEFT_INTERNAL', "the 'events' command must be defined before its prune subcommand");
  events
    .command('prune')
    .description('remove old events from the local log (--before-seq N or --older-than 30d)')
    .option('--before-seq <n>', 'remove the events below this log position', ctx.int('--before-seq', { min: 1 }))
    .option('--older-than <duration>', 'remove the events older than this: 90s, 45m, 12h, 30d, 8w')
    .option('--dry-run', 'say what would be removed, remove nothing')
    .addHelpText('after', HELP)
    .action(async (o: { beforeSeq?: number; olderThan?: string; dryRun?: boolean }) => {
      if ((o.beforeSeq === undefined) === (o.olderThan === undefined)) {
        throw new WeftError('WEFT_VALIDATION', 'give one of --before-seq <n> or --older-than <duration> (e.g. 30d)');
      }
      if (o.olderThan !== undefined && !/^\d{1,9}[smhdw]$/.test(o.olderThan)) {
        throw new WeftError('WEFT_VALIDATION', `--older-than is a whole number and a unit (s, m, h, d, w), like 30d; got '${o.olderThan}'`);
      }
      const body = {
        ...(o.beforeSeq !== undefined ? { beforeSeq: o.beforeSeq } : {}),
        ...(o.olderThan !== undefined ? { olderThan: o.olderThan } : {}),
        ...(o.dryRun ? { dryRun: true } : {}),
      };
      const r = await (await ctx.client()).request<PruneAnswer>('POST', '/api/events/prune', body);
      const asked = r.olderThan !== undefined ? `older than ${r.olderThan} (before ${r.cutoff}, position ${r.requested})` : `below position ${r.requested}`;
      const n = r.removed.toLocaleString('en-US');
      const why = r.belowSeq < r.requested && r.limitedBy !== 'none' ? `; stopped at position ${r.belowSeq}: ${WHY[r.limitedBy]}` : '';
      const head = r.dryRun ? `would remove ${n} events ${asked}` : `removed ${n} events ${asked}`;
      const mark = r.dryRun ? '' : `\nthe log now starts at position ${r.belowSeq}`;
      ctx.out(`${head}${why}${mark}`, r);
    });
};
