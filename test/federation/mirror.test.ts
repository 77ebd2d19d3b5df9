/**
 * Mirror, in one process over the in-memory network: what a source serves and refuses, the
 * order and completeness of what a mirror applies, resuming from the token, a pruned source
 * (mirror.gap), the stall alarm, and the log's prune limits. Real daemons over TLS and Redis,
 * with kill -9, are in mirror-daemons.test.ts.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { durationMs } from '../../src/api/index.js';
import { releaseQuarantined } from '../../src/cartridges/index.js';
import type { AssembledNode } from '../../src/daemon/assemble.js';
import { type MirrorBatch, MirrorSource, type OrganDeps, parseBatch } from '../../src/federation/index.js';
import type { InboundMessage } from '../../src/mesh/index.js';
import { INGRESS_FACT } from '../../src/pipeline/index.js';
import { startTestNode, waitFor } from '../helpers/node.js';
import { emitPings, idle, type MirrorPair, mirrorPair } from './mirror-pair.js';

const KEY = 'src/mirror/main';

interface Row {
  seq: number;
  id: string;
  event: string;
  n?: number;
  visibility: string;
}

function rows(n: AssembledNode, where = '1 = 1', ...params: unknown[]): Row[] {
  const r = n.node.ns.store.reader.prepare(`SELECT seq, id, event, body FROM events WHERE ${where} ORDER BY seq`).all(...params) as Array<{ seq: number; id: string; event: string; body: string }>;
  return r.map((x) => {
    const b = JSON.parse(x.body) as { payload?: { n?: number }; visibility: string };
    return { seq: x.seq, id: x.id, event: x.event, visibility: b.visibility, ...(typeof b.payload?.n === 'number' ? { n: b.payload.n } : {}) };
  });
}

/** Ids of events the pipeline stopped: quarantined, rejected by trust, dead-lettered (from their own tables, not the code under test). */
function stopped(n: AssembledNode): Set<string> {
  const db = n.node.ns.store.reader;
  const ids = db.prepare("SELECT event_id FROM quarantine WHERE status != 'released' UNION SELECT ref FROM rejected_entries UNION SELECT event_id FROM dead_letters").pluck().all() as string[];
  return new Set(ids);
}

/** What the source may serve a peer of its cluster, computed here from the rules (not from the code under test). */
function eligible(src: AssembledNode, from = 1): Row[] {
  const r = src.node.ns.store.reader.prepare('SELECT seq, id, event, direct, body FROM events WHERE seq >= ? ORDER BY seq').all(from) as Array<{ seq: number; id: string; event: string; direct: number; body: string }>;
  const out = stopped(src);
  return r
    .filter((x) => {
      const b = JSON.parse(x.body) as { hops?: number; visibility: string };
      // Originated here: appended by the bus (direct 0) or appended and applied at emit (3); not applied from a peer (1).
      return (x.direct === 0 || x.direct === 3) && !(b.hops && b.hops > 0) && (b.visibility === 'cluster' || b.visibility === 'public') && src.node.catalog.get(x.event)?.dataClass !== 'raw' && !out.has(x.id);
    })
    .map((x) => ({ seq: x.seq, id: x.id, event: x.event, visibility: (JSON.parse(x.body) as { visibility: string }).visibility }));
}

/** An effect of applying an event: each of these events has exactly one notification on the node. */
function notifiedOnce(n: AssembledNode, ids: readonly string[]): void {
  const q = n.node.ns.store.reader.prepare('SELECT COUNT(*) FROM notifications WHERE event_id = ?').pluck();
  const wrong = ids.map((id) => ({ id, notes: q.get(id) as number })).filter((x) => x.notes !== 1);
  assert.deepEqual(wrong.slice(0, 5), [], `one notification per event (${wrong.length} of ${ids.length} have another count)`);
}

interface Counters {
  token: number;
  applied_count: number;
  duplicates: number;
}

/** The mount's token and counters, as one consistent reading (the live status). */
function counters(p: MirrorPair, key: string): Counters {
  const live = p.dst.federation!.mirror.status(p.dst.federation!.showMount(key).id);
  assert.ok(live, `mount ${key} runs`);
  return { token: live.token, applied_count: live.applied_count, duplicates: live.duplicates };
}

/** Eligible source rows in (from.token, to.token]: what the mount looked at between two readings. */
const eligibleBetween = (src: AssembledNode, from: Counters, to: Counters) => eligible(src, from.token + 1).filter((r) => r.seq <= to.token);

/** Rows the mirror applied from the source (stamped with its node id), in the mirror's log order. */
const mirroredFrom = (dst: AssembledNode, srcId: string) => rows(dst, "json_extract(body, '$.origin') = ? AND json_extract(body, '$.hops') >= 1", srcId);

const maxSeq = (n: AssembledNode) => n.node.ns.store.reader.prepare('SELECT COALESCE(MAX(seq), 0) FROM events').pluck().get() as number;

