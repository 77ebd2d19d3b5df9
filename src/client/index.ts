/** client: a typed client for a node's API, used by the CLI and by any TypeScript producer. */
import { loadConfig, type LoadConfigOptions, readDaemonInfo, readToken, tokenPath } from '../config/index.js';
import { WeftError } from '../errors/index.js';
import { processAlive } from '../util/index.js';
import { WeftClient } from './client.js';

export * from './client.js';

/**
 * Connects to the local daemon: `url`/`token` if given, else WEFT_URL/WEFT_TOKEN, else the
 * daemon's address and token file in the configured data dir.
 * @example
 * import { connect } from 'weft';
 * const weft = await connect();
 * await weft.emit({ event: 'system.worker.crashed', payload: { worker: 'w', error: 'x', restarts: 0 } });
 */
export async function connect(opts: { url?: string; token?: string } & LoadConfigOptions = {}): Promise<WeftClient> {
  const env = opts.env ?? process.env;
  // An empty variable (`WEFT_TOKEN=`) counts as unset.
  let url = opts.url ?? (env.WEFT_URL || undefined);
  let token = opts.token ?? (env.WEFT_TOKEN || undefined);
  let tokenFrom = opts.token !== undefined ? undefined : token !== undefined ? 'WEFT_TOKEN' : undefined;
  if (url !== undefined && !/^https?:\/\/[^/]/.test(url)) {
    throw new WeftError('WEFT_VALIDATION', `${opts.url !== undefined ? 'the url given' : 'WEFT_URL'} is '${url}', not an http:// or https:// address (e.g. http://127.0.0.1:9237)`);
  }
  if (!url || !token) {
    const cfg = loadConfig(opts);
    const info = readDaemonInfo(cfg.data_dir);
    // A daemon.json whose process is gone (a kill -9) names an address another program may have now.
    const live = info && processAlive(info.pid) ? info : undefined;
    // api.port 0 is a port the daemon picks: without its daemon.json there is nowhere to ask.
    if (url === undefined && !live && cfg.api.port === 0) {
      throw new WeftError('WEFT_STOPPED', `no weft daemon runs on ${cfg.data_dir} (api.port is 0: a running daemon's address is in its daemon.json); start one with 'weft daemon'`);
    }
    url ??= live?.url ?? `http://${cfg.api.host}:${cfg.api.port}`;
    if (!token) {
      token = readToken(cfg.data_dir);
      tokenFrom = tokenPath(cfg.data_dir);
    }
    if (!token) {
      // The token file went (deleted, emptied) while a daemon runs: starting another would be refused.
      if (live) {
        throw new WeftError(
          'WEFT_UNAUTHORIZED',
          `the API token file ${tokenPath(cfg.data_dir)} is missing or empty, but a weft daemon (pid ${live.pid}) runs on ${cfg.data_dir}: restart it (a start writes a new token)`,
        );
      }
      throw new WeftError('WEFT_STOPPED', `no weft daemon has run on ${cfg.data_dir} (no token file); start one with 'weft daemon'`);
    }
  }
  return new WeftClient({ url, token, ...(tokenFrom ? { tokenFrom } : {}) });
}
