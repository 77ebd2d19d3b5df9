/**
 * Mounts as records (the seed's /net/mounts and /net/telemetry): a mount is (peer, mode, name)
 * with the caps it requires and prefers, `upd_latest`, the negotiated serializer policy and
 * the chosen provider, kept in SQLite so replay and debugging never depend on a provider's
 * hidden state. Closing keeps the record; creating it again reopens it.
 */
import { WeftError } from '../errors/index.js';
import type { Store } from '../store/index.js';
import { type NegotiatedCaps, SERIALIZER_CAPS, type SerializerCap } from '../transport/index.js';
import type { Clock } from '../util/index.js';

export type MountMode = 'link' | 'mirror' | 'invoke';
export const MOUNT_MODES: readonly MountMode[] = ['link', 'mirror', 'invoke'];

/** The negotiated serializer policy (the seed's `serializer/`). */
export interface SerializerPolicy {
  crc32c_ok: boolean;
  deflate_ok: boolean;
  aead_ok: boolean;
  /** A dropped preferred cap raised `transport.flatneg`. */
  warn_down: boolean;
  /** Highest comparator version the mount accepts (0: the first). */
  cmp_max_ver: number;
}

/** `open`: in use; `closed`: kept for cheap reopening; `noprov`: no provider had the required caps; `error`: failed. */
export type MountState = 'open' | 'closed' | 'noprov' | 'error';

/** Per-mount counters and flags (the seed's /net/telemetry/<peer>/<mount>/); organs add their own keys. */
export interface MountTelemetry {
  frame_count?: number;
  ready_count?: number;
  bp_count?: number;
  fatal_count?: number;
  bp_flag?: boolean;
  last_mode?: string;
  last_sample?: number;
  last_event?: string;
  last_event_at?: number;
  [key: string]: unknown;
}

export interface MountRecord {
  id: number;
  /** `peer/mode/name`. */
  key: string;
  peer: string;
  mode: MountMode;
  name: string;
  required: SerializerCap[];
  preferred: SerializerCap[];
  updLatest: boolean;
  serializer: SerializerPolicy;
  provider: string | null;
  provCaps: string[];
  /** Mode-specific settings (mirror: stream, beat_window, max_in_flight). */
  options: Record<string, unknown>;
  state: MountState;
  error: string | null;
  /** Mirror: the last source sequence applied here. */
  resumeToken: number;
  telemetry: MountTelemetry;
  createdAt: number;
  updatedAt: number;
  closedAt: number | null;
}

/** What a caller asks for when creating (or reopening) a mount. */
export interface MountSpec {
  peer: string;
  mode: MountMode;
  name?: string;
  required?: SerializerCap[];
  preferred?: SerializerCap[];
  updLatest?: boolean;
  warnDown?: boolean;
  cmpMaxVer?: number;
  options?: Record<string, unknown>;
}

/** What negotiation decided for a mount. */
export interface MountNegotiation {
  provider: string | null;
  provCaps: string[];
  caps: NegotiatedCaps | undefined;
  state: MountState;
  error: string | null;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

interface Row {
  id: number;
  peer: string;
  mode: MountMode;
  name: string;
  caps_required: string;
  caps_preferred: string;
  upd_latest: number;
  serializer: string;
  provider: string | null;
  prov_caps: string;
  options: string;
  state: MountState;
  error: string | null;
  resume_token: number;
  telemetry: string;
  created_at: number;
  updated_at: number;
  closed_at: number | null;
}

function toRecord(r: Row): MountRecord {
  return {
    id: r.id,
    key: `${r.peer}/${r.mode}/${r.name}`,
    peer: r.peer,
    mode: r.mode,
    name: r.name,
    required: JSON.parse(r.caps_required) as SerializerCap[],
    preferred: JSON.parse(r.caps_preferred) as SerializerCap[],
    updLatest: r.upd_latest === 1,
    serializer: JSON.parse(r.serializer) as SerializerPolicy,
    provider: r.provider,
    provCaps: JSON.parse(r.prov_caps) as string[],
    options: JSON.parse(r.options) as Record<string, unknown>,
    state: r.state,
    error: r.error,
    resumeToken: r.resume_token,
    telemetry: JSON.parse(r.telemetry) as MountTelemetry,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    closedAt: r.closed_at,
  };
}

/** Splits `peer/mode/name` (name defaults to `main`). */
export function parseMountKey(key: string): { peer: string; mode: MountMode; name: string } {
  const [peer, mode, name = 'main', ...rest] = key.split('/');
  if (!peer || !mode || rest.length > 0 || !MOUNT_MODES.includes(mode as MountMode)) {
    throw new WeftError('WEFT_VALIDATION', `mount '${key}' is not peer/mode/name with mode one of ${MOUNT_MODES.join(', ')}`);
  }
  return { peer, mode: mode as MountMode, name };
}

/** Checks a spec's fields; the message names the field. */
export function checkMountSpec(spec: MountSpec): void {
  if (!NAME.test(spec.peer)) throw new WeftError('WEFT_VALIDATION', `mount peer '${spec.peer}' is not a computer name`);
  if (!MOUNT_MODES.includes(spec.mode)) throw new WeftError('WEFT_VALIDATION', `mount mode '${spec.mode}' is not one of ${MOUNT_MODES.join(', ')}`);
  if (spec.name !== undefined && !NAME.test(spec.name)) throw new WeftError('WEFT_VALIDATION', `mount name '${spec.name}' must be 1-64 letters, digits, '.', '_' or '-'`);
  for (const c of [...(spec.required ?? []), ...(spec.preferred ?? [])]) {
    if (!SERIALIZER_CAPS.includes(c)) throw new WeftError('WEFT_VALIDATION', `cap '${c}' is not one of ${SERIALIZER_CAPS.join(', ')}`);
  }
  if (spec.cmpMaxVer !== undefined && (!Number.isInteger(spec.cmpMaxVer) || spec.cmpMaxVer < 0 || spec.cmpMaxVer > 255)) {
    throw new WeftError('WEFT_VALIDATION', 'cmp_max_ver must be an integer 0..255');
  }
}

/** The `mounts` table. Writes go through the store (the only writer). */
export class MountBook {
  private readonly s;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {
    const db = store.db;
    this.s = {
      byKey: db.prepare('SELECT * FROM mounts WHERE peer = ? AND mode = ? AND name = ?'),
      byId: db.prepare('SELECT * FROM mounts WHERE id = ?'),
      all: store.reader.prepare('SELECT * FROM mounts ORDER BY peer, mode, name'),
      upsert: db.prepare(
        `INSERT INTO mounts (peer, mode, name, caps_required, caps_preferred, upd_latest, serializer, provider, prov_caps, options, state, error, created_at, updated_at, closed_at)
         VALUES (@peer, @mode, @name, @req, @pref, @upd, @ser, @provider, @provCaps, @options, @state, @error, @now, @now, NULL)
         ON CONFLICT (peer, mode, name) DO UPDATE SET caps_required = @req, caps_preferred = @pref, upd_latest = @upd, serializer = @ser,
           provider = @provider, prov_caps = @provCaps, options = @options, state = @state, error = @error, updated_at = @now, closed_at = NULL`,
      ),
      state: db.prepare('UPDATE mounts SET state = ?, error = ?, updated_at = ?, closed_at = ? WHERE id = ?'),
      token: db.prepare('UPDATE mounts SET resume_token = ?, updated_at = ? WHERE id = ?'),
      telemetry: db.prepare('UPDATE mounts SET telemetry = ?, updated_at = ? WHERE id = ?'),
    };
  }