async function caughtUp(p: MirrorPair, key: string, ms = 30_000): Promise<void> {
  const fed = p.dst.federation!;
  const t = setTimeout(() => console.error(JSON.stringify(fed.showMount(key)), maxSeq(p.src)), ms - 100);
  after(() => clearTimeout(t));
  await waitFor(
    () => {
      const m = fed.showMount(key);
      return m.live?.active === true && m.resumeToken >= maxSeq(p.src) && m.live.lag === 0;
    },
    ms,
    `mirror ${key} to catch up with ${maxSeq(p.src)}`,
  );
}

const payloads = (n: AssembledNode, type: string) => n.node.ns.log.list({ type, limit: 1000 }).map((e) => e.envelope.payload as Record<string, unknown>);

describe('mirror between two nodes', () => {
  let p: MirrorPair;
  after(async () => p?.cleanup());

  test('a mirror mount applies every cluster and public event the source originated, in source order, and none of its local, raw or received ones', async () => {
    p = await mirrorPair();
    const { src } = p;
    // Logged before the mirror's node was a peer: never pushed to it.
    await emitPings(src, 0, 3000, (i) => (i % 10 === 3 ? 'local' : i % 10 === 7 ? 'public' : 'cluster'));
    await src.node.emit({ event: 'telemetry.shell.command', visibility: 'cluster', payload: { command: 'ls' } });
    // An event this node received from a third node: never re-forwarded by a mirror either.
    const received = src.node.build({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: -1 } });
    Object.assign(received, { origin: 'weft:ed25519:elsewhere', sourceComputer: 'three', hops: 1 });
    await src.node.processor.processBatch([{ position: 'test', envelope: received, logged: false, facts: { [INGRESS_FACT]: { peerNodeId: 'weft:ed25519:elsewhere', peerComputer: 'three', signatureVerified: true } } }], {});
    await emitPings(src, 3000, 500);
    await idle(src);
    p.admit();
    const m = await p.dst.federation!.openMount({ peer: 'src', mode: 'mirror' });
    assert.equal(m.state, 'open');
    await caughtUp(p, 'src/mirror/main');

    const got = mirroredFrom(p.dst, p.ids.src);
    const want = eligible(src);
    assert.deepEqual(new Set(got.map((r) => r.id)), new Set(want.map((r) => r.id)), 'exactly the eligible events');
    assert.equal(got.length, want.length, 'each once');
    const pings = got.filter((r) => r.event === 'mesh.test.ping').map((r) => r.n);
    const expected = Array.from({ length: 3500 }, (_, i) => i).filter((i) => i >= 3000 || i % 10 !== 3);
    assert.deepEqual(pings, expected, 'the pings in source order, without the local ones or the received one');
    assert.equal(got.some((r) => r.event === 'telemetry.shell.command'), false, 'raw-class data never leaves');
    // Stamped like mesh ingress, so the mirror's node does not publish them on.
    const one = p.dst.node.ns.log.get(got[0]!.id)!.envelope;
    assert.equal(one.sourceComputer, 'src');
    assert.equal(one.hops, 1);
    const live = p.dst.federation!.showMount('src/mirror/main').live!;
    // Push was off (the source did not know this node): every event came by the mirror, once.
    assert.equal(live.applied_count, got.length);
    assert.equal(live.duplicates, 0, 'nothing was seen twice');
    notifiedOnce(p.dst, got.filter((r) => r.event === 'mesh.test.ping').map((r) => r.id));
    assert.ok((live.bundle_seq as number) >= Math.ceil(maxSeq(src) / 128), 'one batch per window at least');
    assert.equal(live.error, null);
    assert.equal(p.dst.federation!.showMount(KEY).telemetry.source_node, p.ids.src, 'the source node recorded at first contact');
  });

  test('new events are polled each heartbeat once caught up; an event that also came by push is applied once', async () => {
    // The source knows this node now: what it logs is pushed too.
    const before = counters(p, KEY);
    await emitPings(p.src, 5000, 300);
    await caughtUp(p, KEY);
    const now = counters(p, KEY);
    const got = mirroredFrom(p.dst, p.ids.src).filter((r) => r.event === 'mesh.test.ping' && (r.n as number) >= 5000);
    assert.equal(got.length, 300);
    notifiedOnce(p.dst, got.map((r) => r.id));
    // Each eligible position the mount read was taken once: new here, or here already by push.
    const seen = now.applied_count - before.applied_count + (now.duplicates - before.duplicates);
    assert.equal(seen, eligibleBetween(p.src, before, now).length, 'each event looked at once by the mirror');
  });

  test('a stream option narrows the mirror to matching types', async () => {
    await p.src.node.emitMany([
      { event: 'mesh.test.load', visibility: 'cluster', payload: { n: 1, sentAt: 1 } },
      { event: 'mesh.test.load', visibility: 'cluster', payload: { n: 2, sentAt: 2 } },
    ]);
    await idle(p.src);
    await p.dst.federation!.openMount({ peer: 'src', mode: 'mirror', name: 'loads', options: { stream: 'mesh.test.l*' } });
    await caughtUp(p, 'src/mirror/loads');
    const m = p.dst.federation!.showMount('src/mirror/loads');
    // Pushed too (the source knows this node now): what the mirror brought was here already.
    assert.equal((m.live?.applied_count as number) + (m.live?.duplicates as number), 2, 'only the two mesh.test.load events');
    assert.equal(m.telemetry.token_stream, 'mesh.test.l*', 'the stream is recorded with the token');
  });

  test('reopening a mount with another stream starts its token again from 0: nothing the new stream adds is skipped, nothing is applied twice', async () => {
    const fed = p.dst.federation!;
    const key = 'src/mirror/loads';
    const before = counters(p, key);
    assert.ok(before.token > 0);
    await fed.openMount({ peer: 'src', mode: 'mirror', name: 'loads', options: { stream: 'mesh.test.p*' } });
    await caughtUp(p, key);
    const now = counters(p, key);
    const pings = eligible(p.src).filter((r) => r.event === 'mesh.test.ping' && r.seq <= now.token);
    // Every ping (all here already, by push or the main mount) was read again from position 1.
    assert.equal(now.duplicates - before.duplicates, pings.length, 'every ping looked at, from position 1');
    assert.equal(now.applied_count, before.applied_count, 'nothing applied twice');
    notifiedOnce(p.dst, pings.map((r) => r.id));
    await waitFor(() => fed.showMount(key).telemetry.token_stream === 'mesh.test.p*', 5000, 'the new stream recorded');
    // Two mounts of the same events would split them between their counters.
    await fed.closeMount(key);
  });

  test('stopping keeps the token; a restart resumes after it and applies nothing twice', async () => {
    // Push off: whatever reaches this node from now on came by the mirror.
    p.pushOff();
    await caughtUp(p, KEY);
    const start = counters(p, KEY);
    await emitPings(p.src, 10_000, 3000);
    await waitFor(() => p.dst.federation!.showMount(KEY).resumeToken > start.token, 10_000, 'progress');
    const dst = await p.restart('dst');
    const before = dst.federation!.showMount(KEY).resumeToken;
    assert.ok(before > start.token);
    await caughtUp(p, KEY);
    const now = counters(p, KEY);
    const got = mirroredFrom(dst, p.ids.src).filter((r) => r.event === 'mesh.test.ping' && (r.n as number) >= 10_000);
    assert.deepEqual(
      got.map((r) => r.n),
      Array.from({ length: 3000 }, (_, i) => 10_000 + i),
    );
    // The counters survive the restart (written when it stops): each position was applied once, none seen twice.
    assert.equal(now.applied_count - start.applied_count, eligibleBetween(p.src, start, now).length, 'each event applied once');
    assert.equal(now.duplicates, start.duplicates, 'nothing came twice');
    notifiedOnce(dst, got.map((r) => r.id));
  });

  test('a node that pruned its log still knows the ids: a new mount from token 0 applies nothing again', async () => {
    const dst = p.dst;
    await idle(dst);
    const r = await dst.node.ns.log.prune(maxSeq(dst) + 1);
    assert.equal(r.limitedBy, 'newest');
    assert.ok(r.removed > 5000, `removed ${r.removed}`);
    const pings = eligible(p.src).filter((x) => x.event === 'mesh.test.ping');
    await dst.federation!.openMount({ peer: 'src', mode: 'mirror', name: 'again' });
    await caughtUp(p, 'src/mirror/again');
    const now = counters(p, 'src/mirror/again');
    assert.equal(now.applied_count, 0, 'nothing applied again');
    assert.equal(now.duplicates, eligible(p.src).filter((x) => x.seq <= now.token).length, 'every event seen, as a duplicate');
    notifiedOnce(dst, pings.map((x) => x.id));
  });
});

