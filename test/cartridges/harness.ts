/**
 * Runs one cartridge in isolation against a real node store in a temp dir: builds envelopes
 * like emit() does, gives each event a fresh CartridgeContext, and records what it emitted.
 */
import { join } from 'node:path';
import { type Catalog, createDefaultCatalog } from '../../src/catalog/index.js';
import type { EmitInput, Envelope } from '../../src/envelope/index.js';
import {
  buildEnvelope,
  type Cartridge,
  type CartridgeContext,
  type CartridgeFactory,
  type CartridgeStores,
  type NodeSelf,
} from '../../src/pipeline/index.js';

/** A cartridge, or a factory the harness binds to its store (each run: a reopened store is the current one). */
export type UnderTest = Cartridge | CartridgeFactory<never>;
import { type NodeStore, type NotificationChange, openNodeStore } from '../../src/store/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { IdGenerator } from '../../src/util/ids.js';
import { silentLogger } from '../../src/util/logger.js';
import { tempDir } from '../helpers/tmp.js';

export interface Harness {
  ns: NodeStore;
  clock: ManualClock;
  catalog: Catalog;
  self: NodeSelf;
  emitted: Envelope[];
  changes: NotificationChange[];
  /** Builds an envelope as a local producer's emit() would. */
  make(input: EmitInput, extra?: Partial<Envelope>): Envelope;
  /** Runs the cartridge on one event in its own transaction; returns what it returned and the facts. */
  run(
    c: UnderTest,
    env: Envelope,
    facts?: Record<string, unknown>,
  ): Promise<{ out: Envelope | null; facts: Map<string, unknown> }>;
  /** Runs many events in one transaction (a batch), each with fresh facts; returns the outputs. */
  runMany(
    c: UnderTest,
    envs: readonly Envelope[],
    facts?: Record<string, unknown>,
  ): Promise<Array<Envelope | null>>;
  /** A fresh context for one event, as the pipeline gives it (for running a cartridge by hand inside a write). */
  context(env: Envelope, facts?: Record<string, unknown>): CartridgeContext;
  /** The cartridge itself, or the factory bound to the current store. */
  bind(c: UnderTest): Cartridge;
  /** Reopens the store on the same file (a restart). */
  reopen(): Promise<void>;
  close(): Promise<void>;
}

export async function harness(opts: { computer?: string; dir?: string } = {}): Promise<Harness> {
  const tmp = opts.dir ? { dir: opts.dir, cleanup: () => undefined } : tempDir('weft-cart-');
  const clock = new ManualClock();
  const catalog = createDefaultCatalog();
  const self: NodeSelf = { computer: opts.computer ?? 'laptop' };
  const open = () => openNodeStore({ path: join(tmp.dir, 'weft.db') }, { clock, logger: silentLogger });
  const ids = new IdGenerator();
  const build = { catalog, clock, ids, defaultSource: `weft@${self.computer}`, computer: self.computer };
  const h: Harness = {
    ns: open(),
    clock,
    catalog,
    self,
    emitted: [],
    changes: [],
    make: (input, extra) => ({ ...buildEnvelope(input, build), ...extra }),
    async run(c, env, facts) {
      const map = new Map<string, unknown>(Object.entries(facts ?? {}));
      const bound = h.bind(c);
      const out = await h.ns.store.writeAsync(() => bound.process(env, context(env, map)));
      return { out, facts: map };
    },
    async runMany(c, envs, facts) {
      const bound = h.bind(c);
      return h.ns.store.writeAsync(async () => {
        const outs: Array<Envelope | null> = [];
        for (const env of envs)
          outs.push(await bound.process(env, context(env, new Map(Object.entries(facts ?? {})))));
        return outs;
      });
    },
    bind: (c) => (typeof c === 'function' ? (c as CartridgeFactory<CartridgeStores>)(h.ns) : c),
    context: (env, facts) => context(env, new Map(Object.entries(facts ?? {}))),
    async reopen() {
      await h.ns.store.close();
      h.ns = open();
    },
    async close() {
      await h.ns.store.close();
      tmp.cleanup();
    },
  };
  function context(env: Envelope, map: Map<string, unknown>): CartridgeContext {
    return {
      catalog,
      clock,
      logger: silentLogger,
      self,
      now: new Date(clock.now()).toISOString(),
      facts: map,
      notify: (ch) => h.changes.push(ch),
      emit: (input) => {
        const e = buildEnvelope(
          { causationId: env.id, correlationId: env.correlationId ?? env.id, ...input },
          build,
        );
        h.emitted.push(e);
        return e;
      },
    };
  }
  return h;
}

export const TODO = 'domain.software-development.planning.todo.created';
export const CRASH = 'system.worker.crashed';

export function todo(slug: string, extra: Partial<EmitInput> = {}): EmitInput {
  return { event: TODO, payload: { slug, title: `Todo ${slug}` }, ...extra };
}

export function crash(worker: string, extra: Partial<EmitInput> = {}): EmitInput {
  return { event: CRASH, payload: { worker, error: 'boom', restarts: 1 }, ...extra };
}
