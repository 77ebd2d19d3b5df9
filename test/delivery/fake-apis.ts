/**
 * Fake chat and push APIs on loopback that speak each real API's shape: they check the method,
 * path, auth header and body the real one would, answer a scripted sequence the way it would
 * (ok, 429 in its own dialect, 5xx, a permanent 4xx, or never), and stamp each request with the
 * test's ManualClock, so a test asserts on time without waiting for it.
 */
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Clock } from '../../src/util/clock.js';

/**
 * What every fake answers to: ok, a server error, the API's usual permanent refusal, never,
 * `429-zero`: a rate limit in the API's own dialect that names a wait of 0 seconds, or
 * `endless`: a 200 whose JSON body never ends (16 KiB every 5 ms until the client hangs up).
 */
export type CommonAnswer = 'ok' | '500' | '400' | 'hang' | '429-zero' | 'endless';

/** An `endless` answer as the fake saw it: bytes written, and whether the client closed the connection. */
export interface Endless {
  bytes: number;
  closedByClient: boolean;
}

export interface Received {
  /** The ManualClock's time when the request arrived. */
  at: number;
  method: string;
  /** Path and query. */
  path: string;
  headers: IncomingHttpHeaders;
  raw: string;
  /** The body parsed as JSON, when it is JSON. */
  json: unknown;
  /** The notification text the request carried ('' when the request was malformed). */
  text: string;
  /** The scripted answer it got ('ok', '429', ... or 'invalid' when the request was malformed). */
  answer: string;
  /** When the answer named a time (a 429's retry-after, an empty bucket's reset): the earliest a next request may come. */
  retryAt?: number;
}

/** One HTTP answer, as the real API would give it. */
export interface Reply {
  status: number;
  headers?: Record<string, string>;
  /** Sent as JSON. */
  json?: unknown;
  /** Sent as text when there is no `json`. */
  body?: string;
  /** See {@link Received.retryAt}. */
  retryAt?: number;
}

/** The request as the dialect sees it. */
export interface Req {
  method: string;
  url: URL;
  headers: IncomingHttpHeaders;
  raw: string;
  json: unknown;
}

/** A fake API: answers each request with the next scripted answer (then `fallback`). */
export abstract class FakeApi {
  readonly received: Received[] = [];
  script: string[] = [];
  fallback = 'ok';
  /** Requests the real API would have refused as malformed (the fake answered as it would). */
  readonly violations: string[] = [];
  /** Each `endless` answer, in order. */
  readonly endless: Endless[] = [];
  url = '';
  private readonly hung: ServerResponse[] = [];
  private server: Server | undefined;
  private stopping = false;

  constructor(protected readonly clock: Clock) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const res of this.hung) res.destroy();
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }

  /** Texts received, in order. */
  get texts(): string[] {
    return this.received.map((r) => r.text);
  }

  /** Requests that name notification `#id` (every try, whatever the answer). */
  countFor(id: number): number {
    return this.received.filter((r) => mentions(r.text, id)).length;
  }

  /** Requests that name notification `#id` and were answered ok: what a person saw. */
  deliveredFor(id: number): number {
    return this.received.filter((r) => r.answer === 'ok' && mentions(r.text, id)).length;
  }

  /** Checks a request; the message text, or the real API's refusal of a malformed one. */
  protected abstract check(req: Req): { text: string } | { refuse: Reply; why: string };
  /** The real API's answer named `answer` to a well-formed request. */
  protected abstract reply(answer: string, req: Req, text: string, at: number): Reply;

  private streamEndless(res: ServerResponse): void {
    const seen: Endless = { bytes: 0, closedByClient: false };
    this.endless.push(seen);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"ok":true,"padding":"');
    const timer = setInterval(() => {
      res.write(ENDLESS_CHUNK);
      seen.bytes += ENDLESS_CHUNK.length;
    }, 5);
    res.on('close', () => {
      clearInterval(timer);
      seen.closedByClient = !this.stopping;
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = JSON.parse(raw);
      } catch {
        json = undefined;
      }
      const at = this.clock.now();
      const r: Req = {
        method: req.method ?? '',
        url: new URL(req.url ?? '/', this.url),
        headers: req.headers,
        raw,
        json,
      };
      const base = { at, method: r.method, path: req.url ?? '', headers: req.headers, raw, json };
      const checked = this.check(r);
      if ('refuse' in checked) {
        this.violations.push(`${r.method} ${r.url.pathname}: ${checked.why}`);
        this.received.push({ ...base, text: '', answer: 'invalid' });
        return send(res, checked.refuse);
      }
      const answer = this.script.shift() ?? this.fallback;
      if (answer === 'hang') {
        this.received.push({ ...base, text: checked.text, answer });
        this.hung.push(res);
        return;
      }
      if (answer === 'endless') {
        this.received.push({ ...base, text: checked.text, answer });
        this.hung.push(res);
        return this.streamEndless(res);
      }
      const reply = this.reply(answer, r, checked.text, at);
      this.received.push({
        ...base,
        text: checked.text,
        answer,
        ...(reply.retryAt !== undefined ? { retryAt: reply.retryAt } : {}),
      });
      send(res, reply);
    });
  }
}