describe('a source that restarts', () => {
  let p: MirrorPair;
  after(async () => p?.cleanup());

  test('the mirror waits, asks again and finishes: every event once, in order', async () => {
    p = await mirrorPair({ mirror: { beatMs: 100, window: 64, inFlight: 4 } });
    await emitPings(p.src, 0, 6000);
    await idle(p.src);
    p.admit();
    await p.dst.federation!.openMount({ peer: 'src', mode: 'mirror' });
    await waitFor(() => p.dst.federation!.showMount('src/mirror/main').resumeToken > 500, 20_000, 'progress');
    await p.restart('src');
    p.admit();
    await caughtUp(p, 'src/mirror/main', 60_000);
    const got = mirroredFrom(p.dst, p.ids.src).filter((r) => r.event === 'mesh.test.ping').map((r) => r.n);
    assert.deepEqual(got, Array.from({ length: 6000 }, (_, i) => i));
  });
});

const sourceDeps = (n: AssembledNode): OrganDeps => ({
  node: n.node,
  mesh: n.mesh!,
  peers: n.peers,
  mounts: n.federation!.mounts,
  audit: n.audit,
  clock: n.node.clock,
  logger: n.node.logger,
});

describe('the source side', () => {
  let p: MirrorPair;
  after(async () => p?.cleanup());
  const deps = sourceDeps;

  test('refuses a pull from an unknown or untrusted peer, or a malformed one, with an error and nothing covered', async () => {
    p = await mirrorPair();
    await emitPings(p.src, 0, 50);
    await idle(p.src);
    const s = new MirrorSource({}, deps(p.src));
    const pull = { mount: 'src/mirror/main', req: 'r1', from: 1, to: 100 };
    const unknown = s.answer('dst', p.ids.dst, pull);
    assert.equal(unknown.error?.code, 'WEFT_FORBIDDEN');
    assert.equal(unknown.events.length, 0);
    p.admit('untrusted');
    assert.match(s.answer('dst', p.ids.dst, pull).error?.message ?? '', /untrusted/);
    p.admit('peer');
    assert.equal(s.answer('dst', p.ids.dst, pull).error, undefined);
    assert.equal(s.answer('dst', 'weft:ed25519:someoneelse', pull).error?.code, 'WEFT_FORBIDDEN', 'the name must go with its key');
    assert.equal(s.answer('dst', p.ids.dst, { ...pull, from: 0 }).error?.code, 'WEFT_VALIDATION');
    assert.equal(s.answer('dst', p.ids.dst, { ...pull, to: 0 }).error?.code, 'WEFT_VALIDATION');
    assert.equal(s.answer('dst', p.ids.dst, { ...pull, stream: 'a b' }).error?.code, 'WEFT_VALIDATION');
  });

  test('a peer outside the cluster gets the public events only', async () => {
    p.admit('peer', 'other');
    await p.src.node.emit({ event: 'mesh.test.ping', visibility: 'public', payload: { n: 999 } });
    await idle(p.src);
    const b = new MirrorSource({}, deps(p.src)).answer('dst', p.ids.dst, { mount: 'x', req: 'r', from: 1, to: 10_000 });
    assert.deepEqual(
      b.events.map((e) => (JSON.parse(e.envelope) as { payload: { n: number } }).payload.n),
      [999],
    );
    p.admit('peer', 'pair');
  });

  test('an answer is cut short at a row to fit its byte budget and says the real end; never past the newest event', async () => {
    const s = new MirrorSource({ maxBatchBytes: 4000 }, deps(p.src));
    const high = maxSeq(p.src);
    const seen: number[] = [];
    let from = 1;
    let answers = 0;
    for (;;) {
      const b: MirrorBatch = s.answer('dst', p.ids.dst, { mount: 'x', req: `r${answers}`, from, to: from + 10_000 });
      answers++;
      assert.ok(b.to <= high, 'never past high');
      assert.equal(b.high, high);
      const bytes = b.events.reduce((a, e) => a + Buffer.byteLength(e.envelope) + 32, 0);
      assert.ok(bytes <= 4000 || b.events.length === 1);
      for (const e of b.events) seen.push(e.seq);
      if (b.to >= high) break;
      assert.ok(b.to >= from, 'progress');
      from = b.to + 1;
    }
    assert.ok(answers > 3, 'several answers');
    assert.deepEqual(seen, eligible(p.src).map((r) => r.seq), 'every eligible position exactly once across the cut answers');
    const beyond = s.answer('dst', p.ids.dst, { mount: 'x', req: 'z', from: high + 1, to: high + 100 });
    assert.deepEqual([beyond.to, beyond.events.length], [high, 0], 'nothing there yet: to = from - 1');
  });

  test('the pull handler returns at once: answers wait in a bounded per-peer queue, a repeat of a queued range is dropped', async () => {
    const mesh = p.src.mesh!;
    const handler = (mesh as unknown as { handlers: Map<string, (m: InboundMessage) => unknown> }).handlers.get('mirror.pull')!;
    const send = mesh.sendMessage.bind(mesh);
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => {
      release = r;
    });
    const sent: number[] = [];
    mesh.sendMessage = async (c, kind, data, o) => {
      if (kind !== 'mirror.batch') return send(c, kind, data, o);
      await held;
      sent.push((data as MirrorBatch).from);
    };
    try {
      const c0 = p.src.federation!.mirror.sourceCounters();
      const pull = (from: number) => ({ computer: 'dst', nodeId: p.ids.dst, kind: 'mirror.pull', data: { mount: 'q', req: `r${from}`, from, to: from + 9 } });
      for (let i = 0; i < 12; i++) assert.equal(handler(pull(1 + 10 * i)), undefined, 'no promise: the message slot is free at once');
      assert.equal(handler(pull(1)), undefined);
      const c1 = p.src.federation!.mirror.sourceCounters();
      assert.equal(c1.busy - c0.busy, 4, 'past 8 queued answers, pulls are dropped (the mirror asks again)');
      assert.equal(c1.repeats - c0.repeats, 1, 'a repeat of a queued range is dropped');
      release();
      await waitFor(() => sent.length === 8, 5000, 'the queued answers sent');
      assert.deepEqual(sent, Array.from({ length: 8 }, (_, i) => 1 + 10 * i), 'in order');
    } finally {
      release();
      mesh.sendMessage = send;
    }
  });
});

