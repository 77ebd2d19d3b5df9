/** `weft sessions`: which session spawned which, across nodes, from the events that reached this node. */
import { WeftError } from '../../errors/index.js';
import type { SessionForest, SessionIndexStats, SessionRecord, SessionTree, SessionTreeNode } from '../../store/index.js';
import { type CommandModule, PAGE_LIMIT } from '../context.js';
import { sessionIdProblem } from '../../util/index.js';
import { table, type TreeNode, tree } from '../format.js';

const HELP = `
A producer marks its events with its session, and a session it spawns with both ids:

  export WEFT_SESSION=build-42                 # every 'weft emit' of this shell carries it
  weft emit job.step.done --session build-42-lint --parent-session build-42

'weft emit' reads WEFT_SESSION and WEFT_PARENT_SESSION when --session is not given; a spawned
process exports WEFT_PARENT_SESSION=$WEFT_SESSION and a WEFT_SESSION of its own. Events that
reach this node from peers (cluster or public visibility) add their sessions to the same trees.
A session's parent is set by the first event that names one; a different claim later is kept
and shown, never taken. See docs/sessions.md.
`;

/** Session ids must look like ids: the message says where a bad one came from. */
function checked(value: string, from: string): string {
  const problem = sessionIdProblem(value);
  if (problem) throw new WeftError('WEFT_VALIDATION', `${from} ${problem}`, { details: { field: from } });
  return value;
}

/**
 * The session fields of a `weft emit`: `--session` and `--parent-session`, else the
 * environment's `WEFT_SESSION` and `WEFT_PARENT_SESSION` (empty counts as unset). An explicit
 * `--session` ignores both variables: the parent in the environment is the parent of the
 * environment's session, not of another one.
 * @example
 * sessionOfEmit({}, { WEFT_SESSION: 'b', WEFT_PARENT_SESSION: 'a' }); // { session: 'b', parentSession: 'a' }
 */
export function sessionOfEmit(o: { session?: string; parentSession?: string }, env: NodeJS.ProcessEnv): { session?: string; parentSession?: string } {
  const fromEnv = (k: string) => (env[k] !== undefined && env[k] !== '' ? env[k] : undefined);
  const session = o.session !== undefined ? checked(o.session, '--session') : fromEnv('WEFT_SESSION') !== undefined ? checked(fromEnv('WEFT_SESSION') as string, 'WEFT_SESSION') : undefined;
  const parentFrom = o.parentSession !== undefined ? '--parent-session' : o.session === undefined && fromEnv('WEFT_PARENT_SESSION') !== undefined ? 'WEFT_PARENT_SESSION' : undefined;
  const parentSession = parentFrom === undefined ? undefined : checked((o.parentSession ?? fromEnv('WEFT_PARENT_SESSION')) as string, parentFrom);
  if (parentSession !== undefined && session === undefined) {
    throw new WeftError('WEFT_VALIDATION', `${parentFrom} needs a session of its own: give --session (or export WEFT_SESSION) for the session it spawned`, { details: { field: parentFrom } });
  }
  if (parentSession !== undefined && parentSession === session) {
    throw new WeftError('WEFT_VALIDATION', `${parentFrom} is the session itself ('${session}'); a session cannot spawn itself`, { details: { field: parentFrom } });
  }
  return { ...(session !== undefined ? { session } : {}), ...(parentSession !== undefined ? { parentSession } : {}) };
}

const when = (iso: string | null) => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-');

function label(n: SessionTreeNode, focus?: string): string {
  const where = n.events === 0 ? 'not seen here: known as a parent only' : `${n.computer ?? '?'} · ${n.events} event${n.events === 1 ? '' : 's'} · ${when(n.firstSeen)} → ${when(n.lastSeen)}`;
  const claims = (n.claims ?? []).map((c) => `  ⚠ ${c.kind === 'conflict' ? `also claimed by parent ${c.parent}` : `parent ${c.parent} refused (${c.kind})`} ×${c.count}`).join('');
  return `${n.session === focus ? '▶ ' : ''}${n.session}  [${where}]${claims}`;
}

