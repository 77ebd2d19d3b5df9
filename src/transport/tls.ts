/**
 * The TLS provider: direct node-to-node TLS 1.3 with mutual authentication. Each node presents
 * a self-signed certificate for its Ed25519 key; each side compares the key the other
 * presented with the key it pinned for that peer (Node's checkServerIdentity does not run for
 * self-signed certificates, so the comparison is explicit). Unknown or mismatched keys and
 * anything below TLS 1.3 are refused and reported as `peer.refused`.
 *
 * Each node dials the peers it has an address for and sends on that outbound connection; it
 * receives on the connections peers dialled to it. Records on a socket are length-prefixed:
 * `u32 length | u8 kind | payload`, kinds DATA (a frame), CREDIT (u32), PING/PONG (u32 id).
 * The receiver grants `credits` frames up front and one more per `ack()`, so a slow peer
 * holds at most `credits` frames of the sender's in memory; a sender out of credit waits.
 * A link that misses pongs for `deadAfterMs` is dropped and redialled with backoff.
 */
import { setMaxListeners } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import tls from 'node:tls';
import { createNodeCertificate, fingerprint, type NodeCertificate, publicKeyFromCertificate, publicKeyFromNodeId } from '../identity/index.js';
import { requireDeps } from '../errors/index.js';
import { every, FailureStreak } from '../util/index.js';
import { TransportError } from './errors.js';
import { DEFAULT_MAX_FRAME_SIZE } from './frame.js';
import { BoundedQueue, sleep } from './queue.js';
import { K_CREDIT, K_DATA, K_PING, K_PONG, RecordReader, record, u32 } from './tls-records.js';
import { ProviderBase } from './provider-base.js';
import type {
  Provider,
  ProviderDeps,
  ProviderEvent,
  RefusalCode,
  TransportCap,
} from './transport.js';

/** A pinned peer: its computer name, its node id (the pin), and where to dial it. */
export interface TlsPeer {
  computer: string;
  nodeId: string;
  /** Omit host/port for a peer that only dials us. */
  host?: string;
  port?: number;
}

export interface TlsProviderInit {
  computer: string;
  /** Listen address (default 127.0.0.1). */
  host?: string;
  /** Listen port; 0 picks a free one (see `address()`); undefined: do not listen. */
  port?: number;
  peers: TlsPeer[];
  /** Frames a sender may have unacknowledged at this receiver (default 128). */
  credits?: number;
  maxFrameSize?: number;
  /** Ping interval, ms (default 5000). */
  heartbeatMs?: number;
  /** Drop a link with no pong for this long, ms (default 3 heartbeats). */
  deadAfterMs?: number;
  /** Redial backoff bounds, ms (default 100 .. 10000). */
  reconnect?: { minMs: number; maxMs: number };
  handshakeTimeoutMs?: number;
  /** Inbound connections at most, handshaking or linked (default 256); more are closed at once. */
  maxConnections?: number;
  /** Inbound connections from one remote address at most (default 64: nodes on one machine share 127.0.0.1). */
  maxConnectionsPerAddress?: number;
}

/** A TLS provider also tells where it listens. */
export interface TlsProvider extends Provider {
  address(): { host: string; port: number } | undefined;
  /**
   * Pins one more peer while running (a node pinned from mDNS discovery), or moves a known one
   * to a new address; dials it when it has one. Throws when the name is pinned to another key.
   */
  addPeer(peer: TlsPeer): void;
  /**
   * Pins a known peer to its new key after an endorsed rotation: the next dial and the next
   * link it opens must present that key (the link open now stays until it closes).
   */
  repin(computer: string, nodeId: string): void;
}

/**
 * A direct TLS 1.3 provider. Needs `deps.identity`.
 * @example
 * const p = tlsProvider({ computer: 'mars', port: 7401, peers: [{ computer: 'venus', nodeId, host: '10.0.0.2', port: 7401 }] })({ logger, clock, identity });
 */
export function tlsProvider(init: TlsProviderInit): (deps: ProviderDeps) => TlsProvider {
  return (deps) => new TlsLinkProvider(init, deps);
}

