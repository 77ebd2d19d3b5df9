/** launchd's per-user GUI domain, driven with `launchctl`. */
import {
  type CommandLog,
  type InstallKind,
  type ManagerState,
  type Reachability,
  reachability,
  type ServiceManager,
} from './manager.js';
import { LAUNCHD_LABEL } from './paths.js';
import type { ServiceRunner } from './runner.js';

/** What launchctl says when the service is not loaded (bootout exits 3 or 113, print 113). */
const NOT_LOADED = /could not find|no such process/i;

/**
 * The launchd GUI domain of a user: `bootstrap` (falling back to `load -w`), `bootout`, `print`.
 * @example
 * const m = launchdManager({ runner: systemRunner(), uid: 501, plist: '/Users/caro/Library/LaunchAgents/dev.weft.daemon.plist' });
 * await m.state(); // { reachable: true, state: 'running', pid: 812 }
 */
export function launchdManager(deps: { runner: ServiceRunner; uid: number; plist: string }): ServiceManager {
  const domain = `gui/${deps.uid}`;
  const target = `${domain}/${LAUNCHD_LABEL}`;
  const query = (args: string[], signal?: AbortSignal) =>
    deps.runner.exec('launchctl', args, signal ? { signal } : {});
  const fail = (r: { command: string; code: number | null; output: string }) =>
    `${r.command} failed (exit ${r.code ?? 'none'})${r.output ? `: ${r.output}` : ''}`;
  const bootstrap = async (log: CommandLog) => {
    await log.run(['launchctl', 'enable', target]);
    const r = await log.run(['launchctl', 'bootstrap', domain, deps.plist]);
    if (r.ok) return { ok: true };
    // Older launchd, or a session bootstrap refuses: the legacy verb still loads an agent.
    const legacy = await log.run(['launchctl', 'load', '-w', deps.plist]);
    return legacy.ok ? { ok: true } : { ok: false, error: `${fail(r)}; ${fail(legacy)}` };
  };
  const loaded = async () => (await query(['print', target])).code === 0;
  const probe = async (opts: { signal?: AbortSignal } = {}): Promise<Reachability> => {
    return reachability(await query(['print', domain], opts.signal), 'launchctl');
  };
  return {
    name: 'launchctl',
    probe,
    loadPlan: (kind: InstallKind) => [
      ...(kind === 'changed' ? [['launchctl', 'bootout', target]] : []),
      ['launchctl', 'enable', target],
      ['launchctl', 'bootstrap', domain, deps.plist],
    ],
    async load(kind, log) {
      if (kind === 'unchanged' && (await loaded())) return { ok: true };
      if (kind === 'changed' && (await loaded())) {
        const r = await log.run(['launchctl', 'bootout', target]);
        if (!r.ok && !NOT_LOADED.test(r.output)) return { ok: false, error: fail(r) };
      }
      return bootstrap(log);
    },
    async unload(log) {
      if (!(await loaded())) return { ok: true };
      const r = await log.run(['launchctl', 'bootout', target]);
      if (r.ok || NOT_LOADED.test(r.output)) return { ok: true };
      const legacy = await log.run(['launchctl', 'unload', '-w', deps.plist]);
      return legacy.ok ? { ok: true } : { ok: false, error: `${fail(r)}; ${fail(legacy)}` };
    },
    async afterRemove() {},
    unloadHint: () => [['launchctl', 'bootout', target]],
    async state(opts = {}): Promise<ManagerState> {
      const reach = await probe(opts);
      if (!reach.reachable) return { reachable: false, reason: reach.reason };
      const r = await query(['print', target], opts.signal);
      if (r.code !== 0) return { reachable: true, state: 'not loaded' };
      const state = /^\s*state = (\S+)/m.exec(r.stdout)?.[1];
      const pid = Number(/^\s*pid = (\d+)/m.exec(r.stdout)?.[1]);
      return {
        reachable: true,
        state: state === 'running' ? 'running' : `loaded${state ? ` (${state})` : ''}`,
        ...(pid > 0 ? { pid } : {}),
      };
    },
  };
}
