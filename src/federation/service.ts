/**
 * The federation organs of one node: its mounts (records), link health and telemetry, the
 * mirror organ and the invoke organ. Made by the daemon when the mesh is on.
 */
import { FEDERATION_EVENTS } from '../catalog/index.js';
import { WeftError } from '../errors/index.js';
import { type MountCaps, negotiateCaps, type ProviderEvent, type TransportCap } from '../transport/index.js';
import { type InvokeInit, InvokeOrgan } from './invoke.js';
import { type MirrorInit, MirrorOrgan } from './mirror.js';
import { checkMountSpec, MountBook, type MountNegotiation, type MountRecord, type MountSpec, parseMountKey } from './mounts.js';
import type { OrganDeps } from './ports.js';

export interface FederationInit {
  invoke: InvokeInit;
  mirror: MirrorInit;
}

/** What a mode needs from the provider beyond serializer caps. */
const MODE_NEEDS: Record<MountRecord['mode'], TransportCap[]> = {
  link: ['reliable'],
  mirror: ['reliable'],
  invoke: ['reliable', 'ordered'],
};

/** A provider event a person should hear of, at most once a minute per peer and kind. */
const QUIET_MS = 60_000;

export class FederationService {
  readonly mounts: MountBook;
  readonly mirror: MirrorOrgan;
  readonly invoke: InvokeOrgan;
  private readonly deps: OrganDeps;
  private unsubs: Array<() => void> = [];
  private readonly lastRaised = new Map<string, number>();
  private readonly bpCounts = new Map<string, number>();
  /** The last change queued per mount key (see serial). */
  private readonly locks = new Map<string, Promise<void>>();
  private stopping: Promise<void> | undefined;

  constructor(
    init: FederationInit,
    deps: Omit<OrganDeps, 'mounts'>,
  ) {
    this.mounts = new MountBook(deps.node.ns.store, deps.clock);
    this.deps = { ...deps, mounts: this.mounts };
    this.mirror = new MirrorOrgan(init.mirror, this.deps);
    this.invoke = new InvokeOrgan(init.invoke, this.deps);
  }

