/** systemd's user manager, driven with `systemctl --user`. */
import {
  type CommandLog,
  type InstallKind,
  type ManagerState,
  type Reachability,
  reachability,
  type ServiceManager,
} from './manager.js';
import { SYSTEMD_UNIT } from './paths.js';
import type { ServiceRunner } from './runner.js';

const SC = ['systemctl', '--user'];

/**
 * The systemd user manager: `daemon-reload`, `enable --now`, `disable --now`, `is-active`.
 * @example
 * const m = systemdManager({ runner: systemRunner() });
 * await m.probe(); // { reachable: false, reason: 'Failed to connect to bus: No medium found' } in a container
 */
export function systemdManager(deps: { runner: ServiceRunner }): ServiceManager {
  const query = async (args: string[], signal?: AbortSignal) =>
    deps.runner.exec('systemctl', ['--user', ...args], signal ? { signal } : {});
  const sequence = async (log: CommandLog, steps: string[][]) => {
    for (const s of steps) {
      const r = await log.run(s);
      if (!r.ok)
        return {
          ok: false,
          error: `${r.command} failed (exit ${r.code ?? 'none'})${r.output ? `: ${r.output}` : ''}`,
        };
    }
    return { ok: true };
  };
  const plan = (kind: InstallKind): string[][] =>
    kind === 'new'
      ? [
          [...SC, 'daemon-reload'],
          [...SC, 'enable', '--now', SYSTEMD_UNIT],
        ]
      : kind === 'changed'
        ? [
            [...SC, 'daemon-reload'],
            [...SC, 'enable', SYSTEMD_UNIT],
            [...SC, 'restart', SYSTEMD_UNIT],
          ]
        : [[...SC, 'enable', '--now', SYSTEMD_UNIT]];
  const probe = async (opts: { signal?: AbortSignal } = {}): Promise<Reachability> => {
    // Manager properties answer only over the user bus: the cheapest question that needs it.
    return reachability(await query(['show', '--property=Version'], opts.signal), 'systemctl');
  };
  return {
    name: 'systemctl --user',
    probe,
    loadPlan: plan,
    async load(kind, log) {
      if (kind === 'unchanged') {
        const active = (await query(['is-active', SYSTEMD_UNIT])).stdout.trim();
        const enabled = (await query(['is-enabled', SYSTEMD_UNIT])).stdout.trim();
        if (active === 'active' && enabled === 'enabled') return { ok: true };
      }
      return sequence(log, plan(kind));
    },
    async unload(log) {
      const r = await log.run([...SC, 'disable', '--now', SYSTEMD_UNIT]);
      return r.ok
        ? { ok: true }
        : {
            ok: false,
            error: `${r.command} failed (exit ${r.code ?? 'none'})${r.output ? `: ${r.output}` : ''}`,
          };
    },
    async afterRemove(log) {
      await log.run([...SC, 'daemon-reload']);
    },
    unloadHint: () => [
      [...SC, 'stop', SYSTEMD_UNIT],
      [...SC, 'daemon-reload'],
    ],
    async state(opts = {}): Promise<ManagerState> {
      const reach = await probe(opts);
      if (!reach.reachable) return { reachable: false, reason: reach.reason };
      const active = (await query(['is-active', SYSTEMD_UNIT], opts.signal)).stdout.trim();
      const enabled = (await query(['is-enabled', SYSTEMD_UNIT], opts.signal)).stdout.trim();
      const pid = Number(
        (await query(['show', '--property=MainPID', '--value', SYSTEMD_UNIT], opts.signal)).stdout.trim(),
      );
      return {
        reachable: true,
        state: active || 'unknown',
        ...(enabled ? { enabled } : {}),
        ...(Number.isInteger(pid) && pid > 0 ? { pid } : {}),
      };
    },
  };
}
