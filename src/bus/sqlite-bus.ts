import type { Envelope } from '../envelope/index.js';
import type { NodeStore } from '../store/index.js';
import type { Bus, BusEntry, BusStats } from './bus.js';

export interface SqliteBusInit {
  /** Consumer name whose position is kept in consumer_offsets. */
  consumer: string;
}

/**
 * The embedded bus: the `events` table is the stream. Appends are group-committed by the
 * caller (one transaction per emit batch); committed envelopes are also handed to the
 * processor in memory so the steady state never re-reads or re-parses them.
 */
export class SqliteBus implements Bus {
  readonly kind = 'sqlite' as const;
  readonly description = 'embedded (SQLite)';
  private position = 0;
  private committedPosition = 0;
  private handoff: Array<{ seq: number; envelope: Envelope }> = [];
  private waiter: (() => void) | undefined;
  private stopped = false;
  private appended = 0;
  /** The highest seq this bus appended or staged (the log's at start). */
  private lastSeq = 0;

  constructor(
    private readonly ns: NodeStore,
    private readonly init: SqliteBusInit,
  ) {}

  /** Against the last committed batch (a batch in flight has not applied anything yet). */
  pending(): number {
    return Math.max(0, this.ns.log.maxSeq() - this.committedPosition);
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.position = Number(this.ns.offsets.get(this.init.consumer) ?? '0');
    this.committedPosition = this.position;
    this.lastSeq = this.ns.log.maxSeq();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
  }

  async append(envs: readonly Envelope[]): Promise<void> {
    if (envs.length === 0) return;
    const added = await this.ns.store.write(() => {
      const out: Array<{ seq: number; envelope: Envelope }> = [];
      for (const env of envs) {
        const seq = this.ns.log.append(env);
        if (seq > 0) out.push({ seq, envelope: env });
        if (seq > this.lastSeq) this.lastSeq = seq;
      }
      return out;
    });
    this.appended += added.length;
    if (this.handoff.length < 100_000) for (const a of added) this.handoff.push(a);
    this.wake();
  }

  /** In the caller's transaction: the event goes into the log like an append. */
  stage(env: Envelope): void {
    const seq = this.ns.log.append(env);
    if (seq > this.lastSeq) this.lastSeq = seq;
  }

  caughtUp(): boolean {
    return this.lastSeq <= this.committedPosition;
  }

  /** The staged events are in the log: wake the consumer. */
  flush(staged: readonly Envelope[]): void {
    if (staged.length > 0) this.wake();
  }

  /** The processor's position is the embedded bus's only record of consumption. */
  consumed(): void {}

  async next(max: number): Promise<BusEntry[]> {
    for (;;) {
      if (this.stopped) return [];
      const batch = this.take(max);
      if (batch.length > 0) return batch;
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        // A safety net: appends from another process or a lost wake-up are picked up anyway.
        setTimeout(resolve, 250).unref();
      });
      this.waiter = undefined;
    }
  }

  private take(max: number): BusEntry[] {
    while (this.handoff.length > 0 && (this.handoff[0] as { seq: number }).seq <= this.position) this.handoff.shift();
    let out: BusEntry[];
    if (this.handoff.length > 0 && (this.handoff[0] as { seq: number }).seq === this.position + 1) {
      out = [];
      let expect = this.position + 1;
      let i = 0;
      while (i < this.handoff.length && out.length < max) {
        const h = this.handoff[i] as { seq: number; envelope: Envelope };
        if (h.seq !== expect) break;
        out.push({ position: String(h.seq), envelope: h.envelope, logged: true });
        expect++;
        i++;
      }
      this.handoff = this.handoff.slice(i);
    } else {
      out = [];
      for (const r of this.ns.log.readAfter(this.position, max)) {
        out.push({ position: String(r.seq), envelope: r.envelope, logged: true });
      }
    }
    const last = out[out.length - 1];
    if (last) this.position = Number(last.position);
    return out;
  }

  /** The batch rolled back: read again from the committed position. */
  rewind(committedPosition: string | undefined): void {
    this.position = Number(committedPosition ?? '0');
  }

  async committed(entries: readonly BusEntry[]): Promise<void> {
    const last = entries[entries.length - 1];
    if (last) this.committedPosition = Math.max(this.committedPosition, Number(last.position));
  }

  stats(): BusStats {
    return { appended: this.appended, depth: this.handoff.length };
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}
