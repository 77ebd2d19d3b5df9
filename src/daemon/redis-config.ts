/**
 * The Redis part of a node, from the config: the local bus on Redis (when `redis.url` is
 * set), the key prefix, and whether `redis.url` names a Redis Cluster. A cluster changes the
 * key layout (hash tags, see config/redis-keys.ts), so its settings are checked here, before
 * anything connects.
 */
import { clusterPrefixProblem, type WeftConfig } from '../config/index.js';
import { ConfigError, type WeftError } from '../errors/index.js';
import { parseRedisSeeds } from '../redis/index.js';
import type { AssembleInit } from './assemble.js';

/**
 * @throws ConfigError a seed list without `redis.cluster`, a cluster without `redis.url`, a
 * malformed seed, a prefix with `{` or `}` on a cluster.
 * @example
 * const { redis, redisCluster } = redisFromConfig(loadConfig());
 * // with WEFT_REDIS_CLUSTER=true: redis.stream === 'weft:{<computer>}:events', redisCluster === true
 */
export function redisFromConfig(
  cfg: WeftConfig,
): Pick<AssembleInit, 'redis' | 'redisPrefix' | 'redisCluster'> {
  const { url, prefix, cluster } = cfg.redis;
  if (!cluster) {
    if (url?.includes(',')) {
      throw new ConfigError(
        'config key redis.url: lists several servers, which is a Redis Cluster seed list; set redis.cluster = true (WEFT_REDIS_CLUSTER=true), or give one redis:// URL',
        { key: 'redis.url' },
      );
    }
    return {
      ...(url ? { redis: { url, prefix, stream: cfg.redis.stream, group: cfg.redis.group } } : {}),
      redisPrefix: prefix,
    };
  }
  if (!url) {
    throw new ConfigError(
      'config key redis.cluster: needs redis.url, the seed nodes of the cluster (redis://host:7000,redis://host:7001)',
      { key: 'redis.cluster' },
    );
  }
  try {
    parseRedisSeeds(url);
  } catch (err) {
    throw new ConfigError(`config key ${(err as WeftError).message}`, { key: 'redis.url' });
  }
  const problem = clusterPrefixProblem(prefix);
  if (problem)
    throw new ConfigError(`config key redis.prefix: ${problem}; choose a prefix without braces`, {
      key: 'redis.prefix',
    });
  // The config's default bus stream is already the hash-tagged one (a stream set explicitly is
  // used as it is).
  return {
    redis: { url, cluster: true, prefix, stream: cfg.redis.stream, group: cfg.redis.group },
    redisPrefix: prefix,
    redisCluster: true,
  };
}
