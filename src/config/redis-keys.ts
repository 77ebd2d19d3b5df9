/**
 * Every key Weft writes on a Redis server, derived from one prefix (`redis.prefix`, default
 * `weft:`) and the computer name, so two nodes on one Redis never share a stream, a group or
 * a key unless they are configured to. Keys outside the prefix (TeleClaude's
 * `teleclaude:events` or `messages:{computer}`) are other programs' data: Weft reads them
 * when told to, and never acknowledges, trims or deletes their entries.
 *
 * Two layouts. On one Redis server (the default) the names are the ones Weft always used
 * (`weft:messages:laptop`), so existing deployments keep their streams. On a Redis Cluster
 * (`redis.cluster = true`) a computer's keys carry its name as a hash tag
 * (`weft:{laptop}:messages`, `weft:{laptop}:events`, `weft:{laptop}:claim`): they live in one
 * slot, so one master holds all of a computer's state, while different computers spread over
 * the slots. The peer registry is then one hash and one sorted set under the `{registry}` tag
 * instead of one key per computer (a SCAN would have to visit every master).
 */
export interface RedisKeys {
  /** Which layout these names follow. */
  layout: 'single' | 'cluster';
  /** This node's local bus stream. */
  busStream: string;
  /** The pipeline's consumer group on the bus stream. */
  busGroup: string;
  /** The mesh inbox of a computer (this node's own, or a peer's to send to). */
  inbox(computer: string): string;
  /** The consumer group a node reads its own inbox with. */
  inboxGroup: string;
  /** Prefix of the peer registry's entries (`{prefix}peers:{computer}`), single-server layout. */
  peersPrefix: string;
  /**
   * The peer registry in the cluster layout: entries (a hash computer → PeerInfo JSON) and
   * their expiry times (a sorted set), both under one hash tag.
   */
  peersTable: { entries: string; expiries: string };
  /** Keys a live node holds so no second node starts with the same name or bus stream. */
  claimComputer(computer: string): string;
  claimStream(stream: string): string;
}

/** The field Weft adds to every stream entry it writes; trimming only ever removes entries carrying it. */
export const WEFT_ENTRY_MARK = { field: 'weft', value: '1' } as const;

export const DEFAULT_REDIS_PREFIX = 'weft:';

/**
 * @example
 * redisKeys('weft:', 'laptop').busStream   // 'weft:events:laptop'
 * redisKeys('weft:', 'laptop').inbox('desktop') // 'weft:messages:desktop'
 * redisKeys('weft:', 'laptop', { cluster: true }).inbox('desktop') // 'weft:{desktop}:messages'
 */
export function redisKeys(prefix: string, computer: string, opts: { cluster?: boolean } = {}): RedisKeys {
  // Consumer groups are not keys (a group lives inside its stream's slot), so their names are
  // the same in both layouts.
  const common = {
    busGroup: `${prefix}pipeline:${computer}`,
    inboxGroup: `${prefix}mesh`,
    peersPrefix: `${prefix}peers:`,
    peersTable: { entries: `${prefix}{registry}:peers`, expiries: `${prefix}{registry}:peers:expiry` },
    claimStream: (s: string) => `${prefix}claim:stream:${s}`,
  };
  if (opts.cluster) {
    return {
      layout: 'cluster',
      ...common,
      busStream: `${prefix}{${computer}}:events`,
      inbox: (c) => `${prefix}{${c}}:messages`,
      claimComputer: (c) => `${prefix}{${c}}:claim`,
    };
  }
  return {
    layout: 'single',
    ...common,
    busStream: `${prefix}events:${computer}`,
    inbox: (c) => `${prefix}messages:${c}`,
    claimComputer: (c) => `${prefix}claim:computer:${c}`,
  };
}

/**
 * Why a prefix cannot be used on a Redis Cluster (undefined: it can). A `{` or `}` in the
 * prefix would become the hash tag of every key, so all computers would share one slot.
 * @example
 * clusterPrefixProblem('weft:')    // undefined
 * clusterPrefixProblem('{weft}:')  // "\"{weft}:\" contains '{' or '}', ..."
 */
export function clusterPrefixProblem(prefix: string): string | undefined {
  return /[{}]/.test(prefix) ? `${JSON.stringify(prefix)} contains '{' or '}', which would put every key of every computer in one cluster slot` : undefined;
}
