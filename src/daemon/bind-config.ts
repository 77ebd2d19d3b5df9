/**
 * The daemon's listeners and their config keys: a host that is no host, an API and a TLS link on
 * one port (both checked before the start), and the errors a listen gives at start turned into
 * one line naming the key and what to set it to.
 */
import { isIP } from 'node:net';
import type { ConfigKey, WeftConfig } from '../config/index.js';
import { ConfigError } from '../errors/index.js';

/** A DNS name (letters, digits, '-', '_', dots), as a listen host may be besides an IP address. */
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;
const ANY_ADDRESS = new Set(['0.0.0.0', '::', '::0']);

/** The key as a line names it: with its environment variable when that set it. */
function named(cfg: WeftConfig, key: ConfigKey): string {
  const v = cfg.fromEnv?.[key];
  return v ? `${key} (${v})` : key;
}

/**
 * Checks api.host and, with the TLS provider, mesh.tls_host and that the two listeners do not
 * ask for one port on one address.
 * @throws ConfigError naming the key.
 * @example
 * checkBindConfig(loadConfig()); // with api.port = mesh.tls_port = 9238: "config key mesh.tls_port: api.port and mesh.tls_port are both 9238 …"
 */
export function checkBindConfig(cfg: WeftConfig): void {
  const host = (key: 'api.host' | 'mesh.tls_host', value: string) => {
    if (isIP(value) === 0 && !HOST_NAME.test(value)) {
      throw new ConfigError(
        `config key ${named(cfg, key)}: ${JSON.stringify(value)} is not allowed; expected an IP address or a host name of this computer (127.0.0.1, 0.0.0.0 for every interface, ::1, localhost)`,
        { key },
      );
    }
  };
  host('api.host', cfg.api.host);
  if (cfg.mesh.provider !== 'tls') return;
  host('mesh.tls_host', cfg.mesh.tls_host);
  const { port } = cfg.api;
  const same = (a: string) => (a === 'localhost' ? '127.0.0.1' : a);
  const overlap =
    same(cfg.api.host) === same(cfg.mesh.tls_host) ||
    ANY_ADDRESS.has(cfg.api.host) ||
    ANY_ADDRESS.has(cfg.mesh.tls_host);
  if (port !== 0 && port === cfg.mesh.tls_port && overlap) {
    throw new ConfigError(
      `config key ${named(cfg, 'mesh.tls_port')}: api.port and mesh.tls_port are both ${port} (on ${cfg.api.host} and ${cfg.mesh.tls_host}); give them different ports (defaults 9237 and 9238)`,
      { key: 'mesh.tls_port' },
    );
  }
}

/**
 * A listen error of the API or the TLS link as a ConfigError naming the key to change;
 * undefined for an error that is not about the address or port.
 * @example
 * bindError(Object.assign(new Error('listen EADDRNOTAVAIL'), { code: 'EADDRNOTAVAIL' }), cfg, 'api');
 * // ConfigError 'config key api.host: "8.8.8.8" is not an address of this computer (listen EADDRNOTAVAIL); …'
 */
export function bindError(err: unknown, cfg: WeftConfig, listener: 'api' | 'mesh'): ConfigError | undefined {
  const e = err as NodeJS.ErrnoException;
  const [hostKey, portKey] =
    listener === 'api' ? (['api.host', 'api.port'] as const) : (['mesh.tls_host', 'mesh.tls_port'] as const);
  const host = listener === 'api' ? cfg.api.host : cfg.mesh.tls_host;
  const port = listener === 'api' ? cfg.api.port : cfg.mesh.tls_port;
  const setHost = `set ${hostKey} to an address of this computer: 127.0.0.1 (this computer only) or 0.0.0.0 (every interface)`;
  // Only this listener's own look-up and listen: a peer or a server it reaches has other names.
  const lookup = e?.syscall === 'getaddrinfo' && (e as { hostname?: string }).hostname === host;
  if (!lookup && e?.syscall !== 'listen') return undefined;
  switch (e.code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
    case 'EAI_FAIL':
      return new ConfigError(
        `config key ${named(cfg, hostKey)}: ${JSON.stringify(host)} cannot be looked up (getaddrinfo ${e.code}); ${setHost}`,
        { key: hostKey },
      );
    case 'EADDRNOTAVAIL':
      return new ConfigError(
        `config key ${named(cfg, hostKey)}: ${JSON.stringify(host)} is not an address of this computer (listen EADDRNOTAVAIL); ${setHost}`,
        { key: hostKey },
      );
    case 'EADDRINUSE':
      return new ConfigError(
        `config key ${named(cfg, portKey)}: ${port} on ${host} is already in use (another node?); set ${portKey}${listener === 'api' ? ', or 0 to pick a free one' : ''}`,
        { key: portKey },
      );
    case 'EACCES':
      return new ConfigError(
        `config key ${named(cfg, portKey)}: ${port} on ${host} needs privileges this user does not have (listen EACCES); use a port above 1023`,
        { key: portKey },
      );
    default:
      return undefined;
  }
}