  list(opts: { mode?: MountMode; peer?: string; includeClosed?: boolean } = {}): MountRecord[] {
    return (this.s.all.all() as Row[])
      .map(toRecord)
      .filter((m) => (!opts.mode || m.mode === opts.mode) && (!opts.peer || m.peer === opts.peer) && (opts.includeClosed === true || m.state !== 'closed'));
  }

  get(key: string): MountRecord | undefined {
    const k = parseMountKey(key);
    const r = this.s.byKey.get(k.peer, k.mode, k.name) as Row | undefined;
    return r ? toRecord(r) : undefined;
  }

  byId(id: number): MountRecord | undefined {
    const r = this.s.byId.get(id) as Row | undefined;
    return r ? toRecord(r) : undefined;
  }

  /** Writes (or reopens) a mount with what negotiation decided. The resume token of a reopened mirror is kept. */
  async save(spec: MountSpec, n: MountNegotiation): Promise<MountRecord> {
    checkMountSpec(spec);
    const name = spec.name ?? 'main';
    const serializer: SerializerPolicy = {
      crc32c_ok: n.caps?.crc32c ?? false,
      deflate_ok: n.caps?.deflate ?? false,
      aead_ok: n.caps?.aead ?? false,
      warn_down: spec.warnDown !== false,
      cmp_max_ver: spec.cmpMaxVer ?? 0,
    };
    return this.store.write(() => {
      this.s.upsert.run({
        peer: spec.peer,
        mode: spec.mode,
        name,
        req: JSON.stringify(spec.required ?? []),
        pref: JSON.stringify(spec.preferred ?? []),
        upd: spec.updLatest ? 1 : 0,
        ser: JSON.stringify(serializer),
        provider: n.provider,
        provCaps: JSON.stringify(n.provCaps),
        options: JSON.stringify(spec.options ?? {}),
        state: n.state,
        error: n.error,
        now: this.clock.now(),
      });
      return toRecord(this.s.byKey.get(spec.peer, spec.mode, name) as Row);
    });
  }

  /** Sets a mount's state; `closed` stamps closed_at. */
  async setState(id: number, state: MountState, error: string | null = null): Promise<void> {
    const now = this.clock.now();
    await this.store.write(() => this.s.state.run(state, error, now, state === 'closed' ? now : null, id));
  }

  /**
   * Sets a mirror's resume token. Call it inside the transaction that applies the events it
   * covers (the processor's `inTransaction` callback), never on its own.
   */
  setResumeTokenIn(id: number, token: number): void {
    this.s.token.run(token, this.clock.now(), id);
  }

  /** Merges telemetry fields into the record (one small write; callers sample, not per frame). */
  async setTelemetry(id: number, patch: MountTelemetry): Promise<void> {
    await this.store.writeSoon(() => {
      const r = this.s.byId.get(id) as Row | undefined;
      if (!r) return;
      const t = { ...(JSON.parse(r.telemetry) as MountTelemetry), ...patch, last_sample: this.clock.now() };
      this.s.telemetry.run(JSON.stringify(t), this.clock.now(), id);
    }, 50);
  }
}
