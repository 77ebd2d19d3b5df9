/**
 * Heavy dependencies a configuration may not use, loaded on first use so an embedded node
 * without Redis or TLS does not pay their memory (ioredis alone is ~25 MiB resident).
 */
import type { Redis as RedisClient, RedisOptions } from 'ioredis';

type RedisCtor = new (url: string, options: RedisOptions) => RedisClient;
let redisCtor: Promise<RedisCtor> | undefined;

/** `new Redis(url, options)`, importing ioredis on first use. */
export async function newRedis(url: string, options: RedisOptions): Promise<RedisClient> {
  redisCtor ??= import('ioredis').then((m) => m.Redis as unknown as RedisCtor);
  const Redis = await redisCtor;
  return new Redis(url, options);
}
