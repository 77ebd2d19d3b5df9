/**
 * A real node whose committed batches feed one delivery channel, with a ManualClock that the
 * injected sleep advances: no real waiting and no timing assertions, only the clock's readings.
 */
import assert from 'node:assert/strict';
import type { DeliveryChannel, DeliveryDeps } from '../../src/delivery/index.js';
import { createNode, type WeftNode } from '../../src/node/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { tempDir } from '../helpers/tmp.js';

/** Polls until `fn` holds (a liveness bound for the test, not a timing assertion). */
export async function waitFor(fn: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A sleep that moves the ManualClock instead of waiting. */
export function fakeSleep(clock: ManualClock): (ms: number, signal: AbortSignal) => Promise<void> {
  return (ms, signal) => {
    if (!signal.aborted) clock.advance(ms);
    return new Promise((r) => setImmediate(r));
  };
}

/** A sleep that never ends by itself (only when aborted): a retry stays pending until the test stops the channel. */
export function heldSleep(): { sleep: (ms: number, signal: AbortSignal) => Promise<void>; waits: number[] } {
  const waits: number[] = [];
  return {
    waits,
    sleep: (ms, signal) =>
      new Promise<void>((resolve) => {
        if (signal.aborted) return resolve();
        waits.push(ms);
        signal.addEventListener('abort', () => resolve(), { once: true });
      }),
  };
}

export interface Rig {
  node: WeftNode;
  clock: ManualClock;
  delivery: DeliveryChannel;
  dir: string;
  /** Emits events and waits until the delivery recorded their changes. */
  emit(inputs: unknown[]): Promise<void>;
  close(): Promise<void>;
}

export interface RigOptions {
  dir?: string;
  clock?: ManualClock;
  /** Replaces the ManualClock-advancing sleep. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  start?: boolean;
}

/** Starts a node on a temp dir (or `dir`) and the channel `make` builds; `close` stops both and removes a temp dir. */
export async function rig(
  make: (deps: DeliveryDeps) => DeliveryChannel,
  opts: RigOptions = {},
): Promise<Rig> {
  const t = opts.dir ? undefined : tempDir('weft-delivery-');
  const dir = opts.dir ?? (t as { dir: string }).dir;
  const clock = opts.clock ?? new ManualClock();
  const node = await createNode({ dataDir: dir, computer: 'test' });
  const delivery = make({
    ns: node.ns,
    clock,
    logger: silentLogger,
    random: () => 0.5,
    sleep: opts.sleep ?? fakeSleep(clock),
  });
  const enqueues: Promise<number>[] = [];
  node.onCommitted((b) => {
    enqueues.push(delivery.enqueue(b.changes));
  });
  await node.start();
  if (opts.start !== false) delivery.start();
  return {
    node,
    clock,
    delivery,
    dir,
    async emit(inputs) {
      await node.emitMany(inputs);
      assert.ok(await node.idle(), 'pipeline idle');
      await Promise.all(enqueues);
    },
    async close() {
      await delivery.stop();
      await node.stop();
      t?.cleanup();
    },
  };
}

/** A `system.worker.crashed` event at `level`: one notification per worker name. */
export function crashed(worker: string, level: number, error = 'boom'): Record<string, unknown> {
  return { event: 'system.worker.crashed', level, payload: { worker, error, restarts: 1 } };
}

/** The id of the notification raised for `worker`. */
export function notificationId(r: Rig, worker: string): number {
  const n = r.node.ns.notifications.list({ limit: 1000 }).items.find((x) => x.payload.worker === worker);
  assert.ok(n, `notification for ${worker}`);
  return n.id;
}
