/**
 * The one place Weft makes a Redis client: a plain `Redis` for one server, or an ioredis
 * `Cluster` when `redis.cluster` is on and `redis.url` lists the cluster's seed nodes.
 */
import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { WeftError } from '../errors/index.js';
import { untilAborted } from '../util/index.js';
import { redactUrl } from './scripts.js';

/** A connection to one Redis server or to a Redis Cluster; both speak every command Weft sends. */
export type RedisClient = Redis | Cluster;

/** What every Weft client sets; the rest are ioredis defaults. */
export interface RedisClientOptions {
  /** The cluster's seed nodes are in `url` (comma separated) and keys are routed by slot. */
  cluster?: boolean;
  lazyConnect?: boolean;
  /** null: a command waits while the client reconnects; n: it fails after n reconnects. */
  maxRetriesPerRequest?: number | null;
  /** false: commands fail at once while the client is not connected. */
  enableOfflineQueue?: boolean;
  enableAutoPipelining?: boolean;
}

/** The seed nodes of a cluster and the credentials they share. */
export interface RedisSeeds {
  nodes: Array<{ host: string; port: number }>;
  username?: string;
  password?: string;
  tls: boolean;
}

const SEED =
  /^(?:(rediss?):\/\/)?(?:([^:@/]*)(?::([^@/]*))?@)?(\[[^\]]+\]|[^:/@[\]]+)(?::(\d{1,5}))?(?:\/(\d*))?\/?$/;

/**
 * Splits a comma-separated seed list. The first entry must be a URL; the next ones may be
 * URLs or plain `host:port` (they take the first one's scheme and credentials). A cluster has
 * one database, so a path other than `/0` is refused.
 * @example
 * parseRedisSeeds('redis://:secret@10.0.0.1:7000,10.0.0.2:7001')
 * // { nodes: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7001 }], password: 'secret', tls: false }
 */
export function parseRedisSeeds(url: string): RedisSeeds {
  const parts = url
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  if (parts.length === 0)
    throw new WeftError(
      'WEFT_CONFIG',
      'redis.url is empty; expected redis://host:port (several comma separated for a cluster)',
    );
  const out: RedisSeeds = { nodes: [], tls: false };
  let scheme: string | undefined;
  for (const [i, part] of parts.entries()) {
    const m = SEED.exec(part);
    const shown = JSON.stringify(part.replace(/\/\/([^:@/]*):([^@/]*)@/, '//$1:***@'));
    if (!m || (i === 0 && !m[1])) {
      throw new WeftError(
        'WEFT_CONFIG',
        `redis.url: seed ${shown} is not redis://host:port (or host:port after the first)`,
      );
    }
    if (m[6] !== undefined && m[6] !== '' && m[6] !== '0') {
      throw new WeftError(
        'WEFT_CONFIG',
        `redis.url: seed ${shown} names database ${m[6]}; a Redis Cluster has only database 0`,
      );
    }
    if (m[1]) {
      if (scheme !== undefined && m[1] !== scheme)
        throw new WeftError(
          'WEFT_CONFIG',
          'redis.url: the seeds mix redis:// and rediss://; use one scheme for all',
        );
      scheme = m[1];
    }
    if (m[2]) out.username = decodeURIComponent(m[2]);
    if (m[3] !== undefined && m[3] !== '') out.password = decodeURIComponent(m[3]);
    const port = m[5] === undefined ? 6379 : Number(m[5]);
    if (port < 1 || port > 65_535)
      throw new WeftError('WEFT_CONFIG', `redis.url: seed ${shown} has no valid port`);
    out.nodes.push({ host: (m[4] as string).replace(/^\[|\]$/g, ''), port });
  }
  out.tls = scheme === 'rediss';
  return out;
}

let ctors: Promise<{ Redis: typeof Redis; Cluster: typeof Cluster }> | undefined;

/**
 * A client for `url`: one server (`redis://host:port`), or with `cluster` an ioredis Cluster
 * over the seed list. ioredis is imported on first use (~25 MiB a node without Redis does not
 * pay).
 * @example
 * const c = await createRedisClient('redis://127.0.0.1:7000,redis://127.0.0.1:7001', { cluster: true, lazyConnect: true });
 * await c.connect();
 */
