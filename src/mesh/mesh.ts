import type { AuditLog } from '../audit/index.js';
import type { Envelope } from '../envelope/index.js';
import { WeftError } from '../errors/index.js';
import type { KeyRotationRecord, NodeIdentity, PinnedKeys } from '../identity/index.js';
import {
  DEFAULT_MAX_FRAME_SIZE,
  encodeFrame,
  type FrameBodies,
  type InboundFrame,
  type LinkKeyPair,
  type MountCaps,
  type NegotiatedCaps,
  JSON_ENVELOPES_CAP,
  negotiateCaps,
  PROTOCOL_VERSION,
  type Provider,
  type ProviderEvent,
  type SerializerCap,
  type TransportCap,
} from '../transport/index.js';
import { after, type Clock, every, FailureStreak, type Logger, untilAborted } from '../util/index.js';
import type { PeerDiscovery } from './discovery.js';
import { auditQuietly, emptyCounters, type FrameRoute, type MeshCounters, MeshIngress, type MeshRefusalCode, type MessageHandler } from './ingress.js';
import { type HelloChange, LinkKeys } from './link-keys.js';
import type { MeshOutbox } from './outbox.js';
import type { PeerMemory } from './peer-memory.js';
import type { KnownPeer, PeerBook } from './peers.js';
import type { MeshNode } from './ports.js';
import type { ReplayGuard } from './replay-guard.js';
import { PeerSender, type SenderLimits, type SenderLink } from './sender.js';
import { FrameSequence } from './sequence.js';
import { meshStatus } from './status.js';
import type { TeleClaudeWire } from './teleclaude-wire.js';

/** How long one round of peer discovery may take before it counts as failed (ms). */
const DISCOVER_TIMEOUT_MS = 5000;

/**
 * The link caps a mesh asks for when its init names none: crc32c and aead preferred. Over a
 * brokered provider (Redis) aead seals every frame with the link key, so the broker's operator
 * sees no payloads; over a confidential one (TLS) the preferred aead is met by the channel.
 */
export const DEFAULT_LINK_CAPS: Readonly<MountCaps> = Object.freeze({ preferred: ['crc32c', 'aead'] as SerializerCap[] });

/** How long after an upgraded peer's first hello its unsealed frames are not taken for its own choice (see onUnsealed). */
const RESEAL_GRACE_MS = 60_000;
/**
 * How long a peer whose frames arrive unsealed must stay without a hello before it is taken for
 * a Weft from before link keys: a current peer's frames can arrive before its hello (its link
 * not yet negotiated at its start), and its hello follows within a second or two.
 */
const BEFORE_LINK_KEYS_CONFIRM_MS = 10_000;

/** Hellos sent because a peer's frames could not be opened, at most one per peer this often, ms. */
const UNOPENABLE_HELLO_GAP_MS = 5000;
/** How long `weft status` lists a refused link after its last refusal (a dial retries every ≤ 10 s). */
const REFUSAL_SHOWN_MS = 5 * 60_000;

export interface MeshInit {
  /**
   * Serializer caps a link to a peer needs (`required`: no link without them, raised as
   * `transport.noprov`) and would like (`preferred`: dropped with `transport.flatneg` unless
   * `warnDown` is false). Default `DEFAULT_LINK_CAPS`: crc32c and aead preferred. `aead` seals
   * frame bodies with a key agreed through signed hellos (X25519 + HKDF); over a confidential
   * provider (TLS) a *preferred* aead is met by the channel and frames are not sealed twice,
   * a *required* one seals them as well.
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

export interface MeshDeps {
  node: MeshNode;
  identity: NodeIdentity;
  provider: Provider;
  peers: PeerBook;
  pins: PinnedKeys;
  outbox: MeshOutbox;
  guard: ReplayGuard;
  audit: AuditLog;
  /**
   * This node's static X25519 key pair (`<dataDir>/link.key`), for sealed frames. Without it
   * the mesh offers no aead (a link that requires it gets `transport.noprov`).
   */
  linkKey?: LinkKeyPair;
  /** Where peers are found beyond the configured ones (the Redis registry). */
  discovery?: PeerDiscovery;
  /** Remembers discovered peers across restarts. */
  memory?: PeerMemory;
  /** The plain JSON wire to TeleClaude peers, when some are configured. */
  teleclaude?: TeleClaudeWire;
  clock: Clock;
  logger: Logger;
}

export type { MeshCounters } from './ingress.js';

/**
 * A node's mesh: its lifecycle, caps negotiation, status, key rotation and text messages. The
 * sending side is one `PeerSender` per peer (sender.ts); the receiving side is `MeshIngress`
 * (ingress.ts), which verifies, applies and refuses what arrives.
 */
