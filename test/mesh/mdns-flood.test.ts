/**
 * mDNS under a flood of announcements over a real UDP socket: the browser keeps no per-name
 * state, so the thousandth new name costs what the first did. bonjour-service's own Browser
 * searched every name heard since the last browse on each packet, and a host announcing ever
 * new names held the daemon's event loop for seconds (minutes at a few thousand a second).
 * The engine is the real one (bonjour-service and multicast-dns), on a unicast loopback socket
 * instead of the multicast group, so nothing leaves the machine.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { test } from 'node:test';
import { generateIdentity } from '../../src/identity/index.js';
import {
  bonjourEngine,
  type CandidateSighting,
  MdnsDiscovery,
  servicesInResponse,
} from '../../src/mesh/index.js';
import { ManualClock, silentLogger } from '../../src/util/index.js';
import { freePort } from '../helpers/redis.js';

/** A DNS name as labels. */
function name(n: string): Buffer {
  const parts = n.split('.').filter(Boolean);
  return Buffer.concat([
    ...parts.map((p) => Buffer.concat([Buffer.from([Buffer.byteLength(p)]), Buffer.from(p)])),
    Buffer.from([0]),
  ]);
}

function rr(owner: string, type: number, data: Buffer): Buffer {
  const h = Buffer.alloc(10);
  h.writeUInt16BE(type, 0);
  h.writeUInt16BE(1, 2); // IN
  h.writeUInt32BE(120, 4);
  h.writeUInt16BE(data.length, 8);
  return Buffer.concat([name(owner), h, data]);
}

/** One mDNS response announcing `instance._weft._tcp.local` with this TXT, port and A record. */
function response(instance: string, txt: Record<string, string>, port = 9238, address = '10.0.0.9'): Buffer {
  const fqdn = `${instance}._weft._tcp.local`;
  const host = `${instance}.local`;
  const srv = Buffer.concat([Buffer.from([0, 0, 0, 0, port >> 8, port & 255]), name(host)]);
  const strings = Object.entries(txt).map(([k, v]) => Buffer.from(`${k}=${v}`));
  const txtData = Buffer.concat(strings.map((s) => Buffer.concat([Buffer.from([s.length]), s])));
  const records = [
    rr('_weft._tcp.local', 12, name(fqdn)),
    rr(fqdn, 33, srv),
    rr(fqdn, 16, txtData),
    rr(host, 1, Buffer.from(address.split('.').map(Number))),
  ];
  const header = Buffer.alloc(12);
  header.writeUInt16BE(0x8400, 2); // response, authoritative
  header.writeUInt16BE(records.length, 6);
  return Buffer.concat([header, ...records]);
}

test('servicesInResponse reads PTR, SRV, TXT (first of a repeated key) and A records, leaves out goodbyes, and is bounded', () => {
  const id = generateIdentity();
  const pkt = {
    answers: [
      { name: '_weft._tcp.local', type: 'PTR', ttl: 120, data: 'venus._weft._tcp.local' },
      { name: '_weft._tcp.local', type: 'PTR', ttl: 0, data: 'gone._weft._tcp.local' },
      { name: '_other._tcp.local', type: 'PTR', ttl: 120, data: 'x._other._tcp.local' },
    ],
    additionals: [
      { name: 'venus._weft._tcp.local', type: 'SRV', ttl: 120, data: { port: 9238, target: 'venus.local' } },
      { name: 'gone._weft._tcp.local', type: 'SRV', ttl: 120, data: { port: 9238, target: 'gone.local' } },
      {
        name: 'venus._weft._tcp.local',
        type: 'TXT',
        ttl: 120,
        data: [
          Buffer.from('proto=1'),
          Buffer.from('Computer=venus'),
          Buffer.from('computer=mallory'),
          Buffer.from('nodeid=' + id.nodeId),
          Buffer.from('flag'),
        ],
      },
      { name: 'VENUS.local', type: 'A', ttl: 120, data: '10.0.0.2' },
    ],
  };
  const s = servicesInResponse(pkt, '_weft._tcp.local', { address: '10.0.0.2' });
  assert.equal(s.length, 1);
  assert.equal(s[0]!.fqdn, 'venus._weft._tcp.local');
  assert.equal(s[0]!.port, 9238);
  assert.deepEqual(s[0]!.addresses, ['10.0.0.2']);
  assert.deepEqual(
    { ...(s[0]!.txt as object) },
    { proto: '1', computer: 'venus', nodeid: id.nodeId, flag: true },
  );
  // A packet of many instances reports a bounded number of them.
  const many = {
    answers: Array.from({ length: 500 }, (_, i) => ({
      name: '_weft._tcp.local',
      type: 'PTR',
      ttl: 120,
      data: `n${i}._weft._tcp.local`,
    })),
    additionals: [],
  };
  assert.equal(
    servicesInResponse(many, '_weft._tcp.local', {}).length,
    0,
    'PTRs without SRV announce nothing',
  );
  // Malformed records are skipped, never thrown on.
  assert.deepEqual(
    servicesInResponse(
      { answers: [null, 7, { name: 3 }] as unknown as [], additionals: 'x' },
      '_weft._tcp.local',
      {},
    ),
    [],
  );
});

