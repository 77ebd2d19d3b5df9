/** The core commands: daemon, emit, events, notifications, schemas, config, logs and doctor. */
import { createReadStream, existsSync, readFileSync, statSync, watchFile } from 'node:fs';
import { createInterface } from 'node:readline';
import { Option } from 'commander';
import { showConfig } from '../config/index.js';
import { WeftError } from '../errors/index.js';
import type { EmitOutcome } from '../pipeline/index.js';
import { sessionOfEmit } from './commands/sessions.js';
import { type CliContext, PAGE_LIMIT, POSITION, textOnly } from './context.js';
import { forTerminal, levelName, prettyLog, table, type TreeNode, tree } from './format.js';

/** Adds the core commands to the program (the command modules add the rest: ./modules.ts). */
export function coreCommands(ctx: CliContext): void {
  const { program, g, cfg, client, out, parseJsonArg, int } = ctx;

  textOnly(program.command('daemon'))
    .description('run this computer\'s node: store, bus, pipeline, API and delivery (Ctrl-C stops it cleanly)')
    .action(async () => {
      // Loaded when used: `weft --version` or `weft emit` never pay for the daemon's modules.
      const { runDaemon } = await import('../daemon/index.js');
      await runDaemon(cfg());
    });

  program
    .command('emit <type>')
    .description("emit an event to the running node; it says when the pipeline dropped it (a duplicate, trust) or a cartridge failed on it. --json prints the API's answer: { envelope, outcome } (outcome.state: applied, dropped, failed or queued)")
    .option('-p, --payload <json|@file>', 'payload as JSON, or @path to a JSON file', '{}')
    .addOption(new Option('--visibility <v>', 'who may receive it').choices(['local', 'cluster', 'public']))
    .option('--level <n>', 'level 0 infrastructure .. 3 business', int('--level', { max: 3 }))
    .option('--entity <id>', 'entity the event is about')
    .option('--description <text>', 'human description')
    .option('--domain <name>', "the event's domain (default: its type's); domains subscribed to it receive it")
    .option('--session <id>', "the producer's session (default: $WEFT_SESSION); see weft sessions tree")
    .option('--parent-session <id>', 'the session that spawned it (default: $WEFT_PARENT_SESSION when the session comes from $WEFT_SESSION)')
    .action(async (type: string, o: { payload: string; visibility?: string; level?: number; entity?: string; description?: string; domain?: string; session?: string; parentSession?: string }) => {
      const input: Record<string, unknown> = { event: type, payload: parseJsonArg('--payload', o.payload), ...sessionOfEmit(o, process.env) };
      if (o.domain) input.domain = o.domain;
      if (o.visibility) input.visibility = o.visibility;
      if (o.level !== undefined) input.level = o.level;
      if (o.entity) input.entity = o.entity;
      if (o.description) input.description = o.description;
      const { envelope: env, outcome } = await (await client()).emitReported(input);
      const note = outcome ? outcomeNote(outcome, env.idempotencyKey) : '';
      // --json: the API's answer (the stored envelope and what became of it: applied, dropped as a duplicate, ...); the note goes to stderr there.
      out(`emitted ${env.event} ${env.id}${note ? `, but ${note}` : ''}`, { envelope: env, outcome });
      if (note && g().json) process.stderr.write(`weft: note: ${note}\n`);
    });

  const events = program.command('events').description('the node\'s local event log');
  events
    .command('list')
    .description('list events, newest first')
    .option('--type <type>', 'only this event type')
    .option('--limit <n>', 'how many, 1 to 1000', int('--limit', PAGE_LIMIT), 20)
    .option('--cursor <seq>', 'page after this position', int('--cursor', POSITION))
    .action(async (o: { type?: string; limit: number; cursor?: number }) => {
      const page = await (await client()).events.list(o);
      out(
        table(page.items.map((e) => ({ seq: e.seq, id: e.envelope.id, event: e.envelope.event, level: levelName(e.envelope.level), source: e.envelope.source, time: e.envelope.timestamp }))) +
          (page.nextCursor ? `\nmore: --cursor ${page.nextCursor}` : ''),
        page,
      );
    });
  events
    .command('trace <id>')
    .description('show an event\'s lineage: its causes and what it caused, as a tree')
    .action(async (id: string) => {
      const t = await (await client()).events.trace(id);
      const toNode = (n: typeof t.root): TreeNode => ({ label: `${n.event} ${n.id} (${n.source})`, children: n.children.map(toNode) });
      const lines = t.ancestors.map((a, i) => `${'  '.repeat(i)}↳ ${a.event} ${a.id}`);
      out([...lines, tree(toNode(t.root))].join('\n'), t);
    });

  const notifications = program
    .command('notifications')
    .alias('n')
    .description('notifications: what humans see and agents claim and resolve')
    .addHelpText(
      'after',
      `
An agent's round: find one, claim it, mark it in progress, resolve it:
  weft notifications list --agent none --level 2
  weft notifications claim 2 --agent claude-1
  weft notifications start 2 --agent claude-1
  weft notifications resolve 2 --agent claude-1 --resolution '{"outcome":"done"}'
  weft notifications release 2 --agent claude-1      # give it back instead`,
    );
  notifications
    .command('list')
    .description('list notifications, newest first')
    .option('--level <n>', 'minimum level, 0 infrastructure .. 3 business', int('--level', { max: 3 }))
    .option('--domain <d>', "only this domain's (system, software-development, ...)")
    .addOption(new Option('--human <status>', 'human status').choices(['unseen', 'seen']))
    .addOption(new Option('--agent <status>', 'agent status').choices(['none', 'claimed', 'in_progress', 'resolved']))
    .addOption(new Option('--visibility <v>', "only this visibility: who may receive the event").choices(['local', 'cluster', 'public']))
    .option('--type <type>', 'event type')
    .option('--since <iso>', 'created at or after this time (ISO 8601: 2026-12-01 or 2026-12-01T08:00:00Z)')
    .option('--limit <n>', 'how many, 1 to 1000', int('--limit', PAGE_LIMIT), 20)
    .option('--cursor <id>', 'page: nextCursor of the previous page', int('--cursor', POSITION))
    .action(async (o: { level?: number; domain?: string; human?: 'unseen' | 'seen'; agent?: 'none'; visibility?: 'local'; type?: string; since?: string; limit: number; cursor?: number }) => {
      const page = await (await client()).notifications.list({
        level: o.level, domain: o.domain, humanStatus: o.human, agentStatus: o.agent, visibility: o.visibility, type: o.type, since: o.since, limit: o.limit, cursor: o.cursor,
      });
      out(
        table(page.items.map((n) => ({ id: n.id, level: levelName(n.level), type: n.eventType, human: n.humanStatus, agent: n.agentStatus, by: n.agentId, description: n.description }))) +
          (page.nextCursor ? `\nmore: --cursor ${page.nextCursor}` : ''),
        page,
      );
    });
  notifications
    .command('show <id>')
    .description('one notification in full')
    .action(async (id: string) => {
      const nid = int('id', POSITION)(id);
      const n = await (await client()).notifications.get(nid);
      out(JSON.stringify(n, null, 2), n);
    });
  notifications
    .command('seen <id>')
    .description('mark seen')
    .action(async (id: string) => {
      const nid = int('id', POSITION)(id);
      const n = await (await client()).notifications.seen(nid);
      out(`notification ${n.id} is ${n.humanStatus}`, n);
    });
  notifications
    .command('claim <id>')
    .description('claim for an agent')
    .requiredOption('--agent <id>', 'agent id')
    .action(async (id: string, o: { agent: string }) => {
      const nid = int('id', POSITION)(id);
      const n = await (await client()).notifications.claim(nid, o.agent);
      out(`notification ${n.id} is ${n.agentStatus} by ${n.agentId}`, n);
    });
  notifications
    .command('start <id>')
    .description('mark in progress (by the claiming agent)')
    .requiredOption('--agent <id>', 'agent id')
    .action(async (id: string, o: { agent: string }) => {
      const nid = int('id', POSITION)(id);
      const n = await (await client()).notifications.start(nid, o.agent);
      out(`notification ${n.id} is ${n.agentStatus}`, n);
    });
  notifications
    .command('release <id>')
    .description('give a claim back so another agent can take it (by the holder; --force for a claim an agent left behind)')
    .option('--agent <id>', 'the agent holding the claim')
    .option('--force', 'release whoever holds it')
    .action(async (id: string, o: { agent?: string; force?: boolean }) => {
      if (!o.agent && !o.force) throw new WeftError('WEFT_VALIDATION', 'release: say which agent holds the claim (--agent <id>), or --force');
      const nid = int('id', POSITION)(id);
      const n = await (await client()).notifications.release(nid, { ...(o.agent ? { agentId: o.agent } : {}), ...(o.force ? { force: true } : {}) });
      out(`notification ${n.id} is ${n.agentStatus === 'none' ? 'free to claim' : n.agentStatus}`, n);
    });
  notifications
    .command('resolve <id>')
    .description('resolve, optionally with a resolution; --approve/--reject answer an actionable request')
    .option('--agent <id>', 'agent id')
    .option('--resolution <json|@file>', 'what was done, as a JSON object, or @path to a JSON file')
    .option('--approve', 'approve the request (e.g. a cartridge install)')
    .option('--reject', 'reject the request')
    .action(async (id: string, o: { agent?: string; resolution?: string; approve?: boolean; reject?: boolean }) => {
      if (o.approve && o.reject) throw new WeftError('WEFT_VALIDATION', '--approve and --reject exclude each other');
      const nid = int('id', POSITION)(id);
      const resolution = o.resolution ? parseJsonArg('--resolution', o.resolution) : undefined;
      const n = await (await client()).notifications.resolve(nid, { agentId: o.agent, resolution, approve: o.approve ? true : o.reject ? false : undefined });
      out(`notification ${n.id} is ${n.agentStatus}`, n);
    });

  const schemas = program.command('schemas').description('the event catalog');
  schemas
    .command('list')
    .description('list event types')
    .action(async () => {
      const { createDefaultCatalog } = await import('../catalog/index.js');
      const list = createDefaultCatalog().list();
      out(
        table(list.map((e) => ({ type: e.type, level: levelName(e.level), visibility: e.visibility, lifecycle: e.lifecycle ? Object.keys(e.lifecycle).filter((k) => (e.lifecycle as Record<string, unknown>)[k] === true).join('+') : '', actionable: e.actionable }))),
        list.map((e) => ({ type: e.type, description: e.description, domain: e.domain, level: e.level, visibility: e.visibility, idempotencyFields: e.idempotencyFields, lifecycle: e.lifecycle ?? null, actionable: e.actionable })),
      );
    });
  schemas
    .command('export')
    .description('JSON Schema of the envelope and every event type (for producers in other languages)')
    .action(async () => {
      const { createDefaultCatalog } = await import('../catalog/index.js');
      console.log(JSON.stringify(createDefaultCatalog().exportJsonSchema(), null, 2));
    });

  const config = program.command('config').description('configuration');
  config
    .command('show')
    .description('print the effective config (secrets masked); exit 2 if the daemon would refuse it')
    .action(async () => {
      const c = cfg();
      const flat = showConfig(c);
      out(`${c.source ? `# from ${c.source} and the environment` : '# defaults and the environment (no config file)'}\n${Object.entries(flat).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join('\n')}`, flat);
      // Shown either way (the user may be here to find the mistake), then flagged as the daemon would.
      const { checkConfig } = await import('../daemon/index.js');
      await checkConfig(c);
    });

  program
    .command('logs')
    .description("show the daemon's logs, pretty-printed; with --json the log's own JSON lines, one per line (a stream, not one document)")
    .option('-f, --follow', 'keep printing new lines (Ctrl-C stops)')
    .option('-n, --lines <n>', 'last N lines (0: none, e.g. with -f for only new ones)', int('--lines'), 50)
    .action(async (o: { follow?: boolean; lines: number }) => {
      const file = `${cfg().data_dir}/logs/weft.log`;
      if (!existsSync(file)) throw new WeftError('WEFT_NOT_FOUND', `no log file at ${file} (has the daemon run with this config?)`);
      const all = readFileSync(file, 'utf8').split('\n').filter(Boolean);
      // slice(-0) is the whole array: -n 0 printed every line.
      for (const l of o.lines === 0 ? [] : all.slice(-o.lines)) console.log(g().json ? l : forTerminal(prettyLog(l)));
      if (!o.follow) return;
      let pos = statSync(file).size;
      await new Promise<void>(() => {
        watchFile(file, { interval: 250 }, (cur) => {
          if (cur.size < pos) pos = 0;
          if (cur.size === pos) return;
          const rl = createInterface({ input: createReadStream(file, { start: pos, end: cur.size - 1 }) });
          pos = cur.size;
          rl.on('line', (l) => console.log(g().json ? l : forTerminal(prettyLog(l))));
        });
      });
    });

  program
    .command('doctor')
    .description(
      'check the node\'s database (read-only while the daemon runs); --repair (daemon stopped) moves a damaged file aside, keeps it, and salvages every row it can read into a fresh one, reporting per table what was recovered and lost',
    )
    .option('--repair', 'repair a damaged database (exit 1 when anything was lost)')
    .option('--acknowledge', 'move the record of rollbacks found (rolled-back.json) aside once they are dealt with, then check')
    .action(async (o: { repair?: boolean; acknowledge?: boolean }) => {
      const { repairStore } = await import('../daemon/index.js');
      const r = await repairStore(cfg().data_dir, { repair: o.repair ?? false, acknowledge: o.acknowledge ?? false });
      out(r.message, r);
      if (!r.ok) process.exitCode = 1;
    });
}

/** What became of an event at its emit, in words, when it did not simply pass ('' then): the emit itself succeeded, the event is stored. */
function outcomeNote(o: EmitOutcome, key: string | undefined): string {
  if (o.state === 'failed') return `cartridge '${o.by}' failed on it (${o.error}): it is kept as a dead letter ('weft deadletters list'), and a system.cartridge.failed notification says so`;
  if (o.state !== 'dropped') return '';
  if (o.by === 'dedup') return `it was dropped as a duplicate: an event with idempotency key '${key ?? '?'}' was processed before (change a field of the key to emit a new one)`;
  const why = o.reason ? ` (${o.reason})` : '';
  if (o.by === 'trust' && o.trust === 'quarantine') return `trust quarantined it${why}: 'weft quarantine list' shows it, 'weft quarantine release <id>' lets it through`;
  if (o.by === 'trust') return `trust ${o.trust === 'reject' ? 'rejected' : 'stopped'} it${why}`;
  return `cartridge '${o.by}' dropped it${why}`;
}