export class MeshService implements SenderLink {
  readonly limits: SenderLimits;
  readonly counters: MeshCounters = emptyCounters();
  private readonly ingress: MeshIngress;
  private readonly sequence: FrameSequence;
  private readonly audited: ReturnType<typeof auditQuietly>;
  private readonly senders = new Map<string, PeerSender>();
  private receiving: Promise<void> | undefined;
  private stopDiscovering: (() => void) | undefined;
  /** The discovery in progress: callers (the timer, the ingress meeting an unknown sender) share it. */
  private discovering: Promise<void> | undefined;
  /** Discovery failing in a row (the registry away): logged once a minute at most, shown in status. */
  private discoveryStreak: FailureStreak | undefined;
  private unsubs: Array<() => void> = [];
  private stopping: Promise<void> | undefined;
  private readonly states = new Map<string, string>();
  /** The last refusal of a link to a pinned peer (its key did not match, …), until the link works. */
  private readonly refusedPeers = new Map<string, { reason: string; at: number }>();
  private readonly negotiated = new Map<string, NegotiatedCaps | 'noprov'>();
  /** Peers whose frames arrived unsealed on a link where this node seals (see onUnsealed). */
  private readonly unsealedIn = new Set<string>();
  /**
   * Peers that send unsealed frames and never sent a hello: a Weft from before link keys
   * (2026-12-05), which can neither seal nor open a sealed frame. `aead` is left out of what their
   * link offers until their first hello (see onUnsealed).
   */
  private readonly beforeLinkKeys = new Set<string>();
  /** When a peer of `beforeLinkKeys` sent its first hello (it was upgraded): its unsealed frames of the moment after are expected. */
  private readonly resealedAt = new Map<string, number>();
  /** Peers whose unsealed frames came before any hello, with the timer that decides (BEFORE_LINK_KEYS_CONFIRM_MS). */
  private readonly unsealedBeforeHello = new Map<string, () => void>();
  private readonly handlers = new Map<string, MessageHandler>();
  private readonly linkKeys: LinkKeys | undefined;
  /** When our last hello went to each peer. */
  private readonly helloAt = new Map<string, number>();
  /** Peers whose hello we answered since start. */
  private readonly answered = new Set<string>();
  /** Callers waiting for a peer's link key (sendMessage while the link is keying). */
  private readonly keyWaiters = new Map<string, Set<() => void>>();

  constructor(
    private readonly init: MeshInit,
    private readonly deps: MeshDeps,
  ) {
    const maxFrameBytes = init.maxFrameBytes ?? DEFAULT_MAX_FRAME_SIZE;
    const provider = deps.provider;
    this.limits = {
      maxFrameEnvelopes: init.maxFrameEnvelopes ?? 256,
      resendAfterMs: init.resendAfterMs ?? 5000,
      maxInflightFrames: init.maxInflightFrames ?? 64,
      // Or less when the provider learns a lower bound from its server (a NATS max_payload
      // below 1 MiB): a frame over it was refused on every try and stalled the link for good.
      get maxFrameBytes() {
        const p = provider.maxFrameBytes;
        return p !== undefined && p < maxFrameBytes ? p : maxFrameBytes;
      },
      stallAfterMs: init.stallAfterMs ?? 30_000,
    };
    this.audited = auditQuietly(deps.audit, deps.logger);
    this.sequence = new FrameSequence(deps.outbox);
    this.linkKeys = deps.linkKey
      ? new LinkKeys({ store: deps.node.ns.store, pair: deps.linkKey, nodeId: () => this.deps.identity.nodeId, logger: deps.logger })
      : undefined;
    this.ingress = new MeshIngress(
      { ...(init.maxHops !== undefined ? { maxHops: init.maxHops } : {}) },
      {
        node: deps.node,
        identity: () => this.deps.identity,
        provider: deps.provider,
        pins: deps.pins,
        guard: deps.guard,
        audit: deps.audit,
        outbox: deps.outbox,
        peers: deps.peers,
        sequence: this.sequence,
        counters: this.counters,
        ...(deps.discovery ? { rediscover: () => this.discover() } : {}),
        onAck: (computer, sequences) => this.sender(computer).onAck(sequences),
        ...(this.linkKeys ? { linkKeys: this.linkKeys } : {}),
        onHello: (computer, body, change) => this.onHello(computer, body, change),
        onUnopenable: (computer) => void this.hello(computer, { reply: true, minGapMs: UNOPENABLE_HELLO_GAP_MS }),
        onUnsealed: (computer) => this.onUnsealed(computer),
        onSealed: (computer) => this.onSealed(computer),
        sealFor: (computer, sealedIn) => this.sealing(computer, sealedIn),
        messageHandlers: this.handlers,
        clock: deps.clock,
        logger: deps.logger,
      },
    );
  }

  get identity(): NodeIdentity {
    return this.deps.identity;
  }

