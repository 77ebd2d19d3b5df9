/** The trust evaluator in isolation: each input it weighs, each outcome, peer scores, rate limits. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  FINDING_OUTCOMES,
  peerTrustScores,
  staticPeerDirectory,
  TRUST_FACT,
  TRUST_REASON_FACT,
  trustEvaluator,
  trustOutcomeCounts,
  trustOutcomeTotals,
} from '../../src/cartridges/index.js';
import { TRUST_THROTTLED } from '../../src/catalog/index.js';
import type { Envelope } from '../../src/envelope/index.js';
import { INGRESS_FACT, RELEASED_FACT } from '../../src/pipeline/index.js';
import { crash, type Harness, harness, todo } from './harness.js';

const KNOWN = 'weft:ed25519:known-peer';
const STRANGER = 'weft:ed25519:stranger';
const peers = staticPeerDirectory({
  [KNOWN]: { computer: 'desktop', trustLevel: 'peer' },
  'weft:ed25519:untrusted': { computer: 'kiosk', trustLevel: 'untrusted' },
  'weft:ed25519:share-to': { computer: 'phone', trustLevel: 'share_to' },
});
const fromPeer = (peerNodeId: string, signatureVerified = true) => ({
  [INGRESS_FACT]: { peerNodeId, peerComputer: 'desktop', signatureVerified },
});
// What a peer's event looks like on arrival: its own provenance.
const peerEvent = (h: Harness, slug: string, origin = KNOWN): Envelope =>
  h.make(todo(slug, { source: 'planner' }), { origin, sourceComputer: 'desktop' });

describe('trust evaluator', () => {
  let h: Harness;
  before(async () => {
    h = await harness();
  });
  after(() => h.close());

  it('accepts a local producer event without writing anything', async () => {
    const trust = trustEvaluator({}, { peers });
    const env = h.make(todo('a'));
    const { out, facts } = await h.run(trust, env);
    assert.equal(out, env, 'the same object passes through untouched');
    assert.equal(facts.get(TRUST_FACT), 'accept');
    assert.deepEqual(trustOutcomeCounts(h.ns), []);
    assert.equal(trust.totals().accept, 1);
  });

  it('flags an unknown local source under standard and quarantines it under strict', async () => {
    const std = trustEvaluator({ knownSources: ['ci-*', 'planner'] });
    const strict = trustEvaluator({ knownSources: ['ci-*', 'planner'], strictness: 'strict' });
    const known = await h.run(std, h.make(todo('b', { source: 'ci-runner' })));
    assert.equal(known.facts.get(TRUST_FACT), 'accept', 'prefix pattern matches');
    const flagged = await h.run(std, h.make(todo('c', { source: 'mystery' })));
    assert.deepEqual(flagged.out?.flags, ['trust:unknown_source']);
    assert.equal(flagged.facts.get(TRUST_FACT), 'flag');
    const held = await h.run(strict, h.make(todo('d', { source: 'mystery' })));
    assert.equal(held.out, null);
    assert.equal(held.facts.get(TRUST_FACT), 'quarantine', 'the processor reports why it stopped');
    assert.equal(held.facts.get(TRUST_REASON_FACT), 'unknown_source');
    const q = h.ns.quarantine.list({ status: 'held' })[0];
    assert.equal(q?.source, 'mystery');
    assert.equal(q?.reason, 'unknown_source');
    assert.deepEqual(q?.flags, ['trust:unknown_source']);
  });

  it('flags an unknown peer under standard and quarantines it under strict', async () => {
    const std = trustEvaluator({}, { peers });
    const strict = trustEvaluator({ strictness: 'strict' }, { peers });
    const flagged = await h.run(std, peerEvent(h, 'e', STRANGER), fromPeer(STRANGER));
    assert.deepEqual(flagged.out?.flags, ['trust:unknown_source']);
    const held = await h.run(strict, peerEvent(h, 'f', STRANGER), fromPeer(STRANGER));
    assert.equal(held.out, null);
    const q = h.ns.quarantine.list()[0];
    assert.equal(q?.reason, 'unknown_source');
    assert.equal(q?.envelope.origin, STRANGER);
  });

  it('flags a limited (share_to) peer without wearing its score down: 1,000 clean events, none held', async () => {
    const std = trustEvaluator({ rate: false }, { peers });
    const outcomes = new Set<unknown>();
    for (let i = 0; i < 1000; i++) {
      const r = await h.run(std, peerEvent(h, `lim-${i}`, 'weft:ed25519:share-to'), fromPeer('weft:ed25519:share-to'));
      outcomes.add(r.facts.get(TRUST_FACT));
    }
    assert.deepEqual([...outcomes], ['flag']);
    const score = peerTrustScores(h.ns, h.clock.now()).find((s) => s.peer === 'weft:ed25519:share-to');
    assert.ok(!score || score.score > 0.9, `score stays high: ${score?.score}`);
  });

  it('accepts a known signed peer and weighs signature and trust level', async () => {
    const std = trustEvaluator({}, { peers });
    const strict = trustEvaluator({ strictness: 'strict' }, { peers });
    assert.equal((await h.run(std, peerEvent(h, 'g'), fromPeer(KNOWN))).facts.get(TRUST_FACT), 'accept');
    assert.equal((await h.run(std, peerEvent(h, 'h'), fromPeer(KNOWN, false))).out, null, 'unsigned is held');
    assert.equal(h.ns.quarantine.list()[0]?.reason, 'unsigned');
    const rejectsBefore = h.ns.rejections.count();
    assert.equal((await h.run(strict, peerEvent(h, 'i'), fromPeer(KNOWN, false))).out, null);
    assert.equal(h.ns.rejections.count(), rejectsBefore + 1, 'a strict reject is recorded');
    const untrusted = 'weft:ed25519:untrusted';
    assert.equal((await h.run(std, peerEvent(h, 'j', untrusted), fromPeer(untrusted))).out, null);
    const shareTo = 'weft:ed25519:share-to';
    assert.deepEqual((await h.run(std, peerEvent(h, 'k', shareTo), fromPeer(shareTo))).out?.flags, [
      'trust:limited_peer',
    ]);
  });

  it('quarantines a local event that claims another computer without crossing the mesh', async () => {
    const trust = trustEvaluator({}, { peers });
    const spoof = h.make(todo('spoof'), { sourceComputer: 'desktop', origin: KNOWN });
    assert.equal((await h.run(trust, spoof)).out, null);
    assert.equal(h.ns.quarantine.list()[0]?.reason, 'spoofed_origin');
  });

  it('checks the content against the catalog: type, payload, domain, level, size', async () => {
    const trust = trustEvaluator({ maxPayloadBytes: 2000 }, { peers });
    const unknownType = { ...peerEvent(h, 'l'), event: 'domain.future.thing.happened' };
    assert.deepEqual((await h.run(trust, unknownType, fromPeer(KNOWN))).out?.flags, ['trust:unknown_type']);
    const badPayload = { ...peerEvent(h, 'm'), payload: { slug: 42 } };
    assert.equal((await h.run(trust, badPayload, fromPeer(KNOWN))).out, null);
    assert.equal(h.ns.quarantine.list()[0]?.reason, "invalid_payload: field '/payload/title' is missing (required)", 'the reason names the field');
    const wrongDomain = h.make(todo('n'), { domain: 'finance' });
    assert.deepEqual((await h.run(trust, wrongDomain)).out?.flags, ['trust:domain_mismatch']);
    // A crash (operational, 1) claiming business level (3) is an escalation; workflow → business is not.
    assert.deepEqual((await h.run(trust, h.make(crash('w', { level: 3 })))).out?.flags, [
      'trust:level_escalation',
    ]);
    assert.equal((await h.run(trust, h.make(todo('o', { level: 3 })))).facts.get(TRUST_FACT), 'accept');
    const strict = trustEvaluator({ strictness: 'strict' });
    assert.deepEqual((await h.run(strict, h.make(todo('p', { level: 3 })))).out?.flags, [
      'trust:level_escalation',
    ]);
    const big = h.make(todo('q', { payload: { slug: 'q', title: 'x', description: 'y'.repeat(5000) } }));
    assert.equal((await h.run(trust, big)).out, null);
    assert.equal(h.ns.quarantine.list()[0]?.reason, 'oversize');
  });

  it('lets a released event pass and marks it', async () => {
    const trust = trustEvaluator({ knownSources: [], strictness: 'strict' });
    const { out, facts } = await h.run(trust, h.make(todo('r', { source: 'mystery' })), {
      [RELEASED_FACT]: true,
    });
    assert.deepEqual(out?.flags, ['trust:released']);
    assert.equal(facts.get(TRUST_FACT), 'accept');
  });

  it('honours per-source overrides by source name and by peer node id', async () => {
    const trust = trustEvaluator(
      {
        knownSources: ['planner'],
        overrides: {
          muted: { outcome: 'reject' },
          legacy: { strictness: 'permissive' },
          [STRANGER]: { strictness: 'strict' },
        },
      },
      { peers },
    );
    assert.equal((await h.run(trust, h.make(todo('s', { source: 'muted' })))).out, null);
    assert.deepEqual((await h.run(trust, h.make(todo('t', { source: 'legacy' })))).out?.flags, [
      'trust:unknown_source',
    ]);
    assert.equal(
      (await h.run(trust, peerEvent(h, 'u', STRANGER), fromPeer(STRANGER))).out,
      null,
      'strict for this peer',
    );
    const counts = trustOutcomeCounts(h.ns, { source: 'muted' });
    assert.deepEqual(
      counts.map((c) => [c.outcome, c.reason, c.count]),
      [['reject', 'override', 1]],
    );
  });

  it('counts every flag, quarantine and reject per source and outcome', () => {
    const totals = trustOutcomeTotals(h.ns);
    assert.ok(totals.flag >= 5 && totals.quarantine >= 5 && totals.reject >= 2, JSON.stringify(totals));
    const byStranger = trustOutcomeCounts(h.ns, { peer: STRANGER });
    assert.ok(byStranger.some((c) => c.outcome === 'flag' && c.reason === 'unknown_source'));
    assert.ok(byStranger.some((c) => c.outcome === 'quarantine' && c.reason === 'unknown_source'));
  });

  it('every finding has an outcome at every strictness, never laxer when stricter', () => {
    const sev = { accept: 0, flag: 1, quarantine: 2, reject: 3 };
    for (const [f, row] of Object.entries(FINDING_OUTCOMES)) {
      assert.ok(sev[row.permissive] <= sev[row.standard] && sev[row.standard] <= sev[row.strict], f);
    }
  });
});

describe('trust evaluator: rate limits', () => {
  it('throttles and quarantines a flood of 10,000 events in a second without holding back a steady source', async () => {
    const h = await harness();
    try {
      const trust = trustEvaluator({ rate: { perSecond: 200, burst: 1000 } });
      const envs: Envelope[] = [];
      // 10,000 flood events spread over one second; a well-behaved source sends one every 100.
      for (let i = 0; i < 10_000; i++) {
        h.clock.advance(0.1);
        envs.push(h.make(crash(`flood-${i % 7}`, { source: 'flooder' })));
        if (i % 100 === 0) envs.push(h.make(todo(`steady-${i}`, { source: 'steady' })));
      }
      const outs = await h.runMany(trust, envs);
      const passed = (src: string) => outs.filter((o) => o?.source === src).length;
      const stats = trust.stats();
      assert.equal(stats.get('local:steady')?.accept, 100, 'every steady event accepted');
      assert.equal(passed('steady'), 100);
      const flood = stats.get('local:flooder');
      // The burst (1,000) plus one second of refill (200) gets through; the rest is held.
      assert.ok(flood && flood.accept >= 1000 && flood.accept <= 1201, JSON.stringify(flood));
      assert.equal(flood.accept + flood.quarantine, 10_000);
      assert.equal(h.ns.quarantine.count('held'), flood.quarantine);
      assert.deepEqual(
        trust.throttled().map((t) => t.subject),
        ['local:flooder'],
      );
      const notices = h.emitted.filter((e) => e.event === TRUST_THROTTLED);
      assert.equal(notices.length, 1, 'one throttle notice per episode');
      assert.equal(notices[0]?.payload.subject, 'local:flooder');

      // After it falls silent long enough, the flooder is let through again.
      h.clock.advance(5_000);
      const later = await h.run(trust, h.make(crash('flood-again', { source: 'flooder' })));
      assert.equal(later.facts.get(TRUST_FACT), 'accept');
      assert.equal(trust.throttled().length, 0);
    } finally {
      await h.close();
    }
  });

  it('does not mistake a replayed backlog for a flood: rate follows event time', async () => {
    const h = await harness();
    try {
      const trust = trustEvaluator({ rate: { perSecond: 10, burst: 20 } });
      const envs: Envelope[] = [];
      for (let i = 0; i < 500; i++) {
        envs.push(h.make(todo(`b${i}`, { source: 'cron' })));
        h.clock.advance(200); // emitted at 5/s over 100 s...
      }
      const outs = await h.runMany(trust, envs); // ...processed in one batch after downtime
      assert.equal(outs.filter((o) => o !== null).length, 500);
    } finally {
      await h.close();
    }
  });
});

describe('trust evaluator: peer scores', () => {
  it('lowers a misbehaving peer score, holds its clean events once distrusted, and keeps it across restarts', async () => {
    const h = await harness();
    try {
      const mk = () => trustEvaluator({}, { peers });
      let trust = mk();
      // 25 unsigned events: 25 quarantines at penalty 1 each → score 1 / (1 + 25/5) ≈ 0.17.
      for (let i = 0; i < 25; i++) await h.run(trust, peerEvent(h, `x${i}`), fromPeer(KNOWN, false));
      const [rec] = peerTrustScores(h.ns, h.clock.now());
      assert.equal(rec?.peer, KNOWN);
      assert.ok(rec && rec.score < 0.2, `score ${rec?.score}`);

      // A restart (new store connection, new evaluator) does not reset the record.
      await h.reopen();
      trust = mk();
      const clean = await h.run(trust, peerEvent(h, 'clean-1'), fromPeer(KNOWN));
      assert.equal(clean.out, null, 'a distrusted peer is held even when clean');
      assert.equal(h.ns.quarantine.list()[0]?.reason, 'distrusted');
      assert.ok(
        (peerTrustScores(h.ns, h.clock.now())[0]?.score ?? 1) < 0.2,
        'holding for distrust adds no penalty',
      );

      // Time heals: two half-lives later the penalty is a quarter: flagged as low score, not held.
      h.clock.advance(2 * 3_600_000);
      const low = await h.run(trust, peerEvent(h, 'clean-2'), fromPeer(KNOWN));
      assert.deepEqual(low.out?.flags, ['trust:low_score']);
      // Clean traffic restores it slowly.
      const before = peerTrustScores(h.ns, h.clock.now())[0]?.score ?? 0;
      for (let i = 0; i < 50; i++) await h.run(trust, peerEvent(h, `c${i}`), fromPeer(KNOWN));
      const afterClean = peerTrustScores(h.ns, h.clock.now())[0]?.score ?? 0;
      assert.ok(afterClean > before, `${afterClean} > ${before}`);
      assert.equal(
        trustOutcomeCounts(h.ns, { peer: KNOWN, outcome: 'quarantine' }).reduce((n, c) => n + c.count, 0),
        26,
      );
    } finally {
      await h.close();
    }
  });
});
