import type { DeliveryChannel } from './channel.js';
import { type DeliveryDeps, type DurableInit, durableChannel } from './engine.js';
import { formatNotification } from './format.js';
import {
  checkBaseUrl,
  configProblem,
  type DeliverySender,
  isHttpUrl,
  retryAfterHeader,
  type SendOutcome,
  secondsToMs,
  statusOutcome,
} from './sender.js';

/** Discord's limit on a message's `content`. */
export const DISCORD_MAX_CONTENT = 2000;

/**
 * User options of the Discord channel (config keys `discord.*`): either an incoming webhook
 * (`webhookUrl`) or a bot posting to a channel (`botToken` and `channelId`), not both.
 */
export interface DiscordInit extends DurableInit {
  /** Incoming webhook URL, `https://discord.com/api/webhooks/{id}/{token}` (`discord.webhook_url`; a secret). */
  webhookUrl?: string;
  /** Name the webhook posts as (`discord.username`); webhooks only. */
  username?: string;
  /** Bot token (`discord.bot_token`; a secret). */
  botToken?: string;
  /** Channel the bot posts to, a snowflake id (`discord.channel_id`). */
  channelId?: string;
  /** API base for the bot (`discord.base_url`, default https://discord.com). */
  baseUrl?: string;
}

const DEFAULT_BASE_URL = 'https://discord.com';

/**
 * Discord delivery on the durable engine: each notification at or above `minLevel` becomes one
 * message (cut to 2000 characters), through an incoming webhook or a bot. 429 answers pause
 * the whole channel for the JSON `retry_after` or the `Retry-After` header (the longer), and an
 * answer that says the bucket is empty (`X-RateLimit-Remaining: 0`) holds the next request
 * until `X-RateLimit-Reset-After`. Other 4xx are permanent; 5xx and network errors are retried.
 * @example
 * const discord = discordDelivery(
 *   { webhookUrl: 'https://discord.com/api/webhooks/123/abc', minLevel: 'workflow' },
 *   { ns: node.ns, clock: systemClock, logger },
 * );
 * node.onCommitted((b) => void discord.enqueue(b.changes));
 * discord.start();
 */
export function discordDelivery(init: DiscordInit, deps: DeliveryDeps): DeliveryChannel {
  return durableChannel(init, deps, discordSender(init));
}

/**
 * The Discord API half of the channel: `POST {webhook_url}?wait=true` with `{content, username?}`,
 * or `POST {base}/api/v10/channels/{id}/messages` with `Authorization: Bot <token>`. Mentions
 * in the text never ping anyone (`allowed_mentions: {parse: []}`).
 * @example
 * const sender = discordSender({ botToken: 'abc', channelId: '42' });
 * sender.request('hi').url; // 'https://discord.com/api/v10/channels/42/messages'
 */
export function discordSender(init: Omit<DiscordInit, keyof DurableInit>): DeliverySender {
  const bad = configProblem('discord');
  const hook = init.webhookUrl;
  const bot = init.botToken !== undefined || init.channelId !== undefined;
  if (hook !== undefined && bot) {
    bad(
      'webhook_url',
      '<set>',
      'either discord.webhook_url or discord.bot_token with discord.channel_id, not both',
    );
  }
  let url: string;
  let headers: Record<string, string> = { 'content-type': 'application/json' };
  const secrets: string[] = [];
  if (hook !== undefined) {
    if (!isHttpUrl(hook))
      bad('webhook_url', '<set>', 'an http(s) URL: https://discord.com/api/webhooks/{id}/{token}');
    const u = new URL(hook);
    // The token is the path's last part; the rest of the URL is harmless to log.
    const token = /\/webhooks\/[^/]+\/([^/?#]+)/.exec(u.pathname)?.[1];
    secrets.push(token ?? hook);
    u.searchParams.set('wait', 'true');
    url = u.toString();
    if (
      init.username !== undefined &&
      (typeof init.username !== 'string' || !/^\S.{0,79}$/s.test(init.username))
    ) {
      bad('username', init.username, 'a name of 1 to 80 characters');
    }
    // Discord refuses every message (400 Invalid Form Body) posted under such a webhook name.
    if (typeof init.username === 'string' && /discord|clyde/i.test(init.username)) {
      bad('username', init.username, "a name without 'discord' or 'clyde' (Discord refuses those for webhooks)");
    }
  } else {
    if (typeof init.botToken !== 'string' || !/^\S+$/.test(init.botToken)) {
      bad(
        'bot_token',
        init.botToken ? '<set>' : init.botToken,
        'a bot token (no spaces), or set discord.webhook_url',
      );
    }
    if (typeof init.channelId !== 'string' || !/^\d{1,20}$/.test(init.channelId)) {
      bad('channel_id', init.channelId, 'a channel id (digits)');
    }
    if (init.username !== undefined) bad('username', init.username, 'unset: a bot posts under its own name');
    const base = checkBaseUrl('discord', 'base_url', init.baseUrl, DEFAULT_BASE_URL);
    url = `${base}/api/v10/channels/${init.channelId}/messages`;
    headers = { ...headers, authorization: `Bot ${init.botToken}` };
    secrets.push(init.botToken as string);
  }
  const username = init.username;
  return {
    channel: 'discord',
    api: 'Discord',
    secrets,
    render: (n, kind) => formatNotification(n, kind, { maxLength: DISCORD_MAX_CONTENT, parseMode: 'discord' }),
    request(text) {
      const body: Record<string, unknown> = { content: text, allowed_mentions: { parse: [] } };
      if (username !== undefined) body.username = username;
      return { url, method: 'POST', headers, body: JSON.stringify(body) };
    },
    classify: classifyDiscord,
  };
}

/** Discord's error body: `{message, code}`, and on a 429 `{retry_after, global}` (seconds). */
interface DiscordError {
  message?: string;
  code?: number;
  retry_after?: number;
  global?: boolean;
}

function classifyDiscord(answer: Parameters<DeliverySender['classify']>[0]): SendOutcome {
  const h = answer.headers;
  if (answer.status >= 200 && answer.status < 300) {
    // The bucket is empty: wait for its reset rather than earn a 429.
    if (h.get('x-ratelimit-remaining') === '0') {
      const pauseMs = secondsToMs(h.get('x-ratelimit-reset-after'));
      if (pauseMs !== undefined) return { type: 'sent', pauseMs };
    }
    return { type: 'sent' };
  }
  const json = (typeof answer.json === 'object' && answer.json !== null ? answer.json : {}) as DiscordError;
  const what = typeof json.message === 'string' ? ` ${json.message}` : '';
  const code = typeof json.code === 'number' && json.code !== 0 ? ` (code ${json.code})` : '';
  const detail = `${answer.status}${what}${code}`;
  if (answer.status === 429) {
    // Both may come: the JSON is precise (fractions of a second), the header is rounded up;
    // waiting for the later one is never too early.
    const named = [secondsToMs(json.retry_after), retryAfterHeader(h, answer.at)].filter(
      (x): x is number => x !== undefined,
    );
    const scope = json.global === true ? ' (global)' : '';
    return statusOutcome(
      429,
      `rate limited${scope}: ${detail}`,
      named.length > 0 ? Math.max(...named) : undefined,
    );
  }
  if (answer.status >= 400 && answer.status < 500 && answer.status !== 408) {
    return { type: 'permanent', error: `Discord refused: ${detail}` };
  }
  return { type: 'retry', error: `Discord error: ${detail}` };
}
