import { Type } from '@sinclair/typebox';
import type { WebSocket } from 'ws';
import { compile, Visibility } from '../envelope/index.js';
import type { Notification, NotificationChange, NotificationFilter, NotificationStore } from '../store/index.js';
import type { Logger } from '../util/index.js';

export interface HubInit {
  /** Bytes a client may have unsent before it is disconnected as a slow consumer (default 1 MiB). */
  maxBufferedBytes?: number;
  /** Subscribers at most (default 256); one more is refused with close code 1013. */
  maxClients?: number;
  /** Messages a client may send per second (default 20, bursts of 50); beyond, it is closed with 1008. */
  messagesPerSecond?: number;
  /** Invalid messages a client may send before it is closed with 1008 (default 20). */
  maxInvalid?: number;
}

/** A client's pushes of one batch are flushed at least this often (bytes). */
const CORK_FLUSH_BYTES = 256 * 1024;
/** The longest header of a frame a server sends (no mask): 2 bytes and a 64-bit length. */
const MAX_FRAME_HEADER = 10;

/** A client's socket, corked for one batch of pushes. */
interface Cork {
  socket: { cork(): void; uncork(): void };
  /** Bytes written to it since it was corked or last flushed. */
  pending: number;
}
/** The TCP socket under a WebSocket: `ws` keeps it as `_socket` (a net.Socket); none when that changes. */
function rawSocket(ws: WebSocket): Cork['socket'] | undefined {
  const s = (ws as unknown as { _socket?: { cork?: unknown; uncork?: unknown } })._socket;
  return s && typeof s.cork === 'function' && typeof s.uncork === 'function' ? (s as Cork['socket']) : undefined;
}

interface Client {
  socket: WebSocket;
  /** The dashboard login it was opened with (none: the node's token), and the timer that ends it at its expiry. */
  session: object | undefined;
  expiry: NodeJS.Timeout | undefined;
  filter: NotificationFilter | undefined;
  tokens: number;
  refilledAt: number;
  invalid: number;
}

const Level = Type.Integer({ minimum: 0, maximum: 3 });
const Name = Type.String({ maxLength: 200 });
/** What a WebSocket client may send, by `type`. Anything else is answered with an error naming the field. */
const MESSAGES = {
  subscribe: compile<{ type: 'subscribe'; filter?: NotificationFilter }>(
    Type.Object(
      {
        type: Type.Literal('subscribe'),
        filter: Type.Optional(
          Type.Object(
            {
              minLevel: Type.Optional(Level),
              domain: Type.Optional(Name),
              humanStatus: Type.Optional(Type.Union([Type.Literal('unseen'), Type.Literal('seen')])),
              agentStatus: Type.Optional(Type.Union([Type.Literal('none'), Type.Literal('claimed'), Type.Literal('in_progress'), Type.Literal('resolved')])),
              visibility: Type.Optional(Visibility),
              eventType: Type.Optional(Name),
            },
            { additionalProperties: false },
          ),
        ),
      },
      { additionalProperties: false },
    ),
  ),
  unsubscribe: compile<{ type: 'unsubscribe' }>(Type.Object({ type: Type.Literal('unsubscribe') }, { additionalProperties: false })),
  ping: compile<{ type: 'ping' }>(Type.Object({ type: Type.Literal('ping') }, { additionalProperties: false })),
} as const;
type ClientMessage = { type: 'subscribe'; filter?: NotificationFilter } | { type: 'unsubscribe' } | { type: 'ping' };

/**
 * Fans committed notification changes out to WebSocket subscribers. A client whose unsent
 * buffer passes the bound is disconnected with a reason; nothing here ever waits on a client,
 * so a slow one cannot slow the pipeline or the others.
 */
export class NotificationHub {
  private readonly clients = new Set<Client>();
  private readonly maxBuffered: number;
  private readonly maxClients: number;
  private readonly rate: number;
  private readonly maxInvalid: number;
  disconnectedSlow = 0;
  /** Clients closed for bad input (too many invalid messages, too fast) or refused (too many clients). */
  refused = 0;
  sent = 0;

