/**
 * `weft init`, `weft domains ...`, `weft personal ...` and `weft pipeline validate | show
 * --domain`: the folder hierarchy, domain and personal pipelines and their cartridges.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Option } from 'commander';
import type { LaneStatus, LifecycleResult } from '../../domains/index.js';
import { isWeftError, WeftError } from '../../errors/index.js';
import type { CliContext, CommandModule } from '../context.js';
import { table } from '../format.js';

/** A pipeline as GET /api/domains answers it. */
interface PipelineView {
  scope: string;
  kind: 'domain' | 'personal';
  name: string;
  description: string;
  enabled: boolean;
  subscribe: { domains: string[]; events: string[] };
  emits: string[];
  timeoutMs: number;
  maxParallel: number;
  levels: string[][];
  cartridges: Array<{ name: string; version: string; dependencies: string[]; consumes: string[]; emits: string[]; outputs: string[] }>;
  lane?: LaneStatus | null;
}

const DOMAINS_HELP = `
A domain is a folder under <data_dir>/company/domains/<name>/: domain.toml (which events it
receives, what its cartridges may emit, its guardian and autonomy) and cartridges/<name>/
(manifest.json + cartridge.js). After the system pipeline, each event goes to the domains that
subscribe to it; domains run in parallel, each in its own sandbox processes, and inside a domain
cartridges run in the order of their dependency DAG (one level at a time, a level's cartridges
at once). A slow or failing domain never delays another, nor the system pipeline.

  weft domains create marketing        # writes domain.toml with every key explained
  weft domains install marketing ./digest
  weft pipeline show --domain marketing
  weft config autonomy set --domain marketing L2

See docs/domains.md.
`;

/** A pipeline left out of the running set (older daemons do not send them). */
interface Refused {
  scope: string;
  code: string;
  message: string;
  cartridges: string[];
}

/** The pipelines left out, one line each with why; '' when none. */
function leftOutText(refused: readonly Refused[]): string {
  if (refused.length === 0) return '';
  return `\n${refused.length} pipeline(s) left out (they do not run; fix them, then weft domains reload):\n${refused.map((x) => `  ${x.scope}: ${x.message}`).join('\n')}`;
}

/** The DAG of a pipeline as text. */
function dagText(p: PipelineView): string {
  const lines = [`${p.kind === 'domain' ? 'domain' : 'personal pipeline'} ${p.kind === 'domain' ? p.name : p.name}: ${p.cartridges.length} cartridge(s) in ${p.levels.length} level(s)${p.enabled ? '' : ' (disabled)'}`];
  if (p.description) lines.push(`  ${p.description}`);
  lines.push(`  receives: ${p.kind === 'domain' ? `envelope domain in [${p.subscribe.domains.join(', ')}]${p.subscribe.events.length ? `, types ${p.subscribe.events.join(', ')}` : ''}` : `events of [${p.subscribe.domains.join(', ')}]${p.subscribe.events.length ? ` matching ${p.subscribe.events.join(', ')}` : ''}`}`);
  lines.push(`  may emit: ${p.emits.join(', ')}    timeout ${p.timeoutMs} ms per event, ${p.maxParallel} sandbox(es) per level`);
  const byName = new Map(p.cartridges.map((c) => [c.name, c]));
  // Older daemons send no `suspended`.
  const suspended = new Map((p.lane?.suspended ?? []).map((s) => [s.cartridge, s]));
  const blockedBy = new Map<string, string>();
  for (const s of suspended.values()) for (const b of s.blocks) if (!blockedBy.has(b)) blockedBy.set(b, s.cartridge);
  p.levels.forEach((level, i) => {
    lines.push(`  level ${i}${level.length > 1 ? ' (at once)' : ''}:`);
    for (const name of level) {
      const c = byName.get(name);
      const deps = c?.dependencies.length ? ` ← ${c.dependencies.join(', ')}` : '';
      const outs = c?.outputs.length ? `  writes ${c.outputs.join(', ')}` : '';
      const s = suspended.get(name);
      const state = s
        ? `  SUSPENDED since ${s.since.replace('T', ' ').replace(/\.\d+Z$/, 'Z')} (${s.reason}); ${s.skipped} event(s) skipped; weft domains reload brings it back`
        : blockedBy.has(name)
          ? `  NOT RUNNING: '${blockedBy.get(name)}' it depends on is suspended`
          : '';
      lines.push(`    ${name} ${c?.version ?? ''}${deps}  consumes ${c?.consumes.join(', ')}${c?.emits.length ? `  emits ${c.emits.join(', ')}` : ''}${outs}${state}`);
    }
  });
  const l = p.lane;
  if (l) lines.push(`  lane: position ${l.position}, backlog ${l.backlog}, processed ${l.processed}, failures ${l.failures}, emitted ${l.emitted}, held ${l.held}${l.lastError ? `, last error: ${l.lastError}` : ''}`);
  else if (p.cartridges.length > 0) lines.push('  lane: not running');
  return lines.join('\n');
}