describe('only what the pipeline passed is mirrored', () => {
  let p: MirrorPair;
  after(async () => p?.cleanup());

  test('a local event trust quarantined (a flood) or rejected is never mirrored; a released one is served again', async () => {
    // One producer floods (3 events, then 1 a second); another is muted.
    p = await mirrorPair({ srcTrust: { overrides: { flooder: { rate: { perSecond: 1, burst: 3 } }, muted: { outcome: 'reject' } } } });
    const src = p.src;
    await src.node.emitMany(Array.from({ length: 20 }, (_, i) => ({ event: 'mesh.test.ping', visibility: 'cluster' as const, source: 'flooder', payload: { n: i } })));
    await src.node.emitMany([
      { event: 'mesh.test.ping', visibility: 'cluster', source: 'muted', payload: { n: 100 } },
      { event: 'mesh.test.ping', visibility: 'cluster', source: 'fine', payload: { n: 101 } },
    ]);
    await idle(src);
    const pings = rows(src, "event = 'mesh.test.ping'");
    const out = stopped(src);
    const held = pings.filter((r) => out.has(r.id));
    assert.ok(held.length >= 15, `the flood's excess and the muted event were stopped (${held.length})`);
    assert.ok(held.some((r) => r.n === 100), 'the muted one was rejected');
    p.admit();
    await p.dst.federation!.openMount({ peer: 'src', mode: 'mirror' });
    await caughtUp(p, KEY);
    const got = mirroredFrom(p.dst, p.ids.src).filter((r) => r.event === 'mesh.test.ping');
    assert.deepEqual(
      got.map((r) => r.n),
      pings.filter((r) => !out.has(r.id)).map((r) => r.n),
      'exactly what the pipeline passed',
    );
    assert.equal(got.length, 4, 'the flood\'s burst of 3 and the fine one');
    for (const r of held) assert.equal(p.dst.node.ns.log.get(r.id), undefined, `${r.n} was not mirrored`);

    // Released from quarantine, an event passes: a source answer serves it now (a mirror past its position had it pushed).
    const q = src.node.ns.quarantine.list({ status: 'held', limit: 1 })[0]!;
    await releaseQuarantined({ ns: src.node.ns, processBatch: (e, f) => src.node.processor.processBatch(e, f) }, q.id);
    const seq = src.node.ns.log.get(q.eventId)!.seq;
    const s = new MirrorSource({}, sourceDeps(src));
    const b = s.answer('dst', p.ids.dst, { mount: 'x', req: 'r', from: seq, to: seq });
    assert.deepEqual(b.events.map((e) => e.seq), [seq]);
  });

  test('a row appended but not consumed by the pipeline yet is not served: the answer stops before it and says so as high', async () => {
    const src = p.src;
    await idle(src);
    const s = new MirrorSource({}, sourceDeps(src));
    const env = src.node.build({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 7777 } });
    // Appended as the bus does, and read at once: the pipeline cannot have run on it in between.
    const seq = await src.node.ns.store.write(() => src.node.ns.log.append(env));
    const b = s.answer('dst', p.ids.dst, { mount: 'x', req: 'r', from: 1, to: seq + 100 });
    assert.deepEqual([b.to, b.high], [seq - 1, seq - 1]);
    assert.equal(b.events.some((e) => e.seq === seq), false);
    const first = s.answer('dst', p.ids.dst, { mount: 'x', req: 'r', from: seq, to: seq + 100 });
    assert.deepEqual([first.to, first.high, first.events.length], [seq - 1, seq - 1, 0], 'nothing yet at its position');
    await idle(src);
    const later = s.answer('dst', p.ids.dst, { mount: 'x', req: 'r', from: seq, to: seq + 100 });
    assert.equal(later.events[0]?.seq, seq, 'served once the pipeline passed it');
  });
});

