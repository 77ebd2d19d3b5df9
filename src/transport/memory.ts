/**
 * The memory provider: in-process inboxes with the same delivery rules as the Redis one
 * (frames wait in the receiver's inbox while it is stopped; unacknowledged frames come back
 * after a restart). For tests and the demo.
 */
import { DEFAULT_MAX_FRAME_SIZE } from './frame.js';
import { requireDeps } from '../errors/index.js';
import { BoundedQueue } from './queue.js';
import { ProviderBase } from './provider-base.js';
import type {
  InboundFrame,
  Provider,
  ProviderDeps,
  TransportCap,
} from './transport.js';

interface Entry {
  id: number;
  from: string;
  bytes: Uint8Array;
  deliveries: number;
}

class Inbox {
  nextId = 1;
  readonly waiting: Entry[] = [];
  readonly pending = new Map<number, Entry>();
  wake: (() => void) | undefined;
  owner: object | undefined;

  append(from: string, bytes: Uint8Array): void {
    this.waiting.push({ id: this.nextId++, from, bytes, deliveries: 0 });
    this.wake?.();
  }

  /** Unacknowledged frames go back to the front, in their original order. */
  releasePending(): void {
    const back = [...this.pending.values()].sort((a, b) => a.id - b.id);
    this.pending.clear();
    this.waiting.unshift(...back);
  }
}

/** A set of in-process inboxes that memory providers share (one per "network"). */
export class MemoryNetwork {
  private readonly inboxes = new Map<string, Inbox>();

  /** The inbox of `computer`, created on first use (like a Redis stream). */
  inbox(computer: string): Inbox {
    let i = this.inboxes.get(computer);
    if (!i) {
      i = new Inbox();
      this.inboxes.set(computer, i);
    }
    return i;
  }

  /** Frames waiting or unacknowledged for `computer`. */
  backlog(computer: string): { waiting: number; pending: number } {
    const i = this.inboxes.get(computer);
    return { waiting: i?.waiting.length ?? 0, pending: i?.pending.size ?? 0 };
  }
}

export interface MemoryProviderInit {
  network: MemoryNetwork;
  /** This node's computer name (its inbox). */
  computer: string;
  /** Frames handed to the consumer and not yet acknowledged, at most (default 256). */
  maxInflight?: number;
  maxFrameSize?: number;
  /** Caps to declare (default: all). Lets tests model a provider without a feature. */
  caps?: TransportCap[];
  /**
   * Whether the channel counts as confidential (default true: frames never leave the
   * process). False models a broker that reads what it carries, so a preferred aead seals.
   */
  confidential?: boolean;
}

/**
 * An in-process provider.
 * @example
 * const net = new MemoryNetwork();
 * const a = memoryProvider({ network: net, computer: 'a' })({ logger, clock });
 */
export function memoryProvider(init: MemoryProviderInit): (deps: ProviderDeps) => Provider {
  return (deps) => new MemoryProvider(init, deps);
}

class MemoryProvider extends ProviderBase implements Provider {
  readonly name = 'memory';
  readonly caps: ReadonlySet<TransportCap>;
  readonly confidential: boolean;
  private readonly inbox: Inbox;
  private readonly maxInflight: number;
  private readonly maxFrameSize: number;
  private state: 'idle' | 'started' | 'stopped' = 'idle';
  private pump: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private readonly token = {};
  private inflight = 0;
  private inflightWake: (() => void) | undefined;

  constructor(
    private readonly init: MemoryProviderInit,
    deps: ProviderDeps,
  ) {
    super('memoryProvider', deps);
    requireDeps('memoryProvider', init, { network: 'the MemoryNetwork' }, { code: 'TRANSPORT_MISSING_DEPENDENCY', of: 'init' });
    this.caps = new Set(init.caps ?? ['crc32c', 'deflate', 'aead', 'reliable', 'ordered', 'durable']);
    this.confidential = init.confidential ?? true;
    this.inbox = init.network.inbox(init.computer);
    this.maxInflight = init.maxInflight ?? 256;
    this.maxFrameSize = init.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
  }

  async start(): Promise<void> {
    if (this.state !== 'idle') return;
    this.state = 'started';
    this.inbox.owner = this.token;
    this.queue = new BoundedQueue(this.maxInflight);
    this.pump = this.run(this.queue);
  }

  private async run(queue: BoundedQueue<InboundFrame>): Promise<void> {
    while (this.state === 'started') {
      while (this.inflight >= this.maxInflight && this.state === 'started') {
        await new Promise<void>((r) => (this.inflightWake = r));
      }
      if (this.state !== 'started') break;
      const e = this.inbox.waiting.shift();
      if (!e) {
        await new Promise<void>((r) => (this.inbox.wake = r));
        this.inbox.wake = undefined;
        continue;
      }
      e.deliveries++;
      this.inbox.pending.set(e.id, e);
      this.inflight++;
      this.book.received(e.from, e.bytes.length);
      let acked = false;
      const frame: InboundFrame = {
        from: e.from,
        bytes: e.bytes,
        deliveryId: String(e.id),
        deliveryCount: e.deliveries,
        ack: async () => {
          if (acked) return;
          acked = true;
          // A stale ack from before a restart must not release the redelivered copy.
          if (this.inbox.owner === this.token && this.inbox.pending.get(e.id) === e)
            this.inbox.pending.delete(e.id);
          this.inflight--;
          this.inflightWake?.();
        },
      };
      if (!(await queue.push(frame))) break;
    }
  }

  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      const wasStarted = this.state === 'started';
      this.state = 'stopped';
      if (!wasStarted) return;
      this.queue?.close();
      this.inbox.wake?.();
      this.inflightWake?.();
      await this.pump;
      if (this.inbox.owner === this.token) {
        this.inbox.owner = undefined;
        this.inbox.releasePending();
      }
    })();
    return this.stopping;
  }

  async send(peer: string, bytes: Uint8Array, opts?: { signal?: AbortSignal }): Promise<void> {
    this.assertCanSend('memory', this.state, bytes, this.maxFrameSize, opts?.signal);
    this.init.network.inbox(peer).append(this.init.computer, Uint8Array.from(bytes));
    this.book.sent(peer, bytes.length);
  }

  async waitForPeer(): Promise<void> {}
}
