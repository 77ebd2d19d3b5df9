import { createWriteStream } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import { createRequire } from 'node:module';
import type WsModule from 'ws';
import type { Envelope } from '../envelope/index.js';
import { ERROR_CODES, type ErrorCode, WeftError } from '../errors/index.js';
import { API_BODY_LIMIT_BYTES } from '../util/index.js';
import type { InvokeCall, InvokeResult } from '../federation/index.js';
import type { EmitResult } from '../pipeline/index.js';
import type { Notification, NotificationChange, NotificationFilter } from '../store/index.js';

/** Largest JSON answer the client reads, bytes (a page of events or notifications is far smaller). */
const MAX_ANSWER_BYTES = 64 * 1024 * 1024;
/** Largest text answer (`text()`: the audit export, Prometheus text), bytes; near a JS string's limit. */
const MAX_TEXT_BYTES = 512 * 1024 * 1024;

/** Kept-alive connections for producers that send many requests; an idle one does not hold a process open. */
const agents: { http?: HttpAgent; https?: HttpsAgent } = {};
const requireCjs = createRequire(import.meta.url);
/** node:https (with TLS and crypto: ~8 ms of a CLI call) is loaded only for an https URL. */
const loadHttps = (): typeof import('node:https') => requireCjs('node:https') as typeof import('node:https');

/** The daemon answered, but the answer could not be read whole (too large, cut off). */
class AnswerError extends Error {}

/**
 * One HTTP exchange on node:http (fetch would load undici and web streams, ~35 ms of a CLI
 * call's start-up).
 */
function exchange(url: string, method: string, headers: Record<string, string>, body: string | undefined, maxBytes: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const tls = url.startsWith('https:');
    const https = tls ? loadHttps() : undefined;
    const send = https ? https.request : httpRequest;
    if (https) agents.https ??= new https.Agent({ keepAlive: true });
    else agents.http ??= new HttpAgent({ keepAlive: true });
    const agent = tls ? agents.https : agents.http;
    let answered = false;
    const req = send(url, { method, headers: body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) }, agent }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxBytes) {
          req.destroy(new AnswerError(`the answer is larger than ${maxBytes} bytes`));
          return;
        }
        chunks.push(c);
      });
      let ended = false;
      res.on('end', () => {
        ended = true;
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', (err) => reject(err instanceof AnswerError ? err : new AnswerError('the connection closed before the answer was complete')));
      // The daemon went away mid-answer: say so rather than wait for an end that never comes.
      res.on('close', () => {
        if (!ended) reject(new AnswerError('the connection closed before the answer was complete'));
      });
    });
    req.on('error', (err) => reject(answered && !(err instanceof AnswerError) ? new AnswerError('the connection closed before the answer was complete') : err));
    req.end(body);
  });
}

/** `ws` costs ~30 ms to load: only a subscription loads it (a CLI `emit` never does). */
const loadWebSocket = (): typeof WsModule => requireCjs('ws') as typeof WsModule;

export interface ClientInit {
  /** API base URL, e.g. http://127.0.0.1:9237 */
  url: string;
  token: string;
  /**
   * Where the token came from (`WEFT_TOKEN`, a token file's path), named when the daemon
   * refuses it, so the user knows which one to fix.
   */
  tokenFrom?: string;
}

export interface ListQuery {
  level?: number;
  domain?: string;
  humanStatus?: 'unseen' | 'seen';
  agentStatus?: 'none' | 'claimed' | 'in_progress' | 'resolved';
  visibility?: 'local' | 'cluster' | 'public';
  type?: string;
  since?: string;
  cursor?: number;
  limit?: number;
}

/** One pushed change. */
export interface PushedChange {
  change: NotificationChange;
  notification: Notification;
}

/**
 * A subscription: iterate it; `break` or close() ends it. Anything else that ends it throws
 * from the iteration (after the changes received before): the server refused the filter
 * (`WEFT_VALIDATION`), the daemon stopped or dropped a subscriber that fell behind
 * (`WEFT_STOPPED`, with `closedReason`). Changes made while no subscription is open are not
 * pushed: list the notifications again, then subscribe again.
 */
export interface Subscription extends AsyncIterable<PushedChange> {
  close(): void;
  /** Resolves when the server confirmed the subscription; rejects when it refused it. */
  ready: Promise<void>;
  /** Why the server closed it, if it did. */
  closedReason?: string;
}

