/**
 * Correlation: watches the stream for patterns no single event shows and emits higher-order
 * events. Bursts: many events of one type within a window (`system.burst.detected`). Failure
 * cascades: failures across several entities or computers within a window
 * (`system.failure.cascade`). Each pattern fires at most once per window, remembered in
 * SQLite with the counters, so a restart neither forgets a burst nor reports it twice. It never
 * counts the events it synthesizes.
 */
import { BURST_DETECTED, FAILURE_CASCADE } from '../catalog/index.js';
import type { Envelope } from '../envelope/index.js';
import type { CartridgeContext, CartridgeFactory, CartridgeStores } from '../pipeline/index.js';
import { type Db, groupKeyOf } from '../store/index.js';
import { defaultEventKind, type EventKindOf } from './event-kind.js';

/** Burst detection: `threshold` events of one type within `windowMs`. */
export interface BurstInit {
  /** Default 60 s. */
  windowMs?: number;
  /** Default 100. */
  threshold?: number;
  /** Per-type settings; `false` ignores a type. Keys may end in `*` to match a prefix. */
  perType?: Readonly<Record<string, { windowMs?: number; threshold?: number } | false>>;
}

/** Cascade detection: failures across entities or computers within `windowMs`. */
export interface CascadeInit {
  /** Default 5 minutes. */
  windowMs?: number;
  /** At least this many failures in the window (default 3). */
  minFailures?: number;
  /** ... on at least this many distinct entities (default 3) ... */
  minEntities?: number;
  /** ... or on at least this many distinct computers (default 2). */
  minComputers?: number;
}

/** Options of the correlation cartridge. */
export interface CorrelationInit {
  /** Burst settings, or false to detect no bursts. */
  burst?: BurstInit | false;
  /** Cascade settings, or false to detect no cascades. */
  cascade?: CascadeInit | false;
  /** Failure or not. Default: by the last segment of the type name (`...failed`, `...crashed`). */
  kindOf?: EventKindOf;
  /** The entity a failure is about. Default: `entity`, else the notification group key, else the type. */
  entityOf?: (event: Envelope, ctx: CartridgeContext) => string;
  /** Event types never counted (the types correlation emits are always excluded). */
  exclude?: readonly string[];
  /** Prune expired windows every this many events (default 1,000). */
  pruneEvery?: number;
}

type Statements = ReturnType<typeof statements>;

/** The cartridge's statements, prepared once when it is given its store. */
function statements(db: Db) {
  return {
    // No RETURNING: with one, this upsert cost 9.5-10 us against 1.3-1.7 us for the upsert and a
    // read of the count, when (as in a burst of one type) every event updates the same row.
    bump: db.prepare(
      `INSERT INTO correlation_counts (key, bucket, count) VALUES (?, ?, 1)
       ON CONFLICT(key, bucket) DO UPDATE SET count = count + 1`,
    ),
    count: db.prepare('SELECT count FROM correlation_counts WHERE key = ? AND bucket = ?').pluck(),
    getFired: db.prepare('SELECT quiet_until FROM correlation_fired WHERE pattern = ? AND key = ?').pluck(),
    putFired: db.prepare(
      `INSERT INTO correlation_fired (pattern, key, fired_at, quiet_until, event_id) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(pattern, key) DO UPDATE SET fired_at = excluded.fired_at, quiet_until = excluded.quiet_until,
         event_id = excluded.event_id`,
    ),
    failure: db.prepare(
      `INSERT INTO correlation_failures (entity, computer, first_at, last_at, count) VALUES (@entity, @computer, @t, @t, 1)
       ON CONFLICT(entity, computer) DO UPDATE SET
         first_at = CASE WHEN last_at < @since THEN @t ELSE first_at END,
         count = CASE WHEN last_at < @since THEN 1 ELSE count + 1 END,
         last_at = MAX(last_at, @t)`,
    ),
    window: db.prepare(
      `SELECT COUNT(DISTINCT entity) AS entities, COUNT(DISTINCT computer) AS computers, SUM(count) AS failures,
         MIN(first_at) AS firstAt FROM correlation_failures WHERE last_at >= ?`,
    ),
    entities: db
      .prepare('SELECT DISTINCT entity FROM correlation_failures WHERE last_at >= ? ORDER BY entity LIMIT 50')
      .pluck(),
    computers: db
      .prepare(
        'SELECT DISTINCT computer FROM correlation_failures WHERE last_at >= ? ORDER BY computer LIMIT 50',
      )
      .pluck(),
    pruneCounts: db.prepare('DELETE FROM correlation_counts WHERE bucket < ?'),
    pruneFailures: db.prepare('DELETE FROM correlation_failures WHERE last_at < ?'),
    pruneFired: db.prepare('DELETE FROM correlation_fired WHERE quiet_until < ?'),
  };
}

