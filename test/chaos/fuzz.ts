/**
 * Fuzzed ingress against a running daemon (not just the decoder): a property-based test
 * (fast-check) that pipelines mutated frames and envelopes into a real node's Redis inbox
 * `messages:victim`, the same entry shape a real peer writes, so each one travels the full
 * path: Redis provider → decode (signature against the pinned key) → replay guard → envelope
 * validation → trust → pipeline. Four kinds of input:
 *   random    random bytes
 *   stranger  a frame signed by a key nobody pinned, then mutated (flips, truncation, splices)
 *   forged    a frame signed by `mallory`, a peer the node discovered and pinned, then mutated
 *             (any change must break the signature)
 *   envelope  a VALIDLY signed, fresh frame from mallory whose single envelope is invalid
 *             (a required field dropped or given a wrong type, or a hop count over the limit)
 * The property, per batch: every input is refused exactly once (the node's rejection counters
 * grow by the batch size), and at the end nothing of it was applied, the daemon never died,
 * and a well-behaved peer (`friend`) emitting all along got every event through exactly once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { envelopeValidator } from '../../src/envelope/index.js';
import { generateIdentity, type NodeIdentity } from '../../src/identity/index.js';
import { RedisPeerRegistry } from '../../src/mesh/index.js';
import { encodeFrame, type Provider, tlsProvider } from '../../src/transport/index.js';
import { systemClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { readApplied } from './checker.js';
import { type Fleet, type FleetNode, startFleet, waitFor } from './fleet.js';

export interface FuzzOptions {
  count: number;
  seed: number;
  /** Which ingress: the Redis inbox (default) or a pinned peer's TLS link. */
  via?: 'redis' | 'tls';
  /** Inputs per property run (default 2000). */
  batch?: number;
  log?: (s: string) => void;
}

export interface FuzzResult {
  ok: boolean;
  sent: number;
  byKind: Record<string, number>;
  rejectedCodes: Record<string, number>;
  friendEvents: number;
  friendDelivered: number;
  failure?: string;
  ms: number;
}

type Mutation = { op: 'flip'; at: number; bit: number } | { op: 'truncate'; to: number } | { op: 'insert'; at: number; bytes: Uint8Array } | { op: 'overwrite'; at: number; bytes: Uint8Array };

type Recipe =
  | { kind: 'random'; bytes: Uint8Array }
  | { kind: 'stranger'; muts: Mutation[] }
  | { kind: 'forged'; muts: Mutation[] }
  | { kind: 'envelope'; envelope: Record<string, unknown> };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('truncate' as const), to: fc.nat() }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ op: fc.constant('overwrite' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
);

/** Applies mutations; the result always differs from the input and is never empty. */
export function applyMutations(input: Uint8Array, muts: Mutation[]): Buffer {
  let b = Buffer.from(input);
  for (const m of muts) {
    const at = b.length === 0 ? 0 : m.op === 'truncate' ? 0 : m.at % b.length;
    if (m.op === 'flip') b[at] = (b[at] as number) ^ (1 << m.bit);
    else if (m.op === 'truncate') b = b.subarray(0, Math.max(1, m.to % Math.max(1, b.length)));
    else if (m.op === 'insert') b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
    else Buffer.from(m.bytes).copy(b, at);
  }
  if (b.equals(Buffer.from(input))) b = Buffer.concat([b, Buffer.from([0x5a])]);
  return b;
}

function validEnvelope(i: number): Record<string, unknown> {
  return {
    id: `fuzz-${i}-${Math.random().toString(36).slice(2, 10)}`,
    event: 'mesh.test.ping',
    version: 1,
    source: 'weft@mallory',
    timestamp: new Date().toISOString(),
    level: 1,
    domain: 'mesh',
    description: 'fuzz',
    visibility: 'cluster',
    payload: { n: 2_000_000_000 + i, note: 'fuzz' },
  };
}

const REQUIRED = ['id', 'event', 'version', 'source', 'timestamp', 'level', 'domain', 'description', 'visibility', 'payload'] as const;
const wrongValue = fc.oneof(
  fc.integer({ min: -1e9, max: 1e9 }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.nat(), { maxLength: 3 }),
  fc.string({ maxLength: 8 }),
  fc.string({ minLength: 4001, maxLength: 4100 }),
  fc.double(),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.nat(), { maxKeys: 2 }),
);

