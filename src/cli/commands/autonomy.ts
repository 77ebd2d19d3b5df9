/** `weft config autonomy`: the autonomy matrix of domain cartridges, through the daemon's API. */
import type { AutonomyDecision, AutonomyKey, AutonomyLevel, AutonomyRule } from '../../domains/index.js';
import { WeftError } from '../../errors/index.js';
import type { CliContext, CommandModule } from '../context.js';
import { table } from '../format.js';

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
interface KeyOptions {
  domain?: string;
  cartridge?: string;
  eventType?: string;
}

/** Who `set` records as the setter (shown by `explain`). */
const SET_BY = 'weft config autonomy set';

const HELP = `
How a level is chosen: every decision of a domain cartridge (an event it emits; installing a
cartridge into a domain is the event type cartridge.install) runs at the level of the most
specific rule that matches it:

  event type  >  cartridge  >  domain  >  global (config key autonomy.domain_default)

When no rule names an install (cartridge.install), the install's global level is the config
key autonomy.cartridge_install (default L1: an admin's own install is the approval; a member's
waits for an admin), not autonomy.domain_default.

An event-type rule beats any cartridge rule, a cartridge rule beats any domain rule. Between
event types an exact one beats a pattern (build.*), a pattern with more literal segments beats
one with fewer. At equal specificity a rule set here beats one from the domain's domain.toml.

Levels:
  L1  held for a human
  L2  done, and the domain's admins are told
  L3  done

Examples:
  weft config autonomy set --domain marketing --cartridge poster L2
  weft config autonomy set --domain marketing --event-type 'post.*' L1
  weft config autonomy explain post.published poster --domain marketing
  weft config autonomy unset --domain marketing --cartridge poster`;

function parseLevel(v: string): AutonomyLevel {
  const level = v.toUpperCase();
  if (level !== 'L1' && level !== 'L2' && level !== 'L3') {
    throw new WeftError(
      'WEFT_VALIDATION',
      `level must be L1 (held for a human), L2 (done, the domain's admins told) or L3 (done), got '${v}'`,
    );
  }
  return level;
}

function keyOf(o: KeyOptions): AutonomyKey {
  return {
    ...(o.domain !== undefined ? { domain: o.domain } : {}),
    ...(o.cartridge !== undefined ? { cartridge: o.cartridge } : {}),
    ...(o.eventType !== undefined ? { eventType: o.eventType } : {}),
  };
}

/** A rule's key in words: "cartridge poster in domain marketing". */
function scope(r: AutonomyKey): string {
  const parts = [
    ...(r.eventType !== undefined ? [`event type ${r.eventType}`] : []),
    ...(r.cartridge !== undefined ? [`cartridge ${r.cartridge}`] : []),
    ...(r.domain !== undefined ? [`domain ${r.domain}`] : []),
  ];
  return parts.length === 0 ? 'every decision' : parts.join(', ');
}

function row(r: AutonomyRule): Record<string, unknown> {
  return {
    level: r.level,
    'event type': r.eventType ?? '*',
    cartridge: r.cartridge ?? '*',
    domain: r.domain ?? '*',
    source: r.source,
    'set by': r.setBy,
    'set at': r.setAt === undefined ? undefined : new Date(r.setAt).toISOString(),
  };
}

function explanation(d: AutonomyDecision & { globalDefault: AutonomyLevel; query: AutonomyKey }): string {
  const q = d.query;
  const lines = [
    `${d.level}  for ${q.eventType} from cartridge ${q.cartridge} ${q.domain !== undefined ? `in domain ${q.domain}` : '(in no domain)'}`,
    `decided by: ${d.reason}${d.rule ? '' : ' (no rule matches)'}`,
  ];
  const others = d.considered.slice(1);
  if (others.length > 0)
    lines.push(
      '',
      'other rules that match, each less specific than the one above it:',
      table(others.map(row)),
    );
  if (d.rule) lines.push('', `then the global default: autonomy.domain_default = ${d.globalDefault}`);
  return lines.join('\n');
}

