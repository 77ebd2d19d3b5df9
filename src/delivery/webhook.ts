import { LEVEL_NAMES } from '../envelope/index.js';
import type { Notification, NotificationChange } from '../store/index.js';
import type { DeliveryChannel } from './channel.js';
import { type DeliveryDeps, type DurableInit, durableChannel } from './engine.js';
import { formatNotification } from './format.js';
import {
  configProblem,
  type DeliverySender,
  isHttpUrl,
  retryAfterHeader,
  type SendOutcome,
  statusOutcome,
} from './sender.js';

/** ntfy's default limit on a message body, in bytes; a longer one becomes an attachment or is refused. */
export const NTFY_MAX_BYTES = 4096;

/** ntfy priority (1 min .. 5 max) by notification level (0 infrastructure .. 3 business). */
export const NTFY_PRIORITY: readonly number[] = [1, 3, 4, 5];

/** ntfy tags that render as emoji, by level. */
const LEVEL_TAG = ['information_source', 'large_blue_circle', 'warning', 'rotating_light'] as const;

/** User options of the generic webhook channel (config keys `webhook.*`). */
export interface WebhookInit extends DurableInit {
  /** Where to POST (`webhook.url`): an ntfy topic URL (`https://ntfy.sh/my-alerts`) or any endpoint. */
  url: string;
  /** Sent as `Authorization: Bearer <token>` when set (`webhook.token`; a secret). */
  token?: string;
  /** `ntfy`: the message as the body with Title/Priority/Tags headers; `json`: the whole document as JSON (`webhook.format`, default ntfy). */
  format?: 'ntfy' | 'json';
}

/**
 * What the webhook channel stores per delivery and, with `format = "json"`, posts: the
 * rendered title and message, the ntfy priority and tags, and the notification as it was when
 * the change committed.
 */
export interface WebhookDocument {
  title: string;
  message: string;
  priority: number;
  tags: string[];
  level: number;
  levelName: string;
  kind: NotificationChange['kind'];
  notification: Notification;
}

/**
 * A generic webhook on the durable engine, ntfy-compatible by default: `POST {url}` with the
 * message as a text body and the `Title`, `Priority` (1–5 from the level) and `Tags` headers, or
 * with `format: 'json'` the {@link WebhookDocument} as JSON. 429 answers pause the channel for
 * `Retry-After` (seconds or an HTTP date); other 4xx are permanent; 5xx and network errors are
 * retried.
 * @example
 * const hook = webhookDelivery(
 *   { url: 'https://ntfy.sh/my-weft-alerts', minLevel: 'workflow' },
 *   { ns: node.ns, clock: systemClock, logger },
 * );
 * node.onCommitted((b) => void hook.enqueue(b.changes));
 * hook.start();
 */
export function webhookDelivery(init: WebhookInit, deps: DeliveryDeps): DeliveryChannel {
  return durableChannel(init, deps, webhookSender(init));
}

/**
 * The HTTP half of the webhook channel. Each row stores the {@link WebhookDocument} as JSON, so
 * a change of `format` between restarts still sends what was pending.
 * @example
 * const sender = webhookSender({ url: 'https://ntfy.sh/alerts' });
 * sender.request(sender.render(notification, 'created')).headers.Priority; // '4' for a workflow notification
 */