/** An envelope the mesh must refuse once stamped (sourceComputer, origin, hops + 1). */
const badEnvelopeArb: fc.Arbitrary<Record<string, unknown>> = fc
  .oneof(
    fc.record({ how: fc.constant('drop' as const), field: fc.constantFrom(...REQUIRED) }),
    fc.record({ how: fc.constant('wrong' as const), field: fc.constantFrom(...REQUIRED, 'hops', 'flags', 'context', 'causationId'), value: wrongValue }),
    fc.record({ how: fc.constant('extra' as const), field: fc.string({ minLength: 1, maxLength: 12 }), value: wrongValue }),
    fc.record({ how: fc.constant('hops' as const), hops: fc.integer({ min: 8, max: 254 }) }),
  )
  .map((m) => {
    const e = validEnvelope(0);
    if (m.how === 'drop') delete e[m.field];
    else if (m.how === 'wrong' || m.how === 'extra') e[m.field] = m.value;
    else e.hops = m.hops;
    return e;
  })
  .filter((e) => {
    const stamped = { ...e, origin: 'x', sourceComputer: 'mallory', hops: (typeof e.hops === 'number' ? e.hops : 0) + 1 };
    return envelopeValidator.firstError(stamped) !== undefined || (stamped.hops as number) > 8;
  });

export const recipeArb: fc.Arbitrary<Recipe> = fc.oneof(
  { weight: 2, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 600 }).map((bytes) => ({ kind: 'random' as const, bytes })) },
  { weight: 3, arbitrary: fc.array(mutationArb, { minLength: 1, maxLength: 4 }).map((muts) => ({ kind: 'stranger' as const, muts })) },
  { weight: 3, arbitrary: fc.array(mutationArb, { minLength: 1, maxLength: 4 }).map((muts) => ({ kind: 'forged' as const, muts })) },
  { weight: 2, arbitrary: badEnvelopeArb.map((envelope) => ({ kind: 'envelope' as const, envelope })) },
);

async function status(api: FleetNode['api']): Promise<{ framesIn: number; eventsIn: number; rejected: Record<string, number> }> {
  return (await api.request<{ counters: { framesIn: number; eventsIn: number; rejected: Record<string, number> } }>('GET', '/api/mesh/status')).counters;
}
const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