  /**
   * Announces a key rotation to every peer (signed with the old key, which they have pinned;
   * the record is endorsed by it), then signs with the new key from now on.
   *
   * The announcement is never sealed, even on an aead link: the link key is derived from both
   * node ids, so the peer must be able to read it whatever it knows of our keys (it may have
   * none yet, and after the rotation the old link key is gone), and it holds nothing secret
   * (two node ids and two signatures; the new id shows on every later frame anyway).
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
        // Bounded like a hello: a link that takes no frames must not hold the rotation.
        await this.deps.provider.send(p.computer, bytes, { signal: AbortSignal.timeout(10_000) });
        announced.push(p.computer);
      } catch {
        failed.push(p.computer);
      }
    }
    this.deps.identity = next;
    // The registry names the new key at once: peers reading it would otherwise take the old key back.
    await this.deps.discovery?.rekeySelf?.(next.nodeId).catch((err) => this.logger.warn({ err: (err as Error).message }, 'the peer registry still names the old key until its next heartbeat'));
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
    this.linkKeys?.load();
    for (const p of this.weftPeers()) pins.pin(p.computer, p.nodeId);
    // Rotations accepted before this start: the config pins the key a peer had, the audit log
    // holds each endorsed rotation since (verified when it came); the chain from the config's key
    // is followed, so a pin edited to another key is left as the user set it.
    for (const r of acceptedRotations(this.deps.audit)) {
      peers.retire(r.oldNodeId, r.computer);
      const p = peers.byName(r.computer);
      if (p && p.nodeId === r.oldNodeId) {
        pins.pin(r.computer, r.newNodeId);
        peers.rekey(r.oldNodeId, r.newNodeId);
      }
    }
    peers.onRetiredKey = (computer, nodeId) =>
      this.logger.warn({ computer, nodeId }, 'the peer registry names a key this peer rotated away from: ignored (a stale entry until its next heartbeat, or a replayed one)');
    // The transport checks keys itself over TLS: it pins the new key too.
    this.unsubs.push(peers.onRekeyed((p) => provider.repin?.(p.computer, p.nodeId)));
    for (const p of this.weftPeers()) provider.repin?.(p.computer, p.nodeId);
    this.unsubs.push(peers.onAdded((p) => this.peerAdded(p)));
    this.unsubs.push(provider.on((e) => this.onProviderEvent(e)));
    await provider.start();
    if (this.deps.discovery) {
      await this.deps.discovery.start();
      await this.discover();
      this.stopDiscovering = every(this.clock, this.init.discoverEveryMs ?? 2000, () => void this.discover(), { unref: true });
    }
    for (const p of this.weftPeers()) this.sender(p.computer).start();
    // Rows already queued (from before a restart) are sent by the senders started above; after
    // each commit, only the senders of peers that got new rows wake (a fleet of 100 woke 99
    // senders per commit, each reading its outbox for nothing).
    this.unsubs.push(node.onCommitted(() => this.wakeQueued()));
    this.receiving = this.ingress.run();
    await this.deps.teleclaude?.start();
  }

  /** Stops sending and receiving; the outbox keeps what was not acknowledged. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const u of this.unsubs) u();
      for (const cancel of this.unsealedBeforeHello.values()) cancel();
      this.unsealedBeforeHello.clear();
      this.stopDiscovering?.();
      this.ingress.close();
      await Promise.all([...this.senders.values()].map((s) => s.stop()));
      // The batch in flight commits and acks while the provider can still ack; no new one starts.
      await this.ingress.drain();
      await this.deps.teleclaude?.stop();
      await this.deps.discovery?.stop();
      await this.deps.provider.stop();
      await this.receiving;
    })();
    return this.stopping;
  }

  /** Wakes the senders of the peers rows were queued for since the last wake. */
  private wakeQueued(): void {
    const peers = this.deps.outbox.takeQueued();
    if (peers.length === 0) return;
    for (const p of peers) this.senders.get(p)?.queued();
    this.deps.teleclaude?.wake();
  }

  /** The next frame sequence: strictly increasing over this node's life, persisted in blocks. */
  nextSequence(): Promise<number> {
    return this.sequence.take();
  }

