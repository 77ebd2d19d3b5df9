import type { AuditLog } from '../audit/index.js';
import type { BusEntry } from '../bus/index.js';
import type { WeftNode } from '../daemon/node.js';
import { type Envelope, envelopeValidator, payloadProblem } from '../envelope/index.js';
import { WeftError } from '../errors/index.js';
import { fingerprintOfNodeId, type KeyRotationRecord, type NodeIdentity, type PinnedKeys } from '../identity/index.js';
import { INGRESS_FACT, type IngressFact, RefusalNotices } from '../pipeline/index.js';
import {
  DEFAULT_MAX_FRAME_SIZE,
  decodeFrame,
  encodeFrame,
  type Frame,
  type InboundFrame,
  type PeerTelemetry,
  type Provider,
  type MountCaps,
  type NegotiatedCaps,
  negotiateCaps,
  type ProviderEvent,
  peekFrame,
  type TransportCap,
} from '../transport/index.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { RedisPeerRegistry } from './discovery.js';
import type { MeshOutbox } from './outbox.js';
import type { PeerMemory } from './peer-memory.js';
import type { TeleClaudeWire } from './teleclaude-wire.js';
import type { KnownPeer, PeerBook } from './peers.js';
import type { ReplayGuard } from './replay-guard.js';

export interface MeshInit {
  /**
   * Serializer caps a link to a peer needs (`required`: no link without them, raised as
   * `transport.noprov`) and would like (`preferred`: dropped with `transport.flatneg` unless
   * `warnDown` is false). Default: crc32c preferred. AEAD is not offered yet (TLS already
   * encrypts; Redis links rely on signatures), so requiring it means no link.
   */
  caps?: MountCaps;
  /** Envelopes per events frame (default 256). */
  maxFrameEnvelopes?: number;
  /** Unacknowledged frames re-sent after this long, ms (default 5000). */
  resendAfterMs?: number;
  /** Frames a peer may have unacknowledged before we wait (default 64). */
  maxInflightFrames?: number;
  /** Events are never re-forwarded; an envelope claiming more hops is refused (default 8). */
  maxHops?: number;
  /** How often discovery is asked for peers, ms (default 2000). */
  discoverEveryMs?: number;
  /** Largest frame the sender builds, bytes (default the codec's 4 MiB); frames are cut to fit. */
  maxFrameBytes?: number;
  /** A link whose sends fail this long with nothing getting through shows as `stalled`, ms (default 30 s). */
  stallAfterMs?: number;
}

/** Outbox rows from the first, as many as fit a frame of `maxBytes` by their JSON size (at least one). */
function cutByBytes<T extends { body: string }>(rows: readonly T[], maxBytes: number): T[] {
  // msgpack of an envelope is a little smaller than its JSON; leave room for the header and signature.
  const budget = maxBytes * 0.9 - 1024;
  let total = 0;
  let n = 0;
  while (n < rows.length) {
    total += (rows[n] as T).body.length;
    if (n > 0 && total > budget) break;
    n++;
  }
  return rows.slice(0, Math.max(1, n));
}

export interface MeshDeps {
  node: WeftNode;
  identity: NodeIdentity;
  provider: Provider;
  peers: PeerBook;
  pins: PinnedKeys;
  outbox: MeshOutbox;
  guard: ReplayGuard;
  audit: AuditLog;
  registry?: RedisPeerRegistry;
  /** Remembers discovered peers across restarts. */
  memory?: PeerMemory;
  /** The plain JSON wire to TeleClaude peers, when some are configured. */
  teleclaude?: TeleClaudeWire;
  clock: Clock;
  logger: Logger;
}

interface Inflight {
  ids: string[];
  sentAt: number;
}

/** One peer's sending side: reads its outbox, sends signed frames, forgets rows on ack. */
class PeerSender {
  private cursor = 0;
  private readonly inflight = new Map<number, Inflight>();
  private wakeUp: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  sentFrames = 0;
  sentEnvelopes = 0;
  resends = 0;
  lastError: string | undefined;
  /** When sends started failing without a success since (a link that cannot progress). */
  failingSince: number | undefined;
  /** Since when frames have been out with no acknowledgement at all. */
  private waitingSince: number | undefined;
  private sendFailed = false;

  constructor(
    readonly peer: string,
    private readonly mesh: MeshService,
  ) {}

  start(): void {
    this.running ??= this.loop();
  }

  wake(): void {
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    await this.running;
  }

  get inflightFrames(): number {
    return this.inflight.size;
  }

  private noteFailure(message: string): void {
    this.lastError = message;
    this.failingSince ??= this.mesh.clock.now();
  }

