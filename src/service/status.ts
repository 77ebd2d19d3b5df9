/** `weft service status`: installed or not, what the service manager says, whether the daemon answers. */
import { readDaemonInfo, readToken } from '../config/index.js';
import { linkedSignal } from '../util/index.js';
import { serviceManager } from './managers.js';
import type { ManagerState } from './manager.js';
import type { ServicePlatform } from './platform.js';
import type { ServiceRunner } from './runner.js';
import type { ServiceSpec } from './spec.js';

/** Whether a daemon answers on a data dir, as its daemon.json says where. */
export interface DaemonAnswer {
  answers: boolean;
  url?: string;
  pid?: number;
  /** What was found, in words. */
  detail: string;
}

/** The service's state as `weft service status` reports it. */
export interface StatusResult {
  platform: ServicePlatform;
  installed: boolean;
  /** Each file install writes: whether it is there, and whether it is what install would write now. */
  files: Array<{ role: string; path: string; exists: boolean; current: boolean }>;
  manager: ManagerState & { name: string };
  daemon: DaemonAnswer;
}

/** Asks the daemon of a data dir whether it is there. */
export type DaemonProbe = (dataDir: string, opts?: { signal?: AbortSignal }) => Promise<DaemonAnswer>;

/**
 * Reads `<data_dir>/daemon.json` (as clients do) and asks that address for `/api/health` with the node's token.
 * @example
 * await probeDaemon('/home/caro/.weft/data'); // { answers: true, url: 'http://127.0.0.1:9237', pid: 4242, detail: 'answers at ...' }
 */
export const probeDaemon: DaemonProbe = async (dataDir, opts = {}) => {
  const info = readDaemonInfo(dataDir);
  if (!info) return { answers: false, detail: `not running (no daemon.json in ${dataDir})` };
  const token = readToken(dataDir);
  const timeout = AbortSignal.timeout(2000);
  const linked = opts.signal ? linkedSignal([opts.signal, timeout]) : undefined;
  try {
    const res = await fetch(`${info.url}/api/health`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      signal: linked?.signal ?? timeout,
    });
    if (!res.ok)
      return {
        answers: false,
        url: info.url,
        pid: info.pid,
        detail: `${info.url} answered HTTP ${res.status}`,
      };
    const h = (await res.json()) as { pid?: number; computer?: string; uptimeSeconds?: number };
    const pid = typeof h.pid === 'number' ? h.pid : info.pid;
    return {
      answers: true,
      url: info.url,
      pid,
      detail: `answers at ${info.url} (pid ${pid}, node '${h.computer ?? info.computer}', up ${h.uptimeSeconds ?? '?'}s)`,
    };
  } catch (err) {
    const why =
      (err as Error).name === 'TimeoutError'
        ? 'no answer within 2s'
        : ((err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message);
    return {
      answers: false,
      url: info.url,
      pid: info.pid,
      detail: `not answering at ${info.url} (${why}); daemon.json names pid ${info.pid}`,
    };
  } finally {
    linked?.release();
  }
};

/**
 * Reports whether the service is installed (which files), what its manager says (or why that is unknown),
 * and whether the daemon answers.
 * @example
 * const s = await serviceStatus(spec, { runner: systemRunner() });
 * s.manager; // { name: 'systemctl --user', reachable: false, reason: 'Failed to connect to bus: No medium found' }
 */
export async function serviceStatus(
  spec: ServiceSpec,
  deps: { runner: ServiceRunner; probeDaemon?: DaemonProbe; signal?: AbortSignal },
): Promise<StatusResult> {
  deps.signal?.throwIfAborted();
  const files = spec.files.map((f) => {
    const now = deps.runner.read(f.path);
    return {
      role: f.role,
      path: f.path,
      exists: now !== undefined,
      current: now?.text === f.text && now.mode === spec.mode,
    };
  });
  const manager = serviceManager(spec, deps.runner);
  const opts = deps.signal ? { signal: deps.signal } : {};
  const [state, daemon] = await Promise.all([
    manager.state(opts),
    (deps.probeDaemon ?? probeDaemon)(spec.dataDir, opts),
  ]);
  return {
    platform: spec.platform,
    installed: files.some((f) => f.path === spec.paths.definition && f.exists),
    files,
    manager: { name: manager.name, ...state },
    daemon,
  };
}