  /**
   * Negotiates a peer's link caps against what the provider (and the peer, when discovery
   * told us) offer; raises `transport.noprov` / `transport.flatneg`. Undefined: no link.
   */
  async negotiate(computer: string): Promise<NegotiatedCaps | undefined> {
    const n = negotiateCaps(computer, this.mountCaps(), [{ provider: this.deps.provider.name, caps: this.offeredCaps(computer) }]);
    if (!n.ok) {
      this.negotiated.set(computer, 'noprov');
      this.states.set(computer, 'noprov');
      await this.audited('transport.noprov', computer, { missing: n.event.missing, message: n.event.message }, false);
      await this.deps.node
        .emit({ event: 'transport.noprov', payload: { peer: computer, required: n.event.missing, reason: n.event.message } })
        .catch(() => undefined);
      return undefined;
    }
    // Envelopes as their JSON text only to a peer whose own signed hello offered it: an older one refuses them.
    const caps: NegotiatedCaps = { ...n.caps, jsonEnvelopes: this.helloCaps(computer)?.includes(JSON_ENVELOPES_CAP) === true };
    this.negotiated.set(computer, caps);
    if (this.states.get(computer) === 'noprov') this.states.delete(computer);
    for (const e of n.events) {
      if (e.type !== 'transport.flatneg') continue;
      await this.deps.node.emit({ event: 'transport.flatneg', payload: { peer: computer, missing: e.dropped } }).catch(() => undefined);
    }
    return caps;
  }

  /**
   * What a link to `computer` can do: the provider's caps, narrowed to what the peer announced
   * when it did (its last signed hello, else the registry). `aead` needs this node's link key.
   * Mounts negotiate against this too.
   */
  offeredCaps(computer: string): TransportCap[] {
    let offered: TransportCap[] = [...this.deps.provider.caps];
    if (!this.linkKeys || this.beforeLinkKeys.has(computer)) offered = offered.filter((c) => c !== 'aead');
    const announced = this.helloCaps(computer) ?? this.deps.peers.byName(computer)?.caps;
    if (announced) offered = offered.filter((c) => announced.includes(c));
    return offered;
  }

  /**
   * The caps `computer` announced in its last signed hello (kept across restarts), or undefined
   * while none has arrived. A Weft from before 2026-12-05 never sends one (hellos came with
   * recovery and mounts), so it cannot answer their questions either. A mesh without a link key
   * keeps no hellos: it cannot tell, and says `[]`.
   */
  announcedCaps(computer: string): readonly string[] | undefined {
    return this.linkKeys ? this.helloCaps(computer) : [];
  }

  /** The caps the peer announced in its last signed hello, or undefined before one arrived. */
  private helloCaps(computer: string): readonly string[] | undefined {
    const peer = this.deps.peers.byName(computer);
    return peer ? this.linkKeys?.info(peer.nodeId)?.caps : undefined;
  }

  /** The caps the mesh asks of its links (what `peer/link/main` mount records show). */
  linkMountCaps(): MountCaps {
    return this.mountCaps();
  }

  /** What the link to `computer` negotiated last, 'noprov', or undefined before its first negotiation. */
  linkCaps(computer: string): NegotiatedCaps | 'noprov' | undefined {
    return this.negotiated.get(computer);
  }

  /**
   * The caps the mesh asks of every link: the init's (or `DEFAULT_LINK_CAPS`), without a
   * preferred aead when the provider's channel is confidential already (no double sealing, no
   * `transport.flatneg` for it). A required aead stays: whoever asks for it gets sealed frames.
   */
  private mountCaps(): MountCaps {
    const base = this.init.caps ?? DEFAULT_LINK_CAPS;
    if (!this.deps.provider.confidential || !base.preferred?.includes('aead')) return base;
    return { ...base, preferred: base.preferred.filter((c) => c !== 'aead') };
  }

  /**
   * The AEAD key of the link to a peer, or undefined while its hello has not arrived (or it
   * is no Weft peer). For the sender; `weft mesh decode` and tests use it too.
   */
  linkKey(computer: string): Uint8Array | undefined {
    const peer = this.deps.peers.byName(computer);
    return peer ? this.linkKeys?.keyFor(peer.nodeId) : undefined;
  }

  /**
   * Sends this node's signed hello to a peer: computer, cluster, caps, protocol versions and
   * the public link key; `reply` asks for the peer's own. At most one per `minGapMs` (default:
   * no limit). Unsealed: it carries nothing secret, and the peer may know no key yet. Resolves
   * to whether a hello was handed to the transport; never throws.
   */
  async hello(computer: string, opts: { reply?: boolean; minGapMs?: number } = {}): Promise<boolean> {
    if (this.stopping) return false;
    const now = this.clock.now();
    const last = this.helloAt.get(computer);
    if (opts.minGapMs !== undefined && last !== undefined && now - last < opts.minGapMs) return false;
    this.helloAt.set(computer, now);
    const self = this.deps.node.self;
    const caps: string[] = [...this.deps.provider.caps].filter((c) => c !== 'aead' || this.linkKeys);
    caps.push(JSON_ENVELOPES_CAP);
    const body: FrameBodies['hello'] = {
      computer: self.computer,
      ...(self.cluster ? { cluster: self.cluster } : {}),
      caps,
      protocolVersions: [PROTOCOL_VERSION],
      ...(this.linkKeys ? { x25519: this.linkKeys.publicKey } : {}),
      ...(opts.reply ? { reply: true } : {}),
    };
    try {
      const bytes = encodeFrame({ type: 'hello', sequence: await this.nextSequence(), timestamp: now, body }, { identity: this.identity });
      await this.deps.provider.send(computer, bytes, { signal: AbortSignal.timeout(10_000) });
      return true;
    } catch (err) {
      // The link is not up yet (TLS connects later and says hello then) or the provider stopped.
      if (this.helloAt.get(computer) === now) {
        if (last === undefined) this.helloAt.delete(computer);
        else this.helloAt.set(computer, last);
      }
      this.logger.debug({ peer: computer, err: (err as Error).message }, 'hello not sent');
      return false;
    }
  }

