/**
 * mDNS discovery on the local link (Caro's `enable_mdns`): this node announces `_weft._tcp` on
 * its TLS port with a TXT record (computer, cluster, node id, fingerprint, protocol version)
 * and browses for the others. What it finds are candidates (mdns-candidates.ts), never peers:
 * no trust and no events until a human pins one or subnet policy admits it.
 *
 * The library (bonjour-service) is imported only when `start()` runs, so a node with mDNS off
 * never loads it. Announcements are untrusted input: each field is checked, the fingerprint
 * must be the node id's, our own are dropped, and refusals are recorded (origin `mdns`): one
 * record per announcer a minute at most, `maxRefusalsPerMinute` records a minute in all, and
 * one summary record a minute counting the rest, so a flood costs few writes and cannot push
 * other refusals out of the rejection log.
 */
import { isIP } from 'node:net';
import { fingerprintOfNodeId, isNodeId } from '../identity/index.js';
import { type Clock, every, type Logger } from '../util/index.js';
import type { CandidateSighting, SightingOutcome } from './mdns-candidates.js';

/** The DNS-SD service type: `_weft._tcp`. */
export const MDNS_SERVICE = 'weft';
/** The TXT `proto` this node speaks; announcements of other versions are refused. */
export const MDNS_PROTO_VERSION = '1';

const COMPUTER = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const CLUSTER = /^[A-Za-z0-9._-]{1,63}$/;
const FINGERPRINT = /^[0-9a-f]{16}$/;
const MAX_ADDRESSES = 16;
/** Announcers remembered for the once-a-minute refusal throttle, at most. */
const MAX_REFUSED_REFS = 256;
/** Sources named in a summary of the refusals not recorded one by one, at most. */
const MAX_SUMMARY_SOURCES = 8;

/** What a node puts in its TXT record. */
export interface MdnsSelf {
  computer: string;
  cluster?: string;
  nodeId: string;
  fingerprint: string;
}

/**
 * The TXT record of this node.
 * @example
 * announcementTxt({ computer: 'mars', nodeId, fingerprint }) // { proto: '1', computer: 'mars', nodeid: nodeId, fp: fingerprint }
 */
export function announcementTxt(self: MdnsSelf): Record<string, string> {
  return {
    proto: MDNS_PROTO_VERSION,
    computer: self.computer,
    ...(self.cluster ? { cluster: self.cluster } : {}),
    nodeid: self.nodeId,
    fp: self.fingerprint,
  };
}

/** One service as the mDNS library reports it (only the fields read here). */
export interface MdnsServiceRecord {
  name?: unknown;
  fqdn?: unknown;
  port?: unknown;
  txt?: unknown;
  /** A and AAAA records of its host. */
  addresses?: unknown;
  /** Where the response came from. */
  referer?: { address?: unknown } | undefined;
}

/** A checked announcement, or why it was refused and which field failed. */
export type ParsedAnnouncement = { ok: true; sighting: CandidateSighting } | { ok: false; field: string; reason: string };

/**
 * Checks an announcement: TXT `proto` = 1, `computer` a node name (at most 63 characters),
 * optional `cluster`, `nodeid` a `weft:ed25519` id, `fp` its fingerprint, SRV port 1..65535.
 * Addresses: the one the response came from first, then the A/AAAA records; loopback,
 * unspecified, multicast and IPv6 link-local (no scope to dial) are left out; at most 16.
 * @example
 * parseAnnouncement({ port: 9238, txt: { proto: '1', computer: 'venus', nodeid, fp }, addresses: ['10.0.0.2'], referer: { address: '10.0.0.2' } })
 * // { ok: true, sighting: { computer: 'venus', nodeId: nodeid, fingerprint: fp, addresses: ['10.0.0.2:9238'], observed: '10.0.0.2', via: 'mdns' } }
 */
