/**
 * What every local bus must do, run on each implementation (the embedded SQLite bus and the
 * Redis bus on a real redis-server): appended envelopes come out in order, once; what a batch
 * did not commit comes again; what it committed never does, also after a restart; events a
 * batch staged are delivered only if that batch committed; pending() counts what was appended
 * and not applied; stop() wakes a waiting reader.
 * The harness drives the bus as the processor does (offset and consumed() inside the batch's
 * write, committed() and flush() after it).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Bus, BusEntry } from '../../src/bus/index.js';
import { buildEnvelope, createDefaultCatalog, type Envelope } from '../../src/index.js';
import { type NodeStore, openNodeStore } from '../../src/store/index.js';
import { systemClock } from '../../src/util/clock.js';
import { IdGenerator } from '../../src/util/ids.js';
import { silentLogger } from '../../src/util/logger.js';
import { tempDir } from '../helpers/tmp.js';

/** Opens a bus on a node store; the same `scope` again is the same bus after a restart. */
export type OpenBus = (ns: NodeStore, scope: string) => Bus;

const CONSUMER = 'pipeline';
const catalog = createDefaultCatalog();
const ids = new IdGenerator();
const ping = (n: number): Envelope =>
  buildEnvelope({ event: 'mesh.test.ping', payload: { n, note: `n${n}` } }, { catalog, clock: systemClock, ids, defaultSource: 'bus-test', computer: 'bus' });

/** Reads until `n` entries came (or the bound passes, naming what was missing). */
async function read(bus: Bus, n: number, what: string, boundMs = 15_000): Promise<BusEntry[]> {
  const out: BusEntry[] = [];
  const deadline = Date.now() + boundMs;
  while (out.length < n) {
    if (Date.now() > deadline) throw new Error(`timed out after ${boundMs} ms waiting for ${what}: got ${out.length} of ${n}`);
    const got = await Promise.race([bus.next(n - out.length), new Promise<BusEntry[]>((r) => setTimeout(() => r([]), 500))]);
    out.push(...got);
  }
  return out;
}

/** Applies a batch as the processor does; `fail` rolls it back after consumed(). */
async function apply(ns: NodeStore, bus: Bus, entries: readonly BusEntry[], opts: { stage?: Envelope[]; fail?: boolean } = {}): Promise<void> {
  const staged: Envelope[] = [];
  try {
    await ns.store.write(() => {
      for (const e of opts.stage ?? []) {
        bus.stage(e);
        staged.push(e);
      }
      const last = entries[entries.length - 1];
      if (last) ns.offsets.set(CONSUMER, last.position);
      bus.consumed(entries);
      if (opts.fail) throw new Error('the batch fails');
    });
  } catch (err) {
    if (!opts.fail) throw err;
    bus.rewind(ns.offsets.get(CONSUMER));
    return;
  }
  await bus.committed(entries);
  bus.flush(staged);
}

const notes = (entries: readonly BusEntry[]) => entries.map((e) => ('envelope' in e ? String(e.envelope.payload.note) : `error:${e.error}`));

/** Runs the suite for one bus implementation. */
export function busCompliance(name: string, open: OpenBus): void {
  let scopes = 0;
  const withBus = async (fn: (b: { bus: Bus; ns: NodeStore; restart(): Promise<Bus> }) => Promise<void>) => {
    const t = tempDir(`weft-bus-${name}-`);
    const path = join(t.dir, 'weft.db');
    let ns = openNodeStore({ path }, { clock: systemClock, logger: silentLogger });
    const scope = `t${++scopes}`;
    let bus = open(ns, scope);
    await bus.start();
    const ctx = {
      get bus() {
        return bus;
      },
      get ns() {
        return ns;
      },
      async restart() {
        await bus.stop();
        await ns.store.close();
        ns = openNodeStore({ path }, { clock: systemClock, logger: silentLogger });
        bus = open(ns, scope);
        await bus.start();
        return bus;
      },
    };
    try {
      await fn(ctx);
    } finally {
      await bus.stop();
      await ns.store.close();
      t.cleanup();
    }
  };

  test(`${name} bus: appended envelopes come out in order, each once, and are counted`, { timeout: 60_000 }, async () => {
    await withBus(async (b) => {
      await b.bus.append([ping(1), ping(2), ping(3)]);
      await b.bus.append([ping(4)]);
      const got = await read(b.bus, 4, 'four appended envelopes');
      assert.deepEqual(notes(got), ['n1', 'n2', 'n3', 'n4']);
      assert.equal(b.bus.pending(), 4, 'read but not applied: still pending');
      assert.ok(got.every((e) => 'envelope' in e && e.envelope.event === 'mesh.test.ping'));
      await apply(b.ns, b.bus, got);
      assert.equal(b.bus.pending(), 0, 'applied: nothing pending');
      const more = await Promise.race([b.bus.next(10), new Promise<BusEntry[]>((r) => setTimeout(() => r([]), 700))]);
      assert.deepEqual(more, [], 'nothing comes twice');
      assert.equal(b.bus.stats().appended, 4);
    });
  });

  test(`${name} bus: a batch that rolls back is delivered again; a committed one never, also after a restart`, { timeout: 60_000 }, async () => {
    await withBus(async (b) => {
      await b.bus.append([ping(1), ping(2)]);
      const first = await read(b.bus, 2, 'the first two');
      await apply(b.ns, b.bus, first, { fail: true });
      const again = await read(b.bus, 2, 'the rolled-back batch again');
      assert.deepEqual(notes(again), ['n1', 'n2']);
      await apply(b.ns, b.bus, again);
      await b.bus.append([ping(3)]);
      const third = await read(b.bus, 1, 'the third');
      assert.deepEqual(notes(third), ['n3']);
      // Read but not committed when the node stops: it comes again after the restart, the others do not.
      await b.restart();
      const afterRestart = await read(b.bus, 1, 'the uncommitted third after a restart');
      assert.deepEqual(notes(afterRestart), ['n3']);
      await apply(b.ns, b.bus, afterRestart);
      await b.restart();
      const none = await Promise.race([b.bus.next(10), new Promise<BusEntry[]>((r) => setTimeout(() => r([]), 1000))]);
      assert.deepEqual(notes(none), [], 'nothing committed comes back after a restart');
    });
  });

  test(`${name} bus: events a batch stages are delivered only when that batch commits`, { timeout: 60_000 }, async () => {
    await withBus(async (b) => {
      await b.bus.append([ping(1)]);
      const one = await read(b.bus, 1, 'the appended one');
      await apply(b.ns, b.bus, one, { stage: [ping(100)], fail: true });
      const again = await read(b.bus, 1, 'the rolled-back one again');
      assert.deepEqual(notes(again), ['n1']);
      await apply(b.ns, b.bus, again, { stage: [ping(101)] });
      const staged = await read(b.bus, 1, 'the event the committed batch staged');
      assert.deepEqual(notes(staged), ['n101']);
      await apply(b.ns, b.bus, staged);
      const none = await Promise.race([b.bus.next(10), new Promise<BusEntry[]>((r) => setTimeout(() => r([]), 700))]);
      assert.deepEqual(notes(none), [], 'the rolled-back batch staged nothing');
    });
  });

  test(`${name} bus: stop() wakes a reader waiting on an empty bus`, { timeout: 30_000 }, async () => {
    await withBus(async (b) => {
      const waiting = b.bus.next(10);
      await new Promise((r) => setTimeout(r, 100));
      await b.bus.stop();
      const got = await Promise.race([waiting, new Promise<string>((r) => setTimeout(() => r('still waiting'), 10_000))]);
      assert.deepEqual(got, []);
    });
  });
}