  /**
   * Sends `computer` an events frame with no envelopes, unsealed: a peer from before link keys
   * acknowledges it unsealed (see onUnsealed); a current peer takes it as nothing. Never throws.
   */
  async probeUnsealed(computer: string): Promise<void> {
    if (this.stopping) return;
    try {
      const bytes = encodeFrame({ type: 'events', sequence: await this.nextSequence(), timestamp: this.clock.now(), body: { envelopes: [] } }, { identity: this.identity });
      await this.deps.provider.send(computer, bytes);
    } catch (err) {
      this.logger.debug({ peer: computer, err: (err as Error).message }, 'probe not sent');
    }
  }

  /**
   * A peer's frame arrived sealed: if its frames had arrived unsealed, that is over (the node that
   * was upgraded took the other for an older Weft until its hello came), and its link is 'aead'.
   */
  private onSealed(computer: string): void {
    if (this.unsealedIn.delete(computer)) this.logger.info({ peer: computer }, `frames from ${computer} arrive sealed again`);
  }

  /**
   * A peer's verified hello was stored. A new key re-sends what was sealed with the old one
   * and releases callers waiting for it; new caps renegotiate the link. We answer with our own
   * hello the first time since start, when the peer asks, or when its key changed (it may have
   * lost ours as well), so both ends learn each other's key.
   */
  /**
   * A peer's frame arrived unsealed. On a link where this node seals (aead negotiated over a
   * brokered provider) that is a peer that does not prefer aead itself (its own
   * `mesh.caps_preferred` leaves it out): what it sends crosses the broker readable while this
   * node's frames are sealed. Said once per peer and start: a warning, `transport.flatneg`, and
   * `encryption: aead-outbound-only` in `weft mesh status` (until its frames arrive sealed). The
   * frame is still taken. From a peer that never sent a hello, it is a Weft from before link keys:
   * its link goes unsealed (beforeLinkKeys).
   */
  private onUnsealed(computer: string): void {
    const c = this.negotiated.get(computer);
    if (this.deps.provider.confidential || c === undefined || c === 'noprov' || !c.aead) return;
    if (this.linkKeys && this.helloCaps(computer) === undefined) {
      // Signed, fresh and unsealed, from a peer that never said hello (not now, not before a
      // restart): a Weft from before link keys. Sealed frames to it wait for a key it will never
      // send: it got nothing from this node, and, without our acks, sent its own again and again.
      // Only the peer itself can send such a frame, so whoever runs the broker cannot force this.
      if (this.beforeLinkKeys.has(computer) || this.unsealedBeforeHello.has(computer)) return;
      // Its hello may be on its way (a current peer's frames can come before it): asked for, and
      // waited for a while first.
      void this.hello(computer, { reply: true, minGapMs: 1000 });
      const cancel = after(
        this.clock,
        BEFORE_LINK_KEYS_CONFIRM_MS,
        () => {
          this.unsealedBeforeHello.delete(computer);
          if (!this.stopping && this.helloCaps(computer) === undefined) this.takeForBeforeLinkKeys(computer);
        },
        { unref: true },
      );
      this.unsealedBeforeHello.set(computer, cancel);
      return;
    }
    this.onUnsealedAfterHello(computer);
  }

  /** Frames to `computer` go unsealed until its first hello: it runs a Weft from before link keys. */
  private takeForBeforeLinkKeys(computer: string): void {
    this.beforeLinkKeys.add(computer);
    this.logger.warn(
      { peer: computer },
      `peer ${computer} sends its frames unsealed and has never sent a hello: it runs a Weft from before link keys (2026-12-05), which cannot open sealed frames, so frames to it go unsealed too, as between older nodes, until its first hello (once it is upgraded) seals the link again. With mesh.caps_required = ["aead"] the link is refused instead`,
    );
    void this.audited('transport.flatneg', computer, { missing: ['aead'], reason: 'peer-before-link-keys' }, false);
    this.senders.get(computer)?.renegotiate();
  }