export function parseAnnouncement(s: MdnsServiceRecord): ParsedAnnouncement {
  const txt = s.txt;
  if (typeof txt !== 'object' || txt === null || Array.isArray(txt)) return { ok: false, field: 'txt', reason: 'no TXT record' };
  // DNS-SD keys are case-insensitive; read only the ones we know, as own properties.
  const fields = new Map<string, unknown>();
  for (const [k, v] of Object.entries(txt as Record<string, unknown>)) fields.set(k.toLowerCase(), v);
  const str = (k: string) => {
    const v = fields.get(k);
    return typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('utf8') : undefined;
  };
  const proto = str('proto');
  if (proto !== MDNS_PROTO_VERSION) return { ok: false, field: 'txt.proto', reason: proto === undefined ? 'no protocol version' : `protocol version '${proto.slice(0, 20)}' is not ${MDNS_PROTO_VERSION}` };
  const computer = str('computer');
  if (!computer || !COMPUTER.test(computer)) return { ok: false, field: 'txt.computer', reason: 'not a computer name (letters, digits, . _ -, at most 63)' };
  const cluster = str('cluster');
  if (cluster !== undefined && cluster !== '' && !CLUSTER.test(cluster)) return { ok: false, field: 'txt.cluster', reason: 'not a cluster name (letters, digits, . _ -, at most 63)' };
  const nodeId = str('nodeid');
  if (!nodeId || nodeId.length > 200 || !isNodeId(nodeId)) return { ok: false, field: 'txt.nodeid', reason: 'not a weft:ed25519 node id' };
  const fp = str('fp')?.toLowerCase();
  if (!fp || !FINGERPRINT.test(fp)) return { ok: false, field: 'txt.fp', reason: 'not a fingerprint (16 hex digits)' };
  if (fingerprintOfNodeId(nodeId) !== fp) return { ok: false, field: 'txt.fp', reason: `fingerprint ${fp} is not the node id's (${fingerprintOfNodeId(nodeId)})` };
  const port = s.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return { ok: false, field: 'srv.port', reason: 'port is not 1..65535' };
  const observed = typeof s.referer?.address === 'string' && dialable(s.referer.address) ? s.referer.address : undefined;
  const records = Array.isArray(s.addresses) ? s.addresses.slice(0, 64).filter((a): a is string => typeof a === 'string' && dialable(a)) : [];
  const hosts = [...new Set([...(observed ? [observed] : []), ...records])].slice(0, MAX_ADDRESSES);
  return {
    ok: true,
    sighting: {
      computer,
      ...(cluster ? { cluster } : {}),
      nodeId,
      fingerprint: fp,
      addresses: hosts.map((h) => (isIP(h) === 6 ? `[${h}]:${port}` : `${h}:${port}`)),
      ...(observed ? { observed } : {}),
      via: 'mdns',
    },
  };
}

/** An IP a peer elsewhere could dial: not loopback, unspecified, multicast or IPv6 link-local. */
function dialable(ip: string): boolean {
  const kind = isIP(ip);
  if (kind === 4) return !/^(127\.|0\.|22[4-9]\.|2[3-5]\d\.)/.test(ip);
  if (kind === 6) return !/^(::1?$|fe[89ab][0-9a-f]:|ff)/i.test(ip);
  return false;
}

/** The few calls of an mDNS engine used here (bonjour-service's, or a fake in tests). */
export interface MdnsEngine {
  publish(o: { name: string; type: string; port: number; host?: string; txt: Record<string, string>; probe?: boolean }): unknown;
  find(o: { type: string }): MdnsBrowser;
  unpublishAll(cb?: () => void): void;
  destroy(cb?: () => void): void;
}
export interface MdnsBrowser {
  on(event: 'up' | 'srv-update' | 'txt-update', fn: (s: MdnsServiceRecord) => void): unknown;
  stop(): void;
}
/** Makes an engine; socket and send errors go to `on` (they never throw into the node). */
export type MdnsEngineFactory = (opts: { interface?: string }, on: { error(err: Error): void; warning(err: Error): void }) => MdnsEngine;

export interface MdnsInit {
  self: MdnsSelf;
  /** The TLS listener's port, announced in the SRV record. */
  port: number;
  /** Multicast on this interface address (default: the system's choice). */
  interface?: string;
  /** The network is asked again this often, ms (default 30 s); a browse starts afresh each time. */
  refreshMs?: number;
  /**
   * Refused announcements recorded one by one per minute at most, all announcers together
   * (default 10); the rest are counted in one summary record a minute.
   */
  maxRefusalsPerMinute?: number;
}

