/**
 * A loopback TCP proxy that stands in for one network link: `cut()` destroys every open
 * connection and refuses new ones until `heal()`. Used to cut a single TLS link between two
 * daemons without stopping either.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export class LinkProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private isCut = false;
  cuts = 0;
  port = 0;

  constructor(
    private readonly targetPort: number,
    private readonly targetHost = '127.0.0.1',
  ) {}

  async start(port = 0): Promise<number> {
    this.server = createServer((client) => {
      if (this.isCut) {
        client.destroy();
        return;
      }
      const upstream = connect(this.targetPort, this.targetHost);
      this.sockets.add(client);
      this.sockets.add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      this.server?.once('error', reject);
      this.server?.listen(port, '127.0.0.1', () => resolve());
    });
    const a = this.server.address();
    this.port = a && typeof a === 'object' ? a.port : 0;
    return this.port;
  }

  get cut(): boolean {
    return this.isCut;
  }

  /** Drops every connection at once and refuses new ones. */
  cutLink(): void {
    this.isCut = true;
    this.cuts++;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  heal(): void {
    this.isCut = false;
  }

  async stop(): Promise<void> {
    this.cutLink();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
