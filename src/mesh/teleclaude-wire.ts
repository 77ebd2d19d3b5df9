/**
 * The TeleClaude wire: the seed's plain JSON mesh for peers that run TeleClaude instead of
 * Weft (opt-in per peer: `mesh.teleclaude_peers`). Such a peer has no Ed25519 identity and
 * signs nothing, so it is trusted only as the seed's stub says: a configured peer of this
 * node's cluster is accepted, anything else is refused (and shows as `mesh.event.rejected`).
 *
 * - Out: events routed to such a peer leave the outbox as one entry each on its inbox
 *   `messages:{peer}`: `type=mesh_event`, `payload=<envelope JSON, TeleClaude's field names>`,
 *   `source_computer=<this computer>`. The XADD succeeding is the delivery (TeleClaude does not
 *   acknowledge); Weft never trims that stream.
 * - In: `messages:{self}` is read with plain XREAD from a cursor kept in the node's file and
 *   committed with the events it carried, so each applies once; no consumer group is made and
 *   nothing is acknowledged or deleted there: TeleClaude's own commands on that stream
 *   (`send_system_command`, `send_request`) are skipped and counted.
 */
import type { Redis } from 'ioredis';
import { type BusEntry, streamEntries } from '../bus/index.js';
import { type Envelope, fromStreamFields } from '../envelope/index.js';
import { toTeleClaudeEvent } from '../catalog/index.js';
import { INGRESS_FACT, type IngressFact } from '../pipeline/index.js';
import { connectRedis, quitWithin, unlessAborted } from '../redis/index.js';
import type { Store } from '../store/index.js';
import { type Clock, linkedSignal, type Logger, newRedis, pause } from '../util/index.js';
import type { MeshOutbox } from './outbox.js';

/** How long one send of outbox rows to a TeleClaude inbox may take (ms). */
const SEND_TIMEOUT_MS = 5000;

/** TeleClaude's inbox of a computer (its RedisTransport's `messages:{computer}`). */
export function teleclaudeInbox(computer: string): string {
  return `messages:${computer}`;
}

/** The node id a TeleClaude peer is known by (it has no key): `teleclaude:{computer}`. */
export function teleclaudeNodeId(computer: string): string {
  return `teleclaude:${computer}`;
}

/** Refusal codes of the TeleClaude wire. */
export const TELECLAUDE_WIRE_CODES = {
  unknownPeer: 'LEGACY_PEER_UNKNOWN',
  outsideCluster: 'LEGACY_PEER_OUTSIDE_CLUSTER',
  badEntry: 'LEGACY_ENTRY_INVALID',
} as const;

export interface TeleClaudeWireInit {
  url: string;
  self: { computer: string; cluster?: string };
  /** The TeleClaude peers, each with the cluster the config gives it. */
  peers: ReadonlyArray<{ computer: string; cluster?: string }>;
  /** Entries read per XREAD (default 256). */
  batch?: number;
}

export interface TeleClaudeWireDeps {
  store: Store;
  outbox: MeshOutbox;
  /** Applies verified entries through the local pipeline; `inTransaction` runs in its commit. */
  apply: (entries: BusEntry[], inTransaction: () => void) => Promise<unknown>;
  /** Records and raises a refusal (audit, rejections, mesh.event.rejected). */
  refuse: (computer: string, code: string, message: string, input: { ref: string; field?: string; raw: string }) => Promise<void>;
  clock: Clock;
  logger: Logger;
}

/** The envelope as TeleClaude's `EventEnvelope.model_dump_json()` writes it (snake_case, plus our extras). */
export function toTeleClaudeJson(env: Envelope): string {
  const e = env as unknown as Record<string, unknown>;
  const actions = env.actions
    ? Object.fromEntries(
        Object.entries(env.actions).map(([k, a]) => [k, { description: a.description, produces: a.produces, outcome_shape: a.outcomeShape ?? null }]),
      )
    : null;
  // Under TeleClaude's names and fields where they differ from ours, so its catalog knows them.
  const theirs = toTeleClaudeEvent(env.event, env.payload);
  return JSON.stringify({
    event: theirs.event,
    version: env.version,
    source: env.source,
    timestamp: env.timestamp,
    idempotency_key: env.idempotencyKey ?? null,
    level: env.level,
    domain: env.domain,
    entity: env.entity ?? null,
    description: env.description,
    visibility: env.visibility,
    payload: theirs.payload,
    actions,
    terminal_when: env.terminalWhen ?? null,
    resolution_shape: env.resolutionShape ?? null,
    // Extras TeleClaude keeps (extra="allow") and a Weft reader uses: the id makes it exactly-once.
    id: env.id,
    ...(e.causationId ? { causation_id: e.causationId } : {}),
    ...(e.correlationId ? { correlation_id: e.correlationId } : {}),
  });
}

