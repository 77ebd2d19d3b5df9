import type { WebSocket } from 'ws';
import type { Notification, NotificationChange, NotificationFilter, NotificationStore } from '../store/index.js';
import type { Logger } from '../util/logger.js';

export interface HubInit {
  /** Bytes a client may have unsent before it is disconnected as a slow consumer (default 1 MiB). */
  maxBufferedBytes?: number;
}

interface Client {
  socket: WebSocket;
  filter: NotificationFilter | undefined;
}

/**
 * Fans committed notification changes out to WebSocket subscribers. A client whose unsent
 * buffer passes the bound is disconnected with a reason; nothing here ever waits on a client,
 * so a slow one cannot slow the pipeline or the others.
 */
export class NotificationHub {
  private readonly clients = new Set<Client>();
  private readonly maxBuffered: number;
  disconnectedSlow = 0;
  sent = 0;

  constructor(
    private readonly notifications: NotificationStore,
    private readonly logger: Logger,
    init: HubInit = {},
  ) {
    this.maxBuffered = init.maxBufferedBytes ?? 1024 * 1024;
  }

  get size(): number {
    return this.clients.size;
  }

  add(socket: WebSocket): void {
    const client: Client = { socket, filter: undefined };
    this.clients.add(client);
    socket.on('close', () => this.clients.delete(client));
    socket.on('error', () => this.clients.delete(client));
    socket.on('message', (data) => {
      let msg: { type?: string; filter?: NotificationFilter };
      try {
        msg = JSON.parse(String(data)) as typeof msg;
      } catch {
        socket.send(JSON.stringify({ type: 'error', error: { code: 'WEFT_VALIDATION', message: 'messages must be JSON' } }));
        return;
      }
      if (msg.type === 'subscribe') {
        client.filter = msg.filter ?? {};
        socket.send(JSON.stringify({ type: 'subscribed', filter: client.filter }));
      } else {
        socket.send(JSON.stringify({ type: 'error', error: { code: 'WEFT_VALIDATION', message: `unknown message type '${String(msg.type)}'` } }));
      }
    });
  }

  /** Publishes changes that have committed. */
  publish(changes: readonly NotificationChange[]): void {
    if (this.clients.size === 0 || changes.length === 0) return;
    const subscribed = [...this.clients].filter((c) => c.filter !== undefined);
    if (subscribed.length === 0) return;
    for (const change of changes) {
      let n: Notification;
      try {
        n = this.notifications.get(change.id);
      } catch {
        continue;
      }
      let text: string | undefined;
      for (const c of subscribed) {
        if (!this.clients.has(c) || !matches(n, c.filter as NotificationFilter)) continue;
        if (c.socket.bufferedAmount > this.maxBuffered) {
          this.dropSlow(c);
          continue;
        }
        text ??= JSON.stringify({ type: 'notification', change, notification: n });
        c.socket.send(text);
        this.sent++;
      }
    }
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
    setTimeout(() => c.socket.terminate(), 1000).unref();
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
