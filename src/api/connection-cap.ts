/**
 * Caps the HTTP API's open connections. Every connection holds a file descriptor from the
 * moment it is accepted, before any token is checked, and the node's other parts (peer links,
 * the sandbox's child processes, its files) draw from the same limit: without a cap, a client
 * that opens connections and sends nothing (each lives until Node's 60 s header timeout) could
 * use up every descriptor, and the node would stop accepting anything while its CLI said that
 * no daemon answers. A connection over the cap gets one `429` answer in the API's error shape
 * (`WEFT_LIMIT`, saying what to do) and is closed; refusals are counted and logged at most
 * once per `logEveryMs` with the count since the last line.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../util/index.js';

/** Open connections the API accepts at once by default (`api.max_connections`). */
export const DEFAULT_MAX_CONNECTIONS = 1024;

/** What the cap has seen (`GET /api/health` shows it as `connections`). */
export interface ConnectionCapStats {
  readonly open: number;
  readonly max: number;
  /** Connections refused because `max` were open. */
  readonly refused: number;
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
 * Counts `server`'s connections and refuses those past `max`.
 * @example
 * const cap = capConnections(app.server, cfg.api.max_connections, logger);
 * cap.stats(); // { open: 3, max: 1024, refused: 0 }
 */
export function capConnections(server: Server, max: number, logger: Logger, logEveryMs = 10_000): { stats(): ConnectionCapStats } {
  let open = 0;
  let refused = 0;
  let unlogged = 0;
  let loggedAt = Number.NEGATIVE_INFINITY;
  const answer = refusal(max);
  server.on('connection', (socket: Socket) => {
    if (open < max) {
      open++;
      socket.once('close', () => open--);
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
  return { stats: () => ({ open, max, refused }) };
}
