import type { DeliveryChannel } from './channel.js';
import { type DeliveryDeps, type DurableInit, durableChannel } from './engine.js';
import { formatNotification } from './format.js';
import { checkBaseUrl, configProblem, type DeliverySender, type SendOutcome, secondsToMs } from './sender.js';

/** User options of the Telegram channel (config keys `telegram.*`). */
export interface TelegramInit extends DurableInit {
  /** Bot token from @BotFather (`telegram.bot_token`; keep it in a 0600 file). */
  botToken: string;
  /** Chat to post to: a numeric id or `@channelname` (`telegram.chat_id`). */
  chatId: string | number;
  /** Bot API base URL (`telegram.base_url`, default https://api.telegram.org). */
  baseUrl?: string;
  /** `HTML` for bold headlines (`telegram.parse_mode`); default plain text. */
  parseMode?: 'HTML';
}

/** Collaborators of the Telegram channel. */
export type TelegramDeps = DeliveryDeps;

const DEFAULT_BASE_URL = 'https://api.telegram.org';

/**
 * Telegram delivery: notifications at or above `minLevel` go to one chat through the Bot API
 * `sendMessage`, on the durable engine (`durableChannel`): rows in the node's SQLite file, sent
 * in order, retried with exponential backoff and jitter, 429 `retry_after` honoured by pausing
 * the whole channel, and a restart resends what was pending and never what was sent. 4xx
 * answers other than 429 are permanent and mark the row failed.
 * @example
 * const telegram = telegramDelivery(
 *   { botToken: '123:abc', chatId: 42, minLevel: 'workflow' },
 *   { ns: node.ns, clock: systemClock, logger },
 * );
 * node.onCommitted((b) => void telegram.enqueue(b.changes));
 * telegram.start();
 * // on shutdown:
 * await telegram.stop();
 */
export function telegramDelivery(init: TelegramInit, deps: TelegramDeps): DeliveryChannel {
  const sender = telegramSender(init);
  return durableChannel(init, deps, sender);
}

/**
 * The Bot API half of the Telegram channel: `POST {base}/bot{token}/sendMessage` with
 * `{chat_id, text, parse_mode?}`, and the answer envelope `{ok, description, parameters}` read.
 * @example
 * const sender = telegramSender({ botToken: '123:abc', chatId: 42 });
 * sender.request('hello').url; // 'https://api.telegram.org/bot123:abc/sendMessage'
 */
export function telegramSender(init: Omit<TelegramInit, keyof DurableInit>): DeliverySender {
  const bad = configProblem('telegram');
  if (typeof init.botToken !== 'string' || !/^\S+$/.test(init.botToken)) {
    bad('bot_token', init.botToken ? '<set>' : init.botToken, 'a bot token from @BotFather (no spaces)');
  }
  if (
    !(typeof init.chatId === 'number' && Number.isInteger(init.chatId)) &&
    !(typeof init.chatId === 'string' && init.chatId.trim() !== '')
  ) {
    bad('chat_id', init.chatId, 'a numeric chat id or @channelname');
  }
  const baseUrl = checkBaseUrl('telegram', 'base_url', init.baseUrl, DEFAULT_BASE_URL);
  if (init.parseMode !== undefined && init.parseMode !== 'HTML')
    bad('parse_mode', init.parseMode, "'HTML' or unset");
  const url = `${baseUrl}/bot${init.botToken}/sendMessage`;
  const parseMode = init.parseMode;
  return {
    channel: 'telegram',
    api: 'the Bot API',
    secrets: [init.botToken],
    render: (n, kind) => formatNotification(n, kind, parseMode ? { parseMode } : {}),
    request(text) {
      const body: Record<string, unknown> = {
        chat_id: init.chatId,
        text,
        link_preview_options: { is_disabled: true },
      };
      if (parseMode) body.parse_mode = parseMode;
      return {
        url,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      };
    },
    classify(answer): SendOutcome {
      const json = isAnswer(answer.json) ? answer.json : undefined;
      if (answer.status >= 200 && answer.status < 300 && json?.ok === true) return { type: 'sent' };
      const detail = `${answer.status}${json?.description ? ` ${json.description}` : ''}`;
      if (answer.status === 429) {
        const retryAfterMs = secondsToMs(json?.parameters?.retry_after ?? answer.headers.get('retry-after'));
        return retryAfterMs === undefined
          ? { type: 'rateLimited', error: `rate limited: ${detail}` }
          : { type: 'rateLimited', error: `rate limited: ${detail}`, retryAfterMs };
      }
      if (answer.status >= 200 && answer.status < 300)
        return { type: 'retry', error: `unexpected answer: ${detail}` };
      if (answer.status >= 400 && answer.status < 500 && answer.status !== 408) {
        // A group upgraded to a supergroup has a new id, and every message to the old one is refused.
        const moved = json?.parameters?.migrate_to_chat_id;
        const hint =
          typeof moved === 'number' && Number.isSafeInteger(moved)
            ? ` (the chat moved: set telegram.chat_id = "${moved}")`
            : '';
        return { type: 'permanent', error: `Bot API refused: ${detail}${hint}` };
      }
      return { type: 'retry', error: `Bot API error: ${detail}` };
    },
  };
}

/** The Bot API's answer envelope. */
interface TelegramAnswer {
  ok: boolean;
  description?: string;
  error_code?: number;
  parameters?: { retry_after?: number; migrate_to_chat_id?: number };
}

function isAnswer(v: unknown): v is TelegramAnswer {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
