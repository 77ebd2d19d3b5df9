/**
 * The API's HTTP layer on `node:http`: routes with `:param` segments, the hooks the API uses
 * (token, body budget, documentation), JSON bodies read within a byte limit, validators built on
 * a route's first request, and WebSocket routes (`ws`, loaded at the first upgrade).
 *
 * It replaced Fastify, which with the modules it loads (avvio, find-my-way, semver...) took
 * 15–18 MB of every idle daemon's memory for what these 700 lines do (docs/performance.md).
 * Its surface is the part of Fastify's the routes were written against (`app.get(url, {schema},
 * handler)`, `reply.status().header().send()`, `app.inject()` for tests), so a route reads the
 * same as before.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, ServerResponse } from 'node:http';
import { request as httpRequest } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { ValidationError, WeftError } from '../errors/index.js';

export type HttpPart = 'params' | 'querystring' | 'body';
/** A validator of one part of a request: the value to use (coerced) or the error to answer with. */
export type PartValidator = (data: unknown) => { value?: unknown; error?: Error };
export type ValidatorCompiler = (route: { schema: unknown; httpPart: HttpPart; method: string; url: string }) => PartValidator;

export interface RouteSchema {
  params?: unknown;
  querystring?: unknown;
  body?: unknown;
}
export interface RouteOptions {
  schema?: RouteSchema;
  /** The route answers WebSocket upgrades: its handler gets the socket. */
  websocket?: boolean;
}

/** A request as a route sees it. Hooks may attach their own fields (the dashboard session...). */
export interface ApiRequest {
  readonly method: string;
  /** The path and query as sent. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  params: unknown;
  query: unknown;
  body: unknown;
  readonly raw: IncomingMessage;
  readonly socket: Socket;
  /** The route's pattern (`/api/notifications/:id`); undefined when no route matched. */
  readonly routeOptions: { readonly url: string | undefined };
}

export type Handler = (req: ApiRequest, reply: ApiReply) => unknown;
export type WebSocketHandler = (socket: WebSocket, req: ApiRequest) => void;
export type Hook = (req: ApiRequest, reply: ApiReply) => unknown;
export type ErrorHandler = (err: Error, req: ApiRequest, reply: ApiReply) => unknown;

interface Route {
  method: string;
  url: string;
  schema: RouteSchema | undefined;
  handler: Handler;
  websocket: boolean;
  /** Built on the route's first request: a node answers few of its 100-odd routes. */
  validators: Partial<Record<HttpPart, PartValidator>> | undefined;
}

interface TrieNode {
  statics: Map<string, TrieNode>;
  param: { name: string; node: TrieNode } | undefined;
  routes: Map<string, Route>;
}
const trieNode = (): TrieNode => ({ statics: new Map(), param: undefined, routes: new Map() });

export interface HttpAppInit {
  /** Largest request body in bytes; a larger one is a 413 `WEFT_TOO_LARGE` naming it. */
  bodyLimit: number;
  /** Turns a JSON body's text into its value; throws a `ValidationError` (400) for bad JSON. */
  parseJson: (text: string) => unknown;
  validatorCompiler: ValidatorCompiler;
  /** Bytes a WebSocket message may have (default 64 KiB). */
  wsMaxPayload?: number;
  /**
   * Milliseconds a connection has, once nothing is being answered on it, to send its next
   * request's headers whole (default 72 s, the keep-alive timeout); a body the API did not read
   * (a GET's, a refused request's) must have arrived by then too. Node's own timeouts count from
   * the last byte, so a client sending one byte a second held its connection for good.
   */
  afterAnswerMs?: number;
}

/** What `inject` answers: the status, headers and body of a real request over loopback. */
export interface InjectResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: string;
  payload: string;
  // biome-ignore lint/suspicious/noExplicitAny: a test reads the answer's fields as it expects them
  json(): any;
}

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** How long WebSocket clients get to answer a close before their sockets are cut, at close(). */
const WS_CLOSE_GRACE_MS = 1000;
/**
 * How long the answers in flight get to finish at close() before their connections are cut: a
 * client that sends a body slowly, or never reads its answer, would otherwise hold the stop.
 */