export async function runFuzz(o: FuzzOptions): Promise<FuzzResult> {
  const log = o.log ?? (() => undefined);
  const B = Math.min(o.batch ?? 2000, o.count);
  const runs = Math.max(1, Math.round(o.count / B));
  const root = mkdtempSync(join(tmpdir(), 'weft-fuzz-'));
  const t0 = Date.now();
  let fleet: Fleet | undefined;
  let registry: RedisPeerRegistry | undefined;
  let redis: Redis | undefined;
  let link: Provider | undefined;
  const byKind: Record<string, number> = {};
  let sent = 0;
  let friendEvents = 0;
  let friendOn = true;
  let friendLoop: Promise<void> | undefined;
  try {
    const via = o.via ?? 'redis';
    const mallory: NodeIdentity = generateIdentity();
    const stranger: NodeIdentity = generateIdentity();
    fleet = await startFleet(root, [
      // Over TLS, mallory is a peer the victim pinned (dialling in, no address of its own).
      { computer: 'victim', cluster: 'home', mesh: via, ...(via === 'tls' ? { extraPeers: [`mallory/home#${mallory.nodeId}`] } : {}) },
      { computer: 'friend', cluster: 'home', mesh: via },
    ]);
    const f = fleet;
    const victim = f.byName('victim');
    const friend = f.byName('friend');
    if (via === 'redis') {
      const url = f.redis?.url as string;
      registry = new RedisPeerRegistry({ url, self: { computer: 'mallory', cluster: 'home', nodeId: mallory.nodeId, addresses: [], caps: [] }, ttlMs: 15_000 }, { logger: silentLogger, clock: systemClock });
      await registry.start();
      redis = new Redis(url);
    } else {
      link = tlsProvider({ computer: 'mallory', peers: [{ computer: 'victim', nodeId: victim.nodeId, host: '127.0.0.1', port: victim.tlsPort }] })({
        logger: silentLogger,
        clock: systemClock,
        identity: mallory,
      });
      await link.start();
      await link.waitForPeer('victim', { timeoutMs: 20_000 });
    }
    const known = await waitFor(async () => {
      const peers = await victim.api.request<Array<{ computer: string }>>('GET', '/api/peers');
      return ['mallory', 'friend'].every((c) => peers.some((p) => p.computer === c));
    }, 30_000);
    if (!known) throw new Error('victim never discovered mallory and friend');
    log(`fuzz: seed ${o.seed}, ${runs} property runs × ${B} inputs into ${via === 'redis' ? 'weft:messages:victim' : "mallory's TLS link to the victim"} (replay: npm run chaos -- --fuzz --seed ${o.seed} --count ${o.count}${via === 'tls' ? ' --via tls' : ''})`);
    friendLoop = (async () => {
      while (friendOn) {
        try {
          await friend.api.emitMany(Array.from({ length: 5 }, (_, k) => ({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: friendEvents + k, note: 'friend' } })));
          friendEvents += 5;
        } catch {
          // counted below only when acknowledged
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    let seq = 1;
    let strangerSeq = 1;
    const strangerBase = () =>
      encodeFrame({ type: 'events', sequence: strangerSeq++, timestamp: Date.now(), body: { envelopes: [validEnvelope(strangerSeq)] } }, { identity: stranger });
    const materialize = (r: Recipe): Buffer => {
      switch (r.kind) {
        case 'random':
          return Buffer.from(r.bytes);
        case 'stranger':
          return applyMutations(strangerBase(), r.muts);
        case 'forged':
          return applyMutations(encodeFrame({ type: 'events', sequence: seq++, timestamp: Date.now(), body: { envelopes: [validEnvelope(seq)] } }, { identity: mallory }), r.muts);
        case 'envelope':
          return Buffer.from(encodeFrame({ type: 'events', sequence: seq++, timestamp: Date.now(), body: { envelopes: [r.envelope] } }, { identity: mallory }));
      }
    };
    let failure: string | undefined;
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(recipeArb, { minLength: B, maxLength: B }), async (batch) => {
        run++;
        const before = await status(victim.api);
        if (redis) {
          const p = redis.pipeline();
          for (const r of batch) {
            byKind[r.kind] = (byKind[r.kind] ?? 0) + 1;
            p.xadd('weft:messages:victim', '*', 'weft', '1', 'type', 'mesh_event', 'from', r.kind === 'random' || r.kind === 'stranger' ? 'stranger' : 'mallory', 'payload', materialize(r));
          }
          await p.exec();
        } else {
          // In order on one link; send() waits when the victim has not granted credit yet.
          for (const r of batch) {
            byKind[r.kind] = (byKind[r.kind] ?? 0) + 1;
            await (link as Provider).send('victim', materialize(r));
          }
        }
        sent += batch.length;
        let after = before;
        const done = await waitFor(async () => {
          after = await status(victim.api);
          return sum(after.rejected) - sum(before.rejected) >= batch.length;
        }, 180_000);
        const got = sum(after.rejected) - sum(before.rejected);
        if (!victim.running || victim.crashes.length > 0) {
          failure = `the victim daemon died: ${JSON.stringify(victim.crashes[0])}`;
          return false;
        }
        if (!done || got !== batch.length) {
          failure = `batch ${run}: ${batch.length} hostile inputs, ${got} rejections counted (${done ? 'more than sent' : 'some never rejected within 180 s'})`;
          return false;
        }
        if (run % 25 === 0 || run === runs) log(`  ${sent} inputs, all rejected; ${((Date.now() - t0) / 1000).toFixed(0)} s, ${Math.round(sent / ((Date.now() - t0) / 1000))}/s`);
        return true;
      }),
      { numRuns: runs, seed: o.seed, endOnFailure: true },
    ).catch((err: Error) => {
      failure ??= err.message.slice(0, 3000);
    });
    friendOn = false;
    await friendLoop;
    const delivered = await waitFor(async () => {
      const a = await readApplied(victim.api);
      let friendCount = 0;
      for (const k of a.notifications.keys()) if (k.startsWith('friend#')) friendCount++;
      return friendCount >= friendEvents;
    }, 120_000);
    const applied = await readApplied(victim.api);
    const friendKeys = [...applied.notifications.entries()].filter(([k]) => k.startsWith('friend#'));
    const leaked = [...applied.log.keys(), ...applied.notifications.keys()].filter((k) => !k.startsWith('friend#'));
    const dup = friendKeys.filter(([, c]) => c > 1);
    if (!failure && leaked.length > 0) failure = `a hostile input was applied on the victim: ${leaked[0]}`;
    if (!failure && (!delivered || friendKeys.length !== friendEvents)) failure = `the well-behaved peer got ${friendKeys.length} of ${friendEvents} events through`;
    if (!failure && dup.length > 0) failure = `the well-behaved peer's event ${dup[0]?.[0]} was applied twice`;
    const final = await status(victim.api);
    const r: FuzzResult = {
      ok: !failure,
      sent,
      byKind,
      rejectedCodes: final.rejected,
      friendEvents,
      friendDelivered: friendKeys.length,
      ...(failure ? { failure } : {}),
      ms: Date.now() - t0,
    };
    log(`fuzz: ${sent} inputs (${JSON.stringify(byKind)}) in ${(r.ms / 1000).toFixed(0)} s; rejected ${JSON.stringify(final.rejected)}`);
    log(`fuzz: friend emitted ${friendEvents} events during the fuzz, ${friendKeys.length} arrived on the victim exactly once; victim ${victim.running ? 'up' : 'DOWN'}`);
    log(r.ok ? `PASS fuzz seed ${o.seed}` : `FAIL fuzz seed ${o.seed}: ${failure}`);
    return r;
  } finally {
    friendOn = false;
    await friendLoop;
    redis?.disconnect();
    await link?.stop().catch(() => undefined);
    await registry?.stop().catch(() => undefined);
    await fleet?.stop();
    rmSync(root, { recursive: true, force: true });
  }
}