/** The fields of the `messages:{peer}` entry that carries one of our envelopes to a TeleClaude peer. */
export function teleclaudeEntryOf(env: Envelope, fromComputer: string): string[] {
  return ['type', 'mesh_event', 'payload', toTeleClaudeJson(env), 'source_computer', fromComputer];
}

/**
 * A TeleClaude `mesh_event` payload (its envelope as JSON) as our envelope: the JSON is
 * flattened to the stream fields TeleClaude's `to_stream_dict` would have written, so both
 * of its encodings are read by one parser.
 */
export function fromTeleClaudeJson(json: string, entryId: string): Envelope {
  const obj = JSON.parse(json) as unknown;
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new Error('payload is not a JSON object');
  const fields: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    if (v === null || v === undefined) fields[k] = '';
    else if (typeof v === 'object') fields[k] = JSON.stringify(v);
    else fields[k] = String(v);
  }
  return fromStreamFields(fields, entryId, (id) => `teleclaude-${id}`);
}

const CURSOR_KEY = 'teleclaude-wire:cursor';

export class TeleClaudeWire {
  private reader: Redis | undefined;
  private writer: Redis | undefined;
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private sending: Promise<void> | undefined;
  private wakeSender: (() => void) | undefined;
  private stopped = false;
  private readonly byComputer: Map<string, { computer: string; cluster?: string }>;
  readonly counters = { entriesIn: 0, eventsIn: 0, foreignEntries: 0, refused: 0, eventsOut: 0, sendErrors: 0 };
  lastError: string | undefined;

  constructor(
    private readonly init: TeleClaudeWireInit,
    private readonly deps: TeleClaudeWireDeps,
  ) {
    this.byComputer = new Map(init.peers.map((p) => [p.computer, p]));
  }

  /** The peers this wire serves. */
  get peers(): string[] {
    return [...this.byComputer.keys()];
  }

  async start(): Promise<void> {
    this.reader = await newRedis(this.init.url, { lazyConnect: true, maxRetriesPerRequest: null });
    this.writer = await newRedis(this.init.url, { lazyConnect: true, maxRetriesPerRequest: null, enableOfflineQueue: false });
    for (const c of [this.reader, this.writer]) c.on('error', (err: Error) => this.deps.logger.debug({ err: err.message }, 'teleclaude wire connection error'));
    await Promise.all([connectRedis(this.reader, this.init.url), connectRedis(this.writer, this.init.url)]);
    this.running = this.readLoop();
    this.sending = this.sendLoop();
  }

  /** New outbox rows were committed: send them. */
  wake(): void {
    const w = this.wakeSender;
    this.wakeSender = undefined;
    w?.();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.abort.abort();
    this.wake();
    this.reader?.disconnect();
    await Promise.all([this.running, this.sending]);
    await quitWithin(this.writer);
  }

  private cursor(): string {
    const row = this.deps.store.db.prepare('SELECT value FROM mesh_state WHERE key = ?').pluck().get(CURSOR_KEY) as string | undefined;
    return row ?? '0';
  }

  private saveCursor(id: string): void {
    this.deps.store.db
      .prepare('INSERT INTO mesh_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value')
      .run(CURSOR_KEY, id);
  }

  private async readLoop(): Promise<void> {
    const stream = teleclaudeInbox(this.init.self.computer);
    let cursor = this.cursor();
    let backoff = 0;
    while (!this.stopped) {
      try {
        const reply = await unlessAborted(
          (this.reader as Redis).call('XREAD', 'COUNT', this.init.batch ?? 256, 'BLOCK', 1000, 'STREAMS', stream, cursor),
          this.abort.signal,
        );
        backoff = 0;
        const entries = streamEntries(reply).filter((e): e is [string, string[]] => e[1] !== null);
        if (entries.length === 0) continue;
        const apply: BusEntry[] = [];
        for (const [id, arr] of entries) {
          this.counters.entriesIn++;
          const f: Record<string, string> = {};
          for (let i = 0; i + 1 < arr.length; i += 2) f[arr[i] as string] = arr[i + 1] as string;
          const e = await this.admit(id, f);
          if (e) apply.push(e);
        }
        const last = (entries[entries.length - 1] as [string, string[]])[0];
        if (apply.length > 0) await this.deps.apply(apply, () => this.saveCursor(last));
        else await this.deps.store.write(() => this.saveCursor(last));
        this.counters.eventsIn += apply.length;
        cursor = last;
      } catch (err) {
        if (this.stopped) return;
        this.lastError = (err as Error).message;
        backoff = Math.min(Math.max(backoff * 2, 100), 5000);
        this.deps.logger.warn({ err: this.lastError, backoffMs: backoff }, 'reading the TeleClaude inbox failed; retrying');
        await pause(backoff, this.abort.signal, this.deps.clock);
      }
    }
  }