export interface MdnsDeps {
  /** Where checked sightings go. */
  candidates: { seen(s: CandidateSighting): Promise<SightingOutcome> };
  /**
   * Records a refused announcement (listable: `weft rejections list --origin mdns`). `code` is
   * `MDNS_ANNOUNCEMENTS_SUPPRESSED` for the summary of those not recorded one by one,
   * `MDNS_CANDIDATES_DROPPED` for the minute's summary of valid announcements the candidate book
   * did not take (over its new-candidate budget), else absent.
   */
  reject?: (r: { ref: string; field: string; reason: string; raw: string; code?: string }) => Promise<void>;
  /** The engine; default bonjour-service, imported on start. */
  engine?: MdnsEngineFactory;
  clock: Clock;
  logger: Logger;
}

/**
 * Announces this node and browses for others.
 * @example
 * const mdns = new MdnsDiscovery({ self, port: 9238 }, { candidates, clock, logger });
 * await mdns.start(); ... await mdns.stop();
 */
export class MdnsDiscovery {
  private engine: MdnsEngine | undefined;
  private browser: MdnsBrowser | undefined;
  private stopRefresh: (() => void) | undefined;
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  /** Refusals recorded, by ref (oldest first, at most MAX_REFUSED_REFS), so a repeated bad announcement writes at most once a minute. */
  private readonly refused = new Map<string, number>();
  /** This minute's refusals: recorded one by one, and the rest, counted for the summary. */
  private refusals = { start: 0, recorded: 0, suppressed: 0, sources: new Set<string>(), dropped: 0, droppedFrom: new Set<string>() };
  private readonly maxRefusalsPerMinute: number;
  private readonly errorsSeen = new Set<string>();
  /** `suppressed`: refusals over the per-minute budget, counted in summaries instead of recorded. */
  readonly stats = { announcements: 0, refused: 0, own: 0, errors: 0, suppressed: 0, summaries: 0, dropped: 0 };

  constructor(
    private readonly init: MdnsInit,
    private readonly deps: MdnsDeps,
  ) {
    this.maxRefusalsPerMinute = init.maxRefusalsPerMinute ?? 10;
  }

  /** Loads the library, announces, browses. Idempotent. */
  start(): Promise<void> {
    this.starting ??= (async () => {
      const factory = this.deps.engine ?? (await bonjourEngine());
      if (this.stopping) return;
      const engine = factory(this.init.interface ? { interface: this.init.interface } : {}, {
        error: (err) => this.failed(err, 'warn'),
        // Undecodable packets and transient send errors: a busy or odd network, not this node's fault.
        warning: (err) => this.failed(err, 'debug'),
      });
      this.engine = engine;
      const { self, port } = this.init;
      engine.publish({
        // Unique on the link without probing for it: the fingerprint is in the name.
        name: `${self.computer.slice(0, 40)}-${self.fingerprint}`,
        type: MDNS_SERVICE,
        port,
        host: `weft-${self.fingerprint}.local`,
        txt: announcementTxt(self),
      });
      this.browse();
      const stopBrowse = every(this.deps.clock, this.init.refreshMs ?? 30_000, () => this.browse(), { unref: true });
      // The summary of a minute's unrecorded refusals is written when the minute is over, flood or not.
      const stopSummary = every(this.deps.clock, 60_000, () => void this.summarize(this.deps.clock.now(), false), { unref: true });
      this.stopRefresh = () => {
        stopBrowse();
        stopSummary();
      };
      this.deps.logger.info({ port, fingerprint: self.fingerprint }, 'mDNS: announcing _weft._tcp and browsing for other nodes');
    })();
    return this.starting;
  }

  /** Says goodbye (TTL 0 records) and closes the socket. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.starting?.catch(() => undefined);
      this.stopRefresh?.();
      this.browser?.stop();
      await this.summarize(this.deps.clock.now(), true);
      const e = this.engine;
      if (!e) return;
      await withinMs(1000, (done) => e.unpublishAll(done));
      await withinMs(1000, (done) => e.destroy(done));
    })();
    return this.stopping;
  }

  /** Each distinct error once at `level`, repeats at debug (a missing multicast route fails every send). */
  private failed(err: Error, level: 'warn' | 'debug'): void {
    this.stats.errors++;
    const seen = this.errorsSeen.has(err.message);
    if (!seen && this.errorsSeen.size < 100) this.errorsSeen.add(err.message);
    this.deps.logger[seen ? 'debug' : level]({ err: err.message }, 'mDNS error');
  }