  /** Stalled: nothing got through for `stallAfterMs` while there is something to send. */
  stalled(now: number): string | undefined {
    const after = this.mesh.stallAfterMs;
    if (this.failingSince !== undefined && now - this.failingSince >= after) return this.lastError ?? 'sends fail';
    if (this.waitingSince !== undefined && now - this.waitingSince >= after) {
      return `no acknowledgement from the peer for ${Math.round((now - this.waitingSince) / 1000)} s (frames are re-sent; the outbox keeps them)`;
    }
    return undefined;
  }

  onAck(sequences: readonly number[]): void {
    this.failingSince = undefined;
    for (const s of sequences) this.inflight.delete(s);
    this.waitingSince = this.inflight.size > 0 ? this.mesh.clock.now() : undefined;
    this.wake();
  }

  private async sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      this.wakeUp = resolve;
      setTimeout(resolve, ms).unref();
    });
    this.wakeUp = undefined;
  }

  private async loop(): Promise<void> {
    const m = this.mesh;
    let backoff = 0;
    const caps = await m.negotiate(this.peer);
    if (!caps) return; // no provider satisfies the required caps: the outbox keeps the events
    const encodeOpts = { identity: m.identity, crc32c: caps.crc32c, deflate: caps.deflate ? { minBytes: 512 } : false };
    while (!this.stopped) {
      const now = m.clock.now();
      for (const f of this.inflight.values()) {
        if (now - f.sentAt > m.resendAfterMs) {
          // No ack in time (peer down, frame lost, Redis restarted empty): send what is still queued again.
          this.inflight.clear();
          this.cursor = 0;
          this.resends++;
          break;
        }
      }
      if (this.inflight.size >= m.maxInflightFrames) {
        await this.sleep(100);
        continue;
      }
      const rows = m.outbox.peek(this.peer, this.cursor, m.maxFrameEnvelopes);
      if (rows.length === 0) {
        await this.sleep(this.inflight.size > 0 ? 250 : 1000);
        continue;
      }
      if (this.sendFailed) {
        // The last send failed: everything not acknowledged goes again, after a pause.
        this.sendFailed = false;
        this.inflight.clear();
        this.cursor = 0;
        backoff = Math.min(Math.max(backoff * 2, 100), 5000);
        m.logger.debug({ peer: this.peer, err: this.lastError }, 'send failed; the outbox keeps the events');
        await this.sleep(backoff);
        continue;
      }
      let seq: number;
      let bytes: Uint8Array;
      let take = cutByBytes(rows, m.maxFrameBytes);
      try {
        seq = await m.nextSequence();
        for (;;) {
          const envelopes = take.map((r) => JSON.parse(r.body) as Record<string, unknown>);
          bytes = encodeFrame({ type: 'events', sequence: seq, timestamp: m.clock.now(), body: { envelopes } }, { ...encodeOpts, identity: m.identity });
          if (bytes.length <= m.maxFrameBytes || take.length === 1) break;
          take = take.slice(0, Math.ceil(take.length / 2));
        }
      } catch (err) {
        this.noteFailure((err as Error).message);
        this.sendFailed = true;
        continue;
      }
      if (bytes.length > m.maxFrameBytes) {
        // No frame can carry it: it would stop the link for good. Dead-lettered, raised, skipped.
        const row = take[0] as { id: number; envelopeId: string; body: string };
        await m.undeliverable(this.peer, row, bytes.length);
        this.cursor = row.id;
        continue;
      }
      const rowsSent = take;
      // Not awaited: the next frame is prepared while this one travels (the window bounds them).
      if (this.inflight.size === 0) this.waitingSince ??= m.clock.now();
      this.inflight.set(seq, { ids: rowsSent.map((r) => r.envelopeId), sentAt: m.clock.now() });
      this.cursor = (rowsSent[rowsSent.length - 1] as { id: number }).id;
      this.sentFrames++;
      this.sentEnvelopes += rowsSent.length;
      m.provider.send(this.peer, bytes).then(
        () => {
          backoff = 0;
          this.lastError = undefined;
          this.failingSince = undefined;
        },
        (err: Error) => {
          this.noteFailure(err.message);
          this.sendFailed = true;
          this.wake();
        },
      );
    }
  }
}

/** Counters the mesh keeps for `weft mesh status`. */
export interface MeshCounters {
  framesIn: number;
  eventsIn: number;
  acksIn: number;
  messagesIn: number;
  /** Frames the transport delivered again after we had committed them (a restart or crash before the ack). */
  redelivered: number;
  rejected: Record<string, number>;
}

/**
 * A node's mesh: sends each peer's outbox as signed frames, and receives: decode (signature
 * against the pinned key) → replay guard → ingress (stamped, trust-evaluated local pipeline,
 * guard recorded in the same transaction) → transport ack → signed ack frame to the sender.
 * Every refusal is audited, counted and raised as a `mesh.event.rejected` notification.
 */