/** Prints one domain's DAG (`weft pipeline show --domain X`, `weft domains show X`). */
export async function showDomainPipeline(ctx: CliContext, domain: string): Promise<void> {
  const p = await (await ctx.client()).request<PipelineView>('GET', `/api/domains/${encodeURIComponent(domain)}`);
  ctx.out(dagText(p), p);
}

/**
 * `weft pipeline validate` without a daemon: the folders checked against the default catalog
 * and the members recorded in the node's database (read-only; none when there is none yet).
 */
async function validateOffline(dataDir: string): Promise<{ ok: boolean; domains?: PipelineView[]; personal?: PipelineView[]; refused?: Array<{ scope: string; message: string }>; problem?: { code: string; scope?: string; problem?: string; cartridges?: string[]; message: string } }> {
  const [{ createDefaultCatalog }, { validatePipelines }] = await Promise.all([import('../../catalog/index.js'), import('../../api/index.js')]);
  const catalog = createDefaultCatalog();
  const roles = new Map<string, Record<string, string>>();
  const dbPath = join(dataDir, 'weft.db');
  if (existsSync(dbPath)) {
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    try {
      for (const m of db.prepare('SELECT name FROM members').all() as Array<{ name: string }>) roles.set(m.name, {});
      for (const r of db.prepare('SELECT member, domain, role FROM member_roles').all() as Array<{ member: string; domain: string; role: string }>) {
        const got = roles.get(r.member);
        if (got) got[r.domain] = r.role;
      }
    } catch {
      // a database from before members existed: nobody has a personal pipeline yet
    } finally {
      db.close();
    }
  }
  return (await validatePipelines(dataDir, { knowsEventType: (t) => catalog.has(t), rolesOf: (m) => roles.get(m) })) as unknown as Awaited<ReturnType<typeof validateOffline>>;
}

/** Reads a package directory on this computer into the body members may send. */
async function packageBody(path: string): Promise<{ manifest: Record<string, unknown>; source: string }> {
  const { readPackageDir } = await import('../../sovereignty/index.js');
  const pkg = await readPackageDir(path);
  return { manifest: pkg.manifest as unknown as Record<string, unknown>, source: pkg.source };
}