const ALWAYS_EXCLUDED = [BURST_DETECTED, FAILURE_CASCADE];

/**
 * Builds the correlation cartridge.
 * @example
 * const corr = correlation({ burst: { windowMs: 10_000, threshold: 500 }, cascade: { minEntities: 4 } });
 */
export function correlation(init: CorrelationInit = {}): CartridgeFactory<Pick<CartridgeStores, 'store'>> {
  const burst = init.burst === false ? undefined : (init.burst ?? {});
  const burstWindow = burst?.windowMs ?? 60_000;
  const burstThreshold = burst?.threshold ?? 100;
  const cascade = init.cascade === false ? undefined : (init.cascade ?? {});
  const cascadeWindow = cascade?.windowMs ?? 300_000;
  const minFailures = cascade?.minFailures ?? 3;
  const minEntities = cascade?.minEntities ?? 3;
  const minComputers = cascade?.minComputers ?? 2;
  const kindOf = init.kindOf ?? defaultEventKind;
  const pruneEvery = init.pruneEvery ?? 1000;
  const excluded = new Set([...ALWAYS_EXCLUDED, ...(init.exclude ?? [])]);
  const entityOf =
    init.entityOf ??
    ((event: Envelope, ctx: CartridgeContext) => {
      if (event.entity) return event.entity;
      const entry = ctx.catalog.get(event.event);
      return (entry && groupKeyOf(entry, event.payload, event.domain)) || event.event;
    });
  const perType = Object.entries(burst?.perType ?? {});
  const typeSettings = new Map<string, { windowMs: number; threshold: number } | false>();
  const settingsFor = (type: string) => {
    let s = typeSettings.get(type);
    if (s === undefined) {
      const hit = perType.find(([k]) => (k.endsWith('*') ? type.startsWith(k.slice(0, -1)) : k === type));
      const o = hit?.[1];
      s =
        o === false
          ? false
          : { windowMs: o?.windowMs ?? burstWindow, threshold: o?.threshold ?? burstThreshold };
      if (typeSettings.size < 10_000) typeSettings.set(type, s);
    }
    return s;
  };
  const maxWindow = Math.max(
    burstWindow,
    cascadeWindow,
    ...perType.map(([, v]) => (v ? (v.windowMs ?? 0) : 0)),
  );
  // The previous bucket is closed: cache its count instead of reading it per event.
  const prevCache = new Map<string, { bucket: number; count: number }>();
  // Quiet periods, read through from correlation_fired: once a pattern fires, every later event
  // of the window would otherwise read it again. Both caches may hold what a transaction wrote:
  // they are dropped when one rolls back (a batch run again must report what it reported).
  const quiet = new Map<string, number>();
  let rollbacksSeen = 0;
  const quietUntil = (s: Statements, pattern: string, key: string): number => {
    const k = `${pattern}|${key}`;
    let q = quiet.get(k);
    if (q === undefined) {
      q = (s.getFired.get(pattern, key) as number | undefined) ?? Number.NEGATIVE_INFINITY;
      if (quiet.size > 10_000) quiet.clear();
      quiet.set(k, q);
    }
    return q;
  };
  const fired = (s: Statements, pattern: string, key: string, t: number, until: number, eventId: string) => {
    s.putFired.run(pattern, key, t, until, eventId);
    quiet.set(`${pattern}|${key}`, until);
  };
  let sincePrune = 0;

  function detectBurst(event: Envelope, ctx: CartridgeContext, s: Statements, t: number): void {
    const cfg = settingsFor(event.event);
    if (cfg === false) return;
    const w = cfg.windowMs;
    const bucket = t - (t % w);
    s.bump.run(event.event, bucket);
    const cur = s.count.get(event.event, bucket) as number;
    let prev = prevCache.get(event.event);
    if (prev?.bucket !== bucket - w) {
      prev = { bucket: bucket - w, count: (s.count.get(event.event, bucket - w) as number | undefined) ?? 0 };
      if (prevCache.size > 10_000) prevCache.clear();
      prevCache.set(event.event, prev);
    }
    // Sliding-window estimate: the previous bucket weighted by how much of it the window still covers.
    const estimate = cur + prev.count * (1 - (t - bucket) / w);
    if (estimate < cfg.threshold) return;
    if (t < quietUntil(s, 'burst', event.event)) return;
    const emitted = ctx.emit({
      event: BURST_DETECTED,
      payload: {
        eventType: event.event,
        count: Math.round(estimate),
        threshold: cfg.threshold,
        windowMs: w,
        windowStart: new Date(t - w).toISOString(),
        detectedAt: new Date(t).toISOString(),
      },
    });
    fired(s, 'burst', event.event, t, t + w, emitted.id);
  }

  function detectCascade(event: Envelope, ctx: CartridgeContext, s: Statements, t: number): void {
    const since = t - cascadeWindow;
    s.failure.run({
      entity: entityOf(event, ctx),
      computer: event.sourceComputer ?? ctx.self.computer,
      t,
      since,
    });
    if (t < quietUntil(s, 'cascade', '*')) return;
    const w = s.window.get(since) as {
      entities: number;
      computers: number;
      failures: number;
      firstAt: number;
    };
    if (w.failures < minFailures || (w.entities < minEntities && w.computers < minComputers)) return;
    const emitted = ctx.emit({
      event: FAILURE_CASCADE,
      payload: {
        failures: w.failures,
        entities: s.entities.all(since) as string[],
        computers: s.computers.all(since) as string[],
        entityCount: w.entities,
        computerCount: w.computers,
        windowMs: cascadeWindow,
        windowStart: new Date(Math.max(since, w.firstAt)).toISOString(),
        detectedAt: new Date(t).toISOString(),
        triggerEventType: event.event,
      },
    });
    fired(s, 'cascade', '*', t, t + cascadeWindow, emitted.id);
  }

  return ({ store }) => {
    const s = statements(store.db);
    return {
      name: 'correlation',
      process(event, ctx) {
        if (excluded.has(event.event)) return event;
        if (store.rollbacks !== rollbacksSeen) {
          rollbacksSeen = store.rollbacks;
          quiet.clear();
          prevCache.clear();
        }
        const now = ctx.clock.now();
        // Event time, but never ahead of this node's clock; events older than any window are ignored.
        const ts = Date.parse(event.timestamp);
        const t = Number.isFinite(ts) && ts < now ? ts : now;
        if (t < now - 2 * maxWindow) return event;
        if (burst) detectBurst(event, ctx, s, t);
        if (cascade && kindOf(event) === 'failure') detectCascade(event, ctx, s, t);
        if (++sincePrune >= pruneEvery) {
          sincePrune = 0;
          s.pruneCounts.run(now - 2 * maxWindow);
          s.pruneFailures.run(now - cascadeWindow);
          s.pruneFired.run(now - maxWindow);
        }
        return event;
      },
    };
  };
}