const HTTP_CLOSE_GRACE_MS = 2000;
const KEEP_ALIVE_MS = 72_000;
/**
 * Requests one connection may have answered at once. Node reads pipelined requests as fast as
 * they come and stops only when the answers already written pile up, but the routes answer
 * later (they are async): a client that pipelined thousands of `GET /openapi.json` and read
 * nothing had them all answered into memory (630 MB for one connection). Past this many, the
 * requests wait in order and the connection is not read until the answers before them are sent.
 */
const MAX_IN_FLIGHT_PER_CONNECTION = 16;

/** A connection's requests being answered, and those waiting for their turn behind them. */
interface Connection {
  busy: number;
  waiting: Array<() => void>;
  /** It is not read until its waiting requests are let through. */
  paused: boolean;
  /** Closes it when no next request came whole in time, once nothing was being answered. */
  quiet: NodeJS.Timeout | undefined;
}
/** Node's own fields for pausing a connection's reads (what its server does for pipelining). */
type NodeSocket = Socket & { _paused?: boolean; parser?: { pause(): void; resume(): void } | null; _httpMessage?: ServerResponse | null };

/** The reply to one request: status and headers first, then one `send`. */
export class ApiReply {
  statusCode = 200;
  sent = false;
  /** `closing` says the server is closing: the answer then ends its connection (no request follows on it). */
  constructor(
    readonly raw: ServerResponse,
    private readonly closing: () => boolean = () => false,
  ) {}

  status(code: number): this {
    this.statusCode = code;
    return this;
  }
  code(code: number): this {
    return this.status(code);
  }
  header(name: string, value: string | number | readonly string[]): this {
    if (!this.raw.headersSent) this.raw.setHeader(name.toLowerCase(), value);
    return this;
  }
  type(contentType: string): this {
    return this.header('content-type', contentType);
  }
  redirect(url: string, code = 302): this {
    return this.status(code).header('location', url).send();
  }
  /**
   * Sends the answer: a string as text, a Buffer or a stream as bytes, anything else as JSON
   * (each unless the route set its own content type).
   */
  send(payload?: unknown): this {
    if (this.sent) return this;
    const res = this.raw;
    const typed = res.hasHeader('content-type');
    // Serialized before anything is marked sent: a value JSON cannot take (a BigInt) is an error answered as one.
    const json = payload === undefined || typeof payload === 'string' || Buffer.isBuffer(payload) || payload instanceof Readable ? undefined : JSON.stringify(payload);
    this.sent = true;
    if (res.destroyed || res.writableEnded) return this;
    res.statusCode = this.statusCode;
    // A kept-alive connection would hold close() until its keep-alive timeout (72 s).
    if (this.closing()) res.setHeader('connection', 'close');
    if (payload instanceof Readable) {
      if (!typed) res.setHeader('content-type', 'application/octet-stream');
      payload.once('error', () => res.destroy());
      res.once('close', () => payload.destroy());
      payload.pipe(res);
      return this;
    }
    let body: string | Buffer | undefined;
    if (payload === undefined) body = undefined;
    else if (typeof payload === 'string') {
      if (!typed) res.setHeader('content-type', 'text/plain; charset=utf-8');
      body = payload;
    } else if (Buffer.isBuffer(payload)) {
      if (!typed) res.setHeader('content-type', 'application/octet-stream');
      body = payload;
    } else {
      if (!typed) res.setHeader('content-type', 'application/json; charset=utf-8');
      body = json;
    }
    if (body === undefined) res.end();
    else res.end(body);
    return this;
  }
}

/**
 * The API's server: routes, hooks, an error and a not-found handler on one `node:http` server.
 * @example
 * const app = new HttpApp({ bodyLimit: 8 << 20, parseJson: JSON.parse, validatorCompiler });
 * app.get('/api/health', async () => ({ ok: true }));
 * await app.listen({ host: '127.0.0.1', port: 0 }); // 'http://127.0.0.1:40123'
 */