  /** A fresh browse: the query goes out again and every answer is a sighting (the old browser's state is dropped, so it stays bounded). */
  private browse(): void {
    if (!this.engine || this.stopping) return;
    this.browser?.stop();
    const b = this.engine.find({ type: MDNS_SERVICE });
    const on = (s: MdnsServiceRecord) => void this.onService(s);
    b.on('up', on);
    b.on('srv-update', on);
    b.on('txt-update', on);
    this.browser = b;
  }

  private async onService(s: MdnsServiceRecord): Promise<void> {
    if (this.stopping) return;
    this.stats.announcements++;
    const p = parseAnnouncement(s);
    if (!p.ok) return this.refuse(s, p.field, p.reason);
    if (p.sighting.fingerprint === this.init.self.fingerprint) {
      this.stats.own++;
      return;
    }
    const outcome = await this.deps.candidates.seen(p.sighting);
    if (outcome === 'dropped') {
      // Valid, but not recorded (over the new-candidate budget): counted for the minute's summary record.
      this.stats.dropped++;
      const now = this.deps.clock.now();
      await this.summarize(now, false);
      const w = this.refusals;
      w.dropped++;
      if (w.droppedFrom.size < MAX_SUMMARY_SOURCES) w.droppedFrom.add(`${p.sighting.computer}@${p.sighting.observed ?? '?'}`);
    }
  }

  /**
   * Records a refusal: the same ref (name and source, both the announcer's choice) at most
   * once a minute, and at most `maxRefusalsPerMinute` records a minute in all; the rest are
   * counted and summed up in one record when the minute is over.
   */
  private async refuse(s: MdnsServiceRecord, field: string, reason: string): Promise<void> {
    this.stats.refused++;
    const from = typeof s.referer?.address === 'string' ? s.referer.address.slice(0, 64) : '?';
    const ref = `${String(s.fqdn ?? s.name ?? '?').slice(0, 200)}@${from}`;
    const now = this.deps.clock.now();
    await this.summarize(now, false);
    const last = this.refused.get(ref);
    if (last !== undefined && now - last < 60_000) return;
    const w = this.refusals;
    if (w.recorded >= this.maxRefusalsPerMinute) {
      w.suppressed++;
      this.stats.suppressed++;
      if (w.sources.size < MAX_SUMMARY_SOURCES) w.sources.add(from);
      return;
    }
    w.recorded++;
    this.refused.delete(ref);
    if (this.refused.size >= MAX_REFUSED_REFS) {
      const oldest = this.refused.keys().next();
      if (!oldest.done) this.refused.delete(oldest.value);
    }
    this.refused.set(ref, now);
    this.deps.logger.warn({ ref, field, reason }, 'mDNS: refused an announcement');
    let raw = '';
    try {
      raw = JSON.stringify({ txt: s.txt, port: s.port, addresses: s.addresses }).slice(0, 4096);
    } catch {
      // unserializable TXT: the reason says enough
    }
    await this.deps.reject?.({ ref, field, reason, raw }).catch((err) => this.deps.logger.debug({ err: (err as Error).message }, 'recording an mDNS refusal failed'));
  }