  constructor(
    private readonly notifications: NotificationStore,
    private readonly logger: Logger,
    init: HubInit = {},
  ) {
    this.maxBuffered = init.maxBufferedBytes ?? 1024 * 1024;
    this.maxClients = init.maxClients ?? 256;
    this.rate = init.messagesPerSecond ?? 20;
    this.maxInvalid = init.maxInvalid ?? 20;
  }

  get size(): number {
    return this.clients.size;
  }

  /**
   * A subscriber; `session` is the dashboard login it was opened with: its connection is closed
   * (4001) at the login's `expiresAt` or when {@link endSession} says it ended, so a page never
   * goes on receiving for a login that is over.
   */
  add(socket: WebSocket, session?: { expiresAt: number }): void {
    if (this.clients.size >= this.maxClients) {
      this.refused++;
      this.logger.warn({ clients: this.clients.size }, 'refusing a WebSocket subscriber: too many');
      socket.close(1013, `too many subscribers (at most ${this.maxClients})`);
      return;
    }
    const client: Client = { socket, session, expiry: undefined, filter: undefined, tokens: this.rate * 2.5, refilledAt: Date.now(), invalid: 0 };
    this.clients.add(client);
    if (session) {
      // Longer than a timer can wait (~24.8 days) never happens: logins last hours.
      client.expiry = setTimeout(() => this.close(client, 4001, 'this login expired'), Math.min(Math.max(0, session.expiresAt - Date.now()), 2 ** 31 - 1));
      client.expiry.unref();
    }
    const gone = () => {
      clearTimeout(client.expiry);
      this.clients.delete(client);
    };
    socket.on('close', gone);
    socket.on('error', gone);
    socket.on('message', (data, isBinary) => {
      // Whatever a client sends, nothing it does may throw out of this handler.
      try {
        this.onMessage(client, data as Buffer, isBinary);
      } catch (err) {
        this.logger.error({ err: (err as Error).message }, 'WebSocket message handling failed');
        this.close(client, 1011, 'internal error');
      }
    });
  }

  private onMessage(client: Client, data: Buffer, isBinary: boolean): void {
    const now = Date.now();
    client.tokens = Math.min(this.rate * 2.5, client.tokens + ((now - client.refilledAt) / 1000) * this.rate);
    client.refilledAt = now;
    if (client.tokens < 1) {
      this.refused++;
      this.close(client, 1008, `too many messages (at most ${this.rate} per second)`);
      return;
    }
    client.tokens--;
    let msg: unknown;
    try {
      if (isBinary) throw new Error('binary');
      msg = JSON.parse(data.toString('utf8'));
    } catch {
      this.invalid(client, 'messages must be JSON text, e.g. {"type":"subscribe","filter":{"minLevel":2}}');
      return;
    }
    const type = msg !== null && typeof msg === 'object' && !Array.isArray(msg) ? (msg as { type?: unknown }).type : undefined;
    const validator = typeof type === 'string' && Object.hasOwn(MESSAGES, type) ? MESSAGES[type as keyof typeof MESSAGES] : undefined;
    if (!validator) {
      this.invalid(client, `unknown message ${(JSON.stringify(type ?? msg) ?? String(msg)).slice(0, 100)}: send {"type":"subscribe"|"unsubscribe"|"ping"}`);
      return;
    }
    const bad = validator.firstError(msg);
    if (bad) {
      this.invalid(client, `field '${bad.path}' ${bad.message.toLowerCase()}`);
      return;
    }
    const m = msg as ClientMessage;
    if (m.type === 'subscribe') {
      client.filter = m.filter ?? {};
      this.send(client, { type: 'subscribed', filter: client.filter });
    } else if (m.type === 'unsubscribe') {
      client.filter = undefined;
      this.send(client, { type: 'unsubscribed' });
    } else {
      this.send(client, { type: 'pong' });
    }
  }

  private invalid(client: Client, message: string): void {
    client.invalid++;
    if (client.invalid > this.maxInvalid) {
      this.refused++;
      this.close(client, 1008, `more than ${this.maxInvalid} invalid messages`);
      return;
    }
    this.send(client, { type: 'error', error: { code: 'WEFT_VALIDATION', message } });
  }

  private send(client: Client, value: unknown): void {
    if (client.socket.readyState === client.socket.OPEN) client.socket.send(JSON.stringify(value));
  }

