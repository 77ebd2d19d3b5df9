/**
 * What the delivery engine needs from one chat or push API: how a notification becomes a stored
 * message, how a stored message becomes one HTTP request, and what the answer means. Senders
 * never touch the network, the table or a timer; the engine (`engine.ts`) does.
 */
import { ConfigError } from '../errors/index.js';
import type { Notification, NotificationChange } from '../store/index.js';

/** The one HTTP request that sends one stored message. */
export interface SenderRequest {
  url: string;
  /** Every API here takes a POST. */
  method: 'POST';
  headers: Record<string, string>;
  body: string;
}

/** An API's answer, as the engine read it. */
export interface SenderAnswer {
  status: number;
  headers: Headers;
  /** The body as text (may be empty or not JSON); at most its first 64 KiB (`MAX_ANSWER_BYTES`), the rest is never read. */
  body: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
  /** The engine clock's time when the answer arrived (for `Retry-After` given as an HTTP date). */
  at: number;
}

/** What one try came to, as a sender reads the answer. */
export type SendOutcome =
  /** Delivered. `pauseMs`: the API said its budget is spent; the channel waits that long before its next request. */
  | { type: 'sent'; pauseMs?: number }
  /** Not delivered; try again after the backoff (or `retryAfterMs`, when longer). Counts as an attempt. */
  | { type: 'retry'; error: string; retryAfterMs?: number }
  /** Refused for now: the whole channel pauses `retryAfterMs` (a backoff when the API named none). Not an attempt. */
  | { type: 'rateLimited'; error: string; retryAfterMs?: number }
  /** Refused for good: the row is marked failed and the loop goes on. */
  | { type: 'permanent'; error: string };

/** One API's half of a delivery channel. */
export interface DeliverySender {
  /** The channel's name: the `deliveries.channel` column, the metrics label and the config key prefix. */
  readonly channel: string;
  /** Who answers, for log lines ("the Bot API"). */
  readonly api: string;
  /** Values that must never reach a log line or the table (tokens, secret URL parts). */
  readonly secrets: readonly string[];
  /** The message stored for a change; rendered once, when the change commits, so a retry sends what was true then. */
  render(n: Notification, kind: NotificationChange['kind']): string;
  /** The request that sends one stored message. */
  request(message: string): SenderRequest;
  /** What the answer means. A network error or a timeout never reaches here: the engine retries those. */
  classify(answer: SenderAnswer): SendOutcome;
}

/**
 * A thrower of the ConfigError every channel uses for a bad option: it names the config key
 * (`discord.webhook_url`), the value (secrets as `<set>`) and what is allowed.
 * @example
 * const bad = configProblem('discord');
 * if (!url) bad('webhook_url', url, 'an http(s) URL'); // throws ConfigError 'config key discord.webhook_url: ...'
 */
export function configProblem(channel: string): (key: string, value: unknown, allowed: string) => never {
  return (key, value, allowed) => {
    throw new ConfigError(`config key ${channel}.${key}: ${JSON.stringify(value)} is not allowed; expected ${allowed}`, {
      key: `${channel}.${key}`,
    });
  };
}

/**
 * Checks an http(s) base URL and drops its trailing slashes; undefined uses `fallback`.
 * @example
 * checkBaseUrl('discord', 'base_url', 'http://127.0.0.1:8080/', 'https://discord.com'); // 'http://127.0.0.1:8080'
 */
export function checkBaseUrl(
  channel: string,
  key: string,
  value: string | undefined,
  fallback: string,
): string {
  const url = (value ?? fallback).replace(/\/+$/, '');
  if (!isHttpUrl(url)) configProblem(channel)(key, value, 'an http(s) URL');
  return url;
}

/**
 * True for an absolute http: or https: URL with a host.
 * @example
 * isHttpUrl('https://ntfy.sh/alerts'); // true
 * isHttpUrl('ftp://x'); // false
 */
export function isHttpUrl(value: unknown): value is string {
  if (typeof value !== 'string' || /\s/.test(value)) return false;
  try {
    const u = new URL(value);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.host !== '';
  } catch {
    return false;
  }
}

/**
 * Reads a `Retry-After` header (RFC 9110: delay-seconds or an HTTP date) as ms from `now`;
 * undefined when absent or unreadable. A date in the past is 0.
 * @example
 * retryAfterHeader(new Headers({ 'retry-after': '3' }), Date.now()); // 3000
 * retryAfterHeader(new Headers({ 'retry-after': 'Thu, 01 Jan 2026 00:00:05 GMT' }), Date.UTC(2026, 0, 1)); // 5000
 */
export function retryAfterHeader(headers: Headers, now: number): number | undefined {
  const raw = headers.get('retry-after')?.trim();
  if (!raw) return undefined;
  if (/^\d+(\.\d+)?$/.test(raw)) return Math.ceil(Number(raw) * 1000);
  const at = Date.parse(raw);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * Seconds (a number, or a numeric string) as ms, or undefined when not a finite, non-negative number.
 * @example
 * secondsToMs(1.5); // 1500
 * secondsToMs('x'); // undefined
 */
export function secondsToMs(value: unknown): number | undefined {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? Math.ceil(n * 1000) : undefined;
}

/**
 * The usual reading of an HTTP status: 429 rate limited, other 4xx (but 408) permanent, the
 * rest retried. Senders call it after their API-specific cases.
 * @example
 * statusOutcome(503, 'Discord error: 503'); // { type: 'retry', error: 'Discord error: 503' }
 */
export function statusOutcome(status: number, error: string, retryAfterMs?: number): SendOutcome {
  if (status === 429) {
    return retryAfterMs === undefined
      ? { type: 'rateLimited', error }
      : { type: 'rateLimited', error, retryAfterMs };
  }
  if (status >= 400 && status < 500 && status !== 408) return { type: 'permanent', error };
  return retryAfterMs === undefined ? { type: 'retry', error } : { type: 'retry', error, retryAfterMs };
}
