/**
 * Every key Weft writes on a Redis server, derived from one prefix (`redis.prefix`, default
 * `weft:`) and the computer name, so two nodes on one Redis never share a stream, a group or
 * a key unless they are configured to. Keys outside the prefix (TeleClaude's
 * `teleclaude:events` or `messages:{computer}`) are other programs' data: Weft reads them
 * when told to, and never acknowledges, trims or deletes their entries.
 */
export interface RedisKeys {
  /** This node's local bus stream. */
  busStream: string;
  /** The pipeline's consumer group on the bus stream. */
  busGroup: string;
  /** The mesh inbox of a computer (this node's own, or a peer's to send to). */
  inbox(computer: string): string;
  /** The consumer group a node reads its own inbox with. */
  inboxGroup: string;
  /** Prefix of the peer registry's entries (`{prefix}peers:{computer}`). */
  peersPrefix: string;
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
 */
export function redisKeys(prefix: string, computer: string): RedisKeys {
  return {
    busStream: `${prefix}events:${computer}`,
    busGroup: `${prefix}pipeline:${computer}`,
    inbox: (c) => `${prefix}messages:${c}`,
    inboxGroup: `${prefix}mesh`,
    peersPrefix: `${prefix}peers:`,
    claimComputer: (c) => `${prefix}claim:computer:${c}`,
    claimStream: (s) => `${prefix}claim:stream:${s}`,
  };
}