  private onUnsealedAfterHello(computer: string): void {
    if (this.unsealedIn.has(computer)) return;
    // Just upgraded, it may have taken this node for an older one for a moment (our unsealed
    // frames reached it before our hello): our hello seals its side too.
    const resealed = this.resealedAt.get(computer);
    if (resealed !== undefined && this.clock.now() - resealed < RESEAL_GRACE_MS) return;
    this.unsealedIn.add(computer);
    this.logger.warn(
      { peer: computer },
      "a peer's frames arrive unsealed although this node seals its own to it: they cross the broker readable (that node's mesh.caps_preferred leaves out aead; add it there)",
    );
    void this.audited('transport.flatneg', computer, { missing: ['aead'], direction: 'inbound' }, false);
    void this.deps.node.emit({ event: 'transport.flatneg', payload: { peer: computer, missing: ['aead'] } }).catch(() => undefined);
  }

  private onHello(computer: string, body: FrameBodies['hello'], change: HelloChange): void {
    const s = this.senders.get(computer);
    // It is up: what it has not acknowledged goes again soon, not after the resend backoff.
    s?.peerAlive();
    // Its hello came: it is no Weft from before link keys, and the unsealed frames it sent before
    // are its own choice (mesh.caps_preferred), said as any after a hello would be.
    const pending = this.unsealedBeforeHello.get(computer);
    if (pending) {
      pending();
      this.unsealedBeforeHello.delete(computer);
      queueMicrotask(() => this.onUnsealed(computer));
    }
    // An upgraded peer's first hello: its link is sealed again.
    const upgraded = this.beforeLinkKeys.delete(computer);
    if (upgraded) {
      this.resealedAt.set(computer, this.clock.now());
      this.logger.info({ peer: computer }, `peer ${computer} said hello: frames to it are sealed again`);
    }
    if (upgraded || change.capsChanged) s?.renegotiate();
    if (change.keyChanged) {
      s?.rekeyed();
      const waiting = this.keyWaiters.get(computer);
      this.keyWaiters.delete(computer);
      for (const w of waiting ?? []) w();
    }
    s?.wake();
    const first = !this.answered.has(computer);
    if (first || body.reply === true || change.keyChanged) {
      this.answered.add(computer);
      void this.hello(computer, { reply: this.linkKey(computer) === undefined, ...(first ? {} : { minGapMs: 1000 }) });
    }
  }

  /**
   * How a frame to `computer` is sealed: `{}` when the link does not use aead (and `force` is
   * false), `{ aead }` with the link key when it does, undefined when it must be sealed and the
   * key is not known yet (nothing is sent then).
   */
  private sealing(computer: string, force = false): { aead?: { key: Uint8Array } } | undefined {
    const n = this.negotiated.get(computer);
    const seal = force || (n !== undefined && n !== 'noprov' && n.aead);
    if (!seal) return {};
    const key = this.linkKey(computer);
    return key ? { aead: { key } } : undefined;
  }

  /** Waits up to `ms` for a peer's link key (its hello), asking for it. */
  private async awaitLinkKey(computer: string, ms: number): Promise<Uint8Array | undefined> {
    const have = this.linkKey(computer);
    if (have || ms <= 0) return have;
    let release: (() => void) | undefined;
    const got = new Promise<void>((r) => (release = r));
    const set = this.keyWaiters.get(computer) ?? new Set();
    set.add(release as () => void);
    this.keyWaiters.set(computer, set);
    void this.hello(computer, { reply: true, minGapMs: 1000 });
    const cancel = after(this.clock, ms, release as () => void, { unref: true });
    await got;
    cancel();
    set.delete(release as () => void);
    if (set.size === 0 && this.keyWaiters.get(computer) === set) this.keyWaiters.delete(computer);
    return this.linkKey(computer);
  }

  /** Sends a short text to a peer; it shows there as a `mesh.message.received` notification. */
  sendText(computer: string, text: string): Promise<void> {
    return this.sendMessage(computer, 'text', { text });
  }

