import type { DeliveryChannel } from './channel.js';
import { type DeliveryDeps, type DurableInit, durableChannel } from './engine.js';
import { formatNotification } from './format.js';
import {
  checkBaseUrl,
  configProblem,
  type DeliverySender,
  retryAfterHeader,
  type SendOutcome,
} from './sender.js';

/** The Cloud API's limit on a text message's body. */
export const WHATSAPP_MAX_TEXT = 4096;

/**
 * Graph API error codes that mean "too many, later" rather than "never": 4 (app call limit),
 * 80007 (business account limit), 130429 (throughput), 131048 (spam limit), 131056 (too many
 * messages to the same number).
 */
export const WHATSAPP_RATE_LIMIT_CODES: ReadonlySet<number> = new Set([4, 80007, 130429, 131048, 131056]);

/** User options of the WhatsApp channel (config keys `whatsapp.*`). */
export interface WhatsAppInit extends DurableInit {
  /** A system user's access token with `whatsapp_business_messaging` (`whatsapp.token`; a secret). */
  token: string;
  /** The sending number's id in the Cloud API, not the number itself (`whatsapp.phone_number_id`). */
  phoneNumberId: string;
  /** Recipient in international format, digits with an optional `+` (`whatsapp.to`). */
  to: string;
  /** Graph API base (`whatsapp.base_url`, default https://graph.facebook.com). */
  baseUrl?: string;
  /** Graph API version (`whatsapp.api_version`, default v21.0). */
  apiVersion?: string;
}

const DEFAULT_BASE_URL = 'https://graph.facebook.com';
const DEFAULT_VERSION = 'v21.0';
/** The pair limit (131056) allows about one message per 6 s to one number. */
const PAIR_LIMIT_MS = 6000;

/**
 * WhatsApp delivery through the Cloud API on the durable engine: each notification at or above
 * `minLevel` is one text message (at most 4096 characters) to one number. HTTP 429 and the
 * rate-limit error codes (130429, 131056, ...) pause the whole channel (`Retry-After` when
 * sent, else 6 s for the pair limit and a backoff for the rest); an error marked `is_transient`
 * and 5xx are retried; any other 4xx is permanent. Free text reaches a number only inside its
 * 24-hour customer service window; outside it the API refuses (131047) and the row fails.
 * @example
 * const whatsapp = whatsappDelivery(
 *   { token: 'EAAG...', phoneNumberId: '1055', to: '+31612345678', minLevel: 'workflow' },
 *   { ns: node.ns, clock: systemClock, logger },
 * );
 * node.onCommitted((b) => void whatsapp.enqueue(b.changes));
 * whatsapp.start();
 */
export function whatsappDelivery(init: WhatsAppInit, deps: DeliveryDeps): DeliveryChannel {
  return durableChannel(init, deps, whatsappSender(init));
}

/**
 * The Cloud API half of the channel: `POST {base}/{version}/{phone_number_id}/messages` with
 * `Authorization: Bearer <token>` and `{messaging_product: 'whatsapp', to, type: 'text', text: {body}}`.
 * @example
 * const sender = whatsappSender({ token: 't', phoneNumberId: '1055', to: '31612345678' });
 * sender.request('hi').url; // 'https://graph.facebook.com/v21.0/1055/messages'
 */
export function whatsappSender(init: Omit<WhatsAppInit, keyof DurableInit>): DeliverySender {
  const bad = configProblem('whatsapp');
  if (typeof init.token !== 'string' || !/^\S+$/.test(init.token)) {
    bad('token', init.token ? '<set>' : init.token, 'an access token (no spaces)');
  }
  if (typeof init.phoneNumberId !== 'string' || !/^\d{1,32}$/.test(init.phoneNumberId)) {
    bad('phone_number_id', init.phoneNumberId, 'the phone number id from the WhatsApp Manager (digits)');
  }
  if (typeof init.to !== 'string' || !/^\+?\d{6,20}$/.test(init.to.replace(/[\s-]/g, ''))) {
    bad('to', init.to, 'a phone number in international format (digits, optional +)');
  }
  const raw = init.apiVersion ?? DEFAULT_VERSION;
  const version =
    typeof raw === 'string' && /^v?\d+\.\d+$/.test(raw) ? (raw.startsWith('v') ? raw : `v${raw}`) : '';
  if (!version) bad('api_version', init.apiVersion, 'a Graph API version such as v21.0');
  const base = checkBaseUrl('whatsapp', 'base_url', init.baseUrl, DEFAULT_BASE_URL);
  const url = `${base}/${version}/${init.phoneNumberId}/messages`;
  const to = init.to.replace(/[\s-]/g, '');
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${init.token}` };
  return {
    channel: 'whatsapp',
    api: 'the WhatsApp Cloud API',
    secrets: [init.token],
    render: (n, kind) => formatNotification(n, kind, { maxLength: WHATSAPP_MAX_TEXT }),
    request(text) {
      const body = {
        messaging_product: 'whatsapp',
        recipient_type: 'individual',
        to,
        type: 'text',
        text: { preview_url: false, body: text },
      };
      return { url, method: 'POST', headers, body: JSON.stringify(body) };
    },
    classify: classifyWhatsApp,
  };
}

/** The Graph API's error envelope. */
interface GraphError {
  message?: string;
  type?: string;
  code?: number;
  error_subcode?: number;
  is_transient?: boolean;
  error_data?: { details?: string };
}

function classifyWhatsApp(answer: Parameters<DeliverySender['classify']>[0]): SendOutcome {
  const json = answer.json as { messages?: unknown; error?: GraphError } | undefined;
  const ok = answer.status >= 200 && answer.status < 300;
  if (ok && Array.isArray(json?.messages)) return { type: 'sent' };
  const err = typeof json?.error === 'object' && json.error !== null ? json.error : undefined;
  const code = typeof err?.code === 'number' ? err.code : undefined;
  const parts = [String(answer.status)];
  if (code !== undefined) parts.push(`(#${code})`);
  if (typeof err?.message === 'string') parts.push(err.message);
  if (typeof err?.error_data?.details === 'string') parts.push(`- ${err.error_data.details}`);
  const detail = parts.join(' ');
  if (ok) return { type: 'retry', error: `unexpected answer: ${detail}` };
  if (answer.status === 429 || (code !== undefined && WHATSAPP_RATE_LIMIT_CODES.has(code))) {
    const named =
      retryAfterHeader(answer.headers, answer.at) ?? (code === 131056 ? PAIR_LIMIT_MS : undefined);
    const error = `rate limited: ${detail}`;
    return named === undefined
      ? { type: 'rateLimited', error }
      : { type: 'rateLimited', error, retryAfterMs: named };
  }
  if (err?.is_transient === true) return { type: 'retry', error: `WhatsApp error: ${detail}` };
  if (answer.status >= 400 && answer.status < 500 && answer.status !== 408) {
    return { type: 'permanent', error: `WhatsApp refused: ${detail}` };
  }
  return { type: 'retry', error: `WhatsApp error: ${detail}` };
}
