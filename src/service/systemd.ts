/** The systemd user unit and its environment file, as text (no side effects). */
import { ValidationError } from '../errors/index.js';
import type { ServiceDefinition } from './definition.js';
import { hasControl } from './environment.js';

const HEADER =
  '# Written by `weft service install`; `weft service uninstall` removes it. Re-run install rather than editing.';

/**
 * The text of `weft.service`: the daemon restarted on failure, its output appended to the data dir's logs,
 * its WEFT_* settings read from a 0600 environment file.
 * @example
 * systemdUnit({ command: ['/usr/bin/node', '/opt/weft/dist/src/cli/main.js', 'daemon'], dataDir: '/home/caro/.weft/data',
 *   logFile: '/home/caro/.weft/data/logs/service.log', variables: {}, environmentFile: '/home/caro/.weft/data/service.env' });
 * // '...\nExecStart=/usr/bin/node /opt/weft/dist/src/cli/main.js daemon\n...\nRestart=on-failure\n...'
 */
export function systemdUnit(d: ServiceDefinition): string {
  const lines = [
    HEADER,
    '[Unit]',
    'Description=Weft node (weft daemon)',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${d.command.map(execArg).join(' ')}`,
    `WorkingDirectory=${pathValue(d.dataDir)}`,
    ...(d.environmentFile ? [`EnvironmentFile=${pathValue(d.environmentFile)}`] : []),
    'UMask=0077',
    'Restart=on-failure',
    'RestartSec=2',
    `StandardOutput=append:${pathValue(d.logFile)}`,
    `StandardError=append:${pathValue(d.logFile)}`,
    '',
    '[Install]',
    'WantedBy=default.target',
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * The text of the environment file: one `NAME="value"` line per variable, quoted so systemd reads the value back
 * exactly (no `$` expansion, no word splitting).
 * @example
 * systemdEnvironmentFile({ WEFT_API_PORT: '9300' }); // '# Written by ...\nWEFT_API_PORT="9300"\n'
 */
export function systemdEnvironmentFile(variables: Record<string, string>): string {
  const lines = [
    HEADER,
    '# The WEFT_* settings of the shell that installed the service. Mode 0600: it may hold secrets.',
    ...Object.keys(variables)
      .sort()
      .map((k) => `${k}="${(variables[k] as string).replace(/[\\"$`]/g, (c) => `\\${c}`)}"`),
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * The environment file an installed unit references (it may sit in an older data dir than the config's now).
 * @example
 * environmentFileOf('[Service]\nEnvironmentFile=/home/caro/.weft/data/service.env\n'); // '/home/caro/.weft/data/service.env'
 */
export function environmentFileOf(unit: string): string | undefined {
  const v = /^EnvironmentFile=-?(.+)$/m.exec(unit)?.[1];
  return v === undefined ? undefined : v.replace(/%%/g, '%');
}

/** One ExecStart= word: bare when plain, else double-quoted; `%` and `$` doubled (specifiers, variables). */
function execArg(s: string): string {
  check(s);
  const q = /^[A-Za-z0-9_@+=:,./-]+$/.test(s) ? s : `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  return q.replace(/%/g, '%%').replace(/\$/g, '$$$$');
}

/** A path setting (WorkingDirectory=, EnvironmentFile=, append:): specifiers are expanded, so `%` is doubled. */
function pathValue(s: string): string {
  check(s);
  if (s !== s.trim())
    throw new ValidationError(`path '${s}' starts or ends with a space, which a unit file cannot carry`, {
      path: s,
    });
  return s.replace(/%/g, '%%');
}

function check(s: string): void {
  if (hasControl(s))
    throw new ValidationError(
      `path ${JSON.stringify(s)} holds a control character; a unit file cannot carry it`,
      { path: s },
    );
}
