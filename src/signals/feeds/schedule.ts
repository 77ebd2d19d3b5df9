/**
 * When to poll a feed next: from how often it publishes (bounded), what its server asks
 * (Retry-After, Cache-Control max-age) and how often it has failed (exponential backoff).
 * Pure functions over milliseconds, so the fetcher's tests drive them with a fake clock.
 */
import type { FeedItem } from '../types.js';

/** Bounds of the polling interval. */
export interface IntervalBounds {
  readonly minMs: number;
  readonly maxMs: number;
}

/** Dated items looked at: the most recent ones say most about the feed's pace now. */
const RECENT_ITEMS = 20;
/** A publication date this far in the future is a wrong date, not a schedule. */
const FUTURE_SLACK_MS = 24 * 3600_000;

/**
 * The interval a feed's items suggest: half the median gap between its recent publication
 * times (distinct times, so a batch published at once counts once), stretched when the feed
 * has gone quiet for much longer than its usual gap. `undefined` when fewer than two distinct
 * dates are known.
 * @example
 * const hourly = [0, 1, 2].map((h) => ({ title: `${h}`, authors: [], categories: [], publishedAt: new Date(Date.now() - h * 3_600_000).toISOString() }));
 * intervalFromItems(hourly, Date.now(), { minMs: 300_000, maxMs: 21_600_000 }); // 1_800_000 (30 min)
 */
export function intervalFromItems(
  items: readonly FeedItem[],
  now: number,
  bounds: IntervalBounds,
): number | undefined {
  const times = new Set<number>();
  for (const it of items) {
    if (!it.publishedAt) continue;
    const t = Date.parse(it.publishedAt);
    if (Number.isFinite(t) && t <= now + FUTURE_SLACK_MS) times.add(t);
  }
  const sorted = [...times].sort((a, b) => b - a).slice(0, RECENT_ITEMS + 1);
  if (sorted.length < 2) return undefined;
  const gaps: number[] = [];
  for (let i = 1; i < sorted.length; i++) gaps.push(sorted[i - 1]! - sorted[i]!);
  gaps.sort((a, b) => a - b);
  const mid = gaps.length >> 1;
  const median = gaps.length % 2 === 1 ? gaps[mid]! : (gaps[mid - 1]! + gaps[mid]!) / 2;
  let target = median / 2;
  const quiet = now - sorted[0]!;
  if (quiet > 4 * median) target = Math.max(target, quiet / 4);
  return clampInterval(target, bounds);
}

/**
 * The interval of a feed without usable dates: shorter after a poll that brought several new
 * items, longer after one that brought none.
 * @example
 * intervalFromNewItems(3_600_000, 0, bounds); // 5_400_000
 */
export function intervalFromNewItems(
  previousMs: number,
  lastNewItems: number,
  bounds: IntervalBounds,
): number {
  const factor = lastNewItems === 0 ? 1.5 : lastNewItems > 1 ? 0.5 : 1;
  return clampInterval(previousMs * factor, bounds);
}

/**
 * The delay before the next attempt after `errors` consecutive failures: the interval doubled
 * per failure, at least the minimum, at most `maxMs`.
 * @example
 * backoffMs(1_800_000, 2, { minMs: 300_000, maxMs: 21_600_000 }); // 7_200_000
 */
export function backoffMs(intervalMs: number, errors: number, bounds: IntervalBounds): number {
  const base = Math.max(intervalMs, bounds.minMs);
  return Math.min(bounds.maxMs, base * 2 ** Math.min(Math.max(errors, 0), 20));
}

/**
 * A Retry-After value (delta-seconds or an HTTP date) as an absolute time in ms, or
 * `undefined` when absent or unreadable. A date in the past means now.
 * @example
 * parseRetryAfter('120', 1_000); // 121_000
 */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  const v = value?.trim();
  if (!v) return undefined;
  if (/^\d{1,10}$/.test(v)) return now + Number(v) * 1000;
  if (v.length > 64) return undefined;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(at, now);
}

/**
 * `max-age` of a Cache-Control header in seconds (`s-maxage` is for shared caches and
 * ignored), or `undefined`.
 * @example
 * parseMaxAge('public, max-age=3600'); // 3600
 */
export function parseMaxAge(value: string | null | undefined): number | undefined {
  if (!value) return undefined;
  for (const part of value.split(',')) {
    const [k, v] = part.split('=', 2).map((s) => s.trim().toLowerCase());
    if (k === 'max-age' && v && /^"?\d{1,10}"?$/.test(v)) return Number(v.replace(/"/g, ''));
  }
  return undefined;
}

/**
 * `ms` within the bounds, rounded to whole milliseconds.
 * @example
 * clampInterval(60_000, { minMs: 300_000, maxMs: 21_600_000 }); // 300_000
 */
export function clampInterval(ms: number, bounds: IntervalBounds): number {
  return Math.round(Math.min(bounds.maxMs, Math.max(bounds.minMs, ms)));
}
