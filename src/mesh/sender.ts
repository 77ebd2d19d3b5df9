/**
 * The sending side of the mesh: one `PeerSender` per peer reads that peer's outbox, cuts it
 * into signed frames that fit the byte limit, keeps at most `maxInflightFrames` unacknowledged,
 * re-sends what was not acknowledged in time, and forgets rows when the peer's ack arrives.
 * On an aead link every frame is sealed with the link key; while that key is unknown the
 * sender is `keying`: it says hello (with backoff) and sends nothing, the outbox keeps it all.
 */
import type { NodeIdentity } from '../identity/index.js';
import { encodeFrame, type NegotiatedCaps, type Provider } from '../transport/index.js';
import { after, type Clock, type Logger } from '../util/index.js';
import type { MeshOutbox } from './outbox.js';

/** The sender's limits, from `MeshInit` with their defaults applied. */
export interface SenderLimits {
  readonly maxFrameEnvelopes: number;
  readonly resendAfterMs: number;
  readonly maxInflightFrames: number;
  readonly maxFrameBytes: number;
  readonly stallAfterMs: number;
}

/** What a peer's sender needs from the mesh it belongs to. */
export interface SenderLink {
  readonly limits: SenderLimits;
  /** The current identity (a key rotation replaces it). */
  readonly identity: NodeIdentity;
  readonly provider: Provider;
  readonly outbox: MeshOutbox;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The link's caps, or undefined when no provider satisfies the required ones. */
  negotiate(peer: string): Promise<NegotiatedCaps | undefined>;
  /** The AEAD key of the link, or undefined while the peer's hello has not arrived. */
  linkKey(peer: string): Uint8Array | undefined;
  /** Sends our hello to the peer (`reply`: asking for its own); never throws. */
  hello(peer: string, opts?: { reply?: boolean; minGapMs?: number }): Promise<boolean>;
  /** The caps of the peer's last signed hello, or undefined while none ever arrived. */
  announcedCaps(peer: string): readonly string[] | undefined;
  /** An empty, unsealed events frame to the peer, which a Weft from before link keys acknowledges unsealed; never throws. */
  probeUnsealed(peer: string): Promise<void>;
  nextSequence(): Promise<number>;
  /** An envelope no frame can carry: dead-lettered, raised, out of the outbox. */
  undeliverable(peer: string, row: { envelopeId: string; body: string }, bytes: number): Promise<void>;
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

/**
 * The events frame of the first outbox rows that fit `maxBytes`: cut by their JSON size, then
 * halved while the encoded frame is still too big. With one row left it is returned as it is,
 * even over the limit (no frame can carry that envelope: the caller dead-letters or skips it).
 * `json`: the envelopes go as the rows' JSON text, as they are (the peer offered
 * `json-envelopes`), instead of parsed to be packed as maps.
 */
export function encodeEventsFrame<T extends { body: string }>(rows: readonly T[], maxBytes: number, encode: (envelopes: Array<Record<string, unknown> | string>) => Uint8Array, json = false): { bytes: Uint8Array; take: T[] } {
  let take = cutByBytes(rows, maxBytes);
  for (;;) {
    const bytes = encode(take.map((r) => (json ? r.body : (JSON.parse(r.body) as Record<string, unknown>))));
    if (bytes.length <= maxBytes || take.length === 1) return { bytes, take };
    take = take.slice(0, Math.ceil(take.length / 2));
  }
}

interface Inflight {
  ids: string[];
  sentAt: number;
}

/** An idle sender looks at its outbox this often even when nobody woke it. */
const IDLE_POLL_MS = 60_000;

/**
 * Resend rounds that got no acknowledgement at all wait twice as long as the one before, up to
 * this: a broker keeps every copy it is given, so a peer that is down for a weekend must not
 * find its inbox full of the same frames sent every few seconds (a NATS inbox refuses new
 * frames when full; a Redis inbox grows without bound).
 */
const RESEND_MAX_MS = 300_000;

/** While keying, hellos asking for the peer's key go out after 5 s, then ever more rarely (up to 10 min). */
const KEYING_FIRST_GAP_MS = 5000;
const KEYING_MAX_GAP_MS = 600_000;

/** One peer's sending side: reads its outbox, sends signed frames, forgets rows on ack. */
export class PeerSender {
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
  /** Negotiate (again) before the next frame: at start, and when the peer announced new caps. */
  private renegotiateWanted = true;
  private caps: NegotiatedCaps | undefined;
  /** Since when frames wait for the peer's link key (an aead link whose hello has not arrived). */
  keyingSince: number | undefined;
  private keyingGapMs = KEYING_FIRST_GAP_MS;
  private nextHelloAt = 0;
  /** Resend rounds in a row that got no acknowledgement: each doubles the wait before the next. */
  private quietRounds = 0;
  /**
   * Reasons to read the outbox (rows queued, the cursor moved back, a timer) and how many of
   * them the last read that found it drained covered: an empty read costs a query, and a
   * sender woken only by an ack has nothing new to read.
   */
  private lookWanted = 1;
  private lookedAt = 0;

