/** Per-peer telemetry counters and the provider event fan-out, shared by all providers. */
import type { Clock, Logger } from '../util/index.js';
import type { PeerTelemetry, ProviderEvent } from './transport.js';

/** Holds counters per peer and delivers events to listeners. */
export class TelemetryBook {
  private readonly peers = new Map<string, PeerTelemetry>();
  private readonly listeners = new Set<(e: ProviderEvent) => void>();

  constructor(
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  /** The counters for `peer`, created on first use. */
  of(peer: string): PeerTelemetry {
    let t = this.peers.get(peer);
    if (!t) {
      t = {
        peer,
        framesSent: 0,
        framesReceived: 0,
        bytesSent: 0,
        bytesReceived: 0,
        readyCount: 0,
        bpCount: 0,
        bpFlag: false,
        fatalCount: 0,
        lastEvent: undefined,
        lastEventAt: undefined,
        rttMs: undefined,
      };
      this.peers.set(peer, t);
    }
    return t;
  }

  sent(peer: string, bytes: number): void {
    const t = this.of(peer);
    t.framesSent++;
    t.bytesSent += bytes;
  }

  received(peer: string, bytes: number): void {
    const t = this.of(peer);
    t.framesReceived++;
    t.bytesReceived += bytes;
  }

  snapshot(): PeerTelemetry[] {
    return [...this.peers.values()].map((t) => ({ ...t }));
  }

  on(listener: (e: ProviderEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Records the event on the peer's counters and tells every listener. */
  emit(event: ProviderEvent): void {
    const peer = 'peer' in event ? event.peer : undefined;
    if (peer !== undefined) {
      const t = this.of(peer);
      t.lastEvent = event.type;
      t.lastEventAt = this.clock.now();
      if (event.type === 'peer.connected') t.readyCount++;
      if (event.type === 'fatal') t.fatalCount++;
      if (event.type === 'backpressure') {
        t.bpFlag = event.active;
        if (event.active) t.bpCount++;
      }
    }
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        this.logger.warn({ err, event: event.type }, 'provider event listener threw');
      }
    }
  }
}