export async function createRedisClient(url: string, opts: RedisClientOptions = {}): Promise<RedisClient> {
  ctors ??= import('ioredis').then((mod) => ({
    Redis: mod.Redis as unknown as typeof Redis,
    Cluster: mod.Cluster as unknown as typeof Cluster,
  }));
  const m = await ctors;
  const { cluster, maxRetriesPerRequest, ...rest } = opts;
  if (!cluster) {
    if (url.includes(',')) {
      throw new WeftError(
        'WEFT_CONFIG',
        'redis.url lists several servers; that is a Redis Cluster seed list: set redis.cluster = true (WEFT_REDIS_CLUSTER=true)',
      );
    }
    const options: RedisOptions = {
      ...rest,
      ...(maxRetriesPerRequest !== undefined ? { maxRetriesPerRequest } : {}),
    };
    return new m.Redis(url, options);
  }
  const seeds = parseRedisSeeds(url);
  const options: ClusterOptions = {
    ...rest,
    redisOptions: {
      ...(maxRetriesPerRequest !== undefined ? { maxRetriesPerRequest } : {}),
      ...(seeds.username !== undefined ? { username: seeds.username } : {}),
      ...(seeds.password !== undefined ? { password: seeds.password } : {}),
      ...(seeds.tls ? { tls: {} } : {}),
    },
    // A master's fail-over (its replica promoted after cluster-node-timeout) takes seconds:
    // a command retries on the new owner of its slot for about that long, then fails and the
    // caller's own retry (outbox, journal, backoff) takes over.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 200,
    maxRedirections: 32,
    slotsRefreshTimeout: 2000,
    // A lost node is not reconnected to (ioredis' default): a command sent its way fails,
    // and the retry above finds the slot's new owner. Commands must never queue on a node
    // that may not come back.
    slotsRefreshInterval: 2000,
  };
  return new m.Cluster(seeds.nodes, options);
}

/** How long a start waits for Redis to answer once it took the connection (a paused server, or something else listening). */
export const REDIS_CONNECT_TIMEOUT_MS = 10_000;

/**
 * Connects `client` to `url` and makes sure it is the Redis the URL names, or throws one
 * WeftError saying why not: no answer within `ms` after the connection was taken (ioredis waits
 * for its ready check without a limit), the server's own reason where ioredis only says
 * "Connection is closed." (a wrong or missing password: NOAUTH / WRONGPASS), a database index
 * the server does not have (ioredis would carry on in database 0), or the wrong topology.
 * @example
 * const c = await createRedisClient(url, { lazyConnect: true });
 * await connectRedis(c, url); // throws "cannot reach Redis at redis://…: it took the connection but did not answer within 10 s …"
 */
export async function connectRedis(
  client: RedisClient,
  url: string,
  ms = REDIS_CONNECT_TIMEOUT_MS,
): Promise<void> {
  let reason: string | undefined;
  // A cluster client reports a seed's own reply only as a 'node error' (or as the cause of
  // 'Failed to refresh slots cache'), and its connect() says no more than "None of startup
  // nodes is available": a missing password looked like an unreachable cluster.
  const onError = (err: Error & { lastNodeError?: Error | null }) => {
    for (const e of [err, err.lastNodeError]) {
      if (e && /NOAUTH|WRONGPASS|invalid password|DB index|invalid DB/i.test(e.message)) reason = e.message;
    }
  };
  client.on('error', onError);
  client.on('node error', onError);
  const where = `cannot reach Redis at ${redactUrl(url)}`;
  // The database the URL names (redis://host:port/N), read once for the select and the message.
  const db = Number(/^rediss?:\/\/[^/]*\/(\d+)\/?$/.exec(url.trim())?.[1] ?? 0);
  try {
    await untilAborted(client.connect(), AbortSignal.timeout(ms));
    // ioredis selects the database after connecting and goes on in database 0 if that fails.
    if (db > 0 && 'select' in client) await untilAborted(client.select(db), AbortSignal.timeout(ms));
    if (!client.isCluster) await refuseClusterNode(client, url, ms);
  } catch (err) {
    client.disconnect();
    if (err instanceof WeftError) throw err;
    const e = err as Error;
    if (e.name === 'TimeoutError') {
      throw new WeftError(
        'WEFT_BUS',
        `${where}: it took the connection but did not answer within ${Math.round(ms / 1000)} s (is Redis paused, or is something other than Redis listening there?)`,
        { cause: err },
      );
    }
    const said = reason ?? e.message;
    if (/NOAUTH|WRONGPASS|invalid password/i.test(said)) {
      const given = /^rediss?:\/\/[^/]*@/.test(url.trim());
      throw new WeftError(
        'WEFT_CONFIG',
        `${where}: ${given ? 'Redis refused the user or password' : 'Redis asks for a password and redis.url gives none'} (${said.split(',')[0]}): put them in redis.url (redis://user:password@host:port)`,
        { cause: err },
      );
    }
    if (/DB index|invalid DB/i.test(said)) {
      throw new WeftError(
        'WEFT_CONFIG',
        `${where}: Redis has no database ${db} (${said}): fix the number after the port in redis.url`,
        { cause: err },
      );
    }
    const t = topologyHint(err);
    throw new WeftError(t?.code ?? 'WEFT_BUS', `${where}: ${said}${t ? `: ${t.hint}` : ''}`, { cause: err });
  } finally {
    client.off('error', onError);
    client.off('node error', onError);
  }
}