export class MeshService {
  readonly maxFrameEnvelopes: number;
  readonly resendAfterMs: number;
  readonly maxInflightFrames: number;
  readonly maxHops: number;
  readonly maxFrameBytes: number;
  readonly stallAfterMs: number;
  readonly counters: MeshCounters = { framesIn: 0, eventsIn: 0, acksIn: 0, messagesIn: 0, redelivered: 0, rejected: {} };
  private readonly senders = new Map<string, PeerSender>();
  private seq = { next: 1, last: 0 };
  private seqLock: Promise<void> | undefined;
  private receiving: Promise<void> | undefined;
  private handling: Promise<void> | undefined;
  private discoverTimer: NodeJS.Timeout | undefined;
  private unsubs: Array<() => void> = [];
  private stopping: Promise<void> | undefined;
  private readonly states = new Map<string, string>();
  private readonly refusals: RefusalNotices;
  /** Refused connections, aggregated per peer or remote address and code: audit row + notice per minute. */
  private readonly refusedLinks: RefusalNotices;
  private readonly negotiated = new Map<string, NegotiatedCaps | 'noprov'>();

  constructor(
    private readonly init: MeshInit,
    private readonly deps: MeshDeps,
  ) {
    this.maxFrameEnvelopes = init.maxFrameEnvelopes ?? 256;
    this.resendAfterMs = init.resendAfterMs ?? 5000;
    this.maxInflightFrames = init.maxInflightFrames ?? 64;
    this.maxHops = init.maxHops ?? 8;
    this.maxFrameBytes = init.maxFrameBytes ?? DEFAULT_MAX_FRAME_SIZE;
    this.stallAfterMs = init.stallAfterMs ?? 30_000;
    this.refusals = new RefusalNotices(
      {},
      {
        clock: deps.clock,
        logger: deps.logger,
        raise: (_key, d, count) => {
          // One audit entry per sender and cause per minute, with the count: refusals cannot flood the chain.
          if (d.frame === 'yes') void this.audited('frame.rejected', d.computer ?? null, { code: d.code ?? null, reason: (d.reason ?? '').slice(0, 500), sender: d.sender ?? null, count }, false);
          return this.raiseRejected(d.sender ?? 'unknown', d.computer ?? 'unknown', d.code, d.reason ?? '', count);
        },
      },
    );
    this.refusedLinks = new RefusalNotices({}, { clock: deps.clock, logger: deps.logger, raise: (_key, d, count) => this.refusedLink(d, count) });
  }

  private refusedLink(d: Record<string, string | undefined>, count: number): Promise<unknown> {
    const who = d.peer ?? d.address ?? 'unknown';
    void this.audited(
      'peer.refused',
      d.peer ?? null,
      { code: d.code ?? null, reason: d.reason ?? null, remoteAddress: d.address ?? null, presentedFingerprint: d.fingerprint ?? null, count },
      false,
    );
    const reason = count > 1 ? `${count} connections refused in the last minute: ${d.reason ?? ''}` : (d.reason ?? '');
    return this.raiseRejected(d.fingerprint && count === 1 ? `fingerprint ${d.fingerprint}` : who, who, d.code, `${d.code}: ${reason}`, count);
  }

  /** One `mesh.event.rejected` standing for `count` refusals of a sender and cause. */
  private raiseRejected(sender: string, computer: string, code: string | undefined, reason: string, count: number): Promise<unknown> {
    return this.deps.node.emit({
      event: 'mesh.event.rejected',
      payload: { sender, senderComputer: computer, code: code ?? 'unknown', reason: reason.slice(0, 2000), count, windowStart: new Date(this.clock.now()).toISOString() },
    });
  }

  get identity(): NodeIdentity {
    return this.deps.identity;
  }

  /**
   * Announces a key rotation to every peer (signed with the old key, which they have pinned;
   * the record is endorsed by it), then signs with the new key from now on.
   */
  async rotate(next: NodeIdentity, record: KeyRotationRecord): Promise<{ announced: string[]; failed: string[] }> {
    const announced: string[] = [];
    const failed: string[] = [];
    for (const p of this.weftPeers()) {
      try {
        const bytes = encodeFrame(
          { type: 'key-rotation', sequence: await this.nextSequence(), timestamp: this.clock.now(), body: { record } },
          { identity: this.deps.identity },
        );
        await this.deps.provider.send(p.computer, bytes);
        announced.push(p.computer);
      } catch {
        failed.push(p.computer);
      }
    }
    this.deps.identity = next;
    await this.audited('key.rotated', null, { oldNodeId: record.oldNodeId, newNodeId: record.newNodeId, announced, failed }, true);
    return { announced, failed };
  }
  get provider(): Provider {
    return this.deps.provider;
  }
  get outbox(): MeshOutbox {
    return this.deps.outbox;
  }
  get clock(): Clock {
    return this.deps.clock;
  }
  get logger(): Logger {
    return this.deps.logger;
  }

