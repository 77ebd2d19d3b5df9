/** client: a typed client for a node's API, used by the CLI and by any TypeScript producer. */
import { loadConfig, type LoadConfigOptions, readDaemonInfo, readToken } from '../config/index.js';
import { WeftError } from '../errors/index.js';
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
  if (!url || !token) {
    const cfg = loadConfig(opts);
    const info = readDaemonInfo(cfg.data_dir);
    url ??= info?.url ?? `http://${cfg.api.host}:${cfg.api.port}`;
    token ??= readToken(cfg.data_dir);
    if (!token) {
      throw new WeftError('WEFT_STOPPED', `no weft daemon has run on ${cfg.data_dir} (no token file); start one with 'weft daemon'`);
    }
  }
  return new WeftClient({ url, token });
}
