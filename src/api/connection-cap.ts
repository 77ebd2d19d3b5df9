/**
 * Caps the HTTP API's open connections. Every connection holds a file descriptor from the
 * moment it is accepted, before any token is checked, and the node's other parts (peer links,
 * the sandbox's child processes, its files) draw from the same limit: without a cap, a client
 * that opens connections and sends nothing could use up every descriptor, and the node would
 * stop accepting anything while its CLI said that no daemon answers. A connection over the cap
 * gets one `429` answer in the API's error shape (`WEFT_LIMIT`, saying what to do) and is
 * closed; refusals are counted and logged at most once per `logEveryMs` with the count since
 * the last line. A connection that has not made its first request (or WebSocket upgrade)
 * `firstRequestMs` after it was accepted is closed: Node times out a request whose headers are
 * incomplete, but not a connection that never sends a byte (one lived past 130 s), so a client
 * could otherwise hold the whole cap for as long as it liked. Between requests, Node's
 * keep-alive timeout closes an idle connection.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../util/index.js';

/** Open connections the API accepts at once by default (`api.max_connections`). */
export const DEFAULT_MAX_CONNECTIONS = 1024;

/** Milliseconds a new connection has to make its first request by default. */
export const DEFAULT_FIRST_REQUEST_MS = 10_000;

/** What the cap has seen (`GET /api/health` shows it as `connections`). */
export interface ConnectionCapStats {
  readonly open: number;
  readonly max: number;
  /** Connections refused because `max` were open. */
  readonly refused: number;
  /** Connections closed because they made no request within the first-request time. */
  readonly idleClosed: number;
}

export interface ConnectionCapOptions {
  /** Open connections at once (default {@link DEFAULT_MAX_CONNECTIONS}). */
  max?: number;
  /** Time to the first request (default {@link DEFAULT_FIRST_REQUEST_MS}). */
  firstRequestMs?: number;
  /** At most one refusal line per this many milliseconds (default 10 s). */
  logEveryMs?: number;
}

/** The answer a connection over the cap gets before it is closed. */
function refusal(max: number): string {
  const body = JSON.stringify({
    error: { code: 'WEFT_LIMIT', message: `this node's API has ${max} connections open, its limit (api.max_connections); close idle ones or raise the limit` },
  });
  return (
    'HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\nRetry-After: 1\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

/**
 * Counts `server`'s connections, refuses those past the cap and closes those that make no request.
 * @example
 * const cap = capConnections(app.server, logger, { max: cfg.api.max_connections });
 * cap.stats(); // { open: 3, max: 1024, refused: 0, idleClosed: 0 }
 */
export function capConnections(server: Server, logger: Logger, opts: ConnectionCapOptions = {}): { stats(): ConnectionCapStats } {
  const max = opts.max ?? DEFAULT_MAX_CONNECTIONS;
  const firstRequestMs = opts.firstRequestMs ?? DEFAULT_FIRST_REQUEST_MS;
  const logEveryMs = opts.logEveryMs ?? 10_000;
  let open = 0;
  let refused = 0;
  let idleClosed = 0;
  let unlogged = 0;
  let loggedAt = Number.NEGATIVE_INFINITY;
  const answer = refusal(max);
  /** Connections still waiting for their first request, with the timer that closes them. */
  const fresh = new Map<Socket, NodeJS.Timeout>();
  const started = (socket: Socket) => {
    const timer = fresh.get(socket);
    if (timer === undefined) return;
    clearTimeout(timer);
    fresh.delete(socket);
  };
  server.on('request', (req: IncomingMessage) => started(req.socket));
  server.on('upgrade', (req: IncomingMessage) => started(req.socket));
  // A request with `Expect: 100-continue` comes as this instead of 'request' when listened for.
  server.on('checkContinue', (req: IncomingMessage) => started(req.socket));
  server.on('connection', (socket: Socket) => {
    if (open < max) {
      open++;
      const timer = setTimeout(() => {
        fresh.delete(socket);
        idleClosed++;
        socket.destroy();
      }, firstRequestMs);
      timer.unref();
      fresh.set(socket, timer);
      socket.once('close', () => {
        open--;
        started(socket);
      });
      return;
    }
    refused++;
    unlogged++;
    const now = performance.now();
    if (now - loggedAt >= logEveryMs) {
      logger.warn({ open, max, refused: unlogged }, `refused ${unlogged} API connection(s): ${max} are open (api.max_connections)`);
      loggedAt = now;
      unlogged = 0;
    }
    // Nothing the client sends is read: one answer, then the socket goes, even unread.
    socket.pause();
    socket.on('error', () => undefined);
    const drop = setTimeout(() => socket.destroy(), 1000);
    drop.unref();
    socket.end(answer, () => {
      clearTimeout(drop);
      socket.destroy();
    });
  });
  return { stats: () => ({ open, max, refused, idleClosed }) };
}