  /** One entry of `messages:{self}`: a verified event to apply, or undefined (skipped or refused). */
  private async admit(id: string, f: Record<string, string>): Promise<BusEntry | undefined> {
    if (f.type !== 'mesh_event') {
      // TeleClaude's own commands and requests: not ours.
      this.counters.foreignEntries++;
      return undefined;
    }
    const from = f.source_computer ?? '';
    const raw = JSON.stringify(f);
    const peer = this.byComputer.get(from);
    const refuse = async (code: string, message: string, field?: string) => {
      this.counters.refused++;
      await this.deps.refuse(from || 'unknown', code, message, { ref: `${teleclaudeInbox(this.init.self.computer)}:${id}`, raw, ...(field ? { field } : {}) });
    };
    if (!peer) {
      await refuse(TELECLAUDE_WIRE_CODES.unknownPeer, `mesh_event ${id} from '${from}', which is not in mesh.teleclaude_peers`, 'source_computer');
      return undefined;
    }
    if (!this.init.self.cluster || peer.cluster !== this.init.self.cluster) {
      await refuse(
        TELECLAUDE_WIRE_CODES.outsideCluster,
        `mesh_event ${id} from '${from}' (cluster ${peer.cluster ?? 'none'}): unsigned TeleClaude events are accepted only from this node's cluster (${this.init.self.cluster ?? 'none'})`,
        'source_computer',
      );
      return undefined;
    }
    let env: Envelope;
    try {
      env = fromTeleClaudeJson(f.payload ?? '', id);
    } catch (err) {
      const field = (err as { details?: { field?: unknown } }).details?.field;
      await refuse(TELECLAUDE_WIRE_CODES.badEntry, `mesh_event ${id} from '${from}': ${(err as Error).message}`, typeof field === 'string' ? `payload/${field.replace(/^\//, '')}` : 'payload');
      return undefined;
    }
    env.origin = teleclaudeNodeId(from);
    env.sourceComputer = from;
    env.hops = (env.hops ?? 0) + 1;
    const fact: IngressFact = { peerNodeId: teleclaudeNodeId(from), peerComputer: from, signatureVerified: false, wire: 'teleclaude' };
    return { position: `teleclaude:${id}`, envelope: env, logged: false, facts: { [INGRESS_FACT]: fact } };
  }

  private async sendLoop(): Promise<void> {
    let backoff = 0;
    while (!this.stopped) {
      let sent = 0;
      try {
        for (const peer of this.byComputer.keys()) {
          const rows = this.deps.outbox.peek(peer, 0, 256);
          if (rows.length === 0) continue;
          const p = (this.writer as Redis).pipeline();
          for (const r of rows) {
            const env = JSON.parse(r.body) as Envelope;
            p.xadd(teleclaudeInbox(peer), '*', ...teleclaudeEntryOf(env, this.init.self.computer));
          }
          // Bounded (and ended by a stop): with Redis away the commands wait for a reconnect that
          // may never come. Timed out, the rows stay in the outbox and go again.
          const bound = linkedSignal([this.abort.signal], SEND_TIMEOUT_MS);
          const res = await unlessAborted(p.exec(), bound.signal).finally(bound.release);
          const failed = (res ?? []).find(([err]) => err);
          if (failed) throw failed[0] as Error;
          await this.deps.outbox.acknowledge(peer, rows.map((r) => r.envelopeId));
          this.counters.eventsOut += rows.length;
          sent += rows.length;
        }
        backoff = 0;
        this.lastError = undefined;
      } catch (err) {
        this.counters.sendErrors++;
        this.lastError = (err as Error).message;
        backoff = Math.min(Math.max(backoff * 2, 100), 5000);
        this.deps.logger.debug({ err: this.lastError }, 'sending to a TeleClaude peer failed; the outbox keeps the events');
      }
      if (sent > 0 && backoff === 0) continue;
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, backoff || 1000);
        function done() {
          clearTimeout(t);
          resolve();
        }
        this.wakeSender = done;
      });
    }
  }

  status(): Record<string, unknown> {
    return { peers: this.peers, counters: this.counters, lastError: this.lastError ?? null };
  }
}