/** Paced, so a client that does buffer it all grows by ~3 MB/s rather than gigabytes. */
const ENDLESS_CHUNK = Buffer.alloc(16 * 1024, 'x');

function mentions(text: string, id: number): boolean {
  return new RegExp(`#${id}\\b`).test(text);
}

function send(res: ServerResponse, r: Reply): void {
  const headers: Record<string, string> = { ...(r.headers ?? {}) };
  let body = r.body ?? '';
  if (r.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(r.json);
  }
  res.writeHead(r.status, headers);
  res.end(body);
}

function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function isJsonRequest(r: Req): boolean {
  return /^application\/json\b/.test(header(r.headers, 'content-type') ?? '') && r.json !== undefined;
}

const obj = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

/** The Telegram Bot API: `POST /bot{token}/sendMessage`, `{ok, result}` or `{ok: false, description, parameters}`. */
export class FakeTelegram extends FakeApi {
  constructor(
    clock: Clock,
    readonly token: string,
    readonly chatId: number,
  ) {
    super(clock);
  }

  protected check(r: Req): { text: string } | { refuse: Reply; why: string } {
    const no = (status: number, description: string, why: string) => ({
      refuse: { status, json: { ok: false, error_code: status, description } },
      why,
    });
    if (r.method !== 'POST') return no(405, 'Method Not Allowed', `method ${r.method}`);
    if (r.url.pathname !== `/bot${this.token}/sendMessage`)
      return no(401, 'Unauthorized', 'wrong token or method');
    if (!isJsonRequest(r)) return no(400, 'Bad Request: message text is empty', 'not JSON');
    const b = obj(r.json);
    // The Bot API takes the chat id as a number or as a string of it (the config holds a string).
    if (String(b.chat_id) !== String(this.chatId))
      return no(400, 'Bad Request: chat not found', `chat_id ${String(b.chat_id)}`);
    if (typeof b.text !== 'string' || b.text === '' || b.text.length > 4096)
      return no(400, 'Bad Request: message is too long', 'text missing or over 4096');
    return { text: b.text };
  }

  protected reply(answer: string, _r: Req, text: string, at: number): Reply {
    switch (answer) {
      case 'ok':
        return {
          status: 200,
          json: {
            ok: true,
            result: { message_id: this.received.length + 1, chat: { id: this.chatId }, text },
          },
        };
      case '429':
        return {
          status: 429,
          json: {
            ok: false,
            error_code: 429,
            description: 'Too Many Requests: retry after 3',
            parameters: { retry_after: 3 },
          },
          retryAt: at + 3000,
        };
      case '429-zero':
        return {
          status: 429,
          json: {
            ok: false,
            error_code: 429,
            description: 'Too Many Requests: retry after 0',
            parameters: { retry_after: 0 },
          },
        };
      case '500':
        return { status: 500, json: { ok: false, error_code: 500, description: 'Internal Server Error' } };
      case '400':
        return {
          status: 400,
          json: { ok: false, error_code: 400, description: 'Bad Request: chat not found' },
        };
      default:
        throw new Error(`FakeTelegram: no answer named ${answer}`);
    }
  }
}

/**
 * Discord: an incoming webhook (`POST /api/webhooks/{id}/{token}?wait=true`) or a bot
 * (`POST /api/v10/channels/{id}/messages`, `Authorization: Bot <token>`). Answers carry the
 * rate-limit headers; a 429 says `retry_after` in seconds in JSON and/or `Retry-After`.
 * Extra answers: `429` (both, JSON 1.5 s and header 2 s), `429-json` (JSON 2.5 s only),
 * `429-header` (header 3 s only), `bucket-empty` (200 with `X-RateLimit-Remaining: 0`, reset in 2 s).
 */
