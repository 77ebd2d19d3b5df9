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
  | { position: string; error: string; raw: string };

/**
 * The local bus: where emit() appends and the processor consumes, at least once.
 * `sqlite` is the embedded default (the `events` table); `redis` is a stream with a consumer
 * group. The processor commits its effects, then calls `committed()` (Redis: XACK).
 */
export interface Bus {
  readonly kind: 'sqlite' | 'redis';
  start(): Promise<void>;
  /** Stops reading; wakes a pending `next()`, which then returns []. */
  stop(): Promise<void>;
  /** Appends envelopes; resolves when they are durable in the bus. */
  append(envs: readonly Envelope[]): Promise<void>;
  /** Waits for entries after the consumer's position (at most `max`), or [] on stop. */
  next(max: number): Promise<BusEntry[]>;
  /** The batch rolled back: deliver its entries again (from the last committed position). */
  rewind(committedPosition: string | undefined): void;
  /** Called after the batch containing these entries committed. */
  committed(entries: readonly BusEntry[]): Promise<void>;
  /** Counters for metrics. */
  stats(): { appended: number; depth?: number };
}
