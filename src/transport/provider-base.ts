/** What every provider shares: the inbound queue, the telemetry book and their accessors. */
import type { Clock, Logger } from '../util/index.js';
import { requireDeps } from '../errors/index.js';
import { TransportError } from './errors.js';
import type { BoundedQueue } from './queue.js';
import { TelemetryBook } from './telemetry.js';
import type { InboundFrame, PeerTelemetry, ProviderEvent } from './transport.js';

export abstract class ProviderBase {
  protected readonly book: TelemetryBook;
  protected queue: BoundedQueue<InboundFrame> | undefined;

  constructor(owner: string, deps: { clock: Clock; logger: Logger }) {
    requireDeps(owner, deps, { clock: 'the injected clock', logger: 'the logger' }, { code: 'TRANSPORT_MISSING_DEPENDENCY' });
    this.book = new TelemetryBook(deps.clock, deps.logger);
  }

  frames(): AsyncIterable<InboundFrame> {
    if (!this.queue) throw new TransportError('TRANSPORT_NOT_STARTED', 'call start() before frames()');
    return this.queue;
  }

  on(listener: (e: ProviderEvent) => void): () => void {
    return this.book.on(listener);
  }

  telemetry(): PeerTelemetry[] {
    return this.book.snapshot();
  }

  /** The checks every send() starts with: not aborted, started, not oversized. */
  protected assertCanSend(
    name: string,
    state: string,
    bytes: Uint8Array,
    maxFrameSize: number,
    signal: AbortSignal | undefined,
  ): void {
    if (signal?.aborted) throw new TransportError('TRANSPORT_ABORTED', 'send aborted', { cause: signal.reason });
    if (state !== 'started') {
      throw new TransportError(state === 'idle' ? 'TRANSPORT_NOT_STARTED' : 'TRANSPORT_STOPPED', `${name} provider is ${state}`);
    }
    if (bytes.length > maxFrameSize) {
      throw new TransportError('TRANSPORT_FRAME_TOO_LARGE', `frame of ${bytes.length} bytes exceeds ${maxFrameSize}`);
    }
  }
}
