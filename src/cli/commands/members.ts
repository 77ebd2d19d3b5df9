/** `weft members`: the people of this node, their roles per domain and their API tokens, through the daemon's API. */
import { Option } from 'commander';
import type { Member, MemberRole } from '../../domains/index.js';
import { WeftError } from '../../errors/index.js';
import type { CommandModule } from '../context.js';
import { table } from '../format.js';

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

const HELP = `
A member has, per domain, the role admin or member, and API tokens of their own. A member token
reaches only that member's domains: their notifications (weft notifications list --domain <d>),
routes under /api/domains/<d>/, and GET /api/me. Changing a domain needs its admin role.

The node's own token (<data_dir>/api-token, what this CLI uses by default) stays the admin of
everything: only it manages members. Every change is recorded in the audit log.

A token is shown once, when it is created; only its SHA-256 digest is stored. To act as the
member, give the token to the CLI (or any client) in WEFT_TOKEN:

  weft members add ada --display-name 'Ada Lovelace' --role marketing:admin
  weft members token ada --label laptop
  WEFT_TOKEN=weftm_... weft notifications list --domain marketing
`;

/** `marketing:admin` → ['marketing', 'admin']; collected into a map for repeated --role. */
function collectRole(v: string, acc: Record<string, MemberRole>): Record<string, MemberRole> {
  const m = /^([^:]+):(admin|member)$/.exec(v);
  if (!m) throw new WeftError('WEFT_VALIDATION', `--role '${v}' is not <domain>:admin or <domain>:member`);
  return { ...acc, [m[1] as string]: m[2] as MemberRole };
}

function rolesText(roles: Readonly<Record<string, MemberRole>>): string {
  const entries = Object.entries(roles);
  return entries.length === 0 ? '-' : entries.map(([d, r]) => `${d}:${r}`).join(', ');
}

const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`;

/**
 * Adds `weft members list | add <name> [--display-name X] [--role domain:admin|member ...] |
 * remove <name> | grant <name> <domain> <role> | revoke <name> <domain> | token <name>
 * [--label L] | revoke-tokens <name>`.
 * @example
 * // weft members add ada --role marketing:admin && weft members token ada
 */
export const membersCommands: CommandModule = (ctx) => {
  /** `WeftClient.request` is typed for GET and POST; its transport sends any method as given. */
  const call = async <T>(method: Method, path: string, body?: unknown): Promise<T> => {
    const c = await ctx.client();
    const request = c.request as (m: Method, p: string, b?: unknown) => Promise<unknown>;
    return (await request.call(c, method, path, body)) as T;
  };
  const seg = (s: string) => encodeURIComponent(s);

  const members = ctx.program
    .command('members')
    .description(
      "members of this node: their role per domain (admin or member) and their API tokens (the node's token stays admin)",
    )
    .addHelpText('after', HELP);

  members
    .command('list')
    .description('members with their roles and how many tokens they hold')
    .action(async () => {
      const r = await call<{ items: Member[] }>('GET', '/api/members');
      const rows = r.items.map((m) => ({
        name: m.name,
        'display name': m.displayName ?? '-',
        roles: rolesText(m.roles),
        tokens: m.tokens.length,
        'last used': lastUsed(m),
        created: new Date(m.createdAt).toISOString(),
      }));
      ctx.out(table(rows), r);
    });

  members
    .command('add <name>')
    .description('add a member (a-z, 0-9, ".", "_", "-"), with roles if given')
    .option('--display-name <text>', 'the name people see')
    .addOption(
      new Option('--role <domain:role>', 'a role in a domain, admin or member, e.g. marketing:admin (repeat for more domains)')
        .argParser(collectRole)
        .default({}, 'none'),
    )
    .action(async (name: string, o: { displayName?: string; role: Record<string, MemberRole> }) => {
      const m = await call<Member>('POST', '/api/members', {
        name,
        ...(o.displayName !== undefined ? { displayName: o.displayName } : {}),
        ...(Object.keys(o.role).length > 0 ? { roles: o.role } : {}),
      });
      ctx.out(
        `added member ${m.name} (roles: ${rolesText(m.roles)}); give them a token with: weft members token ${m.name}`,
        m,
      );
    });

  members
    .command('remove <name>')
    .description('remove a member: their roles go and their tokens stop working at once')
    .action(async (name: string) => {
      const m = await call<Member>('DELETE', `/api/members/${seg(name)}`);
      ctx.out(
        `removed member ${m.name} (${plural(Object.keys(m.roles).length, 'role')}, ${plural(m.tokens.length, 'token')} revoked)`,
        m,
      );
    });

  members
    .command('grant <name> <domain> <role>')
    .description(
      "set a member's role in a domain: admin (may change the domain) or member (may read and act on its notifications)",
    )
    .action(async (name: string, domain: string, role: string) => {
      if (role !== 'admin' && role !== 'member')
        throw new WeftError('WEFT_VALIDATION', `role '${role}' is not admin or member`);
      const m = await call<Member>('PUT', `/api/members/${seg(name)}/roles/${seg(domain)}`, { role });
      ctx.out(`${m.name} is ${role} of ${domain} (roles: ${rolesText(m.roles)})`, m);
    });

  members
    .command('revoke <name> <domain>')
    .description("take a member's role in a domain away")
    .action(async (name: string, domain: string) => {
      const m = await call<Member>('DELETE', `/api/members/${seg(name)}/roles/${seg(domain)}`);
      ctx.out(`${m.name} no longer has a role in ${domain} (roles: ${rolesText(m.roles)})`, m);
    });

  members
    .command('token <name>')
    .description('create an API token for a member; it is shown this once (only its digest is kept)')
    .option('--label <text>', 'what the token is for, e.g. the computer it goes on')
    .action(async (name: string, o: { label?: string }) => {
      const t = await call<{ token: string; member: string; id: string; label: string | null }>(
        'POST',
        `/api/members/${seg(name)}/tokens`,
        o.label !== undefined ? { label: o.label } : {},
      );
      ctx.out(
        `${t.token}\nshown once, keep it now: WEFT_TOKEN=${t.token} weft notifications list --domain <domain> (acts as ${t.member}; token id ${t.id})`,
        t,
      );
    });

  members
    .command('revoke-tokens <name>')
    .description('revoke every token of a member (they stop working at once)')
    .action(async (name: string) => {
      const r = await call<{ member: string; revoked: number }>('DELETE', `/api/members/${seg(name)}/tokens`);
      ctx.out(`revoked ${plural(r.revoked, 'token')} of ${r.member}`, r);
    });
};

function lastUsed(m: Member): string {
  const t = Math.max(0, ...m.tokens.map((x) => x.lastUsedAt ?? 0));
  return t === 0 ? '-' : new Date(t).toISOString();
}