export class FakeDiscord extends FakeApi {
  constructor(
    clock: Clock,
    readonly mode: { webhook: { id: string; token: string } } | { bot: { token: string; channelId: string } },
  ) {
    super(clock);
  }

  get path(): string {
    return 'webhook' in this.mode
      ? `/api/webhooks/${this.mode.webhook.id}/${this.mode.webhook.token}`
      : `/api/v10/channels/${this.mode.bot.channelId}/messages`;
  }

  protected check(r: Req): { text: string } | { refuse: Reply; why: string } {
    const no = (status: number, message: string, code: number, why: string) => ({
      refuse: { status, json: { message, code } },
      why,
    });
    if (r.method !== 'POST') return no(405, '405: Method Not Allowed', 0, `method ${r.method}`);
    if ('webhook' in this.mode) {
      const m = /^\/api\/webhooks\/([^/]+)\/([^/]+)$/.exec(r.url.pathname);
      if (!m || m[1] !== this.mode.webhook.id)
        return no(404, 'Unknown Webhook', 10015, `path ${r.url.pathname}`);
      if (m[2] !== this.mode.webhook.token)
        return no(401, 'Invalid Webhook Token', 50027, 'wrong webhook token');
      if (r.url.searchParams.get('wait') !== 'true')
        return no(400, 'wait must be true', 50035, 'no ?wait=true');
    } else {
      if (r.url.pathname !== this.path) return no(404, 'Unknown Channel', 10003, `path ${r.url.pathname}`);
      if (header(r.headers, 'authorization') !== `Bot ${this.mode.bot.token}`)
        return no(
          401,
          '401: Unauthorized',
          0,
          `authorization ${header(r.headers, 'authorization') ?? 'missing'}`,
        );
    }
    if (!isJsonRequest(r)) return no(400, 'Cannot send an empty message', 50006, 'not JSON');
    const b = obj(r.json);
    if (typeof b.content !== 'string' || b.content === '')
      return no(400, 'Cannot send an empty message', 50006, 'no content');
    if (b.content.length > 2000)
      return no(400, 'Invalid Form Body', 50035, `content of ${b.content.length} characters`);
    if (b.username !== undefined && ('bot' in this.mode || typeof b.username !== 'string'))
      return no(400, 'Invalid Form Body', 50035, 'username');
    return { text: b.content };
  }

  protected reply(answer: string, r: Req, text: string, at: number): Reply {
    const bucket = (remaining: number, resetAfter: number) => ({
      'x-ratelimit-limit': '5',
      'x-ratelimit-remaining': String(remaining),
      'x-ratelimit-reset-after': resetAfter.toFixed(3),
      'x-ratelimit-bucket': 'abcd1234',
    });
    const message = () => ({
      id: String(1_000_000 + this.received.length),
      type: 0,
      content: text,
      channel_id: 'webhook' in this.mode ? '555' : this.mode.bot.channelId,
      ...(obj(r.json).username ? { author: { username: obj(r.json).username, bot: true } } : {}),
    });
    const limited = { message: 'You are being rate limited.', global: false };
    switch (answer) {
      case 'ok':
        return { status: 200, headers: bucket(4, 1), json: message() };
      case 'bucket-empty':
        return { status: 200, headers: bucket(0, 2), json: message(), retryAt: at + 2000 };
      case '429':
        return {
          status: 429,
          headers: { ...bucket(0, 1.5), 'retry-after': '2', 'x-ratelimit-scope': 'user' },
          json: { ...limited, retry_after: 1.5 },
          retryAt: at + 2000,
        };
      case '429-json':
        return { status: 429, json: { ...limited, retry_after: 2.5 }, retryAt: at + 2500 };
      case '429-header':
        return { status: 429, headers: { 'retry-after': '3' }, body: 'error code: 1015', retryAt: at + 3000 };
      case '429-zero':
        return { status: 429, headers: { 'retry-after': '0' }, json: { ...limited, retry_after: 0 } };
      case '500':
        return { status: 500, json: { message: '500: Internal Server Error', code: 0 } };
      case '400':
        return { status: 403, json: { message: 'Missing Access', code: 50001 } };
      default:
        throw new Error(`FakeDiscord: no answer named ${answer}`);
    }
  }
}