/**
 * Refuses a node of a Redis Cluster reached as a single server. MOVED gave it away only when
 * the first key the node touched lived on another master: a computer whose keys all hashed
 * to the node given started, announced itself where the other nodes never look, and said
 * 'problems: none' with no peers. A server that does not answer INFO (a proxy, an ACL without
 * it) is taken as it is.
 */
async function refuseClusterNode(client: RedisClient, url: string, ms: number): Promise<void> {
  const info = await untilAborted(client.info('cluster'), AbortSignal.timeout(ms)).catch(() => '');
  if (/^cluster_enabled:1\s*$/m.test(info)) {
    throw new WeftError(
      'WEFT_CONFIG',
      `Redis at ${redactUrl(url)} is a node of a Redis Cluster (cluster_enabled:1), and redis.cluster is off: set redis.cluster = true (WEFT_REDIS_CLUSTER=true) and list the seed nodes`,
    );
  }
}

/**
 * A clearer message for errors that mean the wrong kind of server: a cluster node reached as
 * a single server (MOVED/CROSSSLOT: a configuration error), seeds that do not answer as a
 * cluster (unreachable, or a single server reached as a cluster), or a server out of memory
 * (OOM: it refuses every write until memory is freed).
 * @example
 * topologyHint(new Error('MOVED 3999 10.0.0.6:7001'))?.code // 'WEFT_CONFIG'
 */
export function topologyHint(err: unknown): { hint: string; code: 'WEFT_CONFIG' | 'WEFT_BUS' } | undefined {
  const msg = err instanceof Error ? err.message : String(err);
  if (/^(MOVED|ASK|CROSSSLOT) /.test(msg)) {
    return {
      code: 'WEFT_CONFIG',
      hint: 'redis.url is a Redis Cluster node: set redis.cluster = true (WEFT_REDIS_CLUSTER=true) and list the seed nodes',
    };
  }
  if (/cluster support disabled/i.test(msg)) {
    return {
      code: 'WEFT_CONFIG',
      hint: 'redis.cluster is on but redis.url is a single Redis server: set redis.cluster = false, or list the seed nodes of a cluster',
    };
  }
  if (/^OOM /.test(msg)) {
    return {
      code: 'WEFT_BUS',
      hint: "that Redis server is at its maxmemory and refuses writes (maxmemory-policy noeviction): free memory there or raise its maxmemory; with a cluster, the server is the master of the key's slot",
    };
  }
  if (/None of startup nodes is available|Failed to refresh slots cache/i.test(msg)) {
    return {
      code: 'WEFT_BUS',
      hint: 'no seed in redis.url answered as a Redis Cluster node: is it reachable, and does it run with cluster-enabled yes? For a single Redis server set redis.cluster = false',
    };
  }
  return undefined;
}
