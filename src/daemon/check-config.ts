/**
 * The checks `weft daemon` makes of a config before it opens anything, for commands that only
 * read the config (`weft config show`): so a config the daemon would refuse is flagged there with
 * the daemon's own message, not first at the next start.
 */
import type { WeftConfig } from '../config/index.js';
import { meshFromConfig } from './daemon.js';
import { privacyFromConfig } from './privacy-config.js';
import { redisFromConfig } from './redis-config.js';

/**
 * Throws the ConfigError the daemon would stop with (Redis, mesh, federation, observe and privacy
 * keys); returns quietly for a config it accepts. Nothing connects, nothing is written.
 * @example
 * checkConfig(loadConfig()); // throws "config key observe.rules: rule #1: name \"prod deploys\" must be …"
 */
export function checkConfig(cfg: WeftConfig): void {
  redisFromConfig(cfg);
  meshFromConfig(cfg);
  privacyFromConfig(cfg);
}