interface OutLink {
  peer: string;
  socket: tls.TLSSocket;
  credits: number;
  waiters: Array<() => void>;
  pings: Map<number, number>;
  nextPing: number;
  lastPong: number;
  closed: boolean;
  drained: Promise<void> | undefined;
  /** The peer granted credit: it took the link (one that does not pin our key closes it unanswered). */
  accepted: boolean;
}

/**
 * Every peer's dial loop waits on the provider's stop signal while it backs off: one listener
 * per peer, as many as the peer table holds. Without this, an 11th peer that is down printed
 * Node's "possible EventTarget memory leak" warning.
 */
function withListeners(c: AbortController): AbortController {
  setMaxListeners(0, c.signal);
  return c;
}

class TlsLinkProvider extends ProviderBase implements TlsProvider {
  readonly name = 'tls';
  readonly caps: ReadonlySet<TransportCap> = new Set(['crc32c', 'deflate', 'aead', 'reliable', 'ordered']);
  /** TLS 1.3 with pinned keys on both ends: nobody between the two nodes reads the frames. */
  readonly confidential = true;
  private readonly peersByComputer = new Map<string, TlsPeer>();
  private readonly peersByKey = new Map<string, TlsPeer>();
  private readonly outLinks = new Map<string, OutLink>();
  private readonly inSockets = new Map<string, tls.TLSSocket>();
  private readonly allSockets = new Set<tls.TLSSocket>();
  private readonly linkWaiters = new Map<string, Array<() => void>>();
  /** Per peer: ends its dial loop's backoff wait now (the peer just dialled us: it is back). */
  private readonly dialWakers = new Map<string, Set<() => void>>();
  /** Per peer, its dials failing in a row (one warning, a reminder every 10 min; the reason for send errors). */
  private readonly dialStreaks = new Map<string, FailureStreak>();
  /** A peer's key before its rotation (repin), still accepted for its links until this process restarts. */
  private readonly previousKey = new Map<string, string>();
  private readonly credits: number;
  private readonly maxFrameSize: number;
  private readonly heartbeatMs: number;
  private readonly deadAfterMs: number;
  private readonly reconnect: { minMs: number; maxMs: number };
  private readonly handshakeTimeoutMs: number;
  private readonly maxConnections: number;
  private readonly maxPerAddress: number;
  /** Every inbound TCP connection, from accept to close: counted, capped, destroyed on stop. */
  private readonly rawInbound = new Set<Socket>();
  private readonly perAddress = new Map<string, number>();
  /** Inbound connections closed because a cap was reached. */
  refusedOverCap = 0;
  private cert: NodeCertificate | undefined;
  private server: tls.Server | undefined;
  private state: 'idle' | 'started' | 'stopped' = 'idle';
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private readonly abort = withListeners(new AbortController());
  private dialLoops: Promise<void>[] = [];
  private stopHeartbeat: (() => void) | undefined;
  private deliveries = 0;

  constructor(
    private readonly init: TlsProviderInit,
    private readonly deps: ProviderDeps,
  ) {
    super('tlsProvider', deps);
    requireDeps('tlsProvider', deps, { identity: 'the node key pair' }, { code: 'TRANSPORT_MISSING_DEPENDENCY' });
    for (const p of init.peers) this.register(p);
    this.credits = init.credits ?? 128;
    this.maxFrameSize = init.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
    this.heartbeatMs = init.heartbeatMs ?? 5000;
    this.deadAfterMs = init.deadAfterMs ?? this.heartbeatMs * 3;
    this.reconnect = init.reconnect ?? { minMs: 100, maxMs: 10_000 };
    this.handshakeTimeoutMs = init.handshakeTimeoutMs ?? 10_000;
    this.maxConnections = init.maxConnections ?? 256;
    this.maxPerAddress = init.maxConnectionsPerAddress ?? 64;
  }

