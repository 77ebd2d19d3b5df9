/**
 * The recovery organ's small tables: its state (`recovery_state`), the latest beacon of each
 * node (`recovery_beacons`) and what each peer reported it holds of this node
 * (`recovery_holdings`). Writes go through the store (the only writer).
 */
import type { Store } from '../store/index.js';
import type { BeaconPayload } from './beacon.js';
import type { RecoveryHolding } from './wire.js';

/**
 * Where this node stands:
 * - `normal`: beacons go out;
 * - `checking`: its key is older than its database (a wiped data dir?): no beacon until its
 *   peers said whether they hold more of its history than it has;
 * - `needs-restore`: they do: no beacon (it would describe an empty node) until a restore,
 *   or until the user dismisses it;
 * - `restoring`: a restore runs.
 */
export type RecoveryMode = 'normal' | 'checking' | 'needs-restore' | 'restoring';

export class RecoveryState {
  private readonly s;

  constructor(private readonly store: Store) {
    this.s = {
      get: store.db.prepare('SELECT value FROM recovery_state WHERE key = ?').pluck(),
      set: store.db.prepare('INSERT INTO recovery_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    };
  }

  get(key: string): string | undefined {
    return this.s.get.get(key) as string | undefined;
  }

  set(key: string, value: string): Promise<void> {
    return this.store.write(() => {
      this.s.set.run(key, value);
    });
  }

  /** Inside the caller's store write. */
  setIn(key: string, value: string): void {
    this.s.set.run(key, value);
  }

  mode(): RecoveryMode | undefined {
    return this.get('mode') as RecoveryMode | undefined;
  }
}

export interface StoredBeacon {
  node: string;
  computer: string;
  eventId: string;
  at: number;
  payload: BeaconPayload;
  /** The envelope's JSON as it reached this node. */
  body: string;
  receivedAt: number;
}

export class BeaconBook {
  private readonly s;

  constructor(private readonly store: Store) {
    this.s = {
      upsert: store.db.prepare(
        `INSERT INTO recovery_beacons (node, computer, event_id, at, body, received_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (node) DO UPDATE SET computer = excluded.computer, event_id = excluded.event_id, at = excluded.at, body = excluded.body, received_at = excluded.received_at
         WHERE excluded.at >= recovery_beacons.at`,
      ),
      get: store.reader.prepare('SELECT node, computer, event_id AS eventId, at, body, received_at AS receivedAt FROM recovery_beacons WHERE node = ?'),
      all: store.reader.prepare('SELECT node, computer, event_id AS eventId, at, body, received_at AS receivedAt FROM recovery_beacons ORDER BY computer'),
    };
  }

  /** Keeps a beacon unless a newer one of the node is kept already. */
  keep(b: { node: string; computer: string; eventId: string; at: number; body: string }, now: number): Promise<void> {
    return this.store.write(() => {
      this.s.upsert.run(b.node, b.computer, b.eventId, b.at, b.body, now);
    });
  }

  get(node: string): StoredBeacon | undefined {
    const r = this.s.get.get(node) as Omit<StoredBeacon, 'payload'> | undefined;
    return r ? withPayload(r) : undefined;
  }

  all(): StoredBeacon[] {
    return (this.s.all.all() as Array<Omit<StoredBeacon, 'payload'>>).map(withPayload);
  }
}

function withPayload(r: Omit<StoredBeacon, 'payload'>): StoredBeacon {
  return { ...r, payload: (JSON.parse(r.body) as { payload: BeaconPayload }).payload };
}

export interface StoredHolding extends RecoveryHolding {
  peer: string;
  computer: string;
  at: number;
}

export class HoldingsBook {
  private readonly s;

  constructor(private readonly store: Store) {
    this.s = {
      upsert: store.db.prepare(
        `INSERT INTO recovery_holdings (peer, computer, beacon_id, ranges, tail, at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (peer) DO UPDATE SET computer = excluded.computer, beacon_id = excluded.beacon_id, ranges = excluded.ranges, tail = excluded.tail, at = excluded.at`,
      ),
      all: store.reader.prepare('SELECT peer, computer, beacon_id AS beacon, ranges, tail, at FROM recovery_holdings ORDER BY computer'),
    };
  }

  record(peer: string, computer: string, h: RecoveryHolding, now: number): Promise<void> {
    return this.store.write(() => {
      this.s.upsert.run(peer, computer, h.beacon, JSON.stringify({ ranges: h.ranges, count: h.count, digest: h.digest }), h.tail, now);
    });
  }

  all(): StoredHolding[] {
    return (this.s.all.all() as Array<{ peer: string; computer: string; beacon: string; ranges: string; tail: number; at: number }>).map((r) => {
      const x = JSON.parse(r.ranges) as { ranges: RecoveryHolding['ranges']; count: number; digest: string };
      return { peer: r.peer, computer: r.computer, beacon: r.beacon, ranges: x.ranges, count: x.count, digest: x.digest, tail: r.tail, at: r.at };
    });
  }
}

/** Ranges of `ranges` each holder holds whole (the same bounds and digest in its last report). */
export function copiesOf(ranges: ReadonlyArray<{ from: string; to: string; digest: string }>, holdings: readonly StoredHolding[]): { copies: number[]; held: Map<string, boolean[]> } {
  const copies = ranges.map(() => 0);
  const held = new Map<string, boolean[]>();
  for (const h of holdings) {
    const have = new Set(h.ranges.filter((r) => r.count > 0).map((r) => `${r.from}|${r.to}|${r.digest}`));
    const flags = ranges.map((r) => have.has(`${r.from}|${r.to}|${r.digest}`));
    flags.forEach((f, i) => {
      if (f) copies[i] = (copies[i] ?? 0) + 1;
    });
    held.set(h.peer, flags);
  }
  return { copies, held };
}
