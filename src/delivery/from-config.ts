import type { WeftConfig } from '../config/index.js';
import type { DeliveryChannel } from './channel.js';
import { discordSender } from './discord.js';
import { type DeliveryDeps, type DurableInit, durableChannel } from './engine.js';
import { configProblem, type DeliverySender } from './sender.js';
import { telegramSender } from './telegram.js';
import { webhookSender } from './webhook.js';
import { whatsappSender } from './whatsapp.js';

/** The config sections the delivery channels read. */
export type DeliveryConfig = Pick<WeftConfig, 'telegram' | 'discord' | 'whatsapp' | 'webhook'>;

/**
 * The delivery channels the config turns on, built but not started, in a fixed order
 * (telegram, discord, whatsapp, webhook). Telegram is on with a bot token and a chat id; a
 * newer channel is on as soon as one of its keys is set, and then every key it needs must be
 * set too: a half-configured channel fails the start with a ConfigError that names the missing
 * key rather than staying silently off.
 * @example
 * const channels = deliveryChannels(cfg, { ns: node.ns, clock: node.clock, logger });
 * for (const c of channels) {
 *   node.onCommitted((b) => void c.enqueue(b.changes));
 *   c.start();
 * }
 */
export function deliveryChannels(cfg: DeliveryConfig, deps: DeliveryDeps): DeliveryChannel[] {
  return deliverySenders(cfg).map(({ init, sender }) => durableChannel(init, deps, sender));
}

/**
 * Checks the delivery keys as `deliveryChannels` would, without building a channel: what
 * `weft config show` and the daemon's first check run.
 * @throws ConfigError naming the key, as `deliveryChannels` does.
 * @example
 * checkDeliveryConfig(loadConfig()); // throws "config key webhook.url: \"ftp://x\" is not allowed; …"
 */
export function checkDeliveryConfig(cfg: DeliveryConfig): void {
  deliverySenders(cfg);
}

/** The senders the config turns on, each with its channel's durable options (no I/O). */
function deliverySenders(cfg: DeliveryConfig): Array<{ init: DurableInit; sender: DeliverySender }> {
  const out: Array<{ init: DurableInit; sender: DeliverySender }> = [];
  const t = cfg.telegram;
  if (t.bot_token && t.chat_id) {
    const init = { botToken: t.bot_token, chatId: t.chat_id, minLevel: t.min_level, baseUrl: t.base_url };
    out.push({ init, sender: telegramSender(init) });
  }
  const d = cfg.discord;
  if (d.webhook_url !== undefined || d.bot_token !== undefined || d.channel_id !== undefined) {
    const init = {
      minLevel: d.min_level,
      ...(d.webhook_url !== undefined ? { webhookUrl: d.webhook_url } : {}),
      ...(d.username !== undefined ? { username: d.username } : {}),
      ...(d.bot_token !== undefined ? { botToken: d.bot_token } : {}),
      ...(d.channel_id !== undefined ? { channelId: d.channel_id } : {}),
      baseUrl: d.base_url,
    };
    out.push({ init, sender: discordSender(init) });
  }
  const w = cfg.whatsapp;
  if (w.token !== undefined || w.phone_number_id !== undefined || w.to !== undefined) {
    const bad = configProblem('whatsapp');
    if (w.token === undefined) bad('token', w.token, 'an access token (the other whatsapp.* keys are set)');
    if (w.phone_number_id === undefined) bad('phone_number_id', w.phone_number_id, 'the sending number id');
    if (w.to === undefined) bad('to', w.to, 'the number to deliver to');
    const init = {
      token: w.token as string,
      phoneNumberId: w.phone_number_id as string,
      to: w.to as string,
      minLevel: w.min_level,
      baseUrl: w.base_url,
      apiVersion: w.api_version,
    };
    out.push({ init, sender: whatsappSender(init) });
  }
  const h = cfg.webhook;
  if (h.url !== undefined || h.token !== undefined) {
    if (h.url === undefined) configProblem('webhook')('url', h.url, 'an http(s) URL (webhook.token is set)');
    const init = {
      url: h.url as string,
      ...(h.token !== undefined ? { token: h.token } : {}),
      format: h.format,
      minLevel: h.min_level,
    };
    out.push({ init, sender: webhookSender(init) });
  }
  return out;
}