  /**
   * Sends a signed message frame straight to a peer: not queued in the outbox, so it is for
   * what is worthless late (queries and their answers) and fails at once when the peer
   * cannot be reached.
   */
  async sendMessage(computer: string, kind: string, data: unknown, opts: { timeoutMs?: number } = {}): Promise<void> {
    const peer = this.deps.peers.byName(computer);
    if (!peer) throw new WeftError('WEFT_NOT_FOUND', `no known peer named '${computer}' (see 'weft peers list')`);
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const deadline = this.clock.now() + timeoutMs;
    // The link's caps as its sender negotiated them (or would: quietly, events are the sender's).
    let n = this.negotiated.get(computer);
    if (n === undefined) {
      const q = negotiateCaps(computer, this.mountCaps(), [{ provider: this.deps.provider.name, caps: this.offeredCaps(computer) }]);
      n = q.ok ? q.caps : 'noprov';
    }
    if (n === 'noprov') {
      throw new WeftError('WEFT_PEER_UNAVAILABLE', `no link to '${computer}': no provider offers the caps it requires (see transport.noprov, 'weft mesh status')`);
    }
    let seal: { aead?: { key: Uint8Array } } = {};
    if (n.aead) {
      // Never in plaintext on an aead link: wait (bounded) for the peer's key.
      const key = await this.awaitLinkKey(computer, deadline - this.clock.now());
      if (!key) {
        throw new WeftError('WEFT_PEER_UNAVAILABLE', `no link key for '${computer}' yet: its hello has not arrived, and frames to it are sealed (the link is keying)`);
      }
      seal = { aead: { key } };
    }
    const bytes = encodeFrame(
      { type: 'message', sequence: await this.nextSequence(), timestamp: this.clock.now(), body: { kind, data } },
      { identity: this.identity, ...(n.crc32c ? { crc32c: true } : {}), ...seal },
    );
    // Bounded: a link that takes no frames (no credit, a stalled peer) must not hold the caller.
    await this.deps.provider.send(computer, bytes, { signal: AbortSignal.timeout(Math.max(1, deadline - this.clock.now())) });
  }

  /**
   * Frames that came another way (the git fallback): verified, replay-checked by the route's
   * guard, trust-gated and applied like the provider's, one batch at a time with them; the
   * acks of their events go back the route's way. Returns how many frames were refused.
   */
  acceptRouted(frames: InboundFrame[], route: FrameRoute): Promise<{ refused: number }> {
    return this.ingress.acceptRouted(frames, route);
  }

  /** Handles messages of one kind from verified peers (one handler per kind; `text` is the mesh's own). */
  onMessage(kind: string, handler: MessageHandler): () => void {
    if (kind === 'text' || this.handlers.has(kind)) throw new WeftError('WEFT_CONFLICT', `message kind '${kind}' already has a handler`);
    this.handlers.set(kind, handler);
    return () => this.handlers.delete(kind);
  }

  /**
   * What is wrong with the mesh right now, one line each, for `/api/health` and `weft status`:
   * discovery failing in a row, peers stalled (nothing got through for `stallAfterMs` while
   * there is something to send), the TeleClaude inbox unreadable. Empty when all is well.
   */
  problems(): string[] {
    const now = this.clock.now();
    const out: string[] = [];
    const d = this.discoveryStreak?.state();
    if (d) {
      out.push(
        `mesh: peer discovery has failed for ${Math.round((now - d.since) / 1000)} s (${d.failures} tries): ${d.lastError}; the peers known so far are kept`,
      );
    }
    for (const [peer, s] of this.senders) {
      const why = s.stalled(now);
      if (why) out.push(`mesh: link to ${peer} stalled: ${why}`);
    }
    for (const [peer, r] of this.refusedPeers) {
      if (now - r.at > REFUSAL_SHOWN_MS) this.refusedPeers.delete(peer);
      else if (this.states.get(peer) !== 'connected') out.push(`mesh: link to ${peer} refused ${Math.round((now - r.at) / 1000)} s ago: ${r.reason}`);
    }
    const tc = this.deps.teleclaude?.lastError;
    if (tc) out.push(`mesh: reading the TeleClaude inbox fails: ${tc}`);
    // The provider's own (a NATS inbox that is full refuses every peer's frames).
    out.push(...(this.deps.provider.problems?.() ?? []));
    // The registry's (this node's heartbeats failing).
    out.push(...(this.deps.discovery?.problems?.() ?? []));
    return out;
  }

  /** What `weft mesh status` shows: this node, the provider, the counters, and each peer's link. */
  status(): Record<string, unknown> {
    return meshStatus({
      self: this.deps.node.self,
      identity: this.identity,
      provider: this.deps.provider,
      outbox: this.deps.outbox,
      peers: this.deps.peers,
      teleclaude: this.deps.teleclaude,
      counters: this.counters,
      senders: this.senders,
      states: this.states,
      negotiated: this.negotiated,
      unsealedIn: this.unsealedIn,
      linkKeyKnown: (nodeId) => this.linkKeys?.info(nodeId) !== undefined,
      discovery: this.discoveryStreak?.state() ?? null,
      now: this.clock.now(),
    });
  }

  /**
   * What a frame is and whether this node would take it, without taking it. For `weft mesh decode`.
   */
  describeFrame(bytes: Uint8Array): Record<string, unknown> {
    return this.ingress.describeFrame(bytes);
  }

  /** Records and raises a refusal of mesh input (for the TeleClaude wire, which has its own decoding). */
  reject(sender: string | undefined, from: string | undefined, code: MeshRefusalCode, message: string, input: { ref: string; field?: string; raw: Uint8Array | string }): Promise<void> {
    return this.ingress.reject(sender, from, code, message, input);
  }