/**
 * The WhatsApp Cloud API: `POST /{version}/{phone_number_id}/messages` with `Authorization:
 * Bearer <token>`; errors in the Graph envelope `{error: {message, type, code, fbtrace_id}}`.
 * Extra answers: `429` (HTTP 429, code 130429, `Retry-After: 4`), `131056` (HTTP 400, pair rate
 * limit, no time named), `131047` (HTTP 400, outside the 24 h window), `transient` (HTTP 400
 * with `is_transient: true`).
 */
export class FakeWhatsApp extends FakeApi {
  constructor(
    clock: Clock,
    readonly cfg: { token: string; phoneNumberId: string; to: string; version: string },
  ) {
    super(clock);
  }

  protected check(r: Req): { text: string } | { refuse: Reply; why: string } {
    const no = (status: number, code: number, message: string, why: string) => ({
      refuse: { status, json: graphError(code, message) },
      why,
    });
    if (r.method !== 'POST') return no(400, 100, 'Unsupported get request.', `method ${r.method}`);
    if (r.url.pathname !== `/${this.cfg.version}/${this.cfg.phoneNumberId}/messages`)
      return no(400, 100, 'Unsupported post request. Object does not exist', `path ${r.url.pathname}`);
    if (header(r.headers, 'authorization') !== `Bearer ${this.cfg.token}`)
      return no(401, 190, 'Invalid OAuth access token - Cannot parse access token', 'authorization');
    if (!isJsonRequest(r)) return no(400, 100, 'Invalid parameter', 'not JSON');
    const b = obj(r.json);
    if (b.messaging_product !== 'whatsapp')
      return no(400, 100, 'The parameter messaging_product is required.', 'messaging_product');
    if (b.type !== 'text') return no(400, 100, 'Invalid parameter', `type ${String(b.type)}`);
    if (b.to !== this.cfg.to)
      return no(400, 131030, 'Recipient phone number not in allowed list', `to ${String(b.to)}`);
    const body = obj(b.text).body;
    if (typeof body !== 'string' || body === '' || body.length > 4096)
      return no(400, 100, 'Param text[body] must be at most 4096 characters long.', 'text.body');
    return { text: body };
  }

  protected reply(answer: string, _r: Req, _text: string, at: number): Reply {
    switch (answer) {
      case 'ok':
        return {
          status: 200,
          json: {
            messaging_product: 'whatsapp',
            contacts: [{ input: this.cfg.to, wa_id: this.cfg.to.replace('+', '') }],
            messages: [{ id: `wamid.HBgL${this.received.length}` }],
          },
        };
      case '429':
        return {
          status: 429,
          headers: { 'retry-after': '4' },
          json: graphError(130429, '(#130429) Rate limit hit'),
          retryAt: at + 4000,
        };
      case '429-zero':
        return { status: 429, headers: { 'retry-after': '0' }, json: graphError(130429, '(#130429) Rate limit hit') };
      case '131056':
        return {
          status: 400,
          json: graphError(131056, '(#131056) (Business Account, Consumer Account) pair rate limit hit'),
        };
      case '131047':
        return { status: 400, json: graphError(131047, 'Re-engagement message') };
      case 'transient':
        return {
          status: 400,
          json: { error: { ...graphError(2, 'Service temporarily unavailable').error, is_transient: true } },
        };
      case '500':
        return { status: 500, json: graphError(131000, 'Something went wrong') };
      case '400':
        return { status: 400, json: graphError(131026, 'Message Undeliverable') };
      default:
        throw new Error(`FakeWhatsApp: no answer named ${answer}`);
    }
  }
}

function graphError(code: number, message: string): { error: Record<string, unknown> } {
  return { error: { message, type: 'OAuthException', code, fbtrace_id: 'AbCdEf123' } };
}

/**
 * An ntfy server: `POST /{topic}` with the message as the body and Title/Priority/Tags headers,
 * `Authorization: Bearer <token>` when it has one; errors `{code, http, error}`. Extra answers:
 * `429` (`Retry-After: 2`), `429-date` (`Retry-After` as an HTTP date 3 s on), `429-years`
 * (`Retry-After` of about 3,000 years).
 */
export class FakeNtfy extends FakeApi {
  constructor(
    clock: Clock,
    readonly topic: string,
    readonly token?: string,
  ) {
    super(clock);
  }