  async start(): Promise<void> {
    const { provider, peers, pins, node } = this.deps;
    for (const p of this.weftPeers()) pins.pin(p.computer, p.nodeId);
    this.unsubs.push(peers.onAdded((p) => this.peerAdded(p)));
    this.unsubs.push(provider.on((e) => this.onProviderEvent(e)));
    await provider.start();
    if (this.deps.registry) {
      await this.deps.registry.start();
      await this.discover();
      this.discoverTimer = setInterval(() => void this.discover(), this.init.discoverEveryMs ?? 2000);
      this.discoverTimer.unref();
    }
    for (const p of this.weftPeers()) this.sender(p.computer).start();
    // Rows already queued (from before a restart) and new ones after each commit.
    this.unsubs.push(node.onCommitted((b) => (b.passed.length > 0 ? this.wakeSenders() : undefined)));
    this.receiving = this.receiveLoop();
    await this.deps.teleclaude?.start();
  }

  /** Stops sending and receiving; the outbox keeps what was not acknowledged. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const u of this.unsubs) u();
      if (this.discoverTimer) clearInterval(this.discoverTimer);
      this.refusals.close();
      this.refusedLinks.close();
      await Promise.all([...this.senders.values()].map((s) => s.stop()));
      // The batch in flight commits and acks while the provider can still ack; no new one starts.
      await this.handling;
      await this.deps.teleclaude?.stop();
      await this.deps.registry?.stop();
      await this.deps.provider.stop();
      await this.receiving;
    })();
    return this.stopping;
  }

  wakeSenders(): void {
    for (const s of this.senders.values()) s.wake();
    this.deps.teleclaude?.wake();
  }

  /** The next frame sequence: strictly increasing over this node's life, persisted in blocks. */
  async nextSequence(): Promise<number> {
    while (this.seq.next > this.seq.last) {
      if (!this.seqLock) {
        this.seqLock = this.deps.outbox.reserveSequences(1000).then((b) => {
          this.seq = { next: b.first, last: b.last };
          this.seqLock = undefined;
        });
      }
      await this.seqLock;
    }
    return this.seq.next++;
  }

  /**
   * Negotiates a peer's link caps against what the provider (and the peer, when discovery
   * told us) offer; raises `transport.noprov` / `transport.flatneg`. Undefined: no link.
   */
  async negotiate(computer: string): Promise<NegotiatedCaps | undefined> {
    const mount: MountCaps = this.init.caps ?? { preferred: ['crc32c'] };
    const peer = this.deps.peers.byName(computer);
    let offered: TransportCap[] = [...this.deps.provider.caps].filter((c) => c !== 'aead');
    if (peer?.caps) offered = offered.filter((c) => (peer.caps as string[]).includes(c));
    const n = negotiateCaps(computer, mount, [{ provider: this.deps.provider.name, caps: offered }]);
    if (!n.ok) {
      this.negotiated.set(computer, 'noprov');
      this.states.set(computer, 'noprov');
      await this.audited('transport.noprov', computer, { missing: n.event.missing, message: n.event.message }, false);
      await this.deps.node
        .emit({ event: 'transport.noprov', payload: { peer: computer, required: n.event.missing, reason: n.event.message } })
        .catch(() => undefined);
      return undefined;
    }
    this.negotiated.set(computer, n.caps);
    for (const e of n.events) {
      if (e.type !== 'transport.flatneg') continue;
      await this.deps.node.emit({ event: 'transport.flatneg', payload: { peer: computer, missing: e.dropped } }).catch(() => undefined);
    }
    return n.caps;
  }

  /** Sends a short text to a peer; it shows there as a `mesh.message.received` notification. */
  async sendText(computer: string, text: string): Promise<void> {
    const peer = this.deps.peers.byName(computer);
    if (!peer) throw new WeftError('WEFT_NOT_FOUND', `no known peer named '${computer}' (see 'weft peers list')`);
    const bytes = encodeFrame(
      { type: 'message', sequence: await this.nextSequence(), timestamp: this.clock.now(), body: { kind: 'text', data: { text } } },
      { identity: this.identity },
    );
    await this.deps.provider.send(computer, bytes);
  }

