/**
 * The receiving side of the mesh. Frames are taken from the provider in batches and each goes
 * decode (signature against the pinned key, then the sealed body opened with the link key)
 * → replay guard → stamping with the verified sender
 * → validation and limits → the local pipeline with trust (one transaction per batch, the
 * guard's records in it) → transport ack → one signed ack frame per sender. Every refusal is
 * counted, stored as a rejection, audited and raised as `mesh.event.rejected` (at most one per
 * sender and cause a minute, with the count).
 */
import type { AuditLog } from '../audit/index.js';
import type { BusEntry } from '../bus/index.js';
import { type Envelope, envelopeValidator, envelopeWith, payloadProblem } from '../envelope/index.js';
import type { NodeIdentity, PinnedKeys } from '../identity/index.js';
import { INGRESS_FACT, type IngressFact, RefusalNotices } from '../pipeline/index.js';
import {
  decodeFrame,
  encodeFrame,
  type Frame,
  type FrameBodies,
  type FrameErrorCode,
  type InboundFrame,
  peekFrame,
  type Provider,
} from '../transport/index.js';
import { type Clock, type Logger, sleep } from '../util/index.js';
import type { HelloChange, LinkKeys } from './link-keys.js';
import type { MeshOutbox } from './outbox.js';
import type { PeerBook } from './peers.js';
import type { MeshNode } from './ports.js';
import type { ReplayErrorCode, ReplayGuard } from './replay-guard.js';
import type { FrameSequence } from './sequence.js';

/** Why the mesh refused an envelope that a verified frame carried. */
export type EnvelopeRefusalCode = 'ENVELOPE_INVALID' | 'ENVELOPE_TOO_DEEP' | 'ENVELOPE_TOO_LARGE' | 'ENVELOPE_HOP_LIMIT' | 'ENVELOPE_TOO_LARGE_FOR_FRAME';
/** Why the trust evaluator kept a peer's event out of the pipeline. */
export type TrustRefusalCode = 'TRUST_QUARANTINE' | 'TRUST_REJECT';
/** Why a link was refused (TLS handshake and pinning; see the TLS provider). */
export type LinkRefusalCode = 'PEER_UNKNOWN_KEY' | 'PEER_KEY_MISMATCH' | 'PEER_NO_CERTIFICATE' | 'PEER_BAD_CERTIFICATE' | 'PEER_HANDSHAKE_FAILED' | 'PEER_PROTOCOL_TOO_OLD' | (string & {});
/** Every code a mesh refusal carries: the frame codec's, the replay guard's, and the mesh's own. */
export type MeshRefusalCode = FrameErrorCode | ReplayErrorCode | EnvelopeRefusalCode | TrustRefusalCode | 'WIRE_INVALID' | (string & {});

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

export function emptyCounters(): MeshCounters {
  return { framesIn: 0, eventsIn: 0, acksIn: 0, messagesIn: 0, redelivered: 0, rejected: {} };
}

/** What a message handler is given: the verified sender and the message's data. */
export interface InboundMessage {
  /** The sender's computer name (from its pinned key). */
  computer: string;
  /** The sender's node id, verified by the frame signature. */
  nodeId: string;
  kind: string;
  data: unknown;
}

export type MessageHandler = (m: InboundMessage) => Promise<void> | void;

/** What checks and records frames against replays: the mesh's guard, or one of its own for another route. */
export type FrameGuard = Pick<ReplayGuard, 'check' | 'record'>;

/**
 * Frames that came another way than the provider (the git fallback): what guards them, which
 * frame types that route may carry, where the acks of their events go, and what commits with
 * their effects (the route's cursor).
 */
export interface FrameRoute {
  guard: FrameGuard;
  /** Frame types taken from this route; any other is refused as ROUTE_FRAME_TYPE. */
  types: ReadonlySet<Frame['type']>;
  /** The signed (and, when the link seals, sealed) ack frame for a sender. */
  sendAck(computer: string, ack: Uint8Array): Promise<void>;
  /** Runs inside the transaction that commits the frames' effects (or its own when there are none). */
  inTransaction?: () => void;
}