describe('answers a mirror does not trust', () => {
  let p: MirrorPair;
  after(async () => p?.cleanup());

  test('a batch whose positions do not agree is refused as malformed', () => {
    const ok = { mount: 'm', req: 'r', from: 5, to: 10, events: [], high: 20, prunedBelow: 1 };
    assert.equal(parseBatch(ok).to, 10);
    assert.throws(() => parseBatch({ ...ok, prunedBelow: 2 ** 53 }), /prunedBelow/);
    assert.throws(() => parseBatch({ ...ok, prunedBelow: 22 }), /prunedBelow/);
    assert.equal(parseBatch({ ...ok, prunedBelow: 21 }).prunedBelow, 21, 'everything pruned but the newest + 1');
    assert.throws(() => parseBatch({ ...ok, high: 9 }), /'to' 10 is past/);
    assert.throws(() => parseBatch({ ...ok, to: 3 }), /'to'/);
    // Covering nothing (to = from - 1) is fine whatever high says: a mirror ahead of a source that lost its log sees it.
    assert.equal(parseBatch({ ...ok, to: 4, high: 2, prunedBelow: 1 }).high, 2);
    assert.equal(parseBatch({ mount: 'm', req: 'r', from: 500, to: 499, events: [], high: 0, prunedBelow: 0, error: { code: 'WEFT_FORBIDDEN', message: 'no' } }).error?.code, 'WEFT_FORBIDDEN', 'a refusal');
  });

  test('a source whose log ends before the token puts the mount in error (federation.mount.failed), and it is open again once the source is past it', async () => {
    p = await mirrorPair({ mirror: { beatMs: 100, window: 128, inFlight: 2, requestTimeoutMs: 500 } });
    await emitPings(p.src, 0, 500);
    await idle(p.src);
    p.admit();
    const fed = p.dst.federation!;
    await fed.openMount({ peer: 'src', mode: 'mirror' });
    await caughtUp(p, KEY);
    const token = fed.showMount(KEY).resumeToken;
    // The source "loses its log": its answers say its newest position is 3.
    const mesh = p.src.mesh!;
    const send = mesh.sendMessage.bind(mesh);
    mesh.sendMessage = async (c, kind, data, o) => send(c, kind, kind === 'mirror.batch' ? { ...(data as MirrorBatch), to: (data as MirrorBatch).from - 1, events: [], high: 3, prunedBelow: 1 } : data, o);
    try {
      await waitFor(() => fed.showMount(KEY).state === 'error', 10_000, 'the mount in error');
      assert.match(fed.showMount(KEY).error ?? '', /ends at position 3, before this mirror's token/);
      await waitFor(() => payloads(p.dst, 'federation.mount.failed').length > 0, 5000, 'federation.mount.failed');
      assert.equal(payloads(p.dst, 'federation.mount.failed')[0]!.mount, KEY);
      assert.equal(fed.showMount(KEY).resumeToken, token, 'the token stays');
    } finally {
      mesh.sendMessage = send;
    }
    await emitPings(p.src, 500, 10);
    await waitFor(() => fed.showMount(KEY).state === 'open', 20_000, 'the mount open again');
    await caughtUp(p, KEY);
    assert.equal(payloads(p.dst, 'federation.mount.failed').length, 1, 'raised once');
  });

  test('an answer signed by another key (a new node took the name) stops the mount in error; the token means nothing in its log', async () => {
    const fed = p.dst.federation!;
    assert.equal(fed.showMount(KEY).telemetry.source_node, p.ids.src);
    const mesh = p.src.mesh!;
    const send = mesh.sendMessage.bind(mesh);
    const dstHandler = (p.dst.mesh as unknown as { handlers: Map<string, (m: InboundMessage) => unknown> }).handlers.get('mirror.batch')!;
    // The answers arrive as if signed by another node that took the name 'src'.
    mesh.sendMessage = async (c, kind, data, o) => {
      if (kind !== 'mirror.batch') return send(c, kind, data, o);
      await dstHandler({ computer: 'src', nodeId: 'weft:ed25519:impostor', kind, data });
    };
    try {
      const token = fed.showMount(KEY).resumeToken;
      await emitPings(p.src, 1000, 20);
      await waitFor(() => fed.showMount(KEY).state === 'error', 10_000, 'the mount in error');
      const m = fed.showMount(KEY);
      assert.match(m.error ?? '', /another key/);
      assert.equal(m.live?.active, false, 'pulling stopped');
      assert.equal(m.resumeToken, token, 'nothing applied from the new key');
      await waitFor(() => payloads(p.dst, 'federation.mount.failed').length === 2, 5000, 'federation.mount.failed');
    } finally {
      mesh.sendMessage = send;
    }
  });
});

describe('a pruned source', () => {
  let p: MirrorPair;
  after(async () => p?.cleanup());

  test('pruned past a lagging mirror: mirror.gap names the missing positions, then mirroring continues after them', async () => {
    p = await mirrorPair();
    await emitPings(p.src, 0, 1000);
    await idle(p.src);
    p.admit();
    const fed = p.dst.federation!;
    await fed.openMount({ peer: 'src', mode: 'mirror' });
    await caughtUp(p, 'src/mirror/main');
    await fed.closeMount('src/mirror/main');
    const token = fed.showMount('src/mirror/main').resumeToken;
    // While the mirror is closed the source shares nothing with its node (nothing is pushed either).
    p.admit('untrusted');
    await emitPings(p.src, 1000, 1000);
    await idle(p.src);
    const cut = maxSeq(p.src) - 200;
    const r = await p.src.node.ns.log.prune(cut);
    assert.deepEqual([r.belowSeq, r.limitedBy], [cut, 'none']);
    assert.equal(r.removed, cut - 1);
    assert.equal(p.src.node.ns.log.prunedBelow(), cut);
    p.admit('peer');
    await fed.openMount({ peer: 'src', mode: 'mirror' });
    await waitFor(() => payloads(p.dst, 'mirror.gap').length > 0, 10_000, 'mirror.gap');
    const gap = payloads(p.dst, 'mirror.gap')[0]!;
    assert.deepEqual([gap.mount, gap.peer, gap.from, gap.to], ['src/mirror/main', 'src', token + 1, cut - 1]);
    assert.match(String(gap.message), /missing/);
    const notes = p.dst.node.ns.store.reader.prepare("SELECT COUNT(*) FROM notifications WHERE event_type = 'mirror.gap'").pluck().get();
    assert.equal(notes, 1, 'a notification');
    await caughtUp(p, 'src/mirror/main');
    const kept = eligible(p.src, cut).filter((x) => x.event === 'mesh.test.ping').map((x) => x.id);
    const got = mirroredFrom(p.dst, p.ids.src).filter((x) => x.event === 'mesh.test.ping' && (x.n as number) >= 1000).map((x) => x.id);
    assert.ok(kept.length >= 150);
    assert.deepEqual(got, kept, 'everything the source still keeps, in order, and nothing else');
    assert.equal(fed.showMount('src/mirror/main').live?.gaps, 1);
  });
});

describe('the stall alarm', () => {
  let p: MirrorPair;
  after(async () => p?.cleanup());

  test('lag and no batch for two heartbeats raise mirror.stalled once; mirror.resumed when it moves again', async () => {
    p = await mirrorPair({ mirror: { beatMs: 100, window: 100, inFlight: 1, requestTimeoutMs: 300 } });
    await emitPings(p.src, 0, 1000);
    await idle(p.src);
    p.admit();
    // The source answers the first pull, then its answers are lost.
    const mesh = p.src.mesh!;
    const send = mesh.sendMessage.bind(mesh);
    let answers = 0;
    let drop = true;
    mesh.sendMessage = async (c, kind, data, o) => {
      if (kind === 'mirror.batch' && drop && answers++ >= 1) return;
      return send(c, kind, data, o);
    };
    await p.dst.federation!.openMount({ peer: 'src', mode: 'mirror' });
    await waitFor(() => payloads(p.dst, 'mirror.stalled').length > 0, 10_000, 'mirror.stalled');
    const s = payloads(p.dst, 'mirror.stalled');
    assert.equal(s.length, 1);
    assert.equal(s[0]!.mount, 'src/mirror/main');
    assert.ok((s[0]!.lag as number) > 0);
    assert.match(String(s[0]!.reason), /no answer|no batch/);
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(payloads(p.dst, 'mirror.stalled').length, 1, 'once per stall');
    assert.equal(p.dst.federation!.showMount('src/mirror/main').live?.stalled, true);
    drop = false;
    await waitFor(() => payloads(p.dst, 'mirror.resumed').length > 0, 10_000, 'mirror.resumed');
    await caughtUp(p, 'src/mirror/main');
    assert.equal(p.dst.federation!.showMount('src/mirror/main').live?.stalled, false);
  });

  test('a source that refuses every pull (it does not trust this node) stalls the mirror with its reason, though no lag is known', async () => {
    p = await mirrorPair({ mirror: { beatMs: 100, window: 100, inFlight: 1, requestTimeoutMs: 300 } });
    await emitPings(p.src, 0, 20);
    await idle(p.src);
    p.admit('untrusted');
    await p.dst.federation!.openMount({ peer: 'src', mode: 'mirror' });
    await waitFor(() => payloads(p.dst, 'mirror.stalled').length > 0, 10_000, 'mirror.stalled');
    const s = payloads(p.dst, 'mirror.stalled');
    assert.match(String(s[0]!.reason), /refused the pull: WEFT_FORBIDDEN: .*untrusted/);
    assert.equal(p.dst.federation!.showMount('src/mirror/main').live?.stalled, true);
  });
});

/**
 * Events appended to the embedded bus and left to its loop (rows the pipeline consumes by
 * position, direct = 0), not applied at emit: what the pipeline's consumed position bounds.
 */
async function appendToBus(node: AssembledNode['node'], inputs: Array<Record<string, unknown>>): Promise<void> {
  await node.bus.append(inputs.map((i) => node.build(i as Parameters<typeof node.build>[0])));
}

/** The newest position of the log, whatever wrote it. */
const newestSeq = (node: AssembledNode['node']) => node.ns.store.reader.prepare('SELECT COALESCE(MAX(seq), 0) FROM events').pluck().get() as number;

describe('pruning the log', () => {
  test('keeps the newest event, what the pipeline has not consumed and what a domain lane still reads; writes the mark', async () => {
    const t = await startTestNode();
    try {
      const { node } = t;
      await appendToBus(node, Array.from({ length: 100 }, (_, i) => ({ event: 'mesh.test.ping', payload: { n: i } })));
      await node.idle();
      const max = node.ns.log.maxSeq();
      assert.equal(max, newestSeq(node), 'bus rows only');
      const dry = await node.ns.log.prune(50, { dryRun: true });
      assert.deepEqual([dry.belowSeq, dry.removed, dry.dryRun], [50, 49, true]);
      assert.equal(node.ns.log.prunedBelow(), 1, 'a dry run changes nothing');
      const r = await node.ns.log.prune(50);
      assert.deepEqual([r.requested, r.belowSeq, r.previous, r.removed, r.limitedBy], [50, 50, 1, 49, 'none']);
      assert.equal(node.ns.log.prunedBelow(), 50);
      const again = await node.ns.log.prune(40);
      assert.deepEqual([again.belowSeq, again.removed, again.limitedBy], [50, 0, 'already']);
      // The pipeline's consumed position: nothing at or past it.
      await node.ns.store.write(() => node.ns.offsets.set('pipeline', String(max - 10)));
      const capped = await node.ns.log.prune(max + 100);
      assert.deepEqual([capped.belowSeq, capped.limitedBy], [max - 9, 'pipeline'], 'the first event not consumed stays, and all after it');
      await node.ns.store.write(() => node.ns.offsets.set('pipeline', String(max)));
      // A domain lane that reads an event from the log (an inbox row without its own body).
      const keep = node.ns.store.db.prepare('SELECT id FROM events WHERE seq = ?').pluck().get(max - 5) as string;
      await node.ns.store.write(() => node.ns.store.db.prepare("INSERT INTO domain_inbox (event_id, event_type, targets, body, created_at) VALUES (?, 'mesh.test.ping', 'd', '', 0)").run(keep));
      const lanes = await node.ns.log.prune(max + 100);
      assert.deepEqual([lanes.belowSeq, lanes.limitedBy], [max - 5, 'domains']);
      await node.ns.store.write(() => node.ns.store.db.prepare('DELETE FROM domain_inbox').run());
      const newest = await node.ns.log.prune(max + 100);
      assert.deepEqual([newest.belowSeq, newest.limitedBy], [max, 'newest']);
      assert.equal(newestSeq(node), max, 'the newest stays: positions continue from it');
      const e = await node.emit({ event: 'mesh.test.ping', payload: { n: 1000 } });
      assert.equal(node.ns.log.get(e.id)?.seq, max + 1);
    } finally {
      await t.close();
    }
  });

  test('a pruned event\'s id stays the exactly-once key: it is not logged (nor applied) again', async () => {
    const t = await startTestNode();
    try {
      const { node } = t;
      const envs = Array.from({ length: 10 }, (_, i) => node.build({ event: 'mesh.test.ping', payload: { n: i } }));
      await node.emitMany(envs.map((e) => ({ event: e.event, payload: e.payload })));
      await node.idle();
      const first = node.ns.log.list({ limit: 1000 }).reverse()[0]!.envelope;
      const r = await node.ns.log.prune(newestSeq(node));
      assert.ok(r.removed >= 9);
      assert.equal(node.ns.log.get(first.id), undefined);
      assert.equal(await node.ns.store.write(() => node.ns.log.append(first)), 0, 'a duplicate, as if its row were there');
      // The same event arriving from a peer (as mesh ingress or a mirror applies it) is a duplicate too.
      const b = await node.processor.processBatch([{ position: 'peer', envelope: { ...first, origin: 'weft:ed25519:peer', sourceComputer: 'peer', hops: 1 }, logged: false, facts: { [INGRESS_FACT]: { peerNodeId: 'weft:ed25519:peer', peerComputer: 'peer', signatureVerified: true } } }], {});
      assert.equal(b.passed.length + b.dropped.length, 0, 'not applied again');
      const notes = node.ns.store.reader.prepare('SELECT COUNT(*) FROM notifications WHERE event_id = ?').pluck().get(first.id);
      assert.equal(notes, 1);
    } finally {
      await t.close();
    }
  });

  test('with no pipeline position yet nothing of the bus is pruned; by age the position is found by a bounded search; a duration past 100 years is refused', async () => {
    const t = await startTestNode();
    try {
      const { node } = t;
      const day = 86_400_000;
      const base = Date.parse('2026-01-01T00:00:00.000Z');
      await appendToBus(node, Array.from({ length: 200 }, (_, i) => ({ event: 'mesh.test.ping', timestamp: new Date(base + i * day).toISOString(), payload: { n: i } })));
      await node.idle();
      const seqOf = (n: number) => node.ns.store.reader.prepare("SELECT seq FROM events WHERE json_extract(body, '$.payload.n') = ? AND event = 'mesh.test.ping'").pluck().get(n) as number;
      assert.equal(node.ns.log.firstSeqSince(new Date(base + 50 * day).toISOString()), seqOf(50));
      assert.equal(node.ns.log.firstSeqSince(new Date(base + 50 * day + 1).toISOString()), seqOf(51));
      assert.equal(node.ns.log.firstSeqSince('2000-01-01T00:00:00.000Z'), 1);
      assert.equal(node.ns.log.firstSeqSince('2100-01-01T00:00:00.000Z'), newestSeq(node) + 1);
      // Out of order a little (clock skew): a newer event just before the boundary keeps its place.
      const late = await node.emit({ event: 'mesh.test.ping', timestamp: new Date(base + 10 * day).toISOString(), payload: { n: 1000 } });
      await node.emit({ event: 'mesh.test.ping', timestamp: new Date(base + 300 * day).toISOString(), payload: { n: 1001 } });
      await node.idle();
      assert.equal(node.ns.log.firstSeqSince(new Date(base + 150 * day).toISOString()), seqOf(150), 'found despite the late event after it');
      assert.ok(node.ns.log.get(late.id));
      assert.equal(durationMs('30d'), 30 * day);
      assert.throws(() => durationMs('999999999w'), /at most 100 years/);
      // No pipeline position: nothing consumed, so nothing of the bus may go.
      await node.ns.store.write(() => node.ns.store.db.prepare("DELETE FROM consumer_offsets WHERE name = 'pipeline'").run());
      const r = await node.ns.log.prune(newestSeq(node), { dryRun: true });
      assert.deepEqual([r.belowSeq, r.removed, r.limitedBy], [1, 0, 'pipeline']);
    } finally {
      await t.close();
    }
  });
});