  status(): Record<string, unknown> {
    const tel = new Map<string, PeerTelemetry>(this.deps.provider.telemetry().map((t) => [t.peer, t]));
    const depths = this.deps.outbox.depths();
    return {
      self: {
        computer: this.deps.node.self.computer,
        cluster: this.deps.node.self.cluster ?? null,
        nodeId: this.identity.nodeId,
        fingerprint: this.identity.fingerprint,
      },
      provider: this.deps.provider.name,
      caps: [...this.deps.provider.caps],
      teleclaude: this.deps.teleclaude?.status() ?? null,
      counters: { ...this.counters, ...(this.deps.provider.foreignEntries !== undefined ? { foreignEntries: this.deps.provider.foreignEntries } : {}) },
      peers: this.deps.peers.getAllPeers().map((p) => {
        const t = tel.get(p.computer);
        const s = this.senders.get(p.computer);
        return {
          computer: p.computer,
          cluster: p.cluster ?? null,
          nodeId: p.nodeId,
          fingerprint: fingerprintOfNodeId(p.nodeId),
          trustLevel: p.trustLevel,
          origin: p.origin,
          wire: p.wire ?? 'weft',
          state:
            p.wire === 'teleclaude'
              ? this.deps.teleclaude?.lastError
                ? 'stalled'
                : 'teleclaude'
              : s?.stalled(this.clock.now())
                ? 'stalled'
                : (this.states.get(p.computer) ?? (t?.framesReceived ? 'active' : 'unknown')),
          stalledReason: p.wire === 'teleclaude' ? (this.deps.teleclaude?.lastError ?? null) : (s?.stalled(this.clock.now()) ?? null),
          negotiatedCaps: ((): string[] | string => {
            const c = this.negotiated.get(p.computer);
            if (c === undefined) return 'pending';
            if (c === 'noprov') return 'noprov';
            return (['crc32c', 'deflate', 'aead'] as const).filter((k) => c[k]);
          })(),
          rttMs: t?.rttMs ?? null,
          outbox: depths[p.computer] ?? 0,
          inflightFrames: s?.inflightFrames ?? 0,
          sent: { frames: s?.sentFrames ?? 0, envelopes: s?.sentEnvelopes ?? 0, resends: s?.resends ?? 0 },
          telemetry: t ?? null,
          lastError: s?.lastError ?? null,
        };
      }),
    };
  }

  /**
   * What a frame is and whether this node would take it, without taking it: the header, the
   * verdict of signature (against the pinned keys) and replay checks, and the decoded body
   * when it verifies. For `weft mesh decode`.
   */
  describeFrame(bytes: Uint8Array): Record<string, unknown> {
    const peek = peekFrame(bytes);
    if (!peek.ok) return { kind: 'weft-frame', bytes: bytes.length, verdict: { ok: false, code: peek.error.code, reason: peek.error.message } };
    const h = peek.header;
    const header = {
      type: h.type,
      sender: h.sender,
      senderComputer: this.deps.pins.computerOf(h.sender) ?? null,
      sequence: h.sequence,
      timestamp: new Date(h.timestamp).toISOString(),
      nonce: Buffer.from(h.nonce).toString('hex'),
    };
    const r = decodeFrame(bytes, { lookupKey: this.deps.pins.lookupKey });
    if (!r.ok) return { kind: 'weft-frame', bytes: bytes.length, header, verdict: { ok: false, code: r.error.code, reason: r.error.message } };
    const replay = this.deps.guard.check(r.frame.header);
    return {
      kind: 'weft-frame',
      bytes: bytes.length,
      header,
      verdict: replay.ok ? { ok: true, signature: 'verified' } : { ok: false, signature: 'verified', code: replay.error.code, reason: replay.error.message },
      body: r.frame.body,
    };
  }

  /** An envelope too big for any frame to this peer: to the dead letters, raised, out of the outbox. */
  async undeliverable(peer: string, row: { envelopeId: string; body: string }, bytes: number): Promise<void> {
    const { node, outbox } = this.deps;
    this.count('ENVELOPE_TOO_LARGE_FOR_FRAME');
    this.logger.error({ peer, eventId: row.envelopeId, bytes, limit: this.maxFrameBytes }, 'an envelope is too large for any frame: dead-lettered');
    try {
      const env = JSON.parse(row.body) as Envelope;
      await node.ns.store.write(() => node.ns.deadLetters.add(env, `mesh-sender:${peer}`, `${bytes} bytes as a frame; at most ${this.maxFrameBytes}`));
      await outbox.acknowledge(peer, [row.envelopeId]);
      await node.emit({
        event: 'mesh.event.undeliverable',
        payload: { peer, eventId: env.id, eventType: env.event, bytes, limit: this.maxFrameBytes },
      });
    } catch (err) {
      this.logger.error({ err: (err as Error).message }, 'dead-lettering an undeliverable envelope failed');
    }
  }

  private sender(computer: string): PeerSender {
    let s = this.senders.get(computer);
    if (!s) {
      s = new PeerSender(computer, this);
      this.senders.set(computer, s);
    }
    return s;
  }

  /** Peers that speak signed Weft frames (TeleClaude peers have their own wire). */
  private weftPeers(): KnownPeer[] {
    return this.deps.peers.getAllPeers().filter((p) => p.wire !== 'teleclaude');
  }

