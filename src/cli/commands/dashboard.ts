/** CLI: `weft dashboard` opens the node's web dashboard with a one-time login link. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { Option } from 'commander';
import type { CliContext } from '../context.js';

/** The program that opens a URL in the user's browser on this platform. */
function opener(): string[] {
  if (process.platform === 'darwin') return ['open'];
  if (process.platform === 'win32') return ['cmd', '/c', 'start', '""'];
  return ['xdg-open'];
}

/** Whether a program is on PATH (spawn reports a missing one only after we printed). */
function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((d) => d && existsSync(join(d, cmd)));
}

export function dashboardCommands(ctx: CliContext): void {
  const { program, client, out } = ctx;
  program
    .command('dashboard')
    .description(
      'open the web dashboard: a one-time login link (valid 2 minutes) sets a session cookie; the API token never reaches the browser',
    )
    .addOption(
      new Option('--role <role>', 'admin acts (claim, resolve, approve); read only looks')
        .choices(['admin', 'read'])
        .default('admin'),
    )
    .option('--no-open', 'print the link instead of opening a browser')
    .action(async (o: { role: 'admin' | 'read'; open: boolean }) => {
      const r = await (await client()).request<{ url: string; role: string; expiresAt: string }>(
        'POST',
        '/api/dashboard/login-link',
        { role: o.role },
      );
      let opened = false;
      if (o.open && !ctx.g().json) {
        const [cmd, ...args] = opener();
        if (cmd && (process.platform === 'win32' || onPath(cmd))) {
          const child = spawn(cmd, [...args, r.url], { detached: true, stdio: 'ignore' });
          child.on('error', () => undefined);
          child.unref();
          opened = true;
        }
      }
      out(
        `${opened ? 'opening' : 'open this link'} (${r.role}, once, until ${r.expiresAt}):\n  ${r.url}${opened ? '\n(no browser came up? open the link yourself)' : ''}`,
        r,
      );
    });
}
