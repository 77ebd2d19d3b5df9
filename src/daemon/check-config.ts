/**
 * Every check `weft daemon` makes of a config before it opens anything, in one place: the daemon
 * runs it first, and commands that only read the config (`weft config show`) run the same, so a
 * config the daemon would refuse is flagged there with the daemon's own line, not first at the
 * next start, and the two cannot drift apart.
 */
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import { type ConfigKey, secretValues, type WeftConfig } from '../config/index.js';
import { checkDeliveryConfig } from '../delivery/index.js';
import { ConfigError } from '../errors/index.js';
import { splitCommandLine } from '../util/index.js';
import { isGitRefSafe } from '../recovery/index.js';
import { checkBindConfig } from './bind-config.js';
import { checkMdnsConfig } from './mdns-config.js';
import { meshFromConfig } from './mesh-config.js';
import { privacyFromConfig } from './privacy-config.js';
import { redisFromConfig } from './redis-config.js';

/**
 * Throws the ConfigError the daemon would stop with (data dir, Redis, mesh, mDNS, federation,
 * observe, privacy, delivery, signal sources and the git fallback); resolves quietly for a
 * config it accepts. Nothing connects, nothing is written; OPML and CSV source files are read.
 * @example
 * await checkConfig(loadConfig()); // throws "config key observe.rules: rule #1: name \"prod deploys\" must be …"
 */
export async function checkConfig(cfg: WeftConfig): Promise<void> {
  try {
    await checkAll(cfg);
  } catch (err) {
    throw withoutSecrets(cfg, withEnvName(cfg, err));
  }
}

/** The error with every secret value it quotes (a malformed webhook.url, say) masked as `weft config show` masks it. */
function withoutSecrets(cfg: WeftConfig, err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  let message = err.message;
  for (const [value, masked] of secretValues(cfg)) message = message.split(value).join(masked);
  if (message === err.message) return err;
  return err instanceof ConfigError ? new ConfigError(message, { ...err.details, value: undefined }) : Object.assign(err, { message });
}

/**
 * The error with the environment variable after the key ("config key mesh.peers
 * (WEFT_MESH_PEERS): …") when the environment set that key, as the loader's own lines say it.
 */
function withEnvName(cfg: WeftConfig, err: unknown): unknown {
  const key = err instanceof ConfigError ? err.details?.key : undefined;
  if (typeof key !== 'string') return err;
  // signals.sources[0].type came from signals.sources.
  const name = cfg.fromEnv?.[key.replace(/\[.*$/, '') as ConfigKey];
  const head = `config key ${key}`;
  // Lines that already name the variable have something other than ':' after the key.
  if (!name || !(err as ConfigError).message.startsWith(`${head}:`)) return err;
  return new ConfigError(`${head} (${name})${(err as ConfigError).message.slice(head.length)}`, (err as ConfigError).details);
}

async function checkAll(cfg: WeftConfig): Promise<void> {
  checkDataDir(cfg.data_dir);
  checkBindConfig(cfg);
  redisFromConfig(cfg);
  meshFromConfig(cfg);
  checkMdnsConfig(cfg);
  privacyFromConfig(cfg);
  checkDeliveryConfig(cfg);
  if (cfg.fallback.git_remote && !isGitRefSafe(cfg.computer.name)) {
    throw new ConfigError(
      `config key computer.name: ${JSON.stringify(cfg.computer.name)} cannot be a git ref, which the git fallback (fallback.git_remote) needs: letters, digits, '-', '_', single dots`,
      { key: 'computer.name' },
    );
  }
  const summarizer = cfg.signals.summarizer_command;
  if (summarizer !== undefined) {
    // The daemon would stop at commandSummarizer with a line naming no key.
    const argv = splitCommandLine(summarizer);
    if (summarizer.trim() === '' || (argv !== undefined && argv.length === 0)) {
      throw new ConfigError(
        `config key signals.summarizer_command: ${JSON.stringify(summarizer)} is no command (a program and its arguments, e.g. "my-ai-cli summarize --json"); remove the key for the built-in extractive summariser`,
        { key: 'signals.summarizer_command' },
      );
    }
  }
  if (cfg.signals.enabled && cfg.signals.sources.length > 0) {
    // Loaded only when sources are configured, as the daemon does: the feed parser is heavy.
    const { configuredSources } = await import('../signals/index.js');
    await configuredSources({
      sources: cfg.signals.sources,
      ...(cfg.signals.x_feed_template ? { xFeedTemplate: cfg.signals.x_feed_template } : {}),
      ...(cfg.source ? { baseDir: dirname(cfg.source) } : {}),
    });
  }
}

/**
 * A data dir path that is a file stops the start; a missing one is created by the daemon.
 * @throws ConfigError naming data_dir.
 */
export function checkDataDir(dir: string): void {
  let st: ReturnType<typeof statSync> | undefined;
  try {
    st = statSync(dir);
  } catch {
    return;
  }
  if (!st.isDirectory()) {
    throw new ConfigError(
      `config key data_dir: ${dir} is a file, not a directory; point data_dir at a directory (it is created if missing)`,
      { key: 'data_dir' },
    );
  }
}