export interface IngressInit {
  /** Events are never re-forwarded; an envelope claiming more hops is refused (default 8). */
  maxHops?: number;
  /** Frames taken from the provider and not handled yet, at most (default 1024). */
  maxBuffered?: number;
  /** Messages being handled at once, at most (default 64); more are dropped as MESSAGE_BUSY. */
  maxHandling?: number;
  /** Of which one peer may hold at most (default 8). */
  maxHandlingPerPeer?: number;
}

export interface IngressDeps {
  node: MeshNode;
  /** The current identity (acks are signed with it). */
  identity: () => NodeIdentity;
  provider: Provider;
  pins: PinnedKeys;
  guard: ReplayGuard;
  audit: AuditLog;
  outbox: MeshOutbox;
  peers: PeerBook;
  sequence: FrameSequence;
  counters: MeshCounters;
  /** Asked once when a frame's sender is unknown (a peer that announced itself since the last look). */
  rediscover?: () => Promise<void>;
  /** A peer acknowledged our frames. */
  onAck(computer: string, sequences: readonly number[]): void;
  /** Peers' link keys: sealed frames are opened with them, hellos are stored in them. */
  linkKeys?: LinkKeys;
  /** A peer's verified hello was stored (committed with its replay record). */
  onHello?(computer: string, body: FrameBodies['hello'], change: HelloChange): void;
  /** A verified frame from a peer could not be opened: the peer holds a stale key of ours, or we lack its key. */
  onUnopenable?(computer: string): void;
  /** A verified events, ack or message frame from a peer arrived unsealed (the mesh checks whether it should have been). */
  onUnsealed?(computer: string): void;
  /** A sealed frame arrived from the peer (events with envelopes, ack or message). */
  onSealed?(computer: string): void;
  /**
   * How an ack to `computer` is sealed (`sealedIn`: it acknowledges sealed frames, so it is
   * sealed too); undefined when it must be sealed and no key is known (no ack is sent).
   */
  sealFor?(computer: string, sealedIn: boolean): { aead?: { key: Uint8Array } } | undefined;
  /**
   * Handlers of message kinds other than text (e.g. `privacy.query`), by kind. A message for a
   * handler is not an event: its replay record commits, then the handler runs beside the
   * receive loop (bounded: `maxHandling` at once; more are refused as MESSAGE_BUSY).
   */
  messageHandlers?: ReadonlyMap<string, MessageHandler>;
  clock: Clock;
  logger: Logger;
}

/** An audit write nobody waits on: a failure (the store closing under it) is logged, never thrown. */
export function auditQuietly(audit: AuditLog, logger: Logger) {
  return (kind: string, peer: string | null, details: Record<string, unknown>, success: boolean): Promise<void> =>
    audit.record(kind, peer, details, success).then(
      () => undefined,
      (err: Error) => logger.warn({ kind, err: err.message }, 'audit entry not written'),
    );
}

/** The mesh's receiving side; see the module comment. */
export class MeshIngress {
  readonly maxHops: number;
  private readonly maxBuffered: number;
  private readonly maxHandling: number;
  private handlingMessages = 0;
  /** Messages being handled per peer: one peer may hold at most maxHandlingPerPeer of the slots. */
  private readonly handlingBy = new Map<string, number>();
  private readonly maxHandlingPerPeer: number;
  /** Message frames handled whose replay record has not committed yet (see handleMessage). */
  private readonly unrecorded = new Set<string>();
  private readonly refusals: RefusalNotices;
  /** Refused connections, aggregated per peer or remote address and code: audit row + notice per minute. */
  private readonly refusedLinks: RefusalNotices;
  private readonly audited: ReturnType<typeof auditQuietly>;
  private handling: Promise<void> | undefined;
  /** Batches from the provider and from other routes are handled one at a time. */
  private turn: Promise<unknown> = Promise.resolve();
  private roomMade: (() => void) | undefined;
  private stopping = false;

  constructor(
    init: IngressInit,
    private readonly deps: IngressDeps,
  ) {
    this.maxHops = init.maxHops ?? 8;
    this.maxBuffered = init.maxBuffered ?? 1024;
    this.maxHandling = init.maxHandling ?? 64;
    this.maxHandlingPerPeer = init.maxHandlingPerPeer ?? 8;
    this.audited = auditQuietly(deps.audit, deps.logger);
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
    this.refusedLinks = new RefusalNotices({}, { clock: deps.clock, logger: deps.logger, raise: (_key, d, count) => this.raiseRefusedLink(d, count) });
  }

