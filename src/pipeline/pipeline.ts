import type { Statement } from 'better-sqlite3';
import type { Envelope } from '../envelope/index.js';
import { WeftError } from '../errors/index.js';
import type { Db } from '../store/index.js';
import type { Logger } from '../util/index.js';
import type { Cartridge, CartridgeContext } from './cartridge.js';

/** What happened to one event in the pipeline. */
export type RunOutcome =
  | { kind: 'passed'; event: Envelope }
  | { kind: 'dropped'; by: string }
  | { kind: 'failed'; by: string; error: Error };

/** Called when a cartridge throws, inside the batch transaction, after its partial writes were rolled back. */
export type FailureHandler = (cartridge: string, event: Envelope, error: Error, ctx: CartridgeContext) => void;

/**
 * Thrown out of a run without a savepoint when a cartridge throws: the event's partial writes
 * cannot be undone alone, so the caller rolls the batch back and runs it again with a
 * savepoint per event (where the failure is recorded as usual).
 */
export class RunAgainWithSavepoints extends Error {
  constructor(
    readonly cartridge: string,
    readonly eventId: string,
    readonly error: Error,
  ) {
    super(`cartridge '${cartridge}' failed on event ${eventId} in a batch without savepoints: ${error.message}`);
    this.name = 'RunAgainWithSavepoints';
  }
}

/**
 * Runs cartridges in order. With a savepoint (`run(e, ctx, true)`), each event runs inside a
 * SAVEPOINT, so a cartridge that throws leaves no partial writes behind; the failure handler
 * then records the dead letter and the `system.cartridge.failed` event. Without one, a
 * cartridge that throws ends the run with {@link RunAgainWithSavepoints} and the caller runs
 * the whole batch again with savepoints: a savepoint makes SQLite copy every page the event
 * first touches (3.5-5.5 us of an event's ~25 us here), paid on every event for a failure that
 * is rare (a stage that must not run twice says `noRerun`: {@link optimistic}). Invocations
 * are counted in memory and flushed per batch.
 */
export class Pipeline {
  private list: readonly Cartridge[];
  private readonly counts = new Map<string, number>();
  private readonly totals = new Map<string, number>();
  private readonly sp: { begin: Statement; release: Statement; rollback: Statement };

  constructor(
    cartridges: readonly Cartridge[],
    db: Db,
    private readonly onFailure: FailureHandler,
    private readonly logger: Logger,
  ) {
    this.list = checkUnique(cartridges);
    this.sp = {
      begin: db.prepare('SAVEPOINT weft_event'),
      release: db.prepare('RELEASE weft_event'),
      rollback: db.prepare('ROLLBACK TO weft_event'),
    };
  }

  /** The cartridges in order. */
  get cartridges(): readonly Cartridge[] {
    return this.list;
  }

  /** Names in order, for `weft pipeline show`. */
  get order(): string[] {
    return this.list.map((c) => c.name);
  }

  /**
   * Replaces the cartridge list (a cartridge was activated or rejected). An event already
   * running finishes with the list it started with.
   */
  replace(cartridges: readonly Cartridge[]): void {
    this.list = checkUnique(cartridges);
  }

  /** Whether batches may run without a savepoint per event: no stage says `noRerun`. */
  get optimistic(): boolean {
    return !this.list.some((c) => c.noRerun === true);
  }

  /**
   * Runs one event through every cartridge. Must be called inside a write transaction.
   * Returns synchronously when every cartridge is synchronous. `savepoint` false: a cartridge
   * that throws makes it throw {@link RunAgainWithSavepoints} (nothing is recorded).
   */
  run(event: Envelope, ctx: CartridgeContext, savepoint = true): RunOutcome | Promise<RunOutcome> {
    if (savepoint) this.sp.begin.run();
    return this.step(this.list, 0, event, ctx, savepoint);
  }

  private step(list: readonly Cartridge[], i: number, event: Envelope, ctx: CartridgeContext, savepoint: boolean): RunOutcome | Promise<RunOutcome> {
    let cur = event;
    for (; i < list.length; i++) {
      const c = list[i] as Cartridge;
      let r: Envelope | null | Promise<Envelope | null>;
      ctx.cartridge = c.name;
      try {
        r = c.process(cur, ctx);
      } catch (err) {
        return this.fail(c, cur, err, ctx, savepoint);
      }
      if (r !== null && typeof (r as Promise<unknown>).then === 'function') {
        const next = i + 1;
        const seen = cur;
        return (r as Promise<Envelope | null>).then(
          (v) => {
            this.count(c.name);
            if (v === null) return this.drop(c.name, savepoint);
            return this.step(list, next, v, ctx, savepoint);
          },
          (err) => this.fail(c, seen, err, ctx, savepoint),
        );
      }
      this.count(c.name);
      if (r === null) return this.drop(c.name, savepoint);
      cur = r as Envelope;
    }
    if (savepoint) this.sp.release.run();
    return { kind: 'passed', event: cur };
  }

  private drop(by: string, savepoint: boolean): RunOutcome {
    if (savepoint) this.sp.release.run();
    return { kind: 'dropped', by };
  }

  private fail(c: Cartridge, event: Envelope, err: unknown, ctx: CartridgeContext, savepoint: boolean): RunOutcome {
    const error = err instanceof Error ? err : new Error(String(err));
    if (!savepoint) throw new RunAgainWithSavepoints(c.name, event.id, error);
    this.sp.rollback.run();
    this.sp.release.run();
    this.logger.warn({ cartridge: c.name, eventId: event.id, event: event.event, err: error.message }, 'cartridge failed');
    this.onFailure(c.name, event, error, ctx);
    return { kind: 'failed', by: c.name, error };
  }

  private count(name: string): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + 1);
  }

  /** Invocations since the last call (for the batch's stats flush). */
  takeCounts(): Map<string, number> {
    const out = new Map(this.counts);
    for (const [k, v] of out) this.totals.set(k, (this.totals.get(k) ?? 0) + v);
    this.counts.clear();
    return out;
  }

  /** Forgets uncommitted counts (the batch rolled back). */
  discardCounts(): void {
    this.counts.clear();
  }

  /** Invocations per cartridge since start (for metrics). */
  get invocationTotals(): ReadonlyMap<string, number> {
    return this.totals;
  }
}

function checkUnique(cartridges: readonly Cartridge[]): readonly Cartridge[] {
  const names = new Set<string>();
  for (const c of cartridges) {
    if (names.has(c.name)) throw new WeftError('WEFT_PIPELINE', `cartridge '${c.name}' appears twice in the pipeline`);
    names.add(c.name);
  }
  return [...cartridges];
}
