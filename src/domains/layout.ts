/**
 * Where domains, members and the helpdesk live under the data directory:
 *
 *   <data_dir>/company/domains/<domain>/domain.toml           the domain's settings
 *   <data_dir>/company/domains/<domain>/cartridges/<name>/    its cartridges (manifest.json + cartridge.js)
 *   <data_dir>/company/domains/<domain>/incoming/<name>/      submissions waiting for an admin
 *   <data_dir>/personal/<member>/subscriptions.toml           what a member's cartridges see
 *   <data_dir>/personal/<member>/cartridges/<name>/           the member's leaf cartridges
 *   <data_dir>/helpdesk/                                      shared answers and runbooks for people asking for help
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** A domain, member or cartridge name: file-name safe. */
export const SCOPE_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/**
 * Names no domain (folder or role) may take: the node's own event domains. A role in `system`
 * or `cartridges` would hand a member the node's own notifications and approvals.
 */
export const RESERVED_DOMAINS: ReadonlySet<string> = new Set(['system', 'cartridges', 'domains', 'mesh', 'privacy', 'signal', 'sovereign', 'transport', 'terminal', 'telemetry', 'personal', 'platform']);

/** The folders of one data directory. */
export interface DomainLayout {
  readonly company: string;
  readonly domains: string;
  readonly personal: string;
  readonly helpdesk: string;
}

/** The folders under `dataDir` (nothing is created). */
export function layoutOf(dataDir: string): DomainLayout {
  const company = join(dataDir, 'company');
  return { company, domains: join(company, 'domains'), personal: join(dataDir, 'personal'), helpdesk: join(dataDir, 'helpdesk') };
}

/** `<data_dir>/company/domains/<name>`. */
export function domainDir(dataDir: string, name: string): string {
  return join(layoutOf(dataDir).domains, name);
}

/** `<data_dir>/personal/<member>`. */
export function memberDir(dataDir: string, member: string): string {
  return join(layoutOf(dataDir).personal, member);
}

const READMES: Record<keyof DomainLayout, string> = {
  company: `# company

Your organisation's shared event processing. Each folder under domains/ is one domain
(marketing, engineering, ...): a domain.toml saying which events it receives and what its
cartridges may emit, and cartridges/<name>/ (manifest.json + cartridge.js) running in the
domain's own sandboxed pipeline, after the system pipeline, in dependency order.

  weft domains create marketing      # a domain.toml with comments
  weft pipeline validate             # check every pipeline (cycles, dependencies, scope, conflicts)
  weft pipeline show --domain marketing
`,
  domains: `# company/domains

One folder per domain: domain.toml + cartridges/<name>/. See ../README.md and docs/domains.md.
`,
  personal: `# personal

One folder per member (weft members add <name>): subscriptions.toml (which of the member's
domains and event types their cartridges see) and cartridges/<name>/ — leaf cartridges that
run after the domains, on what the subscriptions allow.
`,
  helpdesk: `# helpdesk

Shared answers, runbooks and templates for people asking for help. Weft creates the folder;
cartridges and people put what they need here.
`,
};

/**
 * Creates the folder hierarchy (and a README in each top folder) where it is missing. Never
 * overwrites a file. Answers the paths it created.
 * @example
 * const { created } = await ensureLayout(cfg.data_dir);
 */
export async function ensureLayout(dataDir: string): Promise<{ layout: DomainLayout; created: string[] }> {
  const layout = layoutOf(dataDir);
  const created: string[] = [];
  for (const key of ['company', 'domains', 'personal', 'helpdesk'] as const) {
    const dir = layout[key];
    if (!existsSync(dir)) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      created.push(dir);
    }
    const readme = join(dir, 'README.md');
    if (!existsSync(readme)) {
      await writeFile(readme, READMES[key], { flag: 'wx' }).catch(() => undefined);
      created.push(readme);
    }
  }
  return { layout, created };
}
