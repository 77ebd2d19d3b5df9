/**
 * What the daemon needs from a delivery channel (a way notifications leave the node for a
 * person: Telegram, Discord, WhatsApp, a webhook). Every one is the durable engine
 * (`engine.ts`) around one API's sender (`sender.ts`).
 */
import type { NotificationChange } from '../store/index.js';

export interface DeliveryStats {
  channel: string;
  /** Rows written by `enqueue`. */
  enqueued: number;
  sent: number;
  /** Deliveries given up (permanent error or attempts exhausted). */
  failed: number;
  /** Tries that failed and will be retried. */
  retries: number;
  /** 429 answers. */
  rateLimited: number;
  /** Deliveries held in memory. */
  queued: number;
  /** Pending rows in the table (the durable backlog), or -1 when the store is closed. */
  pending: number;
  lastError: string | null;
  /** Epoch ms of the first failed try since the last one that went through; null while the last try went through (or none was made). */
  failingSince: number | null;
  /** Tries that failed in a row (retried, rate limited or refused) since the last one that went through. */
  failuresInARow: number;
  /** Epoch ms when the oldest pending row was written; null when none is pending (or unknown). */
  oldestPendingAt: number | null;
  /** Epoch ms until which a rate limit holds every request of the channel; null when it is not paused. */
  pausedUntil: number | null;
  /** The most rows that may wait; past it a new one is recorded failed (`not queued: …`). Absent from older daemons. */
  maxPending?: number;
}

/** A delivery channel's handle: the daemon starts it, feeds it from onCommitted, stops it. */
export interface DeliveryChannel {
  readonly channel: string;
  /** Starts the delivery loop; pending rows in the table are sent first. Idempotent. */
  start(): void;
  /** Aborts the request in flight (its row stays pending), waits for enqueues in flight and the loop. Idempotent. */
  stop(): Promise<void>;
  /**
   * Records the changes worth sending as pending rows (one transaction) and wakes the loop.
   * Never touches the network and never rejects; resolves with the number of rows added.
   */
  enqueue(changes: readonly NotificationChange[]): Promise<number>;
  stats(): DeliveryStats;
}