test('a flood of announcements under ever new names over a real socket: the last thousand cost what the first thousand did, and a real node is still found after it', async () => {
  const me = generateIdentity();
  const port = await freePort();
  const seen: CandidateSighting[] = [];
  const m = new MdnsDiscovery(
    {
      self: { computer: 'mars', nodeId: me.nodeId, fingerprint: me.fingerprint },
      port: 9238,
      refreshMs: 3_600_000,
    },
    {
      candidates: {
        seen: async (s) => {
          seen.push(s);
          return 'new';
        },
      },
      reject: async () => undefined,
      engine: await bonjourEngine({ multicast: false, port, ip: '127.0.0.1', bind: '127.0.0.1' }),
      clock: new ManualClock(Date.now()),
      logger: silentLogger,
    },
  );
  const sender = createSocket('udp4');
  await new Promise<void>((r) => sender.bind(0, '127.0.0.1', r));
  try {
    await m.start();
    const base = m.stats.announcements;
    const N = 8000;
    const batch = 20;
    const laps: number[] = [];
    let lapStart = performance.now();
    for (let sent = 0; sent < N; ) {
      for (let j = 0; j < batch; j++, sent++)
        sender.send(response(`flood${sent}`, { proto: '1' }), port, '127.0.0.1');
      // Paced by what the node has read, so the socket's buffer never overflows.
      const deadline = Date.now() + 20_000;
      while (m.stats.announcements - base < sent) {
        assert.ok(
          Date.now() < deadline,
          `the node read ${m.stats.announcements - base} of ${sent} announcements and got no further in 20 s`,
        );
        await new Promise((r) => setImmediate(r));
      }
      if (sent % 1000 === 0) {
        laps.push(performance.now() - lapStart);
        lapStart = performance.now();
      }
    }
    assert.equal(m.stats.refused, N, 'each was refused (no computer name)');
    const [first, last] = [laps[0]!, laps.at(-1)!];
    assert.ok(
      last <= Math.max(3 * first, 1000),
      `the last 1000 announcements took ${last.toFixed(0)} ms, the first 1000 ${first.toFixed(0)} ms (laps ${laps.map((x) => x.toFixed(0)).join(', ')})`,
    );
    // A real node announcing now is found at once.
    const venus = generateIdentity();
    sender.send(
      response(
        'venus',
        { proto: '1', computer: 'venus', nodeid: venus.nodeId, fp: venus.fingerprint },
        9238,
        '10.0.0.2',
      ),
      port,
      '127.0.0.1',
    );
    const deadline = Date.now() + 5000;
    while (!seen.some((s) => s.fingerprint === venus.fingerprint)) {
      assert.ok(Date.now() < deadline, 'the real node was not seen within 5 s of the flood');
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    sender.close();
    await m.stop();
  }
});

test('valid announcements the candidate book drops (over its budget) are summed up in one recorded rejection a minute, naming a few of them', async () => {
  const me = generateIdentity();
  const port = await freePort();
  const clock = new ManualClock(Date.now(), { timers: true });
  const refused: Array<{ ref: string; reason: string; code?: string }> = [];
  const m = new MdnsDiscovery(
    {
      self: { computer: 'mars', nodeId: me.nodeId, fingerprint: me.fingerprint },
      port: 9238,
      refreshMs: 3_600_000,
    },
    {
      candidates: { seen: async () => 'dropped' },
      reject: async (r) => void refused.push(r),
      engine: await bonjourEngine({ multicast: false, port, ip: '127.0.0.1', bind: '127.0.0.1' }),
      clock,
      logger: silentLogger,
    },
  );
  const sender = createSocket('udp4');
  await new Promise<void>((r) => sender.bind(0, '127.0.0.1', r));
  try {
    await m.start();
    for (let i = 0; i < 12; i++) {
      const id = generateIdentity();
      sender.send(
        response(
          `new${i}`,
          { proto: '1', computer: `new${i}`, nodeid: id.nodeId, fp: id.fingerprint },
          9238,
          '10.0.0.9',
        ),
        port,
        '127.0.0.1',
      );
    }
    const deadline = Date.now() + 10_000;
    while (m.stats.dropped < 12) {
      assert.ok(Date.now() < deadline, `only ${m.stats.dropped} of 12 dropped announcements were counted`);
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(refused.length, 0, 'nothing recorded one by one');
    clock.advance(60_000);
    const until = Date.now() + 5000;
    while (refused.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    assert.equal(refused.length, 1, 'one summary when the minute is over');
    assert.equal(refused[0]!.code, 'MDNS_CANDIDATES_DROPPED');
    assert.match(refused[0]!.reason, /^12 announced nodes since .* were not recorded as candidates/);
    assert.match(refused[0]!.reason, /new0@127\.0\.0\.1|new\d+@/);
    // A quiet minute records nothing.
    clock.advance(60_000);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(refused.length, 1);
  } finally {
    sender.close();
    await m.stop();
  }
});