  private register(p: TlsPeer): void {
    const key = publicKeyFromNodeId(p.nodeId);
    if (!key)
      throw new TransportError(
        'TRANSPORT_UNKNOWN_PEER',
        `peer ${p.computer} has a malformed node id ${p.nodeId}`,
      );
    this.peersByComputer.set(p.computer, p);
    this.peersByKey.set(Buffer.from(key).toString('base64'), p);
  }

  addPeer(p: TlsPeer): void {
    const old = this.peersByComputer.get(p.computer);
    if (old && old.nodeId !== p.nodeId)
      throw new TransportError('TRANSPORT_UNKNOWN_PEER', `peer ${p.computer} is pinned to another key`);
    if (old && old.host === p.host && old.port === p.port) return;
    this.register(p);
    // Before start(), start() dials it; a dial loop for an old address ends on its own.
    if (this.state === 'started' && p.host !== undefined && p.port !== undefined) this.dialLoops.push(this.dialLoop(p));
  }

  repin(computer: string, nodeId: string): void {
    const old = this.peersByComputer.get(computer);
    if (!old || old.nodeId === nodeId) return;
    // Same address: the dial loop goes on, and dials with the current pin (see dialLoop).
    const next = { ...old, nodeId };
    this.register(next);
    // Until it restarts, the peer's certificate is still its old key's: that key stays accepted
    // for its links while this process runs (its frames are checked against the new pin anyway).
    const oldKey = publicKeyFromNodeId(old.nodeId);
    if (oldKey) this.peersByKey.set(Buffer.from(oldKey).toString('base64'), next);
    this.previousKey.set(computer, old.nodeId);
  }

  address(): { host: string; port: number } | undefined {
    const a = this.server?.address() as AddressInfo | null | undefined;
    return a ? { host: a.address, port: a.port } : undefined;
  }

  start(): Promise<void> {
    if (this.starting) return this.starting;
    this.starting = (async () => {
      this.cert = createNodeCertificate(this.deps.identity!, { now: this.deps.clock.now() });
      this.queue = new BoundedQueue(Math.max(1, this.credits * Math.max(1, this.peersByComputer.size)) + 1);
      this.state = 'started';
      if (this.init.port !== undefined) await this.listen(this.init.port);
      for (const p of this.peersByComputer.values()) {
        if (p.host !== undefined && p.port !== undefined) this.dialLoops.push(this.dialLoop(p));
      }
      this.stopHeartbeat = every(this.deps.clock, this.heartbeatMs, () => this.beat(), { unref: true });
    })();
    return this.starting;
  }

  private tlsOptions(): tls.SecureContextOptions & tls.CommonConnectionOptions {
    return {
      key: this.cert!.keyPem,
      cert: this.cert!.certPem,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      rejectUnauthorized: false,
    };
  }

