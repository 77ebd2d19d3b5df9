/**
 * Recovery beacons between real daemons (child processes) over TLS: each node's beacon says
 * which peers hold which ranges of its cluster events; `weft recovery status` shows the copy
 * count per range on every node and warns below recovery.min_copies. Plus the pieces the
 * beacons rest on: digests that ignore what a copy may differ in, signatures, and the frame
 * sequence a database made under an older key starts at.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { createDefaultCatalog } from '../../src/catalog/index.js';
import { generateIdentity } from '../../src/identity/index.js';
import {
  type BeaconPayload,
  blockSizeFor,
  buildRanges,
  contentHash,
  FLOOR_PER_MS,
  raiseFrameSequenceToFloor,
  holdingOver,
  reservedSequence,
  resumeFrameSequencePast,
  signBeacon,
  verifyBeacon,
} from '../../src/recovery/index.js';
import { openNodeStore } from '../../src/store/index.js';
import { ManualClock, silentLogger } from '../../src/util/index.js';
import { weft } from '../helpers/cli.js';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';
import { tempDir } from '../helpers/tmp.js';

const t = tempDir('weft-beacons-');
after(() => t.cleanup());

describe('recovery digests and beacons (units)', () => {
  test('should hash a copy like the original: provenance and pipeline annotations do not count', () => {
    const env = { id: '0190-a', event: 'mesh.test.ping', version: 1, source: 's', timestamp: '2026-01-01T00:00:00.000Z', level: 1, domain: 'mesh', description: 'd', visibility: 'cluster', payload: { n: 1, a: [1, 2] }, origin: 'weft:ed25519:x' };
    const copy = { ...env, payload: { a: [1, 2], n: 1 }, hops: 1, sourceComputer: 'laptop', flags: ['trust:ok'], context: { entity: {} } };
    assert.deepEqual(contentHash(copy), contentHash(env));
    assert.notDeepEqual(contentHash({ ...env, payload: { n: 2, a: [1, 2] } }), contentHash(env));
  });

  test('should cut ranges a partial copy can be compared with, block by block', () => {
    const rows = Array.from({ length: 25 }, (_, i) => ({ id: `id-${String(i).padStart(3, '0')}`, hash: Buffer.alloc(32, i), seq: 100 + i }));
    const own = buildRanges(rows, 10);
    assert.deepEqual(
      own.ranges.map((r) => [r.from, r.to, r.count, r.lowSeq, r.highSeq]),
      [
        ['id-000', 'id-009', 10, 100, 109],
        ['id-010', 'id-019', 10, 110, 119],
        ['id-020', 'id-024', 5, 120, 124],
      ],
    );
    // A holder missing one event of the second range, with two newer ones.
    const theirs = [...rows.filter((r) => r.id !== 'id-013'), { id: 'id-030', hash: Buffer.alloc(32, 30), seq: 1 }, { id: 'id-031', hash: Buffer.alloc(32, 31), seq: 2 }];
    const h = holdingOver(theirs, own.ranges);
    assert.deepEqual(
      h.ranges.map((r, i) => r.digest === own.ranges[i]?.digest),
      [true, false, true],
    );
    assert.equal(h.ranges[1]?.count, 9);
    assert.equal(h.tail, 2);
    assert.equal(holdingOver(rows, []).digest, own.digest, 'the digest of everything is the same however it is cut');
    assert.equal(blockSizeFor(100_000, 10_000), 10_000);
    assert.equal(blockSizeFor(5_000_000, 10_000), 30_000, 'at most 200 ranges');
  });

  test('should take a beacon only with the signature of the key it names', () => {
    const id = generateIdentity();
    const other = generateIdentity();
    const p = signBeacon(
      {
        node: id.nodeId,
        publicKey: Buffer.from(id.publicKey).toString('base64'),
        computer: 'laptop',
        at: 1,
        log: { high: 10, prunedBelow: 1 },
        events: { count: 0, digest: '0'.repeat(32), blockEvents: 10_000, ranges: [] },
        frameSequence: 7,
        holders: [],
        cartridges: [],
        notifications: { journaled: 0, pending: 0 },
      },
      id,
    );
    assert.ok(verifyBeacon(JSON.parse(JSON.stringify(p)), id.nodeId));
    assert.equal(verifyBeacon({ ...p, frameSequence: 1 } satisfies BeaconPayload, id.nodeId), undefined, 'changed after signing');
    assert.equal(verifyBeacon(p, other.nodeId), undefined, 'of another node');
    const forged = signBeacon({ ...p, node: id.nodeId, publicKey: Buffer.from(other.publicKey).toString('base64') }, other);
    assert.equal(verifyBeacon(forged, id.nodeId), undefined, "another key cannot sign this node's beacon");
  });

  test('should start a database under an older key at the clock floor, and resume past what peers saw', async () => {
    const clock = new ManualClock(1_760_000_000_000);
    const ns = openNodeStore({ path: join(t.dir, 'seq.db') }, { clock, logger: silentLogger });
    try {
      assert.equal(await raiseFrameSequenceToFloor(ns.store, clock), 1_760_000_000_000 * FLOOR_PER_MS);
      assert.equal(await raiseFrameSequenceToFloor(ns.store, clock), undefined, 'not again at the same floor');
      // An hour later the reservation (as a restored copy would hold it) is below the new floor: moved up.
      clock.advance(3_600_000);
      assert.equal(await raiseFrameSequenceToFloor(ns.store, clock), (1_760_000_000_000 + 3_600_000) * FLOOR_PER_MS);
      let next = reservedSequence(ns.store) + 1;
      const mesh = { nextSequence: async () => next++ };
      const past = reservedSequence(ns.store) + 5000;
      const first = await resumeFrameSequencePast(ns.store, mesh, past);
      assert.ok(first > past);
      assert.ok(reservedSequence(ns.store) >= past);
    } finally {
      await ns.store.close();
    }
  });

  test("should keep TeleClaude's recovery_beacon (the Meta FO's resurrection seed) apart from mesh.recovery.beacon", () => {
    const c = createDefaultCatalog();
    assert.equal(c.normalize({ event: 'recovery_beacon', payload: {} }).event, 'sovereign.recovery_beacon');
    assert.ok(c.has('mesh.recovery.beacon'));
    assert.equal(c.get('mesh.recovery.beacon')?.visibility, 'cluster');
  });
});

interface Status {
  mode: string;
  minCopies: number;
  nodes: Array<{
    node: string;
    computer: string;
    self: boolean;
    events: number;
    ranges: Array<{ count: number; copies: number; pending: boolean; held?: { whole: boolean } }>;
    holders: Array<{ computer: string; ranges: number; upToSeq: number }>;
    warnings: string[];
  }>;
}

test('beacons: every node shows the copies of each range of every node, and warns below recovery.min_copies', { timeout: 10 * 60_000 }, async () => {
  const { nodes, stopAll } = await startCluster(
    join(t.dir, 'cluster'),
    [
      { computer: 'laptop', cluster: 'home' },
      { computer: 'desk', cluster: 'home' },
      { computer: 'nas', cluster: 'home' },
    ],
    {
      provider: 'tls',
      // Three copies wanted, two peers: a warning on every range. Small blocks: several ranges.
      extraEnv: { WEFT_RECOVERY_ENABLED: 'true', WEFT_RECOVERY_MIN_COPIES: '3', WEFT_RECOVERY_BLOCK_EVENTS: '1000', WEFT_RECOVERY_BEACON_INTERVAL: '3600', WEFT_TRUST_RATE_PER_SECOND: '1000000', WEFT_TRUST_RATE_BURST: '1000000' },
    },
  );
  const laptop = nodes.laptop as ClusterNode;
  const desk = nodes.desk as ClusterNode;
  try {
    const status = (n: ClusterNode) => n.api.request<Status>('GET', '/api/recovery/status');
    for (const n of Object.values(nodes)) await eventually(async () => (await status(n)).mode === 'normal', 60_000, `${n.computer} to beacon`);
    await laptop.api.emitMany(Array.from({ length: 3500 }, (_, i) => ({ event: 'mesh.test.ping', visibility: i % 5 === 0 ? 'local' : 'cluster', payload: { n: i } })));
    const own = await laptop.api.request<{ count: number }>('GET', '/api/recovery/digest');
    for (const p of [desk, nodes.nas as ClusterNode]) {
      await eventually(async () => (await p.api.request<{ count: number }>('GET', `/api/recovery/digest?node=${encodeURIComponent(laptop.nodeId)}`)).count >= own.count, 120_000, `${p.computer} to hold the laptop's events`);
    }
    const b = await laptop.api.request<{ sent: boolean; beacon: BeaconPayload }>('POST', '/api/recovery/beacon');
    assert.equal(b.sent, true);
    assert.ok(b.beacon.events.ranges.length >= 3, `${b.beacon.events.ranges.length} ranges`);
    assert.ok(b.beacon.frameSequence > 0);

    // On the laptop: each range held whole by both peers, which is fewer than three.
    await eventually(async () => (await status(laptop)).nodes.find((n) => n.self)?.ranges.every((r) => r.copies === 2) === true, 60_000, 'the peers to report their copies');
    const s = await status(laptop);
    const me = s.nodes.find((n) => n.self);
    assert.ok(me);
    assert.equal(me.warnings.length, 1, JSON.stringify(me.warnings));
    assert.match(me.warnings[0] as string, /fewer than 3 copies/);
    assert.deepEqual(me.holders.map((h) => h.computer).sort(), ['desk', 'nas']);
    assert.ok(me.holders.every((h) => h.ranges === me.ranges.length && h.upToSeq > 0));
    const cli = weft(['recovery', 'status'], laptop.env);
    assert.equal(cli.code, 1, 'a warning is a non-zero exit');
    assert.match(cli.stdout, /WARNING: .*fewer than 3 copies/);
    assert.match(cli.stdout, /held by: desk .*nas|held by: nas .*desk/);
    const json = JSON.parse(weft(['--json', 'recovery', 'status'], laptop.env).stdout) as Status;
    assert.equal(json.minCopies, 3);
    // The table is the last beacon's: what the log gained since is said, not silently left out
    // (a newcomer saw "0 cluster events" right after emitting some).
    await laptop.api.emitMany(Array.from({ length: 5 }, (_, i) => ({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 10_000 + i } })));
    // (Five, and the journal's events for their notifications when it has sent them.)
    const since = /\n([\d,]+) cluster event\(s\) since that beacon, not counted above yet \(the next beacon is due within [\d,]+ s; weft recovery beacon sends one now\)/.exec(weft(['recovery', 'status'], laptop.env).stdout);
    assert.ok(since && Number((since[1] as string).replace(/,/g, '')) >= 5, String(since?.[0]));

    // On a peer: the laptop's beacon (the next one carries the copies it learnt), and what the peer holds of each range.
    await laptop.api.request('POST', '/api/recovery/beacon');
    await eventually(
      async () => {
        const ranges = (await status(desk)).nodes.find((n) => n.computer === 'laptop')?.ranges;
        return !!ranges && ranges.filter((r) => !r.pending).every((r) => r.copies === 2) && ranges.every((r) => r.held?.whole === true);
      },
      60_000,
      "desk to keep the laptop's new beacon and to hold every range of it whole",
    );
    const d = (await status(desk)).nodes.find((n) => n.computer === 'laptop');
    assert.ok(d);
    assert.equal(d.self, false);
    assert.ok(d.ranges.every((r) => r.held?.whole === true), 'desk holds every range whole');
    assert.match(d.warnings.join('\n'), /fewer than 3 copies/);
    assert.ok((await status(desk)).nodes.some((n) => n.self && n.computer === 'desk'), 'and its own');
  } finally {
    await stopAll();
    for (const n of Object.values(nodes)) if (n.running) await n.kill();
  }
});