  /** Records the mesh's links as link mounts, serves mirrors and invokes, resumes open mirror mounts. */
  async start(): Promise<void> {
    const { mesh, peers } = this.deps;
    this.unsubs.push(mesh.provider.on((e) => this.onProviderEvent(e)));
    for (const p of peers.getAllPeers()) if (p.wire !== 'teleclaude') await this.recordLink(p.computer);
    this.unsubs.push(peers.onAdded((p) => (p.wire !== 'teleclaude' ? void this.recordLink(p.computer) : undefined)));
    this.mirror.serve();
    this.invoke.start();
    for (const m of this.mounts.list({ mode: 'mirror', includeClosed: false })) {
      if (m.state === 'open') this.mirror.start(m);
    }
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const u of this.unsubs) u();
      await this.invoke.stop();
      await this.mirror.close();
    })();
    return this.stopping;
  }

  /**
   * Creates (or reopens) a mount: negotiates caps against the provider and what the peer
   * announced, records the result, raises transport.noprov / transport.flatneg and
   * federation.mount.opened, and starts a mirror mount's pulling.
   * @throws WeftError WEFT_VALIDATION for a bad spec, WEFT_NOT_FOUND for an unknown peer.
   */
  async openMount(spec: MountSpec): Promise<MountRecord> {
    checkMountSpec(spec);
    return this.serial(`${spec.peer}/${spec.mode}/${spec.name ?? 'main'}`, () => this.openMountNow(spec));
  }

  /**
   * Runs changes of one mount one after another: an open racing a close (or two opens) must
   * not leave a puller running under a closed record, or two pullers on one token.
   */
  private serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(key, tail);
    void tail.then(() => {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    });
    return run;
  }

  private async openMountNow(spec: MountSpec): Promise<MountRecord> {
    const { peers, node } = this.deps;
    const peer = peers.byName(spec.peer);
    if (!peer || peer.wire === 'teleclaude') throw new WeftError('WEFT_NOT_FOUND', `no Weft peer named '${spec.peer}' (see 'weft peers list')`);
    const n = this.negotiate(spec);
    const existing = this.mounts.get(`${spec.peer}/${spec.mode}/${spec.name ?? 'main'}`);
    if (existing?.mode === 'mirror') await this.mirror.stop(existing.id);
    const rec = await this.mounts.save(spec, n.negotiation);
    if (n.negotiation.state === 'noprov') {
      await node.emit({ event: 'transport.noprov', payload: { peer: spec.peer, required: n.missing, reason: n.negotiation.error ?? 'no provider' } }).catch(() => undefined);
      return rec;
    }
    if (n.dropped.length > 0 && spec.warnDown !== false) {
      await node.emit({ event: 'transport.flatneg', payload: { peer: spec.peer, missing: n.dropped } }).catch(() => undefined);
    }
    await node
      .emit({ event: FEDERATION_EVENTS.mountOpened, payload: { mount: rec.key, peer: rec.peer, mode: rec.mode, provider: rec.provider ?? '', serializer: { ...rec.serializer } } })
      .catch(() => undefined);
    await this.deps.audit.record('mount.opened', rec.peer, { mount: rec.key, provider: rec.provider, serializer: rec.serializer }, true).catch(() => undefined);
    if (rec.mode === 'mirror') this.mirror.start(rec);
    return rec;
  }

  /** Closes a mount; the record stays (reopen with openMount). */
  async closeMount(key: string, reason = 'closed by the user'): Promise<MountRecord> {
    const k = parseMountKey(key);
    return this.serial(`${k.peer}/${k.mode}/${k.name}`, () => this.closeMountNow(`${k.peer}/${k.mode}/${k.name}`, reason));
  }

  private async closeMountNow(key: string, reason: string): Promise<MountRecord> {
    const rec = this.mounts.get(key);
    if (!rec) throw new WeftError('WEFT_NOT_FOUND', `no mount '${key}' (see 'weft mounts list')`);
    if (rec.mode === 'mirror') await this.mirror.stop(rec.id);
    await this.mounts.setState(rec.id, 'closed');
    await this.deps.node.emit({ event: FEDERATION_EVENTS.mountClosed, payload: { mount: rec.key, peer: rec.peer, mode: rec.mode, reason } }).catch(() => undefined);
    await this.deps.audit.record('mount.closed', rec.peer, { mount: rec.key, reason }, true).catch(() => undefined);
    return this.mounts.get(key) as MountRecord;
  }

  /** Every mount with its live telemetry (the provider's link counters, the mirror's figures). */
  listMounts(opts: { mode?: MountRecord['mode']; peer?: string; includeClosed?: boolean } = {}): Array<MountRecord & { live?: Record<string, unknown> }> {
    return this.mounts.list(opts).map((m) => this.withLive(m));
  }

  /** The provider catalog (the seed's /net/transports): this node's provider and its caps. */
  transports(): Array<{ provider: string; caps: string[] }> {
    const p = this.deps.mesh.provider;
    return [{ provider: p.name, caps: [...p.caps] }];
  }

  showMount(key: string): MountRecord & { live?: Record<string, unknown> } {
    parseMountKey(key);
    const rec = this.mounts.get(key);
    if (!rec) throw new WeftError('WEFT_NOT_FOUND', `no mount '${key}' (see 'weft mounts list')`);
    return this.withLive(rec);
  }

  private withLive(m: MountRecord): MountRecord & { live?: Record<string, unknown> } {
    const link = this.deps.mesh.provider.telemetry().find((t) => t.peer === m.peer);
    const live: Record<string, unknown> = {};
    if (link) {
      Object.assign(live, {
        frame_count: link.framesSent + link.framesReceived,
        ready_count: link.readyCount,
        bp_count: link.bpCount,
        bp_flag: link.bpFlag,
        fatal_count: link.fatalCount,
        last_event: link.lastEvent ?? null,
        last_event_at: link.lastEventAt ?? null,
        rtt_ms: link.rttMs ?? null,
      });
    }
    if (m.mode === 'mirror') Object.assign(live, this.mirror.status(m.id) ?? { active: false });
    return Object.keys(live).length > 0 ? { ...m, live } : m;
  }

  /** The negotiation of a mount: required caps must be offered; preferred ones are kept where offered. */
  private negotiate(spec: MountSpec): { negotiation: MountNegotiation; missing: string[]; dropped: string[] } {
    const { mesh } = this.deps;
    const offered = mesh.offeredCaps(spec.peer);
    const provider = mesh.provider.name;
    const need = MODE_NEEDS[spec.mode];
    const lacking = need.filter((c) => !offered.includes(c));
    if (spec.updLatest) {
      const error = `upd_latest asks for an unreliable provider and ${provider} is reliable: no provider for ${spec.peer}`;
      return { negotiation: { provider: null, provCaps: offered, caps: undefined, state: 'noprov', error }, missing: ['unreliable'], dropped: [] };
    }
    if (lacking.length > 0) {
      const error = `a ${spec.mode} mount needs ${need.join(' and ')}; ${provider} to ${spec.peer} lacks ${lacking.join(', ')}`;
      return { negotiation: { provider: null, provCaps: offered, caps: undefined, state: 'noprov', error }, missing: lacking, dropped: [] };
    }
    const caps: MountCaps = {
      ...(spec.required ? { required: spec.required } : {}),
      preferred: spec.preferred ?? ['crc32c'],
      ...(spec.warnDown === false ? { warnDown: false } : {}),
    };
    // A mount's frames ride the peer's link: aead is only there when the link seals (or its channel is confidential).
    const link = spec.mode === 'link' ? undefined : mesh.linkCaps(spec.peer);
    const sealable = mesh.provider.confidential === true || link === undefined || (link !== 'noprov' && link.aead);
    const usable = sealable ? offered : offered.filter((c) => c !== 'aead');
    const n = negotiateCaps(spec.peer, caps, [{ provider, caps: usable }]);
    if (!n.ok) {
      const why = sealable ? n.event.message : `${n.event.message}; the link to ${spec.peer} does not seal its frames (see mesh.caps_preferred)`;
      return { negotiation: { provider: null, provCaps: offered, caps: undefined, state: 'noprov', error: why }, missing: n.event.missing, dropped: [] };
    }
    const dropped = n.events.flatMap((e) => (e.type === 'transport.flatneg' ? e.dropped : []));
    return { negotiation: { provider: n.provider, provCaps: offered, caps: n.caps, state: 'open', error: null }, missing: [], dropped };
  }

  /** The mesh's link to a peer as a `peer/link/main` record (refreshed at each start). */
  private async recordLink(computer: string): Promise<void> {
    try {
      const caps = this.deps.mesh.linkMountCaps();
      const spec: MountSpec = {
        peer: computer,
        mode: 'link',
        name: 'main',
        ...(caps.required ? { required: caps.required } : {}),
        ...(caps.preferred ? { preferred: caps.preferred } : {}),
        ...(caps.warnDown === false ? { warnDown: false } : {}),
      };
      const existing = this.mounts.get(`${computer}/link/main`);
      if (existing?.state === 'closed') return;
      await this.mounts.save(spec, this.negotiate(spec).negotiation);
    } catch (err) {
      this.deps.logger.warn({ peer: computer, err: (err as Error).message }, 'link mount not recorded');
    }
  }

  /** tp_backpr and tp_fatal as events (at most one a minute per peer), and the link's telemetry. */
  private onProviderEvent(e: ProviderEvent): void {
    const now = this.deps.clock.now();
    const quiet = (key: string): boolean => {
      const last = this.lastRaised.get(key);
      if (last !== undefined && now - last < QUIET_MS) return true;
      this.lastRaised.set(key, now);
      if (this.lastRaised.size > 10_000) this.lastRaised.clear();
      return false;
    };
    if (e.type === 'backpressure') {
      const count = (this.bpCounts.get(e.peer) ?? 0) + (e.active ? 1 : 0);
      if (this.bpCounts.size < 10_000 || this.bpCounts.has(e.peer)) this.bpCounts.set(e.peer, count);
      if (e.active && !quiet(`bp|${e.peer}`)) {
        void this.deps.node.emit({ event: FEDERATION_EVENTS.backpressure, payload: { peer: e.peer, active: true, count } }).catch(() => undefined);
      }
    } else if (e.type === 'fatal') {
      if (!quiet(`fatal|${e.peer ?? ''}|${e.message}`)) {
        void this.deps.node
          .emit({ event: FEDERATION_EVENTS.fatal, payload: { ...(e.peer ? { peer: e.peer } : {}), message: e.message.slice(0, 2000) } })
          .catch(() => undefined);
      }
    }
    const peer = 'peer' in e ? e.peer : undefined;
    if (!peer) return;
    const link = this.mounts.get(`${peer}/link/main`);
    if (link) void this.mounts.setTelemetry(link.id, { last_event: e.type, last_event_at: now, last_mode: 'link' }).catch(() => undefined);
  }
}