  constructor(
    readonly peer: string,
    private readonly mesh: SenderLink,
  ) {}

  start(): void {
    this.running ??= this.loop();
  }

  /** Rows were queued for this peer (or may have been): the next turn reads the outbox. */
  queued(): void {
    this.lookWanted++;
    this.wake();
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

  /** Frames wait for the peer's link key. */
  get keying(): boolean {
    return this.keyingSince !== undefined;
  }

  /** The peer announced other caps: the link is negotiated again before the next frame. */
  renegotiate(): void {
    this.renegotiateWanted = true;
    this.wake();
  }

  /**
   * The peer's link key changed: what is in flight was sealed with the old one and cannot be
   * opened, so it goes again now rather than after the resend timeout.
   */
  rekeyed(): void {
    if (this.caps?.aead && this.inflight.size > 0) {
      this.inflight.clear();
      this.cursor = 0;
      this.resends++;
    }
    this.queued();
  }

  private noteFailure(message: string): void {
    this.lastError = message;
    this.failingSince ??= this.mesh.clock.now();
  }

  /** Stalled: nothing got through for `stallAfterMs` while there is something to send. */
  stalled(now: number): string | undefined {
    const after = this.mesh.limits.stallAfterMs;
    if (this.keyingSince !== undefined && now - this.keyingSince >= after) {
      return `no link key from the peer for ${Math.round((now - this.keyingSince) / 1000)} s: its hello has not arrived (ours was sent; frames to it are sealed, so none goes in plaintext; the outbox keeps them). A Weft from before 2026-12-05 sends no hello: if the peer runs one, upgrade it`;
    }
    if (this.failingSince !== undefined && now - this.failingSince >= after) return this.lastError ?? 'sends fail';
    if (this.waitingSince !== undefined && now - this.waitingSince >= after) {
      return `no acknowledgement from the peer for ${Math.round((now - this.waitingSince) / 1000)} s (frames are re-sent; the outbox keeps them)`;
    }
    return undefined;
  }

  /**
   * The peer showed it is up (its hello arrived, its link connected): resends go back to their
   * first interval, so what it has not acknowledged goes again soon rather than after a long
   * backoff.
   */
  peerAlive(): void {
    if (this.quietRounds === 0) return;
    this.quietRounds = 0;
    this.wake();
  }

  onAck(sequences: readonly number[]): void {
    this.failingSince = undefined;
    this.quietRounds = 0;
    for (const s of sequences) this.inflight.delete(s);
    this.waitingSince = this.inflight.size > 0 ? this.mesh.clock.now() : undefined;
    this.wake();
  }

  private async sleep(ms: number): Promise<void> {
    let cancel: (() => void) | undefined;
    await new Promise<void>((resolve) => {
      this.wakeUp = resolve;
      cancel = after(
        this.mesh.clock,
        ms,
        () => {
          // The timer is the safety net: it reads the outbox whatever woke us or not.
          this.lookWanted++;
          resolve();
        },
        { unref: true },
      );
    });
    cancel?.();
    this.wakeUp = undefined;
  }

  private async loop(): Promise<void> {
    const m = this.mesh;
    let backoff = 0;
    // Our key and caps, so the peer can open what we seal (and answers with its own when it lacks it).
    void m.hello(this.peer, { reply: m.linkKey(this.peer) === undefined });
    while (!this.stopped) {
      if (this.renegotiateWanted) {
        this.renegotiateWanted = false;
        this.caps = await m.negotiate(this.peer);
      }
      const caps = this.caps;
      if (!caps) {
        // No provider satisfies the required caps: the outbox keeps the events until a hello
        // with other caps renegotiates.
        this.keyingSince = undefined;
        await this.sleep(60_000);
        continue;
      }
      const now = m.clock.now();
      const base = m.limits.resendAfterMs;
      const resendAfter = Math.min(base * 2 ** Math.min(this.quietRounds, 20), Math.max(base, RESEND_MAX_MS));
      for (const f of this.inflight.values()) {
        if (now - f.sentAt > resendAfter) {
          // No ack in time (peer down, frame lost, Redis restarted empty): send what is still queued again.
          this.inflight.clear();
          this.cursor = 0;
          this.resends++;
          this.quietRounds++;
          this.lookWanted++;
          break;
        }
      }
      if (this.inflight.size >= m.limits.maxInflightFrames) {
        await this.sleep(100);
        continue;
      }
      const want = this.lookWanted;
      const rows = want === this.lookedAt ? [] : m.outbox.peek(this.peer, this.cursor, m.limits.maxFrameEnvelopes);
      if (rows.length === 0) {
        this.lookedAt = want;
        this.keyingSince = undefined;
        // Woken when rows are queued for this peer (and by its acks); the timer is a safety net.
        await this.sleep(this.inflight.size > 0 ? 250 : IDLE_POLL_MS);
        continue;
      }
      let aead: { key: Uint8Array } | undefined;
      if (caps.aead) {
        const key = m.linkKey(this.peer);
        if (!key) {
          // Never in plaintext on an aead link: ask for the peer's key and wait (its hello wakes us).
          if (this.keyingSince === undefined) {
            this.keyingSince = now;
            this.keyingGapMs = KEYING_FIRST_GAP_MS;
            this.nextHelloAt = now + this.keyingGapMs;
          } else if (now >= this.nextHelloAt) {
            void m.hello(this.peer, { reply: true });
            // A peer that never said hello may be a Weft from before link keys that has nothing to
            // send: an empty events frame, unsealed (nothing in it to read), gets its unsealed ack,
            // which shows what it is (mesh.ts onUnsealed) so the link can carry on.
            if (m.announcedCaps(this.peer) === undefined) void m.probeUnsealed(this.peer);
            this.keyingGapMs = Math.min(this.keyingGapMs * 2, KEYING_MAX_GAP_MS);
            this.nextHelloAt = now + this.keyingGapMs;
          }
          await this.sleep(1000);
          continue;
        }
        this.keyingSince = undefined;
        aead = { key };
      }
      const encodeOpts = {
        identity: m.identity,
        crc32c: caps.crc32c,
        deflate: caps.deflate ? { minBytes: 512 } : (false as const),
        ...(aead ? { aead } : {}),
      };
      if (this.sendFailed) {
        // The last send failed: everything not acknowledged goes again, after a pause.
        this.sendFailed = false;
        this.inflight.clear();
        this.cursor = 0;
        this.lookWanted++;
        backoff = Math.min(Math.max(backoff * 2, 100), 5000);
        m.logger.debug({ peer: this.peer, err: this.lastError }, 'send failed; the outbox keeps the events');
        await this.sleep(backoff);
        continue;
      }
      let seq: number;
      let bytes: Uint8Array;
      let take: typeof rows;
      try {
        const sequence = await m.nextSequence();
        seq = sequence;
        ({ bytes, take } = encodeEventsFrame(
          rows,
          m.limits.maxFrameBytes,
          (envelopes) => encodeFrame({ type: 'events', sequence, timestamp: m.clock.now(), body: { envelopes } }, { ...encodeOpts, identity: m.identity }),
          caps.jsonEnvelopes === true,
        ));
      } catch (err) {
        this.noteFailure((err as Error).message);
        this.sendFailed = true;
        continue;
      }
      if (bytes.length > m.limits.maxFrameBytes) {
        // No frame can carry it: it would stop the link for good. Dead-lettered, raised, skipped.
        const row = take[0] as { id: number; envelopeId: string; body: string };
        await m.undeliverable(this.peer, row, bytes.length);
        this.cursor = row.id;
        continue;
      }
      const rowsSent = take;
      // Everything the read found goes in this frame and the read was not cut short: drained.
      if (take.length === rows.length && rows.length < m.limits.maxFrameEnvelopes) this.lookedAt = want;
      // Not awaited: the next frame is prepared while this one travels (the window bounds them).
      if (this.inflight.size === 0) this.waitingSince ??= m.clock.now();
      this.inflight.set(seq, { ids: rowsSent.map((r) => r.envelopeId), sentAt: m.clock.now() });
      this.cursor = (rowsSent[rowsSent.length - 1] as { id: number }).id;
      this.sentFrames++;
      this.sentEnvelopes += rowsSent.length;
      // Bounded: a send still waiting (no credit, a broker away) when the frame would be re-sent
      // anyway is given up, so a link that takes nothing cannot pile up pending frames.
      m.provider.send(this.peer, bytes, { signal: AbortSignal.timeout(m.limits.resendAfterMs) }).then(
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
