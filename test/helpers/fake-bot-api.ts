/** A fake Telegram Bot API on loopback: answers each request with the next scripted answer. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Clock } from '../../src/util/clock.js';

export interface Received {
  /** The ManualClock's time when the request arrived. */
  at: number;
  path: string;
  body: { chat_id: string | number; text: string; parse_mode?: string };
}

export type Answer = 'ok' | '429' | '500' | '400' | 'hang';

/** A fake Bot API: answers each request with the next scripted answer (then `fallback`). */
export class FakeBotApi {
  readonly received: Received[] = [];
  script: Answer[] = [];
  fallback: Answer = 'ok';
  private readonly hung: ServerResponse[] = [];
  private server: Server | undefined;
  url = '';

  constructor(private readonly clock: Clock) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const res of this.hung) res.destroy();
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }

  /** Texts received, in order. */
  get texts(): string[] {
    return this.received.map((r) => r.body.text);
  }

  /** How many received messages name notification `#id`. */
  countFor(id: number): number {
    return this.texts.filter((t) => t.includes(`#${id}`)).length;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Received['body'];
      this.received.push({ at: this.clock.now(), path: req.url ?? '', body });
      const answer = this.script.shift() ?? this.fallback;
      const send = (status: number, json: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(json));
      };
      switch (answer) {
        case 'ok':
          return send(200, {
            ok: true,
            result: { message_id: this.received.length, chat: { id: body.chat_id }, text: body.text },
          });
        case '429':
          return send(429, {
            ok: false,
            error_code: 429,
            description: 'Too Many Requests: retry after 1',
            parameters: { retry_after: 1 },
          });
        case '500':
          return send(500, { ok: false, error_code: 500, description: 'Internal Server Error' });
        case '400':
          return send(400, { ok: false, error_code: 400, description: 'Bad Request: chat not found' });
        case 'hang':
          this.hung.push(res);
          return;
      }
    });
  }
}