  private close(client: Client, code: number, reason: string): void {
    this.clients.delete(client);
    try {
      client.socket.close(code, reason.slice(0, 120));
    } catch {
      client.socket.terminate();
    }
    setTimeout(() => client.socket.terminate(), 1000).unref();
  }

  /** Publishes changes that have committed. */
  publish(changes: readonly NotificationChange[]): void {
    if (this.clients.size === 0 || changes.length === 0) return;
    const subscribed = [...this.clients].filter((c) => c.filter !== undefined);
    if (subscribed.length === 0) return;
    // A created notification is pushed as its insert made it; any other change as committed
    // (read back: a claim or an update in the same batch shows in its own change's push).
    const created = new Map<NotificationChange, Notification>();
    const rest = new Set<number>();
    for (const c of changes) {
      const n = this.notifications.createdBy(c);
      if (n) created.set(c, n);
      else rest.add(c.id);
    }
    let read: Map<number, Notification> = new Map();
    try {
      if (rest.size > 0) read = this.notifications.getMany([...rest]);
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'changed notifications not read; this batch is not pushed');
      return;
    }
    // A batch's pushes to a client leave in one write: its socket is corked for the batch (a
    // write each cost ~8 µs, ~2 µs corked, and as many reads on the client's side), flushed
    // every CORK_FLUSH_BYTES. The slow-consumer bound still holds per message, on what is unsent
    // besides this batch's own corked bytes.
    const corked = new Map<Client, Cork>();
    try {
      for (const change of changes) {
        const n = created.get(change) ?? read.get(change.id);
        if (!n) continue;
        let text: string | undefined;
        let bytes = 0;
        for (const c of subscribed) {
          if (!this.clients.has(c) || !matches(n, c.filter as NotificationFilter)) continue;
          let cork = corked.get(c);
          if (c.socket.bufferedAmount - (cork?.pending ?? 0) > this.maxBuffered) {
            cork?.socket.uncork();
            corked.delete(c);
            this.dropSlow(c);
            continue;
          }
          if (text === undefined) {
            text = JSON.stringify({ type: 'notification', change, notification: n });
            bytes = Buffer.byteLength(text) + MAX_FRAME_HEADER;
          }
          if (!cork) {
            const socket = rawSocket(c.socket);
            if (socket) {
              socket.cork();
              cork = { socket, pending: 0 };
              corked.set(c, cork);
            }
          }
          c.socket.send(text);
          this.sent++;
          if (cork) {
            cork.pending += bytes;
            if (cork.pending >= CORK_FLUSH_BYTES) {
              cork.socket.uncork();
              cork.socket.cork();
              cork.pending = 0;
            }
          }
        }
      }
    } finally {
      for (const cork of corked.values()) cork.socket.uncork();
    }
  }

  /** Closes (4001) the connections opened with a dashboard login that ended (logged out). */
  endSession(session: object): void {
    for (const c of this.clients) if (c.session === session) this.close(c, 4001, 'this login was logged out');
  }

  closeAll(): void {
    for (const c of this.clients) c.socket.close(1001, 'node shutting down');
    this.clients.clear();
  }

  private dropSlow(c: Client): void {
    this.clients.delete(c);
    this.disconnectedSlow++;
    this.logger.warn({ buffered: c.socket.bufferedAmount }, 'disconnecting a slow WebSocket subscriber');
    c.socket.close(4008, `slow consumer: more than ${this.maxBuffered} bytes unsent`);
    // Time to read what is queued and the close frame with its reason; then the socket goes.
    setTimeout(() => c.socket.terminate(), 5000).unref();
  }
}

function matches(n: Notification, f: NotificationFilter): boolean {
  return (
    (f.minLevel === undefined || n.level >= f.minLevel) &&
    (f.domain === undefined || n.domain === f.domain) &&
    (f.humanStatus === undefined || n.humanStatus === f.humanStatus) &&
    (f.agentStatus === undefined || n.agentStatus === f.agentStatus) &&
    (f.visibility === undefined || n.visibility === f.visibility) &&
    (f.eventType === undefined || n.eventType === f.eventType)
  );
}
