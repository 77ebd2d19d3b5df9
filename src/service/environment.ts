/** Which of the installing shell's WEFT_* variables the service gets, and which it does not. */
import { resolve } from 'node:path';
import { CONFIG_KEYS, envNameOf } from '../config/index.js';
import { ValidationError } from '../errors/index.js';

/** The variables the service runs with, and the WEFT_* names left out (with why). */
export interface DaemonEnvironment {
  /** Name → value, sorted by name (so the same shell writes the same file). */
  variables: Record<string, string>;
  /** Names of variables whose config key is secret (redis.url, telegram.bot_token): masked when shown. */
  secret: string[];
  /** WEFT_* names set in the shell but not copied, with the reason. */
  skipped: Array<{ name: string; reason: string }>;
}

export interface DaemonEnvironmentInit {
  /** The installing shell's environment. */
  env: NodeJS.ProcessEnv;
  /** Directory relative paths are resolved against (the shell's working directory). */
  cwd: string;
  /** Values that win, by variable name (e.g. WEFT_LOG_LEVEL from --log-level). */
  overrides?: Record<string, string>;
}

const CLIENT_ONLY = new Set(['WEFT_URL', 'WEFT_TOKEN']);
const PATH_KEYS = new Set(['data_dir', 'observe.spool_dir']);

/**
 * Picks the WEFT_* variables the daemon reads (one per config key) from a shell's environment;
 * paths are made absolute because the service runs in the data dir, not in this shell's directory.
 * @example
 * daemonEnvironment({ env: { WEFT_API_PORT: '9300', WEFT_TOKEN: 't' }, cwd: '/home/caro' });
 * // { variables: { WEFT_API_PORT: '9300' }, secret: [], skipped: [{ name: 'WEFT_TOKEN', reason: 'read by clients, not the daemon' }] }
 */
export function daemonEnvironment(init: DaemonEnvironmentInit): DaemonEnvironment {
  const byName = new Map<string, { key: string; secret: boolean }>();
  for (const [key, spec] of Object.entries(CONFIG_KEYS))
    byName.set(envNameOf(key), { key, secret: 'secret' in spec && spec.secret === true });
  const set = { ...pickWeft(init.env), ...(init.overrides ?? {}) };
  const variables: Record<string, string> = {};
  const secret: string[] = [];
  const skipped: Array<{ name: string; reason: string }> = [];
  for (const name of Object.keys(set).sort()) {
    const value = set[name] as string;
    const known = byName.get(name);
    if (!known) {
      // WEFT_CONFIG becomes --config in the command line; the rest are not the daemon's.
      if (name === 'WEFT_CONFIG') continue;
      skipped.push({
        name,
        reason: CLIENT_ONLY.has(name) ? 'read by clients, not the daemon' : 'not a config setting',
      });
      continue;
    }
    if (hasControl(value)) {
      throw new ValidationError(
        `${name} holds a control character (a newline?); the service cannot carry it: fix the variable or put the setting in the config file`,
        { name },
      );
    }
    variables[name] = PATH_KEYS.has(known.key) ? resolve(init.cwd, value) : value;
    if (known.secret) secret.push(name);
  }
  return { variables, secret, skipped };
}

/**
 * Whether a string holds a control character other than tab: neither a unit line, an environment
 * file line nor XML 1.0 can carry one.
 * @example
 * hasControl('a\nb'); // true
 */
export function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

function pickWeft(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env))
    if (name.startsWith('WEFT_') && value !== undefined && value !== '') out[name] = value;
  return out;
}

/**
 * The variables with secret values replaced, for output a person or a log may see.
 * @example
 * maskSecrets({ variables: { WEFT_REDIS_URL: 'redis://:pw@h' }, secret: ['WEFT_REDIS_URL'], skipped: [] });
 * // { WEFT_REDIS_URL: '********' }
 */
export function maskSecrets(e: DaemonEnvironment): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(e.variables)) out[k] = e.secret.includes(k) ? '********' : v;
  return out;
}