  protected check(r: Req): { text: string } | { refuse: Reply; why: string } {
    const no = (status: number, code: number, error: string, why: string) => ({
      refuse: { status, json: { code, http: status, error } },
      why,
    });
    if (r.method !== 'POST' && r.method !== 'PUT')
      return no(405, 40501, 'method not allowed', `method ${r.method}`);
    if (r.url.pathname !== `/${this.topic}`)
      return no(404, 40401, 'page not found', `path ${r.url.pathname}`);
    const auth = header(r.headers, 'authorization');
    if (this.token && auth === undefined) return no(403, 40301, 'forbidden', 'no authorization');
    if (this.token && auth !== `Bearer ${this.token}`)
      return no(401, 40101, 'unauthorized', 'wrong authorization');
    const priority = header(r.headers, 'priority');
    if (priority !== undefined && !/^[1-5]$/.test(priority))
      return no(400, 40007, 'invalid request: priority invalid', `priority ${priority}`);
    for (const h of ['title', 'tags']) {
      const v = header(r.headers, h) ?? '';
      if (/[^\x20-\x7e]/.test(v)) return no(400, 40000, 'invalid request', `non-ASCII ${h}`);
    }
    if (Buffer.byteLength(r.raw) > 4096)
      return no(413, 41301, 'request entity too large', 'body over 4096 bytes');
    return { text: r.raw };
  }

  protected reply(answer: string, r: Req, text: string, at: number): Reply {
    const limited = { code: 42901, http: 429, error: 'limit reached: too many requests, please be nice' };
    switch (answer) {
      case 'ok':
        return {
          status: 200,
          json: {
            id: `msg${this.received.length}`,
            time: Math.floor(at / 1000),
            expires: Math.floor(at / 1000) + 43200,
            event: 'message',
            topic: this.topic,
            title: header(r.headers, 'title'),
            message: text,
            priority: Number(header(r.headers, 'priority') ?? 3),
            tags: (header(r.headers, 'tags') ?? '').split(',').filter(Boolean),
          },
        };
      case '429':
        return { status: 429, headers: { 'retry-after': '2' }, json: limited, retryAt: at + 2000 };
      case '429-date': {
        // An HTTP date has whole seconds: the named time is the date itself.
        const date = new Date(at + 3000).toUTCString();
        return { status: 429, headers: { 'retry-after': date }, json: limited, retryAt: Date.parse(date) };
      }
      case '429-zero':
        return { status: 429, headers: { 'retry-after': '0' }, json: limited };
      case '429-years':
        return { status: 429, headers: { 'retry-after': '99999999999' }, json: limited };
      case '500':
        return { status: 500, json: { code: 50001, http: 500, error: 'internal server error' } };
      case '400':
        return { status: 400, json: { code: 40009, http: 400, error: 'invalid request: topic invalid' } };
      default:
        throw new Error(`FakeNtfy: no answer named ${answer}`);
    }
  }
}

/** A plain JSON webhook receiver at `/hooks/weft`: 204 when it took the document, 429 with `Retry-After: 2`. */
export class FakeJsonHook extends FakeApi {
  protected check(r: Req): { text: string } | { refuse: Reply; why: string } {
    const no = (status: number, why: string) => ({ refuse: { status, json: { error: why } }, why });
    if (r.method !== 'POST') return no(405, `method ${r.method}`);
    if (r.url.pathname !== '/hooks/weft') return no(404, `path ${r.url.pathname}`);
    if (!isJsonRequest(r)) return no(415, 'not JSON');
    const b = obj(r.json);
    const n = obj(b.notification);
    if (
      typeof b.title !== 'string' ||
      typeof b.message !== 'string' ||
      typeof b.level !== 'number' ||
      typeof n.id !== 'number'
    )
      return no(422, 'missing title, message, level or notification.id');
    return { text: b.message };
  }

  protected reply(answer: string, _r: Req, _text: string, at: number): Reply {
    switch (answer) {
      case 'ok':
        return { status: 204 };
      case '429':
        return {
          status: 429,
          headers: { 'retry-after': '2' },
          json: { error: 'slow down' },
          retryAt: at + 2000,
        };
      case '429-zero':
        return { status: 429, headers: { 'retry-after': '0' }, json: { error: 'slow down' } };
      case '500':
        return { status: 502, body: 'Bad Gateway' };
      case '400':
        return { status: 410, json: { error: 'this hook was deleted' } };
      default:
        throw new Error(`FakeJsonHook: no answer named ${answer}`);
    }
  }
}