/** Adds `weft init`, `weft domains`, `weft personal`, and `weft pipeline validate` / `show --domain`. */
export const domainsCommands: CommandModule = (ctx) => {
  const { program, out } = ctx;
  const call = async <T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown) => (await ctx.client()).request<T>(method, path, body);
  const enc = encodeURIComponent;
  const lifecycleText = (r: LifecycleResult) => r.message;
  /**
   * After a domain's folder was written: a running daemon reads the folders again, so the next
   * command (an install, a pipeline show) finds it. Says what happened; never fails the write.
   */
  const reloadRunning = async (): Promise<{ line: string; reloaded: boolean }> => {
    try {
      const r = await call<{ domains: PipelineView[]; personal: PipelineView[] }>('POST', '/api/pipeline/reload');
      return { line: `the running daemon has it now (reloaded: ${r.domains.length} domain(s), ${r.personal.length} personal pipeline(s))`, reloaded: true };
    } catch (err) {
      if (isWeftError(err) && err.code === 'WEFT_STOPPED') return { line: 'no daemon runs here: the next one starts with it', reloaded: false };
      return { line: `the running daemon did not take it: ${(err as Error).message} (fix it, then: weft domains reload)`, reloaded: false };
    }
  };

  program
    .command('init')
    .description('create the data directory and its folders: company/domains, personal, helpdesk (and say what each is for); --pillar adds a ready-made domain')
    .option('--pillar <name>', 'install a pillar pack as a domain: software-development, marketing, creative-production or customer-relations (docs/pillars.md)')
    .option('--force', 'with --pillar: replace an existing domain of that name')
    .action(async (o: { pillar?: string; force?: boolean }) => {
      const { ensureLayout } = await import('../../domains/index.js');
      const dataDir = ctx.cfg().data_dir;
      if (o.force && o.pillar === undefined) throw new WeftError('WEFT_VALIDATION', '--force replaces a pillar\'s domain: give it with --pillar <name>');
      if (o.pillar !== undefined) {
        const { installPillar, isPillarName, PILLARS, pillarPack } = await import('../../pillars/index.js');
        // A name that is no pillar is a mistake in the command line: a usage error (exit 2), before anything is written.
        if (!isPillarName(o.pillar)) throw new WeftError('WEFT_VALIDATION', `--pillar: there is no pillar '${o.pillar}': the pillars are ${PILLARS.map((p) => p.name).join(', ')}`, { details: { pillar: o.pillar } });
        const r = await installPillar(dataDir, o.pillar, { force: o.force === true });
        const pack = pillarPack(o.pillar);
        const running = await reloadRunning();
        out(
          [
            `installed the ${o.pillar} pillar: ${r.domainDir}`,
            `  ${pack.description}`,
            `  cartridges: ${r.cartridges.join(', ')}`,
            `${running.line}; see it with: weft pipeline show --domain ${o.pillar}`,
          ].join('\n'),
          { dataDir, pillar: o.pillar, ...r, reloaded: running.reloaded },
        );
        return;
      }
      const { layout, created } = await ensureLayout(dataDir);
      const text = [
        `Weft data directory: ${dataDir}`,
        '',
        `  ${layout.domains}/<domain>/     a domain: domain.toml + cartridges/<name>/ (weft domains create <name>)`,
        `  ${layout.personal}/<member>/    a member's subscriptions.toml + leaf cartridges (weft members add <name>)`,
        `  ${layout.helpdesk}/             shared answers and runbooks for people asking for help`,
        '',
        created.length > 0 ? `created ${created.length} path(s); each folder has a README.md` : 'everything was there already',
        'next: weft domains create <name>, then npm start (or weft daemon) and weft pipeline show --domain <name>',
      ].join('\n');
      out(text, { dataDir, layout, created });
    });

  const domains = program.command('domains').description('domain pipelines: parallel, sandboxed, after the system pipeline').addHelpText('after', DOMAINS_HELP);

  domains
    .command('list')
    .description('domains and personal pipelines with their cartridges and lane state')
    .action(async () => {
      const r = await call<{ domains: PipelineView[]; personal: PipelineView[]; refused?: Refused[]; inbox: { waiting: number; limit: number; skipped: number } }>('GET', '/api/domains');
      const rows = [...r.domains, ...r.personal].map((p) => ({
        pipeline: p.scope,
        cartridges: p.cartridges.length,
        levels: p.levels.length,
        processed: p.lane?.processed ?? 0,
        backlog: p.lane?.backlog ?? 0,
        failures: p.lane?.failures ?? 0,
        state: !p.enabled ? 'disabled' : p.lane ? (p.lane.suspended?.length ? `running, suspended: ${p.lane.suspended.map((s) => s.cartridge).join(', ')}` : 'running') : p.cartridges.length === 0 ? 'empty' : 'stopped',
      }));
      out(`${rows.length ? table(rows) : 'no domains yet: weft domains create <name>'}${leftOutText(r.refused ?? [])}\ninbox: ${r.inbox.waiting} waiting (limit ${r.inbox.limit}), ${r.inbox.skipped} skipped`, r);
    });

  domains
    .command('show <domain>')
    .description('one domain: what it receives and emits, its dependency DAG by level, its lane')
    .action((d: string) => showDomainPipeline(ctx, d));

  domains
    .command('create <domain>')
    .description('create <data_dir>/company/domains/<domain>/ with a domain.toml explaining every key; a running daemon reads it at once')
    .addOption(new Option('--description <text>', 'one line about the domain').default('', 'none'))
    .action(async (d: string, o: { description: string }) => {
      const { domainDir, domainTemplate, RESERVED_DOMAINS, SCOPE_NAME } = await import('../../domains/index.js');
      if (!SCOPE_NAME.test(d)) throw new WeftError('WEFT_VALIDATION', `'${d}' is not a domain name: lowercase letters, digits, '.', '_' or '-', at most 64, starting with a letter or digit`);
      // Checked before anything is written: the folder of a reserved name stops every reload, install and start.
      if (RESERVED_DOMAINS.has(d)) throw new WeftError('WEFT_VALIDATION', `'${d}' is one of the node's own event domains and cannot be a domain's name; choose another (reserved: ${[...RESERVED_DOMAINS].join(', ')})`, { details: { domain: d } });
      const dir = domainDir(ctx.cfg().data_dir, d);
      const file = join(dir, 'domain.toml');
      if (existsSync(file)) throw new WeftError('WEFT_CONFLICT', `domain '${d}' exists already: ${file}`);
      await mkdir(join(dir, 'cartridges'), { recursive: true, mode: 0o700 });
      await writeFile(file, domainTemplate(d, o.description), { flag: 'wx', mode: 0o600 });
      const running = await reloadRunning();
      out(
        `created domain ${d}: ${file}\n${running.line}\nadd cartridges with: weft domains install ${d} <package-dir>   (or put them in ${join(dir, 'cartridges')}/ and run weft domains reload)`,
        { domain: d, dir, file, reloaded: running.reloaded },
      );
    });

  domains
    .command('reload')
    .description('read the domain and personal folders again; a change that does not validate is refused and the running pipelines stay')
    .action(async () => {
      const r = await call<{ domains: PipelineView[]; personal: PipelineView[]; refused?: Refused[] }>('POST', '/api/pipeline/reload');
      const left = r.refused ?? [];
      out(`reloaded: ${r.domains.length} domain(s), ${r.personal.length} personal pipeline(s)${leftOutText(left)}`, r);
      // The rest runs, but something the user put in the folders does not: not a success.
      if (left.length > 0) process.exitCode = 1;
    });

  domains
    .command('install <domain> <path>')
    .description("submit a cartridge package directory to a domain: the domain's guardian judges it, then the autonomy level of cartridge.install decides (L1: an admin approves a member's submission)")
    .action(async (d: string, path: string) => {
      const r = await call<LifecycleResult>('POST', `/api/domains/${enc(d)}/cartridges`, await packageBody(path));
      out(lifecycleText(r), r);
    });

  domains
    .command('remove <domain> <cartridge>')
    .description("remove a cartridge from a domain (its admins); refused while another cartridge depends on it")
    .action(async (d: string, c: string) => {
      const r = await call<{ removed: string }>('DELETE', `/api/domains/${enc(d)}/cartridges/${enc(c)}`);
      out(`removed ${c} from domain ${d}`, r);
    });

  domains
    .command('promote <domain> <cartridge>')
    .description('promote a domain cartridge to the platform: installed pending activation (weft cartridges activate <name>); node token only')
    .action(async (d: string, c: string) => {
      const r = await call<LifecycleResult>('POST', `/api/domains/${enc(d)}/cartridges/${enc(c)}/promote`, { to: 'platform' });
      out(lifecycleText(r), r);
    });

  const personal = program
    .command('personal')
    .description("a member's personal pipeline: leaf cartridges after their domains, on what their subscriptions.toml allows");
  personal
    .command('show <member>')
    .description('the personal pipeline of a member')
    .action(async (m: string) => {
      const p = await call<PipelineView>('GET', `/api/personal/${enc(m)}`);
      out(dagText(p), p);
    });
  personal
    .command('install <member> <path>')
    .description('install a leaf cartridge (no dependencies) into a personal pipeline; the member themselves or the node')
    .action(async (m: string, path: string) => {
      const r = await call<LifecycleResult>('POST', `/api/personal/${enc(m)}/cartridges`, await packageBody(path));
      out(lifecycleText(r), r);
    });
  personal
    .command('remove <member> <cartridge>')
    .description('remove a cartridge from a personal pipeline')
    .action(async (m: string, c: string) => {
      const r = await call<{ removed: string }>('DELETE', `/api/personal/${enc(m)}/cartridges/${enc(c)}`);
      out(`removed ${c} from the personal pipeline of ${m}`, r);
    });
  personal
    .command('promote <member> <cartridge>')
    .description('promote a personal cartridge into a domain: a submission, judged and decided like any')
    .requiredOption('--to <domain>', 'the domain it goes to')
    .action(async (m: string, c: string, o: { to: string }) => {
      const r = await call<LifecycleResult>('POST', `/api/personal/${enc(m)}/cartridges/${enc(c)}/promote`, { to: o.to });
      out(lifecycleText(r), r);
    });

  // `weft pipeline` is defined by the node commands: add validate, and --domain to show.
  const pipeline = program.commands.find((c) => c.name() === 'pipeline');
  if (!pipeline) return;
  pipeline
    .command('validate')
    .description('validate every domain and personal pipeline on disk (cycles, missing dependencies, scope, output conflicts) without applying it; exit 1 when one does not')
    .action(async () => {
      type Validation = {
        ok: boolean;
        domains?: PipelineView[];
        personal?: PipelineView[];
        refused?: Array<{ scope: string; message: string }>;
        problem?: { code: string; scope?: string; problem?: string; cartridges?: string[]; message: string };
        offline?: boolean;
      };
      let r: Validation;
      try {
        r = await call<Validation>('GET', '/api/pipeline/validate');
      } catch (err) {
        // No daemon (a start this validation refused, say): the same check, here.
        if ((err as { code?: string }).code !== 'WEFT_STOPPED') throw err;
        r = { ...(await validateOffline(ctx.cfg().data_dir)), offline: true };
      }
      if (r.offline) process.stderr.write('weft: no daemon answers: validated here, with the default catalog and the members in the database\n');
      if (r.problem) {
        out(`invalid: ${r.problem.message}${r.problem.cartridges?.length ? `\ncartridges: ${r.problem.cartridges.join(', ')}` : ''}`, r);
        process.exitCode = 1;
        return;
      }
      const all = [...(r.domains ?? []), ...(r.personal ?? [])];
      const lines = all.map((p) => `  ${p.scope}: ${p.levels.map((l) => l.join(' + ')).join(' → ') || '(no cartridges)'}`);
      for (const x of r.refused ?? []) lines.push(`  ${x.scope}: left out: ${x.message}`);
      out(`${r.ok ? 'valid' : 'invalid'}: ${r.domains?.length ?? 0} domain(s), ${r.personal?.length ?? 0} personal pipeline(s)${r.refused?.length ? `, ${r.refused.length} personal pipeline(s) left out` : ''}${lines.length ? `\n${lines.join('\n')}` : ''}`, r);
      if (!r.ok) process.exitCode = 1;
    });
};
