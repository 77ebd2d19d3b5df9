/**
 * When a delivery channel counts as failing, for `weft status` and the `problems` of
 * `GET /api/health`: a channel can fail quietly (its rows wait, retried with a growing backoff),
 * and a person who relies on it must hear that somewhere else.
 */
import type { DeliveryStats } from './channel.js';

/** Tries failed in a row that make a channel a problem, however recent. */
export const FAILING_TRIES = 5;
/** A channel whose tries fail while its oldest waiting notification has waited this long is a problem. */
export const FAILING_WAIT_MS = 60_000;

/**
 * What is wrong with a delivery channel right now, as lines for `weft status` and the
 * `problems` of `GET /api/health`: one line while its tries fail and either 5 failed in a row
 * or its oldest waiting notification has waited over 60 s; none once a try goes through.
 * @example
 * deliveryProblems(webhook.stats(), clock.now());
 * // ['delivery: webhook has failed for 75 s (6 failed tries in a row, last error: webhook error: 500 internal server error); 3 notifications wait, the oldest for 80 s']
 */
export function deliveryProblems(s: DeliveryStats, now: number): string[] {
  if (s.failingSince === null || s.failuresInARow === 0) return [];
  const waited = s.oldestPendingAt === null ? 0 : now - s.oldestPendingAt;
  if (s.failuresInARow < FAILING_TRIES && waited <= FAILING_WAIT_MS) return [];
  const full = s.maxPending !== undefined && s.pending >= s.maxPending;
  const secs = (ms: number) => `${Math.max(0, Math.round(ms / 1000))} s`;
  const tries = `${s.failuresInARow} failed ${s.failuresInARow === 1 ? 'try' : 'tries in a row'}`;
  const wait =
    s.pending < 0
      ? 'how many notifications wait is not known (the store is closed)'
      : s.pending === 0
        ? 'none waits (refused ones are marked failed)'
        : `${s.pending} notification${s.pending === 1 ? ' waits' : 's wait'}${full ? ' (the most that may: newer ones are recorded failed, weft deliveries list --status failed shows them)' : ''}${s.oldestPendingAt === null ? '' : `, the oldest for ${secs(waited)}`}`;
  const paused =
    s.pausedUntil !== null && s.pausedUntil > now
      ? `; paused by a rate limit for another ${secs(s.pausedUntil - now)}`
      : '';
  return [
    `delivery: ${s.channel} has failed for ${secs(now - s.failingSince)} (${tries}, last error: ${s.lastError ?? 'unknown'}); ${wait}${paused}`,
  ];
}
