/** `weft service install | uninstall | status`: run the node at login under systemd (user) or launchd. */
import { homedir, userInfo } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Option } from 'commander';
import type { ServiceSpec } from '../../service/index.js';
import type { CliContext, CommandModule } from '../context.js';

interface PlatformOpt {
  platform?: string;
}

/**
 * Adds `weft service install [--dry-run] [--load false] | uninstall | status`, each with `--platform linux|darwin`.
 * @example
 * // weft service install --dry-run && weft service install && weft service status --json
 */
export const serviceCommands: CommandModule = (ctx) => {
  const service = ctx.program
    .command('service')
    .description(
      "run this computer's node at login: a systemd user unit (Linux) or a launchd agent (macOS), restarted on failure",
    );
  const platform = () =>
    new Option('--platform <p>', 'write for this platform instead of this one').choices(['linux', 'darwin']);

  service
    .command('install')
    .description(
      'write the unit or agent (mode 0600) and load it; says what it wrote, and what to run when no user service manager answers',
    )
    .addOption(platform())
    .option('--dry-run', 'print what would be written and run, write and run nothing')
    .addOption(
      new Option('--load <bool>', 'load it into the user service manager')
        .choices(['true', 'false'])
        .default('true'),
    )
    .action(async (o: PlatformOpt & { dryRun?: boolean; load: string }) => {
      const { formatInstall, installService, systemRunner } = await import('../../service/index.js');
      const r = await installService(await specOf(ctx, o), {
        runner: systemRunner(),
        load: o.load !== 'false',
        dryRun: o.dryRun === true,
      });
      ctx.out(formatInstall(r), r);
      if (!r.ok) process.exitCode = 1;
    });
  service
    .command('uninstall')
    .description(
      'stop and disable the service, remove the files install wrote (the logs stay); nothing installed is not an error',
    )
    .addOption(platform())
    .action(async (o: PlatformOpt) => {
      const { formatUninstall, systemRunner, uninstallService } = await import('../../service/index.js');
      const r = await uninstallService(await specOf(ctx, o), { runner: systemRunner() });
      ctx.out(formatUninstall(r), r);
      if (!r.ok) process.exitCode = 1;
    });
  service
    .command('status')
    .description(
      'installed or not (which file), what the service manager says, and whether the daemon answers',
    )
    .addOption(platform())
    .action(async (o: PlatformOpt) => {
      const { formatStatus, serviceStatus, systemRunner } = await import('../../service/index.js');
      const r = await serviceStatus(await specOf(ctx, o), { runner: systemRunner() });
      ctx.out(formatStatus(r), r);
    });
};

/** The service for this shell: its config and data dir, this node binary and this CLI's main.js. */
async function specOf(ctx: CliContext, o: PlatformOpt): Promise<ServiceSpec> {
  const { resolvePlatform, serviceSpec } = await import('../../service/index.js');
  const cfg = ctx.cfg();
  const env = process.env;
  const config = ctx.g().config ?? env.WEFT_CONFIG;
  const logLevel = ctx.g().logLevel;
  return serviceSpec({
    platform: resolvePlatform(o.platform),
    node: process.execPath,
    // This file is dist/src/cli/commands/service.js; the daemon starts from the CLI's entry beside it.
    main: fileURLToPath(new URL('../main.js', import.meta.url)),
    ...(config ? { config: resolve(config) } : {}),
    dataDir: cfg.data_dir,
    home: env.HOME ?? homedir(),
    uid: process.getuid?.() ?? userInfo().uid,
    env,
    cwd: process.cwd(),
    ...(logLevel ? { overrides: { WEFT_LOG_LEVEL: logLevel } } : {}),
  });
}