  /** When the refusal minute is over (or `force`): one record for what was not recorded one by one, and a new minute. */
  private async summarize(now: number, force: boolean): Promise<void> {
    const w = this.refusals;
    if (!force && now - w.start < 60_000) return;
    this.refusals = { start: now, recorded: 0, suppressed: 0, sources: new Set(), dropped: 0, droppedFrom: new Set() };
    const since = new Date(w.start).toISOString();
    if (w.dropped > 0) {
      const from = [...w.droppedFrom];
      const reason = `${w.dropped} announced nodes since ${since} were not recorded as candidates (the candidate book takes a limited number of new ones a minute, 60 by default: a flood of new keys, or a table full of peers): ${from.join(', ')}${w.dropped > from.length ? ' among others' : ''}`;
      this.deps.logger.warn({ dropped: w.dropped, since, from }, 'mDNS: announced nodes were not recorded as candidates');
      await this.deps
        .reject?.({ ref: `dropped@${since}`, field: 'announcement', reason, raw: JSON.stringify({ dropped: w.dropped, since, from }), code: 'MDNS_CANDIDATES_DROPPED' })
        .catch((err) => this.deps.logger.debug({ err: (err as Error).message }, 'recording dropped mDNS candidates failed'));
    }
    if (w.suppressed === 0) return;
    this.stats.summaries++;
    const sources = [...w.sources];
    const reason = `${w.suppressed} more refused mDNS announcements since ${since} were not recorded one by one (at most ${this.maxRefusalsPerMinute} a minute are); from ${sources.join(', ')}${w.suppressed > sources.length ? ' among others' : ''}`;
    this.deps.logger.warn({ suppressed: w.suppressed, since, sources }, 'mDNS: many refused announcements (a flood or a misconfigured node)');
    await this.deps
      .reject?.({ ref: `suppressed@${since}`, field: 'announcement', reason, raw: JSON.stringify({ suppressed: w.suppressed, since, sources }), code: 'MDNS_ANNOUNCEMENTS_SUPPRESSED' })
      .catch((err) => this.deps.logger.debug({ err: (err as Error).message }, 'recording an mDNS refusal summary failed'));
  }
}

/** A decoded DNS resource record, as multicast-dns hands it over (only the fields read here). */
interface DnsRecord {
  name?: unknown;
  type?: unknown;
  ttl?: unknown;
  data?: unknown;
}

/** The part of a multicast-dns instance a browser uses. */
export interface MdnsSocketLike {
  on(event: 'response', fn: (packet: { answers?: unknown; additionals?: unknown }, rinfo: { address?: unknown }) => void): unknown;
  removeListener(event: 'response', fn: (...args: never[]) => void): unknown;
  query(name: string, type: string): unknown;
}

/** Records of one response packet read at most (a UDP packet holds far fewer real ones). */
const MAX_RECORDS_PER_PACKET = 256;
/** Services of one response packet reported at most. */
const MAX_SERVICES_PER_PACKET = 16;
/** TXT strings of one record read at most. */
const MAX_TXT_STRINGS = 64;

/**
 * The services of type `serviceName` (`_weft._tcp.local`) one mDNS response announces: each PTR
 * to an instance with its SRV in the same packet, its TXT and its host's A/AAAA records. Goodbyes
 * (TTL 0) are left out. TXT keys are lower-cased and the first of a repeated key counts (RFC 6763
 * 6.4). Bounded: at most 256 records read and 16 services reported per packet.
 */
export function servicesInResponse(packet: { answers?: unknown; additionals?: unknown }, serviceName: string, referer: { address?: unknown }): MdnsServiceRecord[] {
  const list = (x: unknown): DnsRecord[] => (Array.isArray(x) ? (x as DnsRecord[]) : []);
  const records = [...list(packet.answers), ...list(packet.additionals)]
    .slice(0, MAX_RECORDS_PER_PACKET)
    .filter((r) => r !== null && typeof r === 'object' && typeof r.name === 'string' && typeof r.ttl === 'number' && r.ttl > 0);
  const lower = (x: unknown) => (typeof x === 'string' ? x.toLowerCase() : undefined);
  const type = serviceName.toLowerCase();
  const out: MdnsServiceRecord[] = [];
  const done = new Set<string>();
  for (const ptr of records) {
    if (out.length >= MAX_SERVICES_PER_PACKET) break;
    if (ptr.type !== 'PTR' || lower(ptr.name) !== type || typeof ptr.data !== 'string') continue;
    const fqdn = ptr.data;
    const key = fqdn.toLowerCase();
    if (done.has(key)) continue;
    done.add(key);
    const srv = records.find((r) => r.type === 'SRV' && lower(r.name) === key);
    const sd = srv?.data as { port?: unknown; target?: unknown } | undefined;
    if (!sd || typeof sd !== 'object') continue;
    const txtRecord = records.find((r) => r.type === 'TXT' && lower(r.name) === key);
    const host = lower(sd.target);
    const addresses = host === undefined ? [] : records.filter((r) => (r.type === 'A' || r.type === 'AAAA') && lower(r.name) === host).map((r) => r.data);
    out.push({
      name: fqdn.split('.')[0],
      fqdn,
      port: sd.port,
      ...(txtRecord ? { txt: decodeTxt(txtRecord.data) } : {}),
      addresses,
      referer: { address: referer.address },
    });
  }
  return out;
}