  private peerAdded(p: KnownPeer): void {
    if (p.wire === 'teleclaude') return;
    this.deps.pins.pin(p.computer, p.nodeId);
    void this.audited('peer.discovered', p.computer, { nodeId: p.nodeId, cluster: p.cluster ?? null, origin: p.origin }, true);
    if (!this.stopping) this.sender(p.computer).start();
  }

  private async discover(): Promise<void> {
    try {
      const infos = await (this.deps.registry as RedisPeerRegistry).discoverPeers();
      this.deps.peers.discovered(infos);
      await this.deps.memory?.remember(this.deps.peers.getAllPeers(), this.clock.now());
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'peer discovery failed; keeping the peers known so far');
    }
  }

  private onProviderEvent(e: ProviderEvent): void {
    switch (e.type) {
      case 'peer.connected':
        this.states.set(e.peer, 'connected');
        void this.audited('peer.connected', e.peer, { direction: e.direction ?? null }, true);
        this.sender(e.peer).wake();
        break;
      case 'peer.disconnected':
        this.states.set(e.peer, 'disconnected');
        void this.audited('peer.disconnected', e.peer, { reason: e.reason, direction: e.direction ?? null }, true);
        break;
      case 'peer.refused': {
        this.count(e.code);
        // Keyed on what the refused side cannot choose: the pinned peer we dialled, or the remote
        // address. A flood of fresh keys from one address is one audit entry and one notice a minute.
        const who = e.peer ?? e.remoteAddress ?? 'unknown';
        const detail = { peer: e.peer, address: e.remoteAddress, code: e.code, reason: e.reason, fingerprint: e.presentedFingerprint };
        this.refusedLinks.note(`${who}|${e.code}`, detail);
        break;
      }
      case 'backpressure':
        if (e.active) this.states.set(e.peer, 'backpressure');
        break;
      case 'fatal':
        if (e.peer) this.states.set(e.peer, 'fatal');
        break;
      case 'inbox.recreated':
        this.logger.warn({ stream: e.stream }, 'mesh inbox recreated (Redis restarted?)');
        break;
    }
  }

  /** An audit entry nobody waits on: a failure (the store closing under it) is logged, never thrown. */
  private audited(kind: string, peer: string | null, details: Record<string, unknown>, success: boolean): Promise<void> {
    return this.deps.audit.record(kind, peer, details, success).then(
      () => undefined,
      (err: Error) => this.logger.warn({ kind, err: err.message }, 'audit entry not written'),
    );
  }

  private count(code: string): void {
    this.counters.rejected[code] = (this.counters.rejected[code] ?? 0) + 1;
  }

  /**
   * Frames are pulled from the provider as they come and handled in batches: all the events of
   * the frames waiting at that moment are applied in one transaction (one commit, one fsync),
   * so a busy link costs a commit per batch, not per frame.
   */
  private async receiveLoop(): Promise<void> {
    const buf: InboundFrame[] = [];
    let wake: (() => void) | undefined;
    let ended = false;
    const pump = (async () => {
      try {
        for await (const f of this.deps.provider.frames()) {
          buf.push(f);
          const w = wake;
          wake = undefined;
          w?.();
          if (this.stopping) break;
        }
      } catch (err) {
        if (!this.stopping) this.logger.error({ err: (err as Error).message }, 'mesh receive loop ended');
      } finally {
        ended = true;
        wake?.();
      }
    })();
    while ((!ended || buf.length > 0) && !this.stopping) {
      if (buf.length === 0) {
        await new Promise<void>((r) => {
          wake = r;
        });
        continue;
      }
      const batch = buf.splice(0, 128);
      try {
        this.handling = this.handleBatch(batch).finally(() => {
          this.handling = undefined;
        });
        await this.handling;
      } catch (err) {
        // A bug or a full disk: nothing was acked; the transport redelivers and we try again.
        this.logger.error({ err: (err as Error).message, frames: batch.length }, 'handling mesh frames failed');
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    await pump;
  }

  private async handleBatch(frames: InboundFrame[]): Promise<void> {
    const toApply: Array<{ f: InboundFrame; frame: Extract<Frame, { type: 'events' }>; computer: string; envs: Envelope[] }> = [];
    // Frames that need nothing committed are released together at the end.
    const release: InboundFrame[] = [];
    const inBatch = new Set<string>();
    for (const f of frames) {
      this.counters.framesIn++;
      let r = decodeFrame(f.bytes, { lookupKey: this.deps.pins.lookupKey });
      if (!r.ok && r.error.code === 'FRAME_UNKNOWN_SENDER' && this.deps.registry) {
        // A peer that announced itself after our last look (or while Redis was restarting).
        await this.discover();
        r = decodeFrame(f.bytes, { lookupKey: this.deps.pins.lookupKey });
      }
      if (!r.ok) {
        const peek = peekFrame(f.bytes);
        await this.reject(peek.ok ? peek.header.sender : undefined, f.from, r.error.code, r.error.message, { ref: f.deliveryId, raw: f.bytes });
        await f.ack();
        continue;
      }
      const frame = r.frame;
      const key = `${frame.header.sender}|${Buffer.from(frame.header.nonce).toString('hex')}|${frame.header.sequence}`;
      const verdict = inBatch.has(key)
        ? { ok: false as const, error: { code: 'REPLAY_NONCE_SEEN', message: 'the same frame twice in one delivery batch' } }
        : this.deps.guard.check(frame.header);
      if (!verdict.ok && verdict.error.code === 'REPLAY_NONCE_SEEN' && f.deliveryCount > 1 && !inBatch.has(key)) {
        // The transport delivering again what we committed before a crash or restart: expected, not an attack.
        this.counters.redelivered++;
        release.push(f);
        continue;
      }
      if (!verdict.ok) {
        await this.reject(frame.header.sender, f.from, verdict.error.code, verdict.error.message, { ref: f.deliveryId, raw: f.bytes });
        await f.ack();
        continue;
      }
      inBatch.add(key);
      const computer = this.deps.pins.computerOf(frame.header.sender) ?? f.from ?? 'unknown';
      switch (frame.type) {
        case 'events':
          toApply.push({ f, frame, computer, envs: await this.stamp(frame, computer, f.deliveryId) });
          break;
        case 'ack': {
          // Not recorded by the guard: a replayed ack (still signed, still fresh) only repeats a deletion.
          this.counters.acksIn++;
          void this.deps.outbox.acknowledge(computer, frame.body.envelopeIds ?? []);
          this.sender(computer).onAck(frame.body.sequences);
          release.push(f);
          break;
        }
        case 'message': {
          this.counters.messagesIn++;
          const text = frame.body.kind === 'text' ? String((frame.body.data as { text?: unknown } | undefined)?.text ?? '') : '';
          const env = this.deps.node.build({
            event: 'mesh.message.received',
            source: `weft@${computer}`,
            payload: { from: computer, text: text.slice(0, 4000), kind: frame.body.kind },
          });
          env.origin = frame.header.sender;
          env.sourceComputer = computer;
          env.hops = 1;
          await this.applyFrames([{ f, frame, computer, envs: [env] }], false);
          break;
        }
        case 'key-rotation': {
          const check = this.deps.pins.applyRotation(frame.body.record);
          // The guard's record and the audit entry commit together.
          await this.deps.node.ns.store.write(() => {
            this.deps.guard.record(frame.header);
            this.deps.audit.recordIn('key.rotated', computer, { ok: check.ok, newNodeId: frame.body.record.newNodeId, ...(check.ok ? {} : { code: check.code }) }, check.ok);
          });
          if (check.ok) this.deps.peers.rekey(frame.body.record.oldNodeId, frame.body.record.newNodeId);
          await f.ack();
          break;
        }
        default:
          release.push(f);
      }
    }
    if (toApply.length > 0) await this.applyFrames(toApply, true);
    await Promise.all(release.map((f) => f.ack()));
  }

  /** Validates and stamps a frame's envelopes with the verified sender; refuses bad ones. */
  private async stamp(frame: Extract<Frame, { type: 'events' }>, computer: string, deliveryId: string): Promise<Envelope[]> {
    const out: Envelope[] = [];
    for (const raw of frame.body.envelopes) {
      const stamped: Record<string, unknown> = {
        ...raw,
        origin: frame.header.sender,
        sourceComputer: computer,
        hops: (typeof raw.hops === 'number' ? raw.hops : 0) + 1,
      };
      const bad = envelopeValidator.firstError(stamped);
      if (bad) {
        await this.reject(frame.header.sender, computer, 'ENVELOPE_INVALID', `envelope ${String(raw.id ?? '?')}: field '${bad.path}' ${bad.message}`, {
          ref: `${deliveryId}:${String(raw.id ?? '?')}`,
          field: bad.path,
          raw: JSON.stringify(raw),
        });
        continue;
      }
      const env = stamped as Envelope;
      const tooBig = payloadProblem(env.payload);
      if (tooBig) {
        await this.reject(frame.header.sender, computer, `ENVELOPE_${tooBig.code}`, `envelope ${env.id}: ${tooBig.message}`, {
          ref: `${deliveryId}:${env.id}`,
          field: '/payload',
          raw: JSON.stringify(raw).slice(0, 4096),
        });
        continue;
      }
      if ((env.hops ?? 0) > this.maxHops) {
        await this.reject(frame.header.sender, computer, 'ENVELOPE_HOP_LIMIT', `envelope ${env.id} has travelled ${env.hops} hops`, {
          ref: `${deliveryId}:${env.id}`,
          field: '/hops',
          raw: JSON.stringify(raw),
        });
        continue;
      }
      out.push(env);
    }
    this.counters.eventsIn += out.length;
    return out;
  }

  /**
   * Applies the frames' envelopes through the local pipeline in one transaction (each with its
   * sender's ingress fact), records every frame with the replay guard in the same transaction,
   * then acks at the transport and sends each sender one signed ack frame.
   */
  private async applyFrames(
    items: Array<{ f: InboundFrame; frame: Frame; computer: string; envs: Envelope[] }>,
    ackToSender: boolean,
  ): Promise<void> {
    const guard = this.deps.guard;
    const entries: BusEntry[] = [];
    for (const it of items) {
      const fact: IngressFact = { peerNodeId: it.frame.header.sender, peerComputer: it.computer, signatureVerified: true };
      const facts = { [INGRESS_FACT]: fact };
      for (const [i, e] of it.envs.entries()) {
        entries.push({ position: `mesh:${it.computer}:${it.frame.header.sequence}:${i}`, envelope: e, logged: false, facts });
      }
    }
    const recordAll = () => {
      for (const it of items) guard.record(it.frame.header);
    };
    if (entries.length > 0) {
      const batch = await this.deps.node.processor.processBatch(entries, {}, recordAll);
      for (const d of batch.dropped) {
        if (d.by !== 'trust') continue;
        const outcome = String(d.trust ?? 'reject');
        const past = outcome === 'quarantine' ? 'quarantined' : outcome === 'reject' ? 'rejected' : outcome;
        await this.notice(d.event.origin, d.event.sourceComputer ?? 'unknown', `TRUST_${outcome.toUpperCase()}`, `event ${d.event.id} (${d.event.event}) ${past} by the trust evaluator: ${String(d.reason ?? 'policy')}`);
      }
    } else {
      await this.deps.node.ns.store.write(recordAll);
    }
    // Together: the provider sends the acks of one tick as one XACK.
    await Promise.all(items.map((it) => it.f.ack()));
    if (!ackToSender) return;
    const bySender = new Map<string, { sequences: number[]; ids: string[] }>();
    for (const it of items) {
      const a = bySender.get(it.computer) ?? { sequences: [], ids: [] };
      a.sequences.push(it.frame.header.sequence);
      for (const e of (it.frame as Extract<Frame, { type: 'events' }>).body.envelopes) a.ids.push(String(e.id));
      bySender.set(it.computer, a);
    }
    for (const [computer, a] of bySender) {
      try {
        const ack = encodeFrame(
          { type: 'ack', sequence: await this.nextSequence(), timestamp: this.clock.now(), body: { sequences: a.sequences, envelopeIds: a.ids } },
          { identity: this.identity },
        );
        await this.deps.provider.send(computer, ack);
      } catch (err) {
        // The sender re-sends after its timeout; we apply nothing twice (ids) and ack again.
        this.logger.debug({ peer: computer, err: (err as Error).message }, 'ack not sent');
      }
    }
  }

  /** Records and raises a refusal of mesh input (audit, rejections, rate-limited mesh.event.rejected). */
  async reject(
    sender: string | undefined,
    from: string | undefined,
    code: string,
    message: string,
    input: { ref: string; field?: string; raw: Uint8Array | string },
  ): Promise<void> {
    this.count(code);
    const computer = (sender && this.deps.pins.computerOf(sender)) ?? from ?? 'unknown';
    this.logger.warn({ peer: computer, code, reason: message, ...(input.field ? { field: input.field } : {}) }, 'mesh input rejected');
    try {
      // Frames are kept as base64 (at most 48 KiB of them), envelopes as their JSON.
      const raw = typeof input.raw === 'string' ? input.raw : Buffer.from(input.raw.subarray(0, 49152)).toString('base64');
      await this.deps.node.ns.store.write(() =>
        this.deps.node.ns.rejections.add({ origin: `mesh:${computer}`, ref: input.ref, code, reason: message, field: input.field, raw }),
      );
    } catch (err) {
      this.logger.error({ err: (err as Error).message }, 'recording a mesh rejection failed');
    }
    await this.notice(sender, computer, code, message, true);
  }

  /** Raises `mesh.event.rejected`: at most one per sender and cause per minute, with the count of the rest. */
  private async notice(sender: string | undefined, computer: string, code: string, message: string, frame = false): Promise<void> {
    this.refusals.note(`${sender ?? computer}|${code}`, { sender: sender ?? computer, computer, code, reason: `${code}: ${message}`, frame: frame ? 'yes' : 'no' });
  }
}