export class HttpApp {
  readonly server: Server;
  private readonly root = trieNode();
  private readonly hooks = {
    onRequest: [] as Hook[],
    preParsing: [] as Hook[],
    preValidation: [] as Hook[],
    onRoute: [] as Array<(r: { method: string; url: string; schema?: RouteSchema }) => void>,
    onClose: [] as Array<() => unknown>,
  };
  private errorHandler: ErrorHandler = (err, _req, reply) => reply.status(500).send({ error: { code: 'WEFT_INTERNAL', message: err.message } });
  private notFoundHandler: Handler = (req, reply) => reply.status(404).send({ error: { code: 'WEFT_NOT_FOUND', message: `no route ${req.method} ${req.url}` } });
  private wss: WebSocketServer | undefined;
  private wssLoading: Promise<WebSocketServer> | undefined;
  private injected: Promise<number> | undefined;
  private closed = false;
  /** Every open connection (upgraded ones included), for close() to end those that would hold it. */
  private readonly connections = new Map<Socket, Connection>();

  constructor(private readonly init: HttpAppInit) {
    this.server = createServer({ keepAliveTimeout: KEEP_ALIVE_MS, requestTimeout: 0 });
    this.server.on('connection', (socket: Socket) => {
      this.connections.set(socket, { busy: 0, waiting: [], paused: false, quiet: undefined });
      socket.once('close', () => {
        clearTimeout(this.connections.get(socket)?.quiet);
        this.connections.delete(socket);
      });
    });
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => this.admit(req, res));
    // `Expect: 100-continue` is answered when the body is about to be read (readBody), not at
    // once: a client refused (401, 404, 413, 415) then learns it before sending its body, instead
    // of being cut off halfway through it (EPIPE, no answer).
    this.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.admit(req, res));
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      // Busy for good: close() leaves it to the WebSocket close, or cuts it with the rest.
      const c = this.connections.get(socket);
      if (c) {
        c.busy++;
        clearTimeout(c.quiet);
      }
      // A socket error before `ws` owns it must not be an uncaught one.
      socket.on('error', () => socket.destroy());
      this.whenAnswered(socket, () => this.upgrade(req, socket, head));
    });
  }

  /**
   * Runs `fn` once no answer is pending on `socket`. A request pipelined before an upgrade may
   * still be being answered there (Node reads the upgrade at once): a response for the upgrade
   * could not be given the socket then (ERR_HTTP_SOCKET_ASSIGNED, thrown out of the process by
   * anyone who wrote `GET / ...` and an upgrade in one packet, before any token was checked).
   */
  private whenAnswered(socket: NodeSocket, fn: () => void): void {
    const pending = socket._httpMessage;
    if (!pending) {
      fn();
      return;
    }
    pending.once('close', () => {
      if (!socket.destroyed) this.whenAnswered(socket, fn);
    });
  }

  /** Answers an upgrade: a WebSocket one on its route, another protocol's as a plain request. */
  private upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const res = new ServerResponse(req);
    res.assignSocket(socket);
    // An upgrade answered over HTTP (refused, not found) leaves no socket open behind it.
    res.once('finish', () => socket.destroy());
    if (String(req.headers.upgrade ?? '').toLowerCase() === 'websocket') {
      void this.dispatch(req, res, { socket, head });
      return;
    }
    // Another protocol (`Upgrade: h2c`, which `curl --http2` sends): not taken, so the request
    // is answered over HTTP/1.1 as if it had not asked (RFC 9110 §7.8), on a connection that
    // ends with it. Node reads no body after an upgrade: one that has a body is refused, saying why.
    res.setHeader('connection', 'close');
    const refused = hasBody(req)
      ? new ValidationError(`this API speaks HTTP/1.1 only: send the request without 'Upgrade: ${String(req.headers.upgrade).slice(0, 50)}'`)
      : undefined;
    void this.dispatch(req, res, undefined, refused);
  }

  get(url: string, handler: Handler): void;
  get(url: string, opts: RouteOptions & { websocket: true }, handler: WebSocketHandler): void;
  get(url: string, opts: RouteOptions, handler: Handler): void;
  get(url: string, a: RouteOptions | Handler, b?: Handler | WebSocketHandler): void {
    this.add('GET', url, a, b);
  }
  post(url: string, handler: Handler): void;
  post(url: string, opts: RouteOptions, handler: Handler): void;
  post(url: string, a: RouteOptions | Handler, b?: Handler): void {
    this.add('POST', url, a, b);
  }
  put(url: string, handler: Handler): void;
  put(url: string, opts: RouteOptions, handler: Handler): void;
  put(url: string, a: RouteOptions | Handler, b?: Handler): void {
    this.add('PUT', url, a, b);
  }
  delete(url: string, handler: Handler): void;
  delete(url: string, opts: RouteOptions, handler: Handler): void;
  delete(url: string, a: RouteOptions | Handler, b?: Handler): void {
    this.add('DELETE', url, a, b);
  }

  /**
   * `onRequest` runs for every request (a route found or not); `preParsing` before a body is
   * read, only for a POST, PUT, PATCH or DELETE that has one (a Content-Length above 0 or a
   * Transfer-Encoding); `preValidation` after it, before the route's validators.
   */
  addHook(name: 'onRequest' | 'preParsing' | 'preValidation', fn: Hook): void;
  addHook(name: 'onRoute', fn: (r: { method: string; url: string; schema?: RouteSchema }) => void): void;
  addHook(name: 'onClose', fn: () => unknown): void;
  addHook(name: keyof HttpApp['hooks'], fn: (...args: never[]) => unknown): void {
    (this.hooks[name] as unknown[]).push(fn);
  }
  setErrorHandler(fn: ErrorHandler): void {
    this.errorHandler = fn;
  }
  setNotFoundHandler(fn: Handler): void {
    this.notFoundHandler = fn;
  }

  /** Listens; answers the URL (`http://127.0.0.1:PORT`). Node's own errors (EADDRINUSE...) reject as they are. */
  async listen(opts: { host: string; port: number }): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      const failed = (err: Error) => reject(err);
      this.server.once('error', failed);
      this.server.listen(opts.port, opts.host, () => {
        this.server.off('error', failed);
        resolve();
      });
    });
    const a = this.server.address() as AddressInfo;
    return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  /**
   * Stops accepting and closes WebSocket clients and every connection not being answered (idle,
   * never used, or halfway through sending a request); the answers in flight get
   * {@link HTTP_CLOSE_GRACE_MS} to finish, then their connections are cut too.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const fn of this.hooks.onClose) await fn();
    const wss = this.wss;
    const wsClosed = wss
      ? (async () => {
          for (const c of wss.clients) c.close(1001, 'node shutting down');
          const cut = setTimeout(() => {
            for (const c of wss.clients) c.terminate();
          }, WS_CLOSE_GRACE_MS);
          await new Promise<void>((resolve) => wss.close(() => resolve()));
          clearTimeout(cut);
        })()
      : undefined;
    if (this.server.listening) {
      await new Promise<void>((resolve) => {
        this.server.close(() => resolve());
        // Nothing is being answered on these: a client halfway through its headers (or that
        // never sent a byte) would otherwise hold close() until it gave up.
        for (const [socket, c] of this.connections) if (c.busy === 0) socket.destroy();
        const cut = setTimeout(() => {
          for (const socket of this.connections.keys()) socket.destroy();
        }, HTTP_CLOSE_GRACE_MS);
        cut.unref();
        this.server.once('close', () => clearTimeout(cut));
      });
    }
    await wsClosed;
  }

  /**
   * A request sent over loopback (the server listens on a free port if it does not yet), for
   * tests: `payload` is sent as JSON unless it is a string or a Buffer.
   */
  async inject(opts: { method?: string; url: string; headers?: Record<string, string>; payload?: unknown }): Promise<InjectResponse> {
    this.injected ??= this.server.listening
      ? Promise.resolve((this.server.address() as AddressInfo).port)
      : this.listen({ host: '127.0.0.1', port: 0 }).then(() => (this.server.address() as AddressInfo).port);
    const port = await this.injected;
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    let body: string | Buffer | undefined;
    if (opts.payload !== undefined) {
      const own = Object.keys(headers).some((k) => k.toLowerCase() === 'content-type');
      if (typeof opts.payload === 'string' || Buffer.isBuffer(opts.payload)) body = opts.payload;
      else {
        body = JSON.stringify(opts.payload);
        if (!own) headers['content-type'] = 'application/json';
      }
      // Said outright: Node's client sends a DELETE's body without a length the server can frame.
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.url, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: text, payload: text, json: () => JSON.parse(text) });
        });
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  private add(method: string, url: string, a: RouteOptions | Handler, b?: Handler | WebSocketHandler): void {
    const opts = typeof a === 'function' ? {} : a;
    const handler = (typeof a === 'function' ? a : b) as Handler;
    let node = this.root;
    for (const seg of url.split('/').slice(1)) {
      if (seg.startsWith(':')) {
        const name = seg.slice(1);
        if (node.param && node.param.name !== name) throw new Error(`route ${url}: parameter :${name} where another route has :${node.param.name}`);
        node.param ??= { name, node: trieNode() };
        node = node.param.node;
      } else {
        const next = node.statics.get(seg) ?? trieNode();
        node.statics.set(seg, next);
        node = next;
      }
    }
    if (node.routes.has(method)) throw new Error(`route ${method} ${url} is registered twice`);
    node.routes.set(method, { method, url, schema: opts.schema, handler, websocket: opts.websocket === true, validators: undefined });
    for (const fn of this.hooks.onRoute) fn({ method, url, ...(opts.schema ? { schema: opts.schema } : {}) });
  }

  /** The route for a path, static segments before parameters; `undefined` when none has this path. */
  private match(method: string, path: string): { route: Route; params: Record<string, string> } | undefined {
    const segs = path.split('/').slice(1).map(decodeSegment);
    const params: Record<string, string> = Object.create(null);
    const walk = (node: TrieNode, i: number): Route | undefined => {
      if (i === segs.length) return node.routes.get(method) ?? (method === 'HEAD' ? node.routes.get('GET') : undefined);
      const seg = segs[i] as string;
      const s = node.statics.get(seg);
      const viaStatic = s && walk(s, i + 1);
      if (viaStatic) return viaStatic;
      if (node.param && seg.length > 0) {
        const r = walk(node.param.node, i + 1);
        if (r) {
          params[node.param.name] = seg;
          return r;
        }
      }
      return undefined;
    };
    const route = walk(this.root, 0);
    return route && { route, params };
  }

  /** Answers a request now, or once fewer than {@link MAX_IN_FLIGHT_PER_CONNECTION} are answered on its connection. */
  private admit(raw: IncomingMessage, res: ServerResponse): void {
    const socket = raw.socket as NodeSocket;
    const c = this.connections.get(socket);
    if (!c) {
      void this.dispatch(raw, res, undefined);
      return;
    }
    clearTimeout(c.quiet);
    const run = () => {
      c.busy++;
      res.once('close', () => {
        c.busy--;
        const next = c.waiting.shift();
        if (next) {
          next();
          return;
        }
        if (c.paused) {
          c.paused = false;
          // As Node's server resumes a connection it paused.
          if (socket._paused) {
            socket._paused = false;
            socket.parser?.resume();
          }
          socket.resume();
        }
        if (c.busy === 0) this.quietFrom(socket, c);
      });
      void this.dispatch(raw, res, undefined);
    };
    if (c.busy < MAX_IN_FLIGHT_PER_CONNECTION) {
      run();
      return;
    }
    c.waiting.push(run);
    c.paused = true;
    // Node pauses the parser after the bytes it is reading now (`_paused`), as it does itself
    // when the answers written pile up (and may resume it when they are sent: paused again here).
    if (!socket._paused) {
      socket._paused = true;
      socket.pause();
    }
  }

  /**
   * Closes `socket` unless a next request comes whole in time. Made here, not where the answer
   * ended: a timer made there kept that request (its body read, 8 MiB) alive as long as it ran.
   */
  private quietFrom(socket: Socket, c: Connection): void {
    if (socket.destroyed) return;
    c.quiet = setTimeout(() => socket.destroy(), this.init.afterAnswerMs ?? KEEP_ALIVE_MS);
    c.quiet.unref();
  }

  /** `refused`: the error to answer with, whatever the route (an upgrade this API cannot take). */
  private async dispatch(raw: IncomingMessage, res: ServerResponse, upgrade: { socket: Socket; head: Buffer } | undefined, refused?: Error): Promise<void> {
    const url = raw.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const reply = new ApiReply(res, () => this.closed);
    let found: ReturnType<HttpApp['match']>;
    let bad: Error | undefined = refused;
    try {
      found = this.match(raw.method ?? 'GET', path);
    } catch (err) {
      bad = err as Error;
    }
    const req: ApiRequest = {
      method: raw.method ?? 'GET',
      url,
      headers: raw.headers,
      params: found?.params ?? Object.create(null),
      query: q < 0 ? Object.create(null) : parseQuery(url.slice(q + 1)),
      body: undefined,
      raw,
      socket: raw.socket,
      routeOptions: { url: found?.route.url },
    };
    try {
      // A request read after close() began (one pipelined behind another): told so.
      if (this.closed) throw new WeftError('WEFT_STOPPED', 'the node is stopping');
      if (bad) throw bad;
      for (const h of this.hooks.onRequest) {
        await h(req, reply);
        if (reply.sent) return;
      }
      const route = found?.route;
      if (!route || route.websocket !== (upgrade !== undefined)) {
        if (route?.websocket) throw new ValidationError(`${path} takes a WebSocket upgrade only`);
        // Not "no route": the route is there, the upgrade is what it does not take.
        if (route) throw new ValidationError(`${req.method} ${path} takes no WebSocket upgrade`);
        await this.notFoundHandler(req, reply);
        return;
      }
      route.validators ??= this.validatorsOf(route);
      const validators = route.validators;
      if (BODY_METHODS.has(req.method) && hasBody(raw)) {
        for (const h of this.hooks.preParsing) {
          await h(req, reply);
          if (reply.sent) return;
        }
        req.body = await this.readBody(raw, reply);
      }
      for (const h of this.hooks.preValidation) {
        await h(req, reply);
        if (reply.sent) return;
      }
      for (const part of ['params', 'body', 'querystring'] as const) {
        const v = validators[part];
        if (!v) continue;
        const key = part === 'querystring' ? 'query' : part;
        const r = v(req[key]);
        if (r.error) throw r.error;
        req[key] = r.value;
      }
      if (upgrade) {
        await this.upgradeTo(route, req, upgrade);
        return;
      }
      const result = await route.handler(req, reply);
      if (reply.sent) return;
      if (result === undefined) throw new Error(`route ${route.method} ${route.url} answered nothing`);
      reply.send(result);
    } catch (err) {
      await this.fail(err as Error, req, reply);
    }
  }

  private async fail(err: Error, req: ApiRequest, reply: ApiReply): Promise<void> {
    if (reply.sent) return;
    try {
      await this.errorHandler(err, req, reply);
    } catch {
      // Answered below, as an error handler that answered nothing is.
    }
    if (!reply.sent) reply.status(500).send({ error: { code: 'WEFT_INTERNAL', message: 'internal error' } });
  }

  private validatorsOf(route: Route): Partial<Record<HttpPart, PartValidator>> {
    const out: Partial<Record<HttpPart, PartValidator>> = {};
    for (const part of ['params', 'querystring', 'body'] as const) {
      const schema = route.schema?.[part];
      if (schema !== undefined) out[part] = this.init.validatorCompiler({ schema, httpPart: part, method: route.method, url: route.url });
    }
    return out;
  }

  /** The body as JSON, read up to the limit; a larger one is a 413 and its connection is closed unread. */
  private async readBody(raw: IncomingMessage, reply: ApiReply): Promise<unknown> {
    const limit = this.init.bodyLimit;
    const tooLarge = () => {
      // The rest is never read: the connection ends with the answer.
      reply.header('connection', 'close');
      return new WeftError('WEFT_TOO_LARGE', `the request body is larger than the API takes (${limit} bytes)`);
    };
    const type = String(raw.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json') {
      reply.header('connection', 'close');
      throw new WeftError('WEFT_MEDIA_TYPE', `the API takes JSON bodies (content-type: application/json), not ${type ? `'${type.slice(0, 100)}'` : 'a body without a content type'}`);
    }
    const declared = raw.headers['content-length'];
    if (declared !== undefined && Number(declared) > limit) throw tooLarge();
    if (/\b100-continue\b/i.test(String(raw.headers.expect ?? '')) && !reply.raw.headersSent) reply.raw.writeContinue();
    const text = await new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      const onData = (c: Buffer) => {
        bytes += c.length;
        if (bytes > limit) {
          raw.off('data', onData);
          raw.pause();
          reject(tooLarge());
          return;
        }
        chunks.push(c);
      };
      raw.on('data', onData);
      raw.once('end', () => {
        resolve(Buffer.concat(chunks).toString('utf8'));
        // The request outlives its body's text (Node's response holds it): the chunks need not.
        chunks.length = 0;
        raw.off('data', onData);
      });
      // Settles nothing once 'end' came; before it, the client went away mid-body. Node reports
      // that as an error ('aborted'): the client's doing, not a fault to log with a stack.
      const gone = () => reject(new WeftError('WEFT_VALIDATION', 'the client went away before its body arrived'));
      raw.once('error', gone);
      raw.once('close', gone);
    });
    return text.length === 0 ? undefined : this.init.parseJson(text);
  }

  private async upgradeTo(route: Route, req: ApiRequest, { socket, head }: { socket: Socket; head: Buffer }): Promise<void> {
    this.wssLoading ??= import('ws').then(({ WebSocketServer }) => {
      this.wss = new WebSocketServer({ noServer: true, maxPayload: this.init.wsMaxPayload ?? 64 * 1024 });
      return this.wss;
    });
    const wss = await this.wssLoading;
    if (this.closed || socket.destroyed) {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req.raw, socket, head, (ws) => {
      // `ws` closes a socket that broke a rule (a message over maxPayload: 1009) and reports it as
      // an error: one no handler listened for would be thrown out of the process.
      ws.on('error', () => undefined);
      (route.handler as unknown as WebSocketHandler)(ws, req);
    });
  }
}

function hasBody(raw: IncomingMessage): boolean {
  const length = raw.headers['content-length'];
  return length !== undefined ? Number(length) > 0 : raw.headers['transfer-encoding'] !== undefined;
}

function decodeSegment(seg: string): string {
  if (!seg.includes('%')) return seg;
  try {
    return decodeURIComponent(seg);
  } catch {
    throw new ValidationError(`the URL path has a malformed escape in '${seg.slice(0, 100)}'`);
  }
}

/**
 * A query string as an object; a key given twice is an array (a route's validator refuses it
 * where it takes one). Linear in the keys: it runs before the token is checked, and copying the
 * array at each repeat made `?a&a&a...` (8,000 in a 16 KB URL) cost 50 ms of CPU per request.
 */
function parseQuery(qs: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null);
  for (const [k, v] of new URLSearchParams(qs)) {
    const had = out[k];
    if (had === undefined) out[k] = v;
    else if (Array.isArray(had)) had.push(v);
    else out[k] = [had, v];
  }
  return out;
}