/**
 * A typed client for a node's API.
 * @example
 * const weft = new WeftClient({ url: 'http://127.0.0.1:9237', token });
 * await weft.emit({ event: 'system.worker.crashed', payload: { worker: 'w', error: 'x', restarts: 0 } });
 */
export class WeftClient {
  constructor(private readonly init: ClientInit) {}

  get url(): string {
    return this.init.url;
  }

  async request<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.init.token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const text = body === undefined ? undefined : JSON.stringify(body);
    // Said here: the API would answer early and close, which a client still writing sees as a reset.
    if (text !== undefined && Buffer.byteLength(text) > API_BODY_LIMIT_BYTES) {
      throw new WeftError('WEFT_TOO_LARGE', `the request body is larger than the API takes (${API_BODY_LIMIT_BYTES} bytes)`);
    }
    const res = await this.exchange(method, path, headers, text, MAX_ANSWER_BYTES);
    let json: unknown;
    try {
      json = res.text ? JSON.parse(res.text) : undefined;
    } catch {
      json = undefined;
    }
    if (res.status < 200 || res.status >= 300) throw this.answerError(res.status, json);
    return json as T;
  }

  /** The error a non-2xx answer stands for. */
  private answerError(status: number, json: unknown): WeftError {
    const e = (json as { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | undefined)?.error;
    const code = (e?.code && e.code in ERROR_CODES ? e.code : status === 401 ? 'WEFT_UNAUTHORIZED' : 'WEFT_INTERNAL') as ErrorCode;
    // Every weft answer carries { error: { code } }: anything else is another program on the port.
    const notWeft = !(e?.code && e.code in ERROR_CODES);
    let message = e?.message ?? (notWeft ? `${this.init.url} answered HTTP ${status} and is not a weft daemon (another program on api.port?)` : `HTTP ${status}`);
    // Every route this client asks for exists in its own version's daemon: one started before
    // the installation was upgraded lacks the newer ones.
    if (status === 404 && code === 'WEFT_NOT_FOUND' && message.startsWith('no route ')) {
      message += `: the daemon at ${this.init.url} runs an older Weft than this client; restart it to run the installed version`;
    }
    return new WeftError(code, code === 'WEFT_UNAUTHORIZED' ? this.refused(message) : message, e?.details ? { details: e.details } : undefined);
  }

  /**
   * POSTs to `path` and writes the answer's body to `dest` as it arrives (the database backup);
   * `onBytes` follows it. Resolves to the bytes written and the answer's headers.
   */
  download(path: string, dest: string, onBytes?: (got: number, total: number | undefined) => void): Promise<{ bytes: number; headers: Record<string, string | string[] | undefined> }> {
    const url = this.init.url + path;
    return new Promise((resolveDone, reject) => {
      const send = url.startsWith('https:') ? loadHttps().request : httpRequest;
      const req = send(url, { method: 'POST', headers: { authorization: `Bearer ${this.init.token}`, 'content-length': '0' } }, (res) => {
        const status = res.statusCode ?? 0;
        if (status < 200 || status >= 300) {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            if (text.length < 65_536) text += c;
          });
          res.on('end', () => {
            let json: unknown;
            try {
              json = JSON.parse(text);
            } catch {
              json = undefined;
            }
            reject(this.answerError(status, json));
          });
          return;
        }
        const total = Number(res.headers['content-length']) || undefined;
        const file = createWriteStream(dest, { mode: 0o600, flags: 'wx' });
        let got = 0;
        let ended = false;
        res.on('data', (c: Buffer) => {
          got += c.length;
          onBytes?.(got, total);
        });
        res.on('end', () => {
          ended = true;
        });
        res.on('close', () => {
          if (!ended) file.destroy(new WeftError('WEFT_INTERNAL', `POST ${path}: the connection closed before the answer was complete (${got} of ${total ?? '?'} bytes)`));
        });
        file.on('error', reject);
        file.on('finish', () => {
          if (total !== undefined && got !== total) reject(new WeftError('WEFT_INTERNAL', `POST ${path}: ${got} of ${total} bytes arrived`));
          else resolveDone({ bytes: got, headers: res.headers });
        });
        res.pipe(file);
      });
      req.on('error', (err) => reject(new WeftError('WEFT_STOPPED', `no weft daemon answers at ${this.init.url} (start one with 'weft daemon')`, { cause: err })));
      req.end();
    });
  }

  /** GET returning the body as text (JSON lines, Prometheus text). */
  async text(path: string): Promise<string> {
    const res = await this.exchange('GET', path, { authorization: `Bearer ${this.init.token}` }, undefined, MAX_TEXT_BYTES);
    if (res.status === 401) throw new WeftError('WEFT_UNAUTHORIZED', this.refused('HTTP 401'));
    if (res.status < 200 || res.status >= 300) throw new WeftError('WEFT_INTERNAL', `HTTP ${res.status}`);
    return res.text;
  }

  /** A refused token in words: which daemon refused which token, and where the right one is. */
  private refused(reason: string): string {
    if (!this.init.tokenFrom) return reason;
    return `the daemon at ${this.init.url} refused the API token from ${this.init.tokenFrom} (${reason}): a daemon's token is the api-token file in its data dir; WEFT_URL and WEFT_TOKEN, when set, override the config`;
  }

  private async exchange(
    method: string,
    path: string,
    headers: Record<string, string>,
    body: string | undefined,
    maxBytes: number,
  ): Promise<{ status: number; text: string }> {
    try {
      return await exchange(this.init.url + path, method, headers, body, maxBytes);
    } catch (err) {
      if (err instanceof AnswerError) throw new WeftError('WEFT_INTERNAL', `${method} ${path}: ${err.message}`, { cause: err });
      throw new WeftError('WEFT_STOPPED', `no weft daemon answers at ${this.init.url} (start one with 'weft daemon')`, { cause: err });
    }
  }

  health(): Promise<Record<string, unknown>> {
    return this.request('GET', '/api/health');
  }

  /** Emits one event; resolves with its envelope once durable in the node's bus. */
  async emit(input: Record<string, unknown>): Promise<Envelope> {
    return (await this.request<{ envelope: Envelope }>('POST', '/api/events', input)).envelope;
  }

  /**
   * Emits one event; resolves once durable with its envelope and what became of it: `applied`
   * by the pipeline in the same commit, `dropped` there by a stage (`by: 'dedup'`: an event with
   * its idempotency key was processed before), `failed` (a cartridge threw on it: a dead
   * letter), or `queued` behind earlier events.
   */
  async emitReported(input: Record<string, unknown>): Promise<EmitResult> {
    const r = await this.request<{ envelope: Envelope; outcome: EmitResult['outcome'] }>('POST', '/api/events', input);
    return { envelope: r.envelope, outcome: r.outcome };
  }

  /** Emits many events in one commit; resolves with their ids. */
  async emitMany(inputs: Array<Record<string, unknown>>): Promise<string[]> {
    return (await this.request<{ ids: string[] }>('POST', '/api/events', { events: inputs })).ids;
  }

  readonly notifications = {
    list: (q: ListQuery = {}) =>
      this.request<{ items: Notification[]; nextCursor: number | null }>('GET', `/api/notifications${qs(q as Record<string, unknown>)}`),
    get: (id: number) => this.request<Notification>('GET', `/api/notifications/${id}`),
    seen: (id: number) => this.request<Notification>('POST', `/api/notifications/${id}/seen`, {}),
    claim: (id: number, agentId: string) => this.request<Notification>('POST', `/api/notifications/${id}/claim`, { agentId }),
    start: (id: number, agentId: string) => this.request<Notification>('POST', `/api/notifications/${id}/in_progress`, { agentId }),
    release: (id: number, opts: { agentId?: string; force?: boolean }) => this.request<Notification>('POST', `/api/notifications/${id}/release`, opts),
    resolve: (id: number, opts: { agentId?: string; resolution?: Record<string, unknown>; approve?: boolean } = {}) =>
      this.request<Notification>('POST', `/api/notifications/${id}/resolve`, opts),
  };

  readonly events = {
    list: (q: { type?: string; cursor?: number; limit?: number } = {}) =>
      this.request<{ items: Array<{ seq: number; envelope: Envelope }>; nextCursor: number | null }>('GET', `/api/events${qs(q)}`),
    get: (id: string) => this.request<Envelope>('GET', `/api/events/${encodeURIComponent(id)}`),
    trace: (id: string) => this.request<TraceResult>('GET', `/api/events/${encodeURIComponent(id)}/trace`),
  };

  /**
   * Calls a named handler on a peer through this node (`deadlineMs` is the remaining time,
   * default 5000). Rejects with WEFT_INVOKE_TIMEOUT, WEFT_INVOKE_REJECTED (`details.code`:
   * NO_HANDLER, BUSY, LIMIT, FORBIDDEN, PIPELINE, EDGE, FAILED, ...), WEFT_PEER_UNAVAILABLE or
   * WEFT_NOT_FOUND.
   * @example
   * const { result } = await weft.invoke({ peer: 'saturn', handler: 'node.health', deadlineMs: 2000 });
   */
  invoke(call: Omit<InvokeCall, 'deadlineMs'> & { deadlineMs?: number }): Promise<InvokeResult> {
    return this.request<InvokeResult>('POST', '/api/invoke', call);
  }

  /** The invoke handlers this node serves, with where each comes from, and its invoke counters. */
  invokeHandlers(): Promise<{ mesh: boolean; handlers: Array<{ name: string; kind: string }>; stats: Record<string, unknown> | null }> {
    return this.request('GET', '/api/invoke/handlers');
  }

  readonly schemas = {
    list: () => this.request<Array<Record<string, unknown>>>('GET', '/api/schemas'),
    export: () => this.request<Record<string, unknown>>('GET', '/api/schemas/export'),
  };

  /** Subscribes to notification changes matching the filter, as they commit. */
  subscribe(filter: NotificationFilter = {}): Subscription {
    const WebSocket = loadWebSocket();
    const ws = new WebSocket(`${this.init.url.replace(/^http/, 'ws')}/ws`, { headers: { authorization: `Bearer ${this.init.token}` } });
    const queue: PushedChange[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    let failure: Error | undefined;
    let readyResolve: () => void = () => undefined;
    let readyReject: (e: Error) => void = () => undefined;
    const ready = new Promise<void>((res, rej) => {
      readyResolve = res;
      readyReject = rej;
    });
    ready.catch(() => undefined);
    const sub: Subscription = {
      ready,
      close: () => {
        done = true;
        ws.close();
        wake?.();
      },
      [Symbol.asyncIterator]: () => ({
        next: async (): Promise<IteratorResult<PushedChange>> => {
          for (;;) {
            const item = queue.shift();
            if (item) return { value: item, done: false };
            if (failure) throw failure;
            if (done) return { value: undefined, done: true };
            await new Promise<void>((r) => {
              wake = r;
            });
            wake = undefined;
          }
        },
        return: async () => {
          sub.close();
          return { value: undefined, done: true };
        },
      }),
    };
    ws.on('open', () => ws.send(JSON.stringify({ type: 'subscribe', filter })));
    ws.on('message', (data) => {
      const msg = JSON.parse(String(data)) as { type: string; error?: { code?: string; message?: string } } & PushedChange;
      if (msg.type === 'subscribed') readyResolve();
      else if (msg.type === 'notification') queue.push({ change: msg.change, notification: msg.notification });
      else if (msg.type === 'error') {
        // The server refused what was sent (a filter it does not take): said, not waited on.
        failure ??= new WeftError(msg.error?.code === 'WEFT_VALIDATION' ? 'WEFT_VALIDATION' : 'WEFT_INTERNAL', `subscribe refused: ${msg.error?.message ?? 'no reason given'}`);
        readyReject(failure);
        done = true;
        ws.close();
      }
      wake?.();
    });
    ws.on('unexpected-response', (_req, res) => {
      failure = res.statusCode === 401 ? new WeftError('WEFT_UNAUTHORIZED', `subscribe refused: ${this.refused('HTTP 401')}`) : new WeftError('WEFT_INTERNAL', `subscribe refused: HTTP ${res.statusCode}`);
      readyReject(failure);
      done = true;
      wake?.();
    });
    ws.on('error', (err) => {
      failure ??= new WeftError('WEFT_STOPPED', `subscription failed: ${err.message}`);
      readyReject(failure);
      done = true;
      wake?.();
    });
    ws.on('close', (code, reason) => {
      if (!done) {
        // Not asked for (close() sets done first): the caller must know its stream ended.
        sub.closedReason = `${code} ${String(reason)}`;
        failure ??= new WeftError('WEFT_STOPPED', `subscription ended by the node: ${code}${String(reason) ? ` ${String(reason)}` : ''}`);
      }
      done = true;
      readyReject(new WeftError('WEFT_STOPPED', 'subscription closed before it was confirmed'));
      wake?.();
    });
    return sub;
  }
}

export interface TraceResult {
  root: TraceTree;
  ancestors: Array<{ id: string; event: string }>;
}
export interface TraceTree {
  id: string;
  event: string;
  source: string;
  timestamp: string;
  origin?: string;
  children: TraceTree[];
}

function qs(q: Record<string, unknown>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}