  private listen(port: number): Promise<void> {
    const server = tls.createServer({
      ...this.tlsOptions(),
      requestCert: true,
      handshakeTimeout: this.handshakeTimeoutMs,
    });
    this.server = server;
    server.maxConnections = this.maxConnections + 1;
    // Before TLS: count and cap by address, so idle or half-open sockets cannot exhaust descriptors.
    server.on('connection', (raw: Socket) => {
      const addr = raw.remoteAddress ?? '?';
      const n = this.perAddress.get(addr) ?? 0;
      if (this.state !== 'started' || this.rawInbound.size >= this.maxConnections || n >= this.maxPerAddress) {
        this.refusedOverCap++;
        if (this.state === 'started') {
          const why = this.rawInbound.size >= this.maxConnections ? `${this.maxConnections} inbound connections` : `${this.maxPerAddress} inbound connections from ${addr}`;
          this.refuse(undefined, addr, 'PEER_HANDSHAKE_FAILED', `connection refused: at most ${why}`);
        }
        raw.destroy();
        return;
      }
      this.rawInbound.add(raw);
      this.perAddress.set(addr, n + 1);
      raw.once('close', () => {
        this.rawInbound.delete(raw);
        const left = (this.perAddress.get(addr) ?? 1) - 1;
        if (left <= 0) this.perAddress.delete(addr);
        else this.perAddress.set(addr, left);
      });
    });
    server.on('secureConnection', (socket) => this.onInbound(socket));
    server.on('tlsClientError', (err, socket) => {
      const msg = err.message;
      const code: RefusalCode = /protocol|version/i.test(msg)
        ? 'PEER_PROTOCOL_TOO_OLD'
        : 'PEER_HANDSHAKE_FAILED';
      this.refuse(undefined, socket.remoteAddress, code, `TLS handshake failed: ${msg}`);
      // A failed or timed-out handshake leaves nothing open.
      socket.destroy();
    });
    server.on('error', (err) => this.deps.logger.warn({ err: err.message }, 'tls server error'));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.init.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  private refuse(
    peer: string | undefined,
    remoteAddress: string | undefined,
    code: RefusalCode,
    reason: string,
    presented?: Uint8Array,
  ): void {
    this.deps.logger.warn({ peer, remoteAddress, code }, reason);
    const e: ProviderEvent = { type: 'peer.refused', peer, remoteAddress, code, reason };
    this.book.emit(presented ? { ...e, presentedFingerprint: fingerprint(presented) } : e);
  }

  /** The key the other side proved it holds (TLS 1.3 CertificateVerify), or a refusal. */
  private presentedKey(socket: tls.TLSSocket): { key: Uint8Array } | { code: RefusalCode; reason: string } {
    if (socket.getProtocol() !== 'TLSv1.3')
      return {
        code: 'PEER_PROTOCOL_TOO_OLD',
        reason: `peer negotiated ${socket.getProtocol()}, TLSv1.3 is required`,
      };
    const cert = socket.getPeerCertificate(true);
    if (!cert?.raw) return { code: 'PEER_NO_CERTIFICATE', reason: 'peer presented no certificate' };
    try {
      return { key: publicKeyFromCertificate(cert.raw) };
    } catch {
      return { code: 'PEER_BAD_CERTIFICATE', reason: 'peer certificate does not hold an Ed25519 key' };
    }
  }

  private onInbound(socket: tls.TLSSocket): void {
    if (this.state !== 'started') return void socket.destroy();
    const k = this.presentedKey(socket);
    if (!('key' in k)) {
      this.refuse(undefined, socket.remoteAddress, k.code, k.reason);
      return void socket.destroy();
    }
    const peer = this.peersByKey.get(Buffer.from(k.key).toString('base64'));
    if (!peer) {
      this.refuse(
        undefined,
        socket.remoteAddress,
        'PEER_UNKNOWN_KEY',
        `inbound connection from unpinned key ${fingerprint(k.key)}`,
        k.key,
      );
      return void socket.destroy();
    }
    this.track(socket);
    this.inSockets.get(peer.computer)?.destroy();
    this.inSockets.set(peer.computer, socket);
    this.book.emit({ type: 'peer.connected', peer: peer.computer, direction: 'inbound' });
    // The peer is back (it dialled us): our own link to it need not wait out its backoff.
    if (!this.outLinks.has(peer.computer)) for (const wake of this.dialWakers.get(peer.computer) ?? []) wake();
    const reader = new RecordReader(this.maxFrameSize + 1);
    let granted = this.credits;
    let owed = 0;
    let flushScheduled = false;
    const flushCredit = () => {
      flushScheduled = false;
      if (owed > 0 && !socket.destroyed) {
        socket.write(record(K_CREDIT, u32(owed)));
        granted += owed;
        owed = 0;
      }
    };
    socket.write(record(K_CREDIT, u32(this.credits)));
    socket.on('data', (chunk: Buffer) => {
      const recs = reader.push(chunk);
      if (typeof recs === 'string') return this.violation(socket, peer.computer, recs);
      for (const r of recs) {
        if (r.kind === K_DATA) {
          if (granted <= 0) return this.violation(socket, peer.computer, 'peer sent a frame without credit');
          granted--;
          const bytes = new Uint8Array(r.payload);
          this.book.received(peer.computer, bytes.length);
          let acked = false;
          void this.queue?.push({
            from: peer.computer,
            bytes,
            deliveryId: String(++this.deliveries),
            deliveryCount: 1,
            ack: async () => {
              if (acked) return;
              acked = true;
              owed++;
              if (!flushScheduled) {
                flushScheduled = true;
                setImmediate(flushCredit);
              }
            },
          });
        } else if (r.kind === K_PING) {
          socket.write(record(K_PONG, r.payload));
        } else {
          return this.violation(socket, peer.computer, `unexpected record kind ${r.kind} on an inbound link`);
        }
      }
    });
    socket.on('close', () => {
      if (this.inSockets.get(peer.computer) === socket) this.inSockets.delete(peer.computer);
      if (this.state === 'started')
        this.book.emit({
          type: 'peer.disconnected',
          peer: peer.computer,
          reason: 'closed',
          direction: 'inbound',
        });
    });
  }

  private violation(socket: tls.TLSSocket, peer: string, message: string): void {
    this.book.emit({ type: 'fatal', peer, message: `protocol violation: ${message}` });
    socket.destroy();
  }

  private track(socket: tls.TLSSocket): void {
    // Frames are small and latency matters: no Nagle delay (with delayed ACKs it adds ~40 ms).
    socket.setNoDelay(true);
    this.allSockets.add(socket);
    socket.on('error', (err) => this.deps.logger.debug({ err: err.message }, 'tls socket error'));
    socket.on('close', () => this.allSockets.delete(socket));
  }

  private async dialLoop(peer: TlsPeer): Promise<void> {
    let backoff = this.reconnect.minMs;
    // Until stop, or until addPeer() gave this peer another address; each dial with the pin
    // the peer has now (repin() after a key rotation keeps the address and so the loop).
    const current = () => {
      const now = this.peersByComputer.get(peer.computer);
      return now && now.host === peer.host && now.port === peer.port ? now : undefined;
    };
    const streak = new FailureStreak(`dialling peer ${peer.computer} at ${peer.host}:${peer.port}`, this.deps.logger, this.deps.clock, 'what goes to it waits in the outbox', 600_000);
    this.dialStreaks.set(peer.computer, streak);
    for (let now = current(); this.state === 'started' && now !== undefined; now = current()) {
      let link: OutLink | undefined;
      try {
        link = await this.dial(now);
        const opened = link;
        await new Promise<void>((r) => opened.socket.once('close', () => r()));
        // Only a link the peer took starts the backoff again: one that pins another key for us
        // closes each link right after the handshake, and a reset here redialled it 10 times a second.
        if (opened.accepted) backoff = this.reconnect.minMs;
        else streak.failed(`${peer.computer} closed the link right after the handshake, unanswered: it may not pin this node's key (${fingerprint(this.deps.identity!.publicKey)})`);
      } catch (err) {
        if (this.state === 'started') streak.failed((err as Error).message);
      }
      if (this.state !== 'started') return;
      const wait = withListeners(new AbortController());
      const onStop = () => wait.abort();
      this.abort.signal.addEventListener('abort', onStop, { once: true });
      let woken = false;
      const wake = () => {
        woken = true;
        wait.abort();
      };
      const wakers = this.dialWakers.get(peer.computer) ?? new Set();
      this.dialWakers.set(peer.computer, wakers.add(wake));
      try {
        await sleep(backoff + Math.floor(Math.random() * backoff * 0.2), wait.signal, this.deps.clock);
      } catch {
        // woken or stopped: the loop's condition tells which
      } finally {
        this.abort.signal.removeEventListener('abort', onStop);
        wakers.delete(wake);
        if (wakers.size === 0) this.dialWakers.delete(peer.computer);
      }
      if (this.state !== 'started') return;
      backoff = woken ? this.reconnect.minMs : Math.min(backoff * 2, this.reconnect.maxMs);
    }
  }

  private dial(peer: TlsPeer): Promise<OutLink> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        ...this.tlsOptions(),
        host: peer.host,
        port: peer.port,
        // The certificate is self-signed: skip name checks here and compare the key below.
        checkServerIdentity: () => undefined,
      });
      this.track(socket);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error('TLS handshake timed out'));
      }, this.handshakeTimeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('close', () => {
        clearTimeout(timer);
        reject(new Error('connection closed during handshake'));
      });
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        const k = this.presentedKey(socket);
        const pinned = publicKeyFromNodeId(peer.nodeId)!;
        const previous = this.previousKey.has(peer.computer) ? publicKeyFromNodeId(this.previousKey.get(peer.computer) as string) : undefined;
        if (!('key' in k)) {
          this.refuse(peer.computer, socket.remoteAddress, k.code, k.reason);
          socket.destroy();
          return reject(new Error(k.reason));
        }
        if (!Buffer.from(k.key).equals(Buffer.from(pinned)) && !(previous && Buffer.from(k.key).equals(Buffer.from(previous)))) {
          this.refuse(
            peer.computer,
            socket.remoteAddress,
            'PEER_KEY_MISMATCH',
            `${peer.computer} at ${peer.host}:${peer.port} presented key ${fingerprint(k.key)}, pinned key is ${fingerprint(pinned)}`,
            k.key,
          );
          socket.destroy();
          return reject(new Error('key mismatch'));
        }
        if (this.state !== 'started') {
          socket.destroy();
          return reject(new Error('stopped'));
        }
        resolve(this.openOutLink(peer, socket));
      });
    });
  }

  private openOutLink(peer: TlsPeer, socket: tls.TLSSocket): OutLink {
    const link: OutLink = {
      peer: peer.computer,
      socket,
      credits: 0,
      waiters: [],
      pings: new Map(),
      nextPing: 1,
      lastPong: this.deps.clock.now(),
      closed: false,
      drained: undefined,
      accepted: false,
    };
    this.outLinks.get(peer.computer)?.socket.destroy();
    this.outLinks.set(peer.computer, link);
    const reader = new RecordReader(64);
    const wake = () => {
      for (const w of link.waiters.splice(0)) w();
    };
    socket.on('data', (chunk: Buffer) => {
      const recs = reader.push(chunk);
      if (typeof recs === 'string') return this.violation(socket, peer.computer, recs);
      for (const r of recs) {
        if (r.kind === K_CREDIT && r.payload.length === 4) {
          link.credits += r.payload.readUInt32BE(0);
          if (!link.accepted) {
            link.accepted = true;
            // The peer took the link: a streak of failed dials ends here, not when it closes.
            this.dialStreaks.get(peer.computer)?.succeeded();
          }
          wake();
        } else if (r.kind === K_PONG && r.payload.length === 4) {
          const sentAt = link.pings.get(r.payload.readUInt32BE(0));
          link.lastPong = this.deps.clock.now();
          if (sentAt !== undefined) {
            link.pings.delete(r.payload.readUInt32BE(0));
            this.book.of(peer.computer).rttMs = link.lastPong - sentAt;
          }
        } else {
          return this.violation(
            socket,
            peer.computer,
            `unexpected record kind ${r.kind} on an outbound link`,
          );
        }
      }
    });
    socket.on('close', () => {
      link.closed = true;
      wake();
      if (this.outLinks.get(peer.computer) === link) this.outLinks.delete(peer.computer);
      if (this.state === 'started')
        this.book.emit({
          type: 'peer.disconnected',
          peer: peer.computer,
          reason: 'closed',
          direction: 'outbound',
        });
    });
    this.book.emit({ type: 'peer.connected', peer: peer.computer, direction: 'outbound' });
    this.ping(link);
    for (const w of this.linkWaiters.get(peer.computer)?.splice(0) ?? []) w();
    return link;
  }

  private ping(link: OutLink): void {
    const id = link.nextPing++ >>> 0;
    link.pings.set(id, this.deps.clock.now());
    if (link.pings.size > 16) link.pings.delete(link.pings.keys().next().value as number);
    link.socket.write(record(K_PING, u32(id)));
  }

  private beat(): void {
    const now = this.deps.clock.now();
    for (const link of this.outLinks.values()) {
      if (now - link.lastPong > this.deadAfterMs) {
        this.book.emit({
          type: 'fatal',
          peer: link.peer,
          message: `no pong for ${now - link.lastPong} ms; reconnecting`,
        });
        link.socket.destroy();
      } else {
        this.ping(link);
      }
    }
  }

  async send(peer: string, bytes: Uint8Array, opts?: { signal?: AbortSignal }): Promise<void> {
    const signal = opts?.signal;
    this.assertCanSend('tls', this.state, bytes, this.maxFrameSize, signal);
    if (!this.peersByComputer.has(peer))
      throw new TransportError('TRANSPORT_UNKNOWN_PEER', `no pinned TLS peer named ${peer}`);
    const link = this.outLinks.get(peer);
    if (!link) {
      const why = this.dialStreaks.get(peer)?.state();
      throw new TransportError('TRANSPORT_PEER_UNAVAILABLE', `no link to ${peer} right now${why ? ` (dialling it fails: ${why.lastError})` : ''}`);
    }
    if (link.credits <= 0) {
      this.book.emit({ type: 'backpressure', peer, active: true });
      try {
        while (link.credits <= 0 && !link.closed) {
          if (signal?.aborted)
            throw new TransportError('TRANSPORT_ABORTED', 'send aborted', { cause: signal.reason });
          if (this.state !== 'started') throw new TransportError('TRANSPORT_STOPPED', 'tls provider stopped');
          await new Promise<void>((r) => {
            link.waiters.push(r);
            signal?.addEventListener('abort', () => r(), { once: true });
          });
        }
      } finally {
        this.book.emit({ type: 'backpressure', peer, active: false });
      }
    }
    if (link.closed) throw new TransportError('TRANSPORT_PEER_UNAVAILABLE', `link to ${peer} closed`);
    link.credits--;
    const ok = link.socket.write(record(K_DATA, bytes));
    this.book.sent(peer, bytes.length);
    if (!ok) {
      // One shared wait per link, so many concurrent senders do not pile up listeners.
      link.drained ??= new Promise<void>((r) => {
        const done = () => {
          link.socket.off('drain', done);
          link.socket.off('close', done);
          link.drained = undefined;
          r();
        };
        link.socket.on('drain', done);
        link.socket.on('close', done);
      });
      await link.drained;
    }
  }

  async waitForPeer(peer: string, opts?: { signal?: AbortSignal; timeoutMs?: number }): Promise<void> {
    if (this.outLinks.has(peer)) return;
    if (!this.peersByComputer.has(peer))
      throw new TransportError('TRANSPORT_UNKNOWN_PEER', `no pinned TLS peer named ${peer}`);
    await new Promise<void>((resolve, reject) => {
      const list = this.linkWaiters.get(peer) ?? [];
      this.linkWaiters.set(peer, list);
      const done = () => {
        clearTimeout(t);
        resolve();
      };
      const t = setTimeout(() => {
        const i = list.indexOf(done);
        if (i >= 0) list.splice(i, 1);
        reject(
          new TransportError(
            'TRANSPORT_PEER_UNAVAILABLE',
            `no link to ${peer} within ${opts?.timeoutMs ?? 30_000} ms`,
          ),
        );
      }, opts?.timeoutMs ?? 30_000);
      opts?.signal?.addEventListener('abort', () => {
        clearTimeout(t);
        reject(new TransportError('TRANSPORT_ABORTED', 'wait aborted'));
      });
      list.push(done);
    });
  }

  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      await this.starting?.catch(() => undefined);
      this.state = 'stopped';
      this.abort.abort();
      this.stopHeartbeat?.();
      for (const l of this.outLinks.values()) {
        l.closed = true;
        for (const w of l.waiters.splice(0)) w();
      }
      for (const s of this.allSockets) s.destroy();
      // Half-open and handshaking connections too: server.close() would wait for them.
      for (const s of this.rawInbound) s.destroy();
      this.queue?.close();
      if (this.server) await new Promise<void>((r) => this.server!.close(() => r()));
      await Promise.all(this.dialLoops);
    })();
    return this.stopping;
  }
}