/**
 * Adds `weft config autonomy set <level> | unset | list | explain <event_type> <cartridge>` under
 * the `config` command (which program.ts defines before command modules run).
 * @example
 * // weft config autonomy set --domain marketing --cartridge poster L2
 */
export const autonomyCommands: CommandModule = (ctx: CliContext) => {
  const config = ctx.program.commands.find((c) => c.name() === 'config');
  if (!config)
    throw new WeftError(
      'WEFT_INTERNAL',
      "autonomyCommands needs the 'config' command (defined in cli/program.ts)",
    );
  const call = async <T>(method: Method, path: string, body?: unknown): Promise<T> => {
    const client = await ctx.client();
    // WeftClient.request is typed for GET and POST; its transport sends any method as given.
    const request = client.request.bind(client) as <R>(m: Method, p: string, b?: unknown) => Promise<R>;
    return request<T>(method, path, body);
  };
  const query = (o: Record<string, string | undefined>) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(o)) if (v !== undefined) q.set(k, v);
    return q.toString();
  };

  const autonomy = config
    .command('autonomy')
    .description(
      'the autonomy matrix: at which level (L1 held, L2 done and admins told, L3 done) domain cartridges act',
    )
    .addHelpText('after', HELP);

  autonomy
    .command('set <level>')
    .description('set the level of an event type, a cartridge or a domain (give at least one of the options)')
    .option('--domain <domain>', 'the domain (left out: any domain)')
    .option('--cartridge <cartridge>', 'the cartridge (left out: any cartridge)')
    .option('--event-type <type>', "the event type, or a pattern such as 'post.*' (left out: any event type)")
    .addHelpText('after', HELP)
    .action(async (levelArg: string, o: KeyOptions) => {
      const level = parseLevel(levelArg);
      const r = await call<{ rule: AutonomyRule }>('PUT', '/api/autonomy', {
        ...keyOf(o),
        level,
        setBy: SET_BY,
      });
      ctx.out(`autonomy of ${scope(r.rule)} is ${r.rule.level}`, r);
    });

  autonomy
    .command('unset')
    .description(
      'remove a rule set with "set" (the same options; rules from domain.toml are changed in that file)',
    )
    .option('--domain <domain>', 'the domain of the rule')
    .option('--cartridge <cartridge>', 'the cartridge of the rule')
    .option('--event-type <type>', 'the event type or pattern of the rule')
    .action(async (o: KeyOptions) => {
      const key = keyOf(o);
      if (Object.keys(key).length === 0)
        throw new WeftError(
          'WEFT_VALIDATION',
          'name the rule to remove with --domain, --cartridge and/or --event-type',
        );
      const r = await call<{ removed: AutonomyRule }>('DELETE', `/api/autonomy?${query({ ...key })}`);
      ctx.out(`removed the rule for ${scope(r.removed)} (it was ${r.removed.level})`, r);
    });

  autonomy
    .command('list')
    .description('every rule, set here or in a domain.toml, and the global default')
    .action(async () => {
      const r = await call<{ globalDefault: AutonomyLevel; rules: AutonomyRule[] }>('GET', '/api/autonomy');
      ctx.out(`${table(r.rules.map(row))}\nglobal default (autonomy.domain_default): ${r.globalDefault}`, r);
    });

  autonomy
    .command('explain <event_type> <cartridge>')
    .description(
      'the level a decision runs at, the rule that decided it, and the other matching rules below it',
    )
    .option('--domain <domain>', 'the domain of the cartridge (left out: a cartridge in no domain)')
    .addHelpText('after', HELP)
    .action(async (eventType: string, cartridge: string, o: { domain?: string }) => {
      const d = await call<AutonomyDecision & { globalDefault: AutonomyLevel; query: AutonomyKey }>(
        'GET',
        `/api/autonomy/explain?${query({ eventType, cartridge, domain: o.domain })}`,
      );
      ctx.out(explanation(d), d);
    });
};
