/** The launchd agent as plist text (no side effects). */
import { ValidationError } from '../errors/index.js';
import type { ServiceDefinition } from './definition.js';
import { hasControl } from './environment.js';
import { LAUNCHD_LABEL } from './paths.js';

/**
 * The text of `dev.weft.daemon.plist`: run at load, restarted when it exits with a failure, output appended to the
 * data dir's logs, WEFT_* settings in `EnvironmentVariables` (the file is written 0600).
 * @example
 * launchdPlist({ command: ['/usr/local/bin/node', '/opt/weft/dist/src/cli/main.js', 'daemon'], dataDir: '/Users/caro/.weft/data',
 *   logFile: '/Users/caro/.weft/data/logs/service.log', variables: { WEFT_API_PORT: '9300' } });
 * // '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist ...'
 */
export function launchdPlist(d: ServiceDefinition): string {
  const s = (v: string) => `<string>${xml(v)}</string>`;
  const env = Object.keys(d.variables)
    .sort()
    .flatMap((k) => [`\t\t<key>${xml(k)}</key>`, `\t\t${s(d.variables[k] as string)}`]);
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    '<!-- Written by weft service install; weft service uninstall removes it. Re-run install rather than editing. -->',
    '<plist version="1.0">',
    '<dict>',
    '\t<key>Label</key>',
    `\t${s(LAUNCHD_LABEL)}`,
    '\t<key>ProgramArguments</key>',
    '\t<array>',
    ...d.command.map((a) => `\t\t${s(a)}`),
    '\t</array>',
    '\t<key>RunAtLoad</key>',
    '\t<true/>',
    '\t<key>KeepAlive</key>',
    '\t<dict>',
    '\t\t<key>SuccessfulExit</key>',
    '\t\t<false/>',
    '\t</dict>',
    '\t<key>WorkingDirectory</key>',
    `\t${s(d.dataDir)}`,
    '\t<key>EnvironmentVariables</key>',
    ...(env.length ? ['\t<dict>', ...env, '\t</dict>'] : ['\t<dict/>']),
    '\t<key>StandardOutPath</key>',
    `\t${s(d.logFile)}`,
    '\t<key>StandardErrorPath</key>',
    `\t${s(d.logFile)}`,
    '\t<key>Umask</key>',
    `\t<integer>${0o077}</integer>`,
    '</dict>',
    '</plist>',
  ];
  return `${lines.join('\n')}\n`;
}

function xml(v: string): string {
  if (hasControl(v))
    throw new ValidationError(`${JSON.stringify(v)} holds a control character; a plist cannot carry it`);
  return v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
