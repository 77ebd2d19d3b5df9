/** `weft service uninstall`: stop and unload the service, remove the files install wrote, keep the logs. */
import { basename } from 'node:path';
import { commandLine, commandLog, type RanCommand } from './manager.js';
import { serviceManager } from './managers.js';
import type { ServicePlatform } from './platform.js';
import type { ServiceRunner } from './runner.js';
import type { ServiceSpec } from './spec.js';
import { environmentFileOf } from './systemd.js';

/** What uninstall removed and ran. */
export interface UninstallResult {
  /** False when the manager answered but would not stop the service (the files are removed anyway). */
  ok: boolean;
  platform: ServicePlatform;
  /** Paths removed; empty when nothing was installed (not an error). */
  removed: string[];
  /** Commands run before the files were removed (stop, disable). */
  ran: RanCommand[];
  /** Commands run after (systemd's daemon-reload, so it forgets the unit). */
  ranAfterRemoval: RanCommand[];
  manager: { name: string; reachable: boolean | null; reason?: string };
  /** Commands the user should run: the manager could not be reached, so a running service was not stopped. */
  toRun: string[];
  /** What is left on purpose (the log directory). */
  kept: string[];
  error?: string;
}

/**
 * Stops and disables the service (when the manager answers), removes the unit or plist and the environment file,
 * and reports each; nothing installed is not an error. Logs are kept.
 * @example
 * const r = await uninstallService(spec, { runner: systemRunner() });
 * r.removed; // ['/home/caro/.config/systemd/user/weft.service', '/home/caro/.weft/data/service.env']
 */
export async function uninstallService(
  spec: ServiceSpec,
  deps: { runner: ServiceRunner; signal?: AbortSignal },
): Promise<UninstallResult> {
  deps.signal?.throwIfAborted();
  const { runner } = deps;
  const manager = serviceManager(spec, runner);
  const result: UninstallResult = {
    ok: true,
    platform: spec.platform,
    removed: [],
    ran: [],
    ranAfterRemoval: [],
    manager: { name: manager.name, reachable: null },
    toRun: [],
    kept: [],
  };
  const definition = runner.read(spec.paths.definition);
  const installedEnv = definition ? environmentFileOf(definition.text) : undefined;
  const envFiles = [spec.paths.environment, installedEnv].filter(
    (p, i, all): p is string => p !== undefined && basename(p) === 'service.env' && all.indexOf(p) === i,
  );
  const link = spec.paths.wantsLink;
  const ownLink = link !== undefined && runner.readLink(link) === spec.paths.definition;
  if (!definition && !envFiles.some((p) => runner.exists(p)) && !ownLink) return result;

  const log = commandLog(runner, deps.signal ? { signal: deps.signal } : {});
  let reachable = false;
  if (definition) {
    const reach = await manager.probe(deps.signal ? { signal: deps.signal } : {});
    reachable = reach.reachable;
    result.manager.reachable = reach.reachable;
    if (reach.reachable) {
      const r = await manager.unload(log);
      if (!r.ok) {
        result.ok = false;
        if (r.error) result.error = r.error;
      }
    } else {
      result.manager.reason = reach.reason;
      result.toRun = manager.unloadHint().map(commandLine);
    }
  }
  for (const p of [spec.paths.definition, ...envFiles]) if (runner.remove(p)) result.removed.push(p);
  // `disable` removed the link when systemctl answered; otherwise it would dangle at login.
  if (link && runner.readLink(link) === spec.paths.definition && runner.remove(link))
    result.removed.push(link);
  result.ran = [...log.ran];
  if (reachable) {
    await manager.afterRemove(log);
    result.ranAfterRemoval = log.ran.slice(result.ran.length);
  }
  if (runner.exists(spec.paths.logDir)) result.kept.push(spec.paths.logDir);
  return result;
}