function toTreeNode(n: SessionTreeNode, focus?: string): TreeNode {
  const children = n.children.map((c) => toTreeNode(c, focus));
  if (n.more) children.push({ label: `… ${n.more} more (raise --depth or --limit)`, children: [] });
  return { label: label(n, focus), children };
}

function statsLine(s: SessionIndexStats): string {
  const claims = s.claims.conflict + s.claims.cycle + s.claims.depth;
  const parts = [`${s.sessions} session(s) indexed`];
  if (claims > 0) parts.push(`${claims} refused parent claim(s) (${s.claims.conflict} conflict, ${s.claims.cycle} cycle, ${s.claims.depth} depth)`);
  if (s.refused > 0) parts.push(`${s.refused} sighting(s) not indexed: the index is full (${s.maxSessions} sessions)`);
  if (s.claimsDropped > 0) parts.push(`${s.claimsDropped} refused claim(s) counted only`);
  return parts.join('; ');
}

/** Adds `weft sessions list | tree [id]`. */
export const sessionsCommands: CommandModule = (ctx) => {
  const { int } = ctx;
  const sessions = ctx.program.command('sessions').description('which session spawned which, across nodes (from the events that reached this node)').addHelpText('after', HELP);
  const get = async <T>(path: string) => (await ctx.client()).request<T>('GET', path);
  const qs = (o: Record<string, string | number | undefined>) => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(o)) if (v !== undefined) p.set(k, String(v));
    const s = p.toString();
    return s ? `?${s}` : '';
  };

  sessions
    .command('list')
    .description('sessions, most recently active first, with their parent, computer and event count')
    .option('--limit <n>', 'how many, 1 to 1000', int('--limit', PAGE_LIMIT), 50)
    .option('--offset <n>', 'page: nextOffset of the previous page', int('--offset', { max: 100_000_000 }))
    .option('--computer <name>', 'only sessions first seen on this computer')
    .action(async (o: { limit: number; offset?: number; computer?: string }) => {
      const r = await get<{ items: SessionRecord[]; nextOffset: number | null; stats: SessionIndexStats }>(`/api/sessions${qs({ limit: o.limit, offset: o.offset, computer: o.computer })}`);
      const rows = r.items.map((s) => ({ session: s.session, parent: s.parent ?? '-', computer: s.computer ?? '-', events: s.events, first: when(s.firstSeen), last: when(s.lastSeen) }));
      ctx.out([rows.length ? table(rows) : '(no sessions: events carry none yet; see weft sessions --help)', statsLine(r.stats), ...(r.nextOffset !== null ? [`more: --offset ${r.nextOffset}`] : [])].join('\n'), r);
    });

  sessions
    .command('tree [id]')
    .description('the tree holding a session (its root and every descendant), or every tree')
    .option('--depth <n>', 'levels below the root (and below the session) to show, 0 to 256 (default 16)', int('--depth', { max: 256 }))
    .option('--limit <n>', 'sessions shown at most, 1 to 10000 (default 2000)', int('--limit', { min: 1, max: 10_000 }))
    .option('--roots <n>', 'without an id: trees shown at most, most recently active first (default 100)', int('--roots', { min: 1, max: 10_000 }))
    .action(async (id: string | undefined, o: { depth?: number; limit?: number; roots?: number }) => {
      if (id !== undefined) {
        checked(id, 'session id');
        const t = await get<SessionTree>(`/api/sessions/${encodeURIComponent(id)}/tree${qs({ depth: o.depth, limit: o.limit })}`);
        ctx.out(`${tree(toTreeNode(t.root, t.focus))}${t.truncated ? '\n(some sessions not shown: raise --depth or --limit)' : ''}`, t);
        return;
      }
      const f = await get<SessionForest>(`/api/sessions/tree${qs({ depth: o.depth, limit: o.limit, roots: o.roots })}`);
      const text = f.trees.length === 0 ? '(no sessions: events carry none yet; see weft sessions --help)' : f.trees.map((t) => tree(toTreeNode(t))).join('\n\n');
      ctx.out(`${text}${f.truncated ? `\n(${f.roots} tree(s) in all; some sessions not shown: raise --roots, --depth or --limit)` : ''}`, f);
    });
};
