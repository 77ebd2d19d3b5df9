import type { Envelope } from '../envelope/index.js';

/** One entry read from the bus: a valid envelope, or a rejection to record. */
export type BusEntry =
  | {
      position: string;
      envelope: Envelope;
      logged: boolean;
      /** Facts for this entry only (e.g. which peer sent it), on top of the batch's facts. */
      facts?: Readonly<Record<string, unknown>>;
    }
  | {
      position: string;
      error: string;
      raw: string;
      /** Path of the field that failed, when one did (`/payload/score`). */
      field?: string;
    };

/**
 * The local bus: where emit() appends and the processor consumes, at least once.
 * `sqlite` is the embedded default (the `events` table); `redis` is a stream with a consumer
 * group, fed from a durable journal in SQLite so an emit never waits for Redis.
 *
 * Inside a batch the processor calls `stage()` for the events cartridges emit and
 * `consumed()` for what it applied, both in the batch's transaction; after the commit it
 * calls `committed()` (Redis: XACK) and `flush()` with the staged events.
 */
export interface Bus {
  readonly kind: 'sqlite' | 'redis';
  /** What to print about it: `embedded (SQLite)` or `redis stream weft:events:laptop`. */
  readonly description: string;
  start(): Promise<void>;
  /** Stops reading and sending; wakes a pending `next()`, which then returns []. Bounded in time. */
  stop(): Promise<void>;
  /** Appends envelopes; resolves once they are durable on this node (a SQLite commit). */
  append(envs: readonly Envelope[]): Promise<void>;
  /** Adds an envelope inside the caller's write transaction; durable with it. */
  stage(env: Envelope): void;
  /** After the transaction that staged them committed: deliver them. */
  flush(staged: readonly Envelope[]): void;
  /** Waits for entries after the consumer's position (at most `max`), or [] on stop. */
  next(max: number): Promise<BusEntry[]>;
  /** Inside the batch transaction: these entries are applied. */
  consumed(entries: readonly BusEntry[]): void;
  /** The batch rolled back: deliver its entries again (from the last committed position). */
  rewind(committedPosition: string | undefined): void;
  /** Called after the batch containing these entries committed. */
  committed(entries: readonly BusEntry[]): Promise<void>;
  /** Events appended on this node that the pipeline has not applied yet (0: caught up). */
  pending(): number;
  /**
   * Whether anything this node appended (or staged) is not applied yet. While nothing is, an
   * emit may be appended and applied in one transaction (`Processor.processEmitted`) without
   * passing events that wait. A bus without it never takes that path.
   */
  caughtUp?(): boolean;
  /**
   * Whether what this node's pipeline has not applied yet will be within milliseconds (so an
   * emit may wait for it and then be applied at once): Redis answers and little waits.
   */
  catchesUpSoon?(): boolean;
  /**
   * Inside `processEmitted`'s transaction: these new events are applied in it. The Redis bus
   * journals them to go on its stream (for the stream's other readers) after the commit.
   * `bodies`: their serialized text, made once for the journal and the log.
   */
  stageApplied?(envs: readonly Envelope[], bodies?: readonly string[]): void;
  /** After that transaction committed. */
  flushApplied?(envs: readonly Envelope[]): void;
  /** Counters for metrics and status. */
  stats(): BusStats;
}

export interface BusStats {
  appended: number;
  /** Entries waiting in memory for the consumer (embedded) or for Redis (journal). */
  depth?: number;
  /** Redis: events in the journal not yet applied by the pipeline. */
  journal?: number;
  /** Redis: events applied at emit whose journal row waits to put them on the stream (Redis away). */
  unsent?: number;
  /** Redis: entries on the stream that are not Weft's and were left alone. */
  foreign?: number;
  /** Redis: entries of events already applied (at emit, or put on the stream again by the journal), acknowledged and skipped. */
  skippedCopies?: number;
  /** Redis: what the last failed write said, while Redis refuses them. */
  lastError?: string;
  /** Redis: since when writes fail (ms since the epoch), with `lastError`. */
  failingSince?: number;
  /** Redis: the command connection's state as ioredis names it ('ready' when connected). */
  connection?: string;
  /** Redis: why the connection is not ready, as the client last said (a refused password, say). */
  connectionError?: string;
}

/**
 * What is wrong with the bus right now, one line each (for `/api/health` and `weft status`);
 * empty when all is well.
 * @example
 * busProblems({ appended: 3, lastError: 'Connection is closed.', failingSince: now - 12_000, journal: 0, unsent: 2 }, now)
 * // ['bus: Redis has not taken events for 12 s (Connection is closed.); 2 events wait in the journal to go on the stream (emits are still accepted and applied)']
 */
export function busProblems(s: BusStats, now: number): string[] {
  if (s.lastError !== undefined) {
    const cause = s.connectionError && !s.lastError.includes(s.connectionError) ? `; the connection says: ${s.connectionError}` : '';
    const secs = s.failingSince === undefined ? '' : ` for ${Math.round((now - s.failingSince) / 1000)} s`;
    const n = (s.journal ?? 0) + (s.unsent ?? 0);
    return [
      `bus: Redis has not taken events${secs} (${s.lastError}${cause}); ${n} event${n === 1 ? '' : 's'} wait${n === 1 ? 's' : ''} in the journal to go on the stream (emits are still accepted and applied)`,
    ];
  }
  if (s.connection !== undefined && s.connection !== 'ready') {
    return [`bus: the connection to Redis is ${s.connection}${s.connectionError ? ` (${s.connectionError})` : ''} (emits are still accepted; they wait in the journal)`];
  }
  return [];
}
