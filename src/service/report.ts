/** The words `weft service` prints: exactly what was written, run, and left for the user to run. */
import type { InstallResult } from './install.js';
import type { RanCommand } from './manager.js';
import type { StatusResult } from './status.js';
import type { UninstallResult } from './uninstall.js';

const indent = (text: string) =>
  text
    .trimEnd()
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');

function unreachable(name: string, reason: string | undefined): string {
  return reason === '--load false'
    ? 'not loaded (--load false)'
    : `${name} is not reachable (${reason ?? 'no answer'}), so nothing was loaded`;
}

/**
 * The human report of an install (or of a dry run).
 * @example
 * console.log(formatInstall(await installService(spec, { runner: systemRunner() })));
 */
export function formatInstall(r: InstallResult): string {
  const lines: string[] = [];
  if (r.dryRun) {
    lines.push('dry run: nothing is written or run');
    if (r.directories.length) lines.push(`would make directories (mode 0700): ${r.directories.join(', ')}`);
    for (const f of r.files) {
      const what =
        f.action === 'unchanged' ? 'unchanged' : f.action === 'created' ? 'new' : 'replacing the one there';
      lines.push(`would write ${f.path} (mode ${f.mode}, ${what}):`, indent(f.text ?? ''));
    }
    for (const p of r.removed) lines.push(`would remove ${p} (the environment file of the previous install)`);
    if (r.skipped.length) lines.push(skippedLine(r));
    lines.push(`then run (when ${r.manager.name} is reachable):`, ...r.toRun.map((c) => `    ${c}`));
    return lines.join('\n');
  }
  if (r.directories.length) lines.push(`made directories (mode 0700): ${r.directories.join(', ')}`);
  const unchanged = r.files.filter((f) => f.action === 'unchanged');
  for (const f of r.files) {
    if (f.action === 'unchanged') continue;
    lines.push(
      `${f.action === 'created' ? 'wrote' : 'replaced'} ${f.path} (mode ${f.mode})${varsOf(r, f.role)}`,
    );
  }
  for (const p of r.removed) lines.push(`removed ${p} (the environment file of the previous install)`);
  if (unchanged.length) lines.push(`unchanged: ${unchanged.map((f) => f.path).join(', ')}`);
  if (r.skipped.length) lines.push(skippedLine(r));
  for (const c of r.ran) lines.push(ranLine(c));
  if (r.error) lines.push(`weft: the service was written but not loaded: ${r.error}`);
  else if (r.manager.loaded) {
    lines.push(
      r.ran.length === 0
        ? 'the service was already loaded and running; nothing to do'
        : 'the service is loaded: it starts at login and restarts on failure',
    );
  } else {
    lines.push(
      `${unreachable(r.manager.name, r.manager.reason)}. To load it, run:`,
      ...r.toRun.map((c) => `    ${c}`),
    );
  }
  lines.push(`daemon output: ${r.logFile} (structured logs: weft logs -f)`);
  return lines.join('\n');
}

function ranLine(c: RanCommand): string {
  return `ran: ${c.command}${c.ok ? '' : ` (failed, exit ${c.code ?? 'none'}${c.output ? `: ${c.output}` : ''})`}`;
}

function varsOf(r: InstallResult, role: string): string {
  if (role === 'unit') return '';
  return `: ${r.variables.length ? r.variables.join(', ') : 'no WEFT_* variables (none set in this shell)'}`;
}

function skippedLine(r: InstallResult): string {
  return `not copied from this shell: ${r.skipped.map((s) => `${s.name} (${s.reason})`).join(', ')}`;
}

/**
 * The human report of an uninstall.
 * @example
 * console.log(formatUninstall(await uninstallService(spec, { runner: systemRunner() })));
 */
export function formatUninstall(r: UninstallResult): string {
  if (r.removed.length === 0 && r.ran.length === 0)
    return 'nothing to remove: the weft service is not installed';
  const lines: string[] = [];
  for (const c of r.ran) lines.push(ranLine(c));
  for (const p of r.removed) lines.push(`removed ${p}`);
  for (const c of r.ranAfterRemoval) lines.push(ranLine(c));
  if (r.error) lines.push(`weft: the files are removed but the service may still run: ${r.error}`);
  if (r.manager.reachable === false) {
    lines.push(
      `${r.manager.name} is not reachable (${r.manager.reason ?? 'no answer'}), so a running service was not stopped. If it runs, run:`,
      ...r.toRun.map((c) => `    ${c}`),
    );
  }
  for (const k of r.kept) lines.push(`kept ${k} (the logs; remove it yourself if you want)`);
  return lines.join('\n');
}

/**
 * The human report of `weft service status`.
 * @example
 * console.log(formatStatus(await serviceStatus(spec, { runner: systemRunner() })));
 */
export function formatStatus(s: StatusResult): string {
  const lines: string[] = [];
  const def = s.files[0];
  if (!s.installed) lines.push(`installed: no (no ${def?.path ?? 'service file'})`);
  else {
    for (const f of s.files) {
      lines.push(
        `installed: ${f.path}${f.exists ? (f.current ? '' : ' (differs from what weft service install would write from this shell)') : ' (missing!)'}`,
      );
    }
  }
  const m = s.manager;
  if (!m.reachable)
    lines.push(`service: unknown: no user service manager reachable (${m.name}: ${m.reason ?? 'no answer'})`);
  else
    lines.push(
      `service: ${m.state ?? 'unknown'}${m.enabled ? `, ${m.enabled}` : ''}${m.pid ? ` (pid ${m.pid})` : ''}`,
    );
  lines.push(`daemon: ${s.daemon.detail}`);
  return lines.join('\n');
}