export function webhookSender(init: Omit<WebhookInit, keyof DurableInit>): DeliverySender {
  const bad = configProblem('webhook');
  // (The daemon and config show mask the URL in this refusal as config show masks it.)
  if (!isHttpUrl(init.url)) bad('url', init.url, 'an http(s) URL');
  if (init.token !== undefined && (typeof init.token !== 'string' || !/^\S+$/.test(init.token))) {
    bad('token', '<set>', 'a token without spaces, or unset');
  }
  const format = init.format ?? 'ntfy';
  if (format !== 'ntfy' && format !== 'json') bad('format', init.format, 'ntfy | json');
  const target = new URL(init.url);
  const user = safeDecode(target.username);
  const rawPassword = target.password;
  const password = safeDecode(rawPassword);
  if ((user || password) && init.token) {
    bad('token', '<set>', 'unset when webhook.url carries a user and password (one way to sign in, not two)');
  }
  // fetch refuses a URL with credentials in it, so they go as Basic auth (what curl does with
  // https://user:pass@host, and what ntfy reads), and the URL is sent without them.
  target.username = '';
  target.password = '';
  const url = target.toString();
  const auth: Record<string, string> = init.token
    ? { authorization: `Bearer ${init.token}` }
    : user || password
      ? { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` }
      : {};
  // Every part of the URL that may hold a secret: the password, a token in the path (an ntfy
  // topic, /hooks/{id}/{token}) or in the query (?token=...), whichever form an error shows.
  // A server may echo one part alone ("no such token ..."), so each path segment and query value
  // of 8 characters or more counts too; shorter parts are no secret, and would blot out words.
  const pieces = [...target.pathname.split('/'), ...target.searchParams.values()].flatMap((p) => [p, safeDecode(p)]);
  const parts = [target.pathname + target.search, target.search, target.pathname, target.pathname.slice(1)];
  const secrets = [
    init.url,
    url,
    ...parts.filter((p) => p.length >= 6),
    ...pieces.filter((p) => p.length >= 8),
  ];
  if (init.token) secrets.push(init.token);
  if (password) secrets.push(rawPassword, password);
  return {
    channel: 'webhook',
    api: 'the webhook',
    secrets,
    render: (n, kind) => JSON.stringify(webhookDocument(n, kind)),
    request(stored) {
      const doc = JSON.parse(stored) as WebhookDocument;
      if (format === 'json') {
        return {
          url,
          method: 'POST',
          headers: { 'content-type': 'application/json', ...auth },
          body: stored,
        };
      }
      return {
        url,
        method: 'POST',
        headers: {
          'content-type': 'text/plain; charset=utf-8',
          Title: headerText(doc.title),
          Priority: String(doc.priority),
          Tags: doc.tags.map(headerText).join(','),
          ...auth,
        },
        body: cutKeepingLastLine(doc.message, NTFY_MAX_BYTES),
      };
    },
    classify: classifyWebhook,
  };
}

/**
 * The document the webhook channel stores and posts for one change.
 * @example
 * webhookDocument(n, 'created').title; // 'workflow: new system.worker.crashed'
 */
export function webhookDocument(n: Notification, kind: NotificationChange['kind']): WebhookDocument {
  const levelName = LEVEL_NAMES[n.level] ?? `level ${n.level}`;
  const text = formatNotification(n, kind);
  // The headline becomes the Title; the body is the rest.
  const cut = text.indexOf('\n');
  const kindWord = kind === 'created' ? 'new' : kind.replace('_', ' ');
  return {
    title: `${levelName}: ${kindWord} ${n.eventType}`,
    message: cut < 0 ? text : text.slice(cut + 1),
    priority: NTFY_PRIORITY[n.level] ?? 3,
    tags: [LEVEL_TAG[n.level] ?? 'bell', levelName, kind],
    level: n.level,
    levelName,
    kind,
    notification: n,
  };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Header values must be one line of Latin-1 for fetch; ntfy reads them as ASCII, so keep to that. */
function headerText(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
}

/**
 * Cuts `text` to at most `max` UTF-8 bytes before its last line, which names the notification
 * (`#17 · from laptop`) and is kept whole.
 */
function cutKeepingLastLine(text: string, max: number): string {
  if (Buffer.byteLength(text, 'utf8') <= max) return text;
  const at = text.lastIndexOf('\n');
  const last = at < 0 ? '' : text.slice(at + 1);
  const room = max - Buffer.byteLength(last, 'utf8') - 1;
  if (at < 0 || room < 100) return cutBytes(text, max);
  return `${cutBytes(text.slice(0, at), room)}\n${last}`;
}

/** Cuts `text` to at most `max` UTF-8 bytes, on a character boundary, ending in `…` when cut. */
function cutBytes(text: string, max: number): string {
  if (Buffer.byteLength(text, 'utf8') <= max) return text;
  const budget = max - Buffer.byteLength('…', 'utf8');
  let out = '';
  let bytes = 0;
  for (const ch of text) {
    const b = Buffer.byteLength(ch, 'utf8');
    if (bytes + b > budget) break;
    out += ch;
    bytes += b;
  }
  return `${out}…`;
}

function classifyWebhook(answer: Parameters<DeliverySender['classify']>[0]): SendOutcome {
  if (answer.status >= 200 && answer.status < 300) return { type: 'sent' };
  // ntfy answers {code, http, error}; other servers anything.
  const json = answer.json as { error?: unknown; message?: unknown } | undefined;
  const said =
    typeof json?.error === 'string' ? json.error : typeof json?.message === 'string' ? json.message : '';
  const detail = `${answer.status}${said ? ` ${said}` : ''}`;
  const after = retryAfterHeader(answer.headers, answer.at);
  if (answer.status === 429) return statusOutcome(429, `rate limited: ${detail}`, after);
  if (answer.status >= 400 && answer.status < 500 && answer.status !== 408) {
    return { type: 'permanent', error: `webhook refused: ${detail}` };
  }
  // A 503 may name when to come back too.
  return statusOutcome(answer.status, `webhook error: ${detail}`, after);
}