/** TXT strings as `key=value` (a key alone has the value `true`), keys lower-cased, the first of each key kept. */
function decodeTxt(data: unknown): Record<string, string | true> {
  const txt: Record<string, string | true> = Object.create(null);
  const strings = Array.isArray(data) ? data.slice(0, MAX_TXT_STRINGS) : [data];
  for (const b of strings) {
    const s = Buffer.isBuffer(b) ? b.toString('utf8') : typeof b === 'string' ? b : undefined;
    if (!s) continue;
    const eq = s.indexOf('=');
    const k = (eq < 0 ? s : s.slice(0, eq)).toLowerCase();
    if (k === '' || k in txt) continue;
    txt[k] = eq < 0 ? true : s.slice(eq + 1);
  }
  return txt;
}

/**
 * Browses for one service type over a multicast-dns socket, keeping no state: every response
 * that announces an instance is reported as `up`, and the checks, throttles and the candidate
 * book's in-memory state decide what it costs. bonjour-service's Browser kept every instance
 * name it heard in an array searched on each packet (until the next browse, 30 s later), so a
 * host announcing ever new names made each packet cost more than the last: 5,000 in a browse
 * held the event loop for seconds, 20,000 for over a minute.
 */
export class MdnsPacketBrowser implements MdnsBrowser {
  private readonly up: Array<(s: MdnsServiceRecord) => void> = [];
  private readonly onResponse: (packet: { answers?: unknown; additionals?: unknown }, rinfo: { address?: unknown }) => void;
  private stopped = false;

  constructor(
    private readonly mdns: MdnsSocketLike,
    /** e.g. `_weft._tcp.local` */
    private readonly serviceName: string,
  ) {
    this.onResponse = (packet, rinfo) => {
      if (this.stopped || packet === null || typeof packet !== 'object') return;
      for (const s of servicesInResponse(packet, this.serviceName, rinfo ?? {})) for (const fn of this.up) fn(s);
    };
    mdns.on('response', this.onResponse);
    mdns.query(serviceName, 'PTR');
  }

  /** Only `up` is reported (every announcement is one); `srv-update` and `txt-update` never come. */
  on(event: 'up' | 'srv-update' | 'txt-update', fn: (s: MdnsServiceRecord) => void): this {
    if (event === 'up') this.up.push(fn);
    return this;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.mdns.removeListener('response', this.onResponse as (...args: never[]) => void);
  }
}

/**
 * bonjour-service for announcing (and answering queries), browsing with `MdnsPacketBrowser` on
 * its socket; loaded on first use; socket errors go to `on` instead of being thrown. `extra`
 * goes to multicast-dns as is (tests: a unicast socket on loopback).
 */
export async function bonjourEngine(extra: Record<string, unknown> = {}): Promise<MdnsEngineFactory> {
  const mod = await import('bonjour-service');
  const Bonjour = mod.default;
  return (opts, on) => {
    // Without a callback bonjour-service throws a failed send.
    const b = new Bonjour({ ...extra, ...opts } as never, (err: Error) => on.warning(err));
    // multicast-dns emits 'error' (EADDRINUSE, EACCES) with no listener of its own: that would throw.
    const mdns = (b as unknown as { server?: { mdns?: MdnsSocketLike & { on(e: string, fn: (err: Error) => void): void } } }).server?.mdns;
    mdns?.on('error', (err) => on.error(err));
    mdns?.on('warning', (err) => on.warning(err));
    const engine = b as unknown as MdnsEngine;
    return {
      publish: (o) => engine.publish(o),
      find: (o) => {
        if (!mdns) return engine.find(o);
        return new MdnsPacketBrowser(mdns, `_${o.type}._tcp.local`);
      },
      unpublishAll: (cb) => engine.unpublishAll(cb),
      destroy: (cb) => engine.destroy(cb),
    };
  };
}

/** Runs a callback-style call and waits for it, at most `ms`. */
function withinMs(ms: number, fn: (done: () => void) => void): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    t.unref();
    try {
      fn(() => {
        clearTimeout(t);
        resolve();
      });
    } catch {
      clearTimeout(t);
      resolve();
    }
  });
}