  /** An envelope too big for any frame to this peer: to the dead letters, raised, out of the outbox. */
  async undeliverable(peer: string, row: { envelopeId: string; body: string }, bytes: number): Promise<void> {
    const { node, outbox } = this.deps;
    const limit = this.limits.maxFrameBytes;
    this.ingress.count('ENVELOPE_TOO_LARGE_FOR_FRAME');
    this.logger.error({ peer, eventId: row.envelopeId, bytes, limit }, 'an envelope is too large for any frame: dead-lettered');
    try {
      const env = JSON.parse(row.body) as Envelope;
      await node.ns.store.write(() => node.ns.deadLetters.add(env, `mesh-sender:${peer}`, `${bytes} bytes as a frame; at most ${limit}`));
      await outbox.acknowledge(peer, [row.envelopeId]);
      await node.emit({ event: 'mesh.event.undeliverable', payload: { peer, eventId: env.id, eventType: env.event, bytes, limit } });
    } catch (err) {
      this.logger.error({ err: (err as Error).message }, 'dead-lettering an undeliverable envelope failed');
    }
  }

  /** A peer's sender (created on first use; started by `start` and `peerAdded`). */
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

  /**
   * Looks for peers once; a call while one is in progress shares it. Bounded: a registry that
   * does not answer (a Redis away, its reply waiting for a reconnect) costs a caller
   * DISCOVER_TIMEOUT_MS at most, and the next tick starts afresh; the peers known so far stay.
   */
  private discoveryFailures(): FailureStreak {
    this.discoveryStreak ??= new FailureStreak('peer discovery', this.logger, this.clock, 'keeping the peers known so far; frames wait in the outboxes');
    return this.discoveryStreak;
  }

  private discover(): Promise<void> {
    this.discovering ??= this.discoverOnce().finally(() => {
      this.discovering = undefined;
    });
    return this.discovering;
  }

  private async discoverOnce(): Promise<void> {
    try {
      const infos = await untilAborted((this.deps.discovery as PeerDiscovery).discoverPeers(), AbortSignal.timeout(DISCOVER_TIMEOUT_MS));
      this.deps.peers.discovered(infos);
      this.discoveryFailures().succeeded();
      await this.deps.memory?.remember(this.deps.peers.getAllPeers(), this.clock.now());
    } catch (err) {
      const timedOut = (err as Error).name === 'TimeoutError';
      this.discoveryFailures().failed(timedOut ? `no answer within ${DISCOVER_TIMEOUT_MS} ms` : (err as Error).message);
    }
  }

  private onProviderEvent(e: ProviderEvent): void {
    switch (e.type) {
      case 'peer.connected': {
        this.states.set(e.peer, 'connected');
        this.refusedPeers.delete(e.peer);
        void this.audited('peer.connected', e.peer, { direction: e.direction ?? null }, true);
        // A new link (TLS) is where a hello can first get through. (A brokered provider names
        // itself here, when its inbox is ready: no hello to that.)
        const p = this.deps.peers.byName(e.peer);
        if (p && p.wire !== 'teleclaude' && p.nodeId !== this.identity.nodeId) void this.hello(e.peer, { reply: this.linkKey(e.peer) === undefined, minGapMs: 1000 });
        this.sender(e.peer).peerAlive();
        this.sender(e.peer).queued();
        break;
      }
      case 'peer.disconnected':
        this.states.set(e.peer, 'disconnected');
        void this.audited('peer.disconnected', e.peer, { reason: e.reason, direction: e.direction ?? null }, true);
        break;
      case 'peer.refused':
        if (e.peer !== undefined) this.refusedPeers.set(e.peer, { reason: e.reason, at: this.clock.now() });
        this.ingress.refusedLink(e);
        break;
      case 'backpressure':
        if (e.active) this.states.set(e.peer, 'backpressure');
        // The wait is over (the peer granted credit): the link is as it was.
        else if (this.states.get(e.peer) === 'backpressure') this.states.set(e.peer, 'connected');
        break;
      case 'fatal':
        if (e.peer) this.states.set(e.peer, 'fatal');
        break;
      case 'inbox.recreated':
        this.logger.warn({ stream: e.stream }, 'mesh inbox recreated (Redis restarted?)');
        break;
    }
  }
}

/** Peers' key rotations this node accepted, oldest first (the audit log's `key.rotated` entries that name both keys). */
function acceptedRotations(audit: AuditLog): Array<{ computer: string; oldNodeId: string; newNodeId: string }> {
  const out: Array<{ computer: string; oldNodeId: string; newNodeId: string }> = [];
  for (const e of audit.peerSuccesses('key.rotated')) {
    const { oldNodeId, newNodeId } = e.details;
    if (e.peer !== null && typeof oldNodeId === 'string' && typeof newNodeId === 'string') out.push({ computer: e.peer, oldNodeId, newNodeId });
  }
  return out;
}