  /** Stops taking batches; the one in flight commits and acks. Then the provider may stop. */
  async drain(): Promise<void> {
    this.stopping = true;
    this.roomMade?.();
    await this.handling;
  }

  close(): void {
    this.refusals.close();
    this.refusedLinks.close();
  }

  /** A refused connection (TLS pinning, handshake): one audit entry and notice per peer or address and cause a minute. */
  refusedLink(e: { peer?: string; remoteAddress?: string; code: LinkRefusalCode; reason: string; presentedFingerprint?: string }): void {
    this.count(e.code);
    // Keyed on what the refused side cannot choose: the pinned peer we dialled, or the remote
    // address. A flood of fresh keys from one address is one audit entry and one notice a minute.
    const who = e.peer ?? e.remoteAddress ?? 'unknown';
    this.refusedLinks.note(`${who}|${e.code}`, { peer: e.peer, address: e.remoteAddress, code: e.code, reason: e.reason, fingerprint: e.presentedFingerprint });
  }

  private raiseRefusedLink(d: Record<string, string | undefined>, count: number): Promise<unknown> {
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
      payload: { sender, senderComputer: computer, code: code ?? 'unknown', reason: reason.slice(0, 2000), count, windowStart: new Date(this.deps.clock.now()).toISOString() },
    });
  }

  count(code: MeshRefusalCode): void {
    this.deps.counters.rejected[code] = (this.deps.counters.rejected[code] ?? 0) + 1;
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
    const r = this.decode(bytes);
    if (!r.ok) return { kind: 'weft-frame', bytes: bytes.length, header, verdict: { ok: false, code: r.error.code, reason: r.error.message } };
    const replay = this.deps.guard.check(r.frame.header);
    return {
      kind: 'weft-frame',
      bytes: bytes.length,
      header,
      verdict: replay.ok ? { ok: true, signature: 'verified' } : { ok: false, signature: 'verified', code: replay.error.code, reason: replay.error.message },
      ...(h.aead ? { sealed: h.aead } : {}),
      body: r.frame.body,
    };
  }

  /** Verifies (pinned key) and, when sealed, opens (the sender's link key) one frame. */
  private decode(bytes: Uint8Array) {
    const keys = this.deps.linkKeys;
    return decodeFrame(bytes, { lookupKey: this.deps.pins.lookupKey, ...(keys ? { aeadKey: (sender: string) => keys.keyFor(sender) } : {}) });
  }


  /**
   * Frames are pulled from the provider as they come and handled in batches: all the events of
   * the frames waiting at that moment are applied in one transaction (one commit, one fsync),
   * so a busy link costs a commit per batch, not per frame.
   */
  async run(): Promise<void> {
    const buf: InboundFrame[] = [];
    // Frames acknowledged at the transport: a batch that failed is handled again without them.
    const acked = new WeakSet<InboundFrame>();
    let wake: (() => void) | undefined;
    let ended = false;
    const pump = (async () => {
      try {
        for await (const f of this.deps.provider.frames()) {
          // Bounded: while the batches behind are not handled, the provider's own queue fills and it stops reading.
          while (buf.length >= this.maxBuffered && !this.stopping) await new Promise<void>((r) => (this.roomMade = r));
          const tracked: InboundFrame = {
            from: f.from,
            bytes: f.bytes,
            deliveryId: f.deliveryId,
            deliveryCount: f.deliveryCount,
            ack: () => {
              acked.add(tracked);
              return f.ack();
            },
          };
          buf.push(tracked);
          const w = wake;
          wake = undefined;
          w?.();
          if (this.stopping) break;
        }
      } catch (err) {
        if (!this.stopping) this.deps.logger.error({ err: (err as Error).message }, 'mesh receive loop ended');
      } finally {
        ended = true;
        wake?.();
      }
    })();
    let failures = 0;
    while ((!ended || buf.length > 0) && !this.stopping) {
      if (buf.length === 0) {
        await new Promise<void>((r) => {
          wake = r;
        });
        continue;
      }
      const batch = buf.splice(0, 128);
      const room = this.roomMade;
      this.roomMade = undefined;
      room?.();
      try {
        this.handling = this.exclusive(() => this.handleBatch(batch)).finally(() => {
          this.handling = undefined;
        });
        await this.handling;
        failures = 0;
      } catch (err) {
        // A full disk, a database another process keeps locked, a bug: what was not acknowledged
        // is handled again, first, after a pause. The transport holds those frames (it does not
        // deliver them again while they are held, and each holds a slot of its window or a
        // credit of the sender): dropped here, they would be lost until a restart, and enough of
        // them would stop the link for good.
        failures++;
        const left = batch.filter((f) => !acked.has(f));
        buf.unshift(...left);
        const pauseMs = Math.min(200 * 2 ** Math.min(failures - 1, 5), 5000);
        this.deps.logger.error({ err: (err as Error).message, frames: batch.length, again: left.length, attempt: failures, pauseMs }, 'handling mesh frames failed; they are handled again after a pause');
        await sleep(this.deps.clock, pauseMs);
      }
    }
    await pump;
  }

  /** Runs `fn` after every batch before it (from the provider or another route) is done. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.turn.then(fn, fn);
    this.turn = run.catch(() => undefined);
    return run;
  }

  /**
   * Frames from another route (the git fallback) go the same way as the provider's: signature,
   * replay check (the route's guard), stamping, limits, trust and the pipeline; one at a time
   * with the provider's batches. Returns how many frames were refused.
   */
  acceptRouted(frames: InboundFrame[], route: FrameRoute): Promise<{ refused: number }> {
    return this.exclusive(async () => {
      const before = this.refusedTotal();
      await this.handleBatch(frames, route);
      return { refused: this.refusedTotal() - before };
    });
  }

  private refusedTotal(): number {
    let n = 0;
    for (const v of Object.values(this.deps.counters.rejected)) n += v;
    return n;
  }

  private async handleBatch(frames: InboundFrame[], route?: FrameRoute): Promise<void> {
    const guard: FrameGuard = route?.guard ?? this.deps.guard;
    const toApply: Array<{ f: InboundFrame; frame: Extract<Frame, { type: 'events' }>; computer: string; envs: Envelope[] }> = [];
    // Frames that need nothing committed are released together at the end.
    const release: InboundFrame[] = [];
    const inBatch = new Set<string>();
    for (const f of frames) {
      this.deps.counters.framesIn++;
      let r = this.decode(f.bytes);
      if (!r.ok && r.error.code === 'FRAME_UNKNOWN_SENDER' && this.deps.rediscover) {
        // A peer that announced itself after our last look (or while Redis was restarting).
        await this.deps.rediscover();
        r = this.decode(f.bytes);
      }
      if (!r.ok) {
        const peek = peekFrame(f.bytes);
        const sender = peek.ok ? peek.header.sender : undefined;
        await this.reject(sender, f.from, r.error.code, r.error.message, { ref: f.deliveryId, raw: f.bytes });
        await f.ack();
        if ((r.error.code === 'FRAME_AEAD_KEY_MISSING' || r.error.code === 'FRAME_AEAD_FAILED') && sender) {
          // Signed by the peer (the codec checks that first), sealed with a key we do not share:
          // our hello lets it derive the right one; its sender re-sends what we could not open.
          const computer = this.deps.pins.computerOf(sender);
          if (computer) this.deps.onUnopenable?.(computer);
        }
        continue;
      }
      const frame = r.frame;
      const key = `${frame.header.sender}|${Buffer.from(frame.header.nonce).toString('hex')}|${frame.header.sequence}`;
      const verdict = inBatch.has(key)
        ? { ok: false as const, error: { code: 'REPLAY_NONCE_SEEN', message: 'the same frame twice in one delivery batch' } }
        : this.unrecorded.has(key)
          ? { ok: false as const, error: { code: 'REPLAY_NONCE_SEEN', message: 'the same message frame again before its replay record committed' } }
          : guard.check(frame.header);
      if (!verdict.ok && verdict.error.code === 'REPLAY_NONCE_SEEN' && f.deliveryCount > 1 && !inBatch.has(key)) {
        // The transport delivering again what we committed before a crash or restart: expected, not an attack.
        this.deps.counters.redelivered++;
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
      if (route && !route.types.has(frame.type)) {
        await this.reject(frame.header.sender, f.from, 'ROUTE_FRAME_TYPE', `a ${frame.type} frame cannot come this way (only ${[...route.types].join(', ')})`, { ref: f.deliveryId, raw: f.bytes });
        continue;
      }
      // An events frame with no envelopes carries nothing to read (a probe, mesh.ts probeUnsealed).
      const carries = frame.type === 'ack' || frame.type === 'message' || (frame.type === 'events' && frame.body.envelopes.length > 0);
      if (carries) {
        if (frame.header.aead === null) this.deps.onUnsealed?.(computer);
        // An ack is sealed when what it acknowledges was: it says nothing of how the peer sends its own.
        else if (frame.type !== 'ack') this.deps.onSealed?.(computer);
      }
      switch (frame.type) {
        case 'events':
          toApply.push({ f, frame, computer, envs: await this.stamp(frame, computer, f.deliveryId) });
          break;
        case 'ack': {
          // Not recorded by the guard: a replayed ack (still signed, still fresh) only repeats a deletion.
          this.deps.counters.acksIn++;
          void this.deps.outbox.acknowledge(computer, frame.body.envelopeIds ?? []);
          this.deps.onAck(computer, frame.body.sequences);
          release.push(f);
          break;
        }
        case 'message': {
          this.deps.counters.messagesIn++;
          const handler = this.deps.messageHandlers?.get(frame.body.kind);
          if (handler) {
            await this.handleMessage(handler, { computer, nodeId: frame.header.sender, kind: frame.body.kind, data: frame.body.data }, frame.header, key, f);
            break;
          }
          const text = frame.body.kind === 'text' ? String((frame.body.data as { text?: unknown } | undefined)?.text ?? '') : '';
          const env = this.deps.node.build({
            event: 'mesh.message.received',
            source: `weft@${computer}`,
            payload: { from: computer, text: text.slice(0, 4000), kind: frame.body.kind },
          });
          // This node's own record of the message (its origin stays this node): with the
          // sender's origin it passed for an event of the sender's, and a Phoenix restore of
          // the sender got it back as its own.
          env.sourceComputer = computer;
          env.hops = 1;
          await this.applyFrames([{ f, frame, computer, envs: [env] }], false);
          break;
        }
        case 'key-rotation': {
          const rec = frame.body.record;
          const check = this.deps.pins.applyRotation(rec);
          // The guard's record, the audit entry and the peer's link key under its new id commit together.
          await this.deps.node.ns.store.write(() => {
            this.deps.guard.record(frame.header);
            this.deps.audit.recordIn('key.rotated', computer, { ok: check.ok, oldNodeId: rec.oldNodeId, newNodeId: rec.newNodeId, ...(check.ok ? {} : { code: check.code }) }, check.ok);
            if (check.ok) this.deps.linkKeys?.rekeyIn(rec.oldNodeId, rec.newNodeId);
          });
          if (check.ok) {
            this.deps.peers.rekey(rec.oldNodeId, rec.newNodeId);
            this.deps.linkKeys?.rekeyed(rec.oldNodeId, rec.newNodeId);
          }
          await f.ack();
          break;
        }
        case 'hello':
          await this.handleHello(frame, computer, f);
          break;
        default:
          release.push(f);
      }
    }
    if (toApply.length > 0) await this.applyFrames(toApply, true, route);
    else if (route?.inTransaction) await this.deps.node.ns.store.write(route.inTransaction);
    await Promise.all(release.map((f) => f.ack()));
  }

  /**
   * A peer's hello: its public link key and caps are stored with the frame's replay record in
   * one transaction (a restart needs no new exchange), then the mesh answers and re-keys.
   */
  private async handleHello(frame: Extract<Frame, { type: 'hello' }>, computer: string, f: InboundFrame): Promise<void> {
    const keys = this.deps.linkKeys;
    const body = frame.body;
    if (body.computer !== computer) {
      this.deps.logger.debug({ peer: computer, says: body.computer }, 'a hello names another computer than the pinned one; the pinned name stands');
    }
    if (!keys || !body.x25519) {
      await this.deps.node.ns.store.write(() => this.deps.guard.record(frame.header));
      await f.ack();
      return;
    }
    let change: HelloChange;
    try {
      change = await keys.remember(frame.header.sender, { computer, x25519: body.x25519, caps: body.caps }, this.deps.clock.now(), () => this.deps.guard.record(frame.header));
    } catch (err) {
      await this.reject(frame.header.sender, f.from, 'HELLO_BAD_KEY', `hello with an unusable link key: ${(err as Error).message}`, { ref: f.deliveryId, field: '/x25519', raw: f.bytes });
      await f.ack();
      return;
    }
    await f.ack();
    this.deps.onHello?.(computer, body, change);
  }

  /**
   * A message for a handler (a query, an answer) is worthless late, so it is handled at once:
   * its replay record rides in the store's next transaction (no commit of its own on the way)
   * and, until that commits, the same frame is refused from memory. A crash in those few
   * milliseconds forgets the record: a replay of that frame after the restart is handled once
   * more (queries are read-only and audited, answers go to the node that asked).
   */
  private async handleMessage(handler: MessageHandler, m: InboundMessage, header: Frame['header'], key: string, f: InboundFrame): Promise<void> {
    const mine = this.handlingBy.get(m.computer) ?? 0;
    if (this.handlingMessages >= this.maxHandling || mine >= this.maxHandlingPerPeer) {
      // Counted, and recorded once a minute per peer: a flood must not cost a write per frame.
      this.deps.counters.rejected.MESSAGE_BUSY = (this.deps.counters.rejected.MESSAGE_BUSY ?? 0) + 1;
      this.refusals.note(`${m.nodeId}|MESSAGE_BUSY`, {
        sender: m.nodeId,
        computer: m.computer,
        code: 'MESSAGE_BUSY',
        reason: `MESSAGE_BUSY: ${mine >= this.maxHandlingPerPeer ? `${mine} of this peer's` : `${this.handlingMessages}`} messages are being handled already; '${m.kind}' dropped`,
        frame: 'yes',
      });
      await f.ack();
      return;
    }
    this.unrecorded.add(key);
    // Synced even on its own: a message replayed after a power loss must still be refused.
    void this.deps.node.ns.store.writeSoon(() => this.deps.guard.record(header), 5, { durable: true }).finally(() => this.unrecorded.delete(key));
    // Counted before the await: a handler finishing meanwhile must not be counted over (the slot would leak).
    this.handlingMessages++;
    this.handlingBy.set(m.computer, mine + 1);
    await f.ack();
    void (async () => {
      try {
        await handler(m);
      } catch (err) {
        this.deps.logger.warn({ peer: m.computer, kind: m.kind, err: (err as Error).message }, 'a message handler failed');
      } finally {
        this.handlingMessages--;
        const left = (this.handlingBy.get(m.computer) ?? 1) - 1;
        if (left <= 0) this.handlingBy.delete(m.computer);
        else this.handlingBy.set(m.computer, left);
      }
    })();
  }

  /** Validates and stamps a frame's envelopes with the verified sender; refuses bad ones. */
  private async stamp(frame: Extract<Frame, { type: 'events' }>, computer: string, deliveryId: string): Promise<Envelope[]> {
    const out: Envelope[] = [];
    for (const raw of frame.body.envelopes) {
      const stamped: Record<string, unknown> = envelopeWith(raw, {
        origin: frame.header.sender,
        sourceComputer: computer,
        hops: (typeof raw.hops === 'number' ? raw.hops : 0) + 1,
      });
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
        await this.reject(frame.header.sender, computer, tooBig.code === 'PAYLOAD_TOO_DEEP' ? 'ENVELOPE_TOO_DEEP' : 'ENVELOPE_TOO_LARGE', `envelope ${env.id}: ${tooBig.message}`, {
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
    this.deps.counters.eventsIn += out.length;
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
    route?: FrameRoute,
  ): Promise<void> {
    const guard = route?.guard ?? this.deps.guard;
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
      route?.inTransaction?.();
    };
    if (entries.length > 0) {
      const batch = await this.deps.node.processor.processBatch(entries, {}, recordAll);
      for (const d of batch.dropped) {
        if (d.by !== 'trust') continue;
        const held = d.trust === 'quarantine';
        await this.notice(
          d.event.origin,
          d.event.sourceComputer ?? 'unknown',
          held ? 'TRUST_QUARANTINE' : 'TRUST_REJECT',
          `event ${d.event.id} (${d.event.event}) ${held ? 'quarantined' : 'rejected'} by the trust evaluator: ${String(d.reason ?? 'policy')}`,
        );
      }
    } else {
      await this.deps.node.ns.store.write(recordAll);
    }
    // Together: the provider sends the acks of one tick as one XACK.
    await Promise.all(items.map((it) => it.f.ack()));
    if (!ackToSender) return;
    const bySender = new Map<string, { sequences: number[]; ids: string[]; sealed: boolean }>();
    for (const it of items) {
      // An empty unsealed events frame is a probe for a Weft from before link keys (mesh.ts
      // probeUnsealed), which answers it with an unsealed ack. This node is not one: its answer
      // would be unsealed too, and, reaching the prober before this node's hello (a link not yet
      // negotiated at start), would make it take this node for an older one for a moment.
      if (it.frame.type === 'events' && it.frame.header.aead === null && it.frame.body.envelopes.length === 0) continue;
      const a = bySender.get(it.computer) ?? { sequences: [], ids: [], sealed: false };
      a.sequences.push(it.frame.header.sequence);
      a.sealed ||= it.frame.header.aead !== null;
      for (const e of (it.frame as Extract<Frame, { type: 'events' }>).body.envelopes) a.ids.push(String(e.id));
      bySender.set(it.computer, a);
    }
    for (const [computer, a] of bySender) {
      const seal = this.deps.sealFor ? this.deps.sealFor(computer, a.sealed) : {};
      if (!seal) {
        // An aead link whose key we lack: no plaintext ack; the sender re-sends after the hellos.
        this.deps.onUnopenable?.(computer);
        continue;
      }
      try {
        const ack = encodeFrame(
          { type: 'ack', sequence: await this.deps.sequence.take(), timestamp: this.deps.clock.now(), body: { sequences: a.sequences, envelopeIds: a.ids } },
          { identity: this.deps.identity(), ...seal },
        );
        if (route) await route.sendAck(computer, ack);
        // Bounded: an ack that cannot go now (Redis away) must not hold the receive loop or a stop.
        else await this.deps.provider.send(computer, ack, { signal: AbortSignal.timeout(5000) });
      } catch (err) {
        // The sender re-sends after its timeout; we apply nothing twice (ids) and ack again.
        this.deps.logger.debug({ peer: computer, err: (err as Error).message }, 'ack not sent');
      }
    }
  }

  /** Records and raises a refusal of mesh input (audit, rejections, rate-limited mesh.event.rejected). */
  async reject(
    sender: string | undefined,
    from: string | undefined,
    code: MeshRefusalCode,
    message: string,
    input: { ref: string; field?: string; raw: Uint8Array | string },
  ): Promise<void> {
    this.count(code);
    const computer = (sender && this.deps.pins.computerOf(sender)) ?? from ?? 'unknown';
    this.deps.logger.warn({ peer: computer, code, reason: message, ...(input.field ? { field: input.field } : {}) }, 'mesh input rejected');
    try {
      // Frames are kept as base64 (at most 48 KiB of them), envelopes as their JSON.
      const raw = typeof input.raw === 'string' ? input.raw : Buffer.from(input.raw.subarray(0, 49152)).toString('base64');
      await this.deps.node.ns.store.write(() =>
        this.deps.node.ns.rejections.add({ origin: `mesh:${computer}`, ref: input.ref, code, reason: message, field: input.field, raw }),
      );
    } catch (err) {
      this.deps.logger.error({ err: (err as Error).message }, 'recording a mesh rejection failed');
    }
    await this.notice(sender, computer, code, message, true);
  }

  /** Raises `mesh.event.rejected`: at most one per sender and cause per minute, with the count of the rest. */
  private async notice(sender: string | undefined, computer: string, code: MeshRefusalCode, message: string, frame = false): Promise<void> {
    this.refusals.note(`${sender ?? computer}|${code}`, { sender: sender ?? computer, computer, code, reason: `${code}: ${message}`, frame: frame ? 'yes' : 'no' });
  }
}
