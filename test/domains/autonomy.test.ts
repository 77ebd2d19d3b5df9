/** The autonomy matrix: most specific rule wins (event type > cartridge > domain > global), stored rules persist. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { autonomyRoutes } from '../../src/api/autonomy-routes.js';
import { buildApi } from '../../src/api/server.js';
import {
  type AutonomyLevel,
  AutonomyMatrix,
  type AutonomyQuery,
  type AutonomyRule,
  resolveAutonomy,
} from '../../src/domains/autonomy.js';
import { isWeftError } from '../../src/errors/index.js';
import { Store } from '../../src/store/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { startTestNode } from '../helpers/node.js';
import { tempDir } from '../helpers/tmp.js';

const openStore = (path = ':memory:', clock = new ManualClock()) =>
  Store.open({ path }, { clock, logger: silentLogger });

// ---------------------------------------------------------------------------------------------
// The oracle: written from the statement of the rule, not from the implementation.

/** A pattern as a regular expression: `*` is one segment, a trailing `*` one or more. */
function patternRegex(pattern: string): RegExp {
  const parts = pattern.split('.');
  const src = parts
    .map((p, i) => {
      if (p !== '*') return p.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');
      return i === parts.length - 1 ? '[^.]+(?:\\.[^.]+)*' : '[^.]+';
    })
    .join('\\.');
  return new RegExp(`^${src}$`);
}

function oracleMatches(r: AutonomyRule, q: AutonomyQuery): boolean {
  const domainOk = r.domain === undefined || r.domain === q.domain;
  const cartridgeOk = r.cartridge === undefined || r.cartridge === q.cartridge;
  const typeOk = r.eventType === undefined || patternRegex(r.eventType).test(q.eventType);
  return domainOk && cartridgeOk && typeOk;
}

/** How specific a rule is; a greater tuple (compared left to right) is more specific. */
function specificity(r: AutonomyRule): number[] {
  const segs = r.eventType === undefined ? [] : r.eventType.split('.');
  const literals = segs.filter((s) => s !== '*').length;
  return [
    r.eventType !== undefined ? 1 : 0,
    r.cartridge !== undefined ? 1 : 0,
    r.domain !== undefined ? 1 : 0,
    r.eventType !== undefined && literals === segs.length ? 1 : 0,
    literals,
    segs.length,
    r.source === 'cli' ? 1 : 0,
    r.setAt ?? -1,
  ];
}

function lexCompare(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return 0;
}

const DOMAINS = ['marketing', 'sales'];
const CARTRIDGES = ['poster', 'mailer'];
const EXACT = ['post.published', 'post.draft.saved', 'build.failed', 'cartridge.install'];
const PATTERNS = ['*', 'post.*', 'post.*.saved', '*.failed', 'post.draft.*', 'build.*', '*.*', 'post.*.*'];
const LEVELS: AutonomyLevel[] = ['L1', 'L2', 'L3'];

const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 2 });
const ruleArb: fc.Arbitrary<AutonomyRule> = fc
  .record({
    domain: optional(fc.constantFrom(...DOMAINS)),
    cartridge: optional(fc.constantFrom(...CARTRIDGES)),
    eventType: optional(fc.constantFrom(...EXACT, ...PATTERNS)),
    level: fc.constantFrom(...LEVELS),
    source: fc.constantFrom<AutonomyRule['source']>('cli', 'domain.toml'),
    setAt: optional(fc.integer({ min: 0, max: 3 })),
  })
  .map(
    (r) =>
      Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as unknown as AutonomyRule,
  );
// As in the matrix: one rule per key and source (the table's primary key; one domain.toml entry per key).
const rulesArb = fc.uniqueArray(ruleArb, {
  maxLength: 14,
  selector: (r) => `${r.domain}|${r.cartridge}|${r.eventType}|${r.source}`,
});
const queryArb: fc.Arbitrary<AutonomyQuery> = fc
  .record({
    domain: optional(fc.constantFrom(...DOMAINS, 'support')),
    cartridge: fc.constantFrom(...CARTRIDGES, 'other'),
    eventType: fc.constantFrom(...EXACT, 'post', 'post.draft', 'post.x.y.z', 'deploy.done'),
  })
  .map((q) => (q.domain === undefined ? { cartridge: q.cartridge, eventType: q.eventType } : q));

test('property: the chosen rule is a matching rule no other matching rule is more specific than', () => {
  fc.assert(
    fc.property(rulesArb, queryArb, fc.constantFrom(...LEVELS), (rules, query, globalDefault) => {
      const d = resolveAutonomy(rules, query, globalDefault);
      const matching = rules.filter((r) => oracleMatches(r, query));
      assert.equal(d.considered.length, matching.length, 'considered holds exactly the matching rules');
      for (const r of matching) assert.ok(d.considered.includes(r));
      if (matching.length === 0) {
        assert.equal(d.rule, null);
        assert.equal(d.level, globalDefault);
        assert.equal(d.reason, `global default autonomy.domain_default = ${globalDefault}`);
        return;
      }
      const chosen = d.rule as AutonomyRule;
      assert.ok(matching.includes(chosen), 'the chosen rule matches');
      assert.equal(d.level, chosen.level);
      assert.equal(d.considered[0], chosen);
      for (const r of matching) {
        assert.ok(
          lexCompare(specificity(r), specificity(chosen)) <= 0,
          `${JSON.stringify(r)} is more specific than ${JSON.stringify(chosen)}`,
        );
      }
      for (let i = 1; i < d.considered.length; i++) {
        const before = specificity(d.considered[i - 1] as AutonomyRule);
        assert.ok(
          lexCompare(before, specificity(d.considered[i] as AutonomyRule)) >= 0,
          'considered is best first',
        );
      }
    }),
    { numRuns: 2000 },
  );
});

test('property: the decision does not depend on the order the rules are listed in', () => {
  fc.assert(
    fc.property(
      rulesArb.chain((rules) =>
        fc.tuple(fc.constant(rules), fc.shuffledSubarray(rules, { minLength: rules.length })),
      ),
      queryArb,
      ([rules, shuffled], query) => {
        const a = resolveAutonomy(rules, query, 'L3');
        const b = resolveAutonomy(shuffled, query, 'L3');
        assert.equal(b.rule, a.rule);
        assert.deepEqual(b.considered, a.considered);
      },
    ),
    { numRuns: 1000 },
  );
});

test('property: the matrix (cached, indexed, memoized) answers as resolveAutonomy over its list', async () => {
  // Patterns the matrix accepts: no "*" alone and no leading "*" (the manifest's consumes rule).
  const storable = (t: string | undefined) => t === undefined || !t.startsWith('*');
  await fc.assert(
    fc.asyncProperty(rulesArb, fc.array(queryArb, { minLength: 1, maxLength: 8 }), async (rules, queries) => {
      const store = openStore();
      try {
        const matrix = new AutonomyMatrix(store, { globalDefault: 'L2' });
        const files = new Map<
          string,
          {
            level?: AutonomyLevel;
            cartridges: Record<string, AutonomyLevel>;
            events: Record<string, AutonomyLevel>;
          }
        >();
        for (const r of rules) {
          if (
            !storable(r.eventType) ||
            (r.domain === undefined && r.cartridge === undefined && r.eventType === undefined)
          )
            continue;
          if (r.source === 'cli') {
            await matrix.set({ ...r });
          } else if (r.domain !== undefined && (r.cartridge === undefined || r.eventType === undefined)) {
            const f = files.get(r.domain) ?? { cartridges: {}, events: {} };
            if (r.eventType !== undefined) f.events[r.eventType] = r.level;
            else if (r.cartridge !== undefined) f.cartridges[r.cartridge] = r.level;
            else f.level = r.level;
            files.set(r.domain, f);
          }
          // Ask between changes too: a memoized answer must not outlive a change.
          for (const q of queries) matrix.resolve(q);
          for (const [domain, f] of files) matrix.setFileRules(domain, f);
        }
        for (const q of queries) {
          const got = matrix.resolve(q);
          const want = resolveAutonomy(matrix.list(), q, 'L2');
          assert.equal(got.level, want.level);
          assert.deepEqual(got.rule, want.rule);
          assert.deepEqual(got.considered, want.considered);
        }
      } finally {
        await store.close();
      }
    }),
    { numRuns: 60 },
  );
});

// ---------------------------------------------------------------------------------------------

const Q: AutonomyQuery = { domain: 'marketing', cartridge: 'poster', eventType: 'post.published' };

test('each tier beats the next: event type > cartridge > domain > global', async () => {
  const store = openStore();
  const m = new AutonomyMatrix(store, { globalDefault: 'L3' });
  assert.equal(m.resolve(Q).level, 'L3');
  assert.equal(m.resolve(Q).rule, null);
  await m.set({ domain: 'marketing', level: 'L2' });
  assert.equal(m.resolve(Q).level, 'L2');
  // A cartridge rule of any domain beats the domain rule.
  await m.set({ cartridge: 'poster', level: 'L1' });
  assert.equal(m.resolve(Q).level, 'L1');
  // An event-type rule of any cartridge and domain, even a pattern, beats the cartridge rule in the domain.
  await m.set({ domain: 'marketing', cartridge: 'poster', level: 'L2' });
  await m.set({ eventType: 'post.*', level: 'L3' });
  const d = m.resolve(Q);
  assert.equal(d.level, 'L3');
  assert.equal(d.rule?.eventType, 'post.*');
  // Inside the event-type tier, exact beats a pattern.
  await m.set({ eventType: 'post.published', level: 'L1' });
  assert.equal(m.resolve(Q).level, 'L1');
  // Another domain sees none of the domain's rules.
  assert.equal(m.resolve({ ...Q, domain: 'sales', eventType: 'build.failed' }).level, 'L1');
  assert.equal(
    m.resolve({ ...Q, domain: 'sales', cartridge: 'mailer', eventType: 'build.failed' }).level,
    'L3',
  );
  await store.close();
});

test('a rule set with the CLI beats one from domain.toml at the same specificity', async () => {
  const store = openStore();
  const m = new AutonomyMatrix(store, { globalDefault: 'L3' });
  m.setFileRules('marketing', { level: 'L1', cartridges: { poster: 'L1' } });
  assert.equal(m.resolve(Q).level, 'L1');
  await m.set({ domain: 'marketing', level: 'L2' });
  // The file's cartridge rule is more specific than the CLI's domain rule.
  assert.equal(m.resolve(Q).level, 'L1');
  assert.equal(m.resolve({ ...Q, cartridge: 'mailer' }).level, 'L2');
  await m.set({ domain: 'marketing', cartridge: 'poster', level: 'L3' });
  const d = m.resolve(Q);
  assert.equal(d.level, 'L3');
  assert.deepEqual(
    d.considered.map((r) => `${r.source}:${r.cartridge ?? '*'}:${r.level}`),
    ['cli:poster:L3', 'domain.toml:poster:L1', 'cli:*:L2', 'domain.toml:*:L1'],
  );
  await store.close();
});

test('set, unset and list persist across a reopened store', async () => {
  const { dir, cleanup } = tempDir('weft-autonomy-');
  try {
    const path = join(dir, 'weft.db');
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    let store = openStore(path, clock);
    let m = new AutonomyMatrix(store, { globalDefault: 'L3' });
    await m.set({ domain: 'marketing', cartridge: 'poster', level: 'L2', setBy: 'ada' });
    clock.advance(1000);
    await m.set({ domain: 'marketing', eventType: 'post.*', level: 'L1' });
    await m.set({ domain: 'sales', level: 'L1' });
    // An upsert replaces the level of the same key.
    clock.advance(1000);
    await m.set({ domain: 'sales', level: 'L2', setBy: 'bob' });
    const removed = await m.unset({ domain: 'marketing', eventType: 'post.*' });
    assert.equal(removed.level, 'L1');
    await assert.rejects(
      m.unset({ domain: 'marketing', eventType: 'post.*' }),
      (e: unknown) => isWeftError(e) && e.code === 'WEFT_NOT_FOUND',
    );
    await store.close();

    store = openStore(path, clock);
    m = new AutonomyMatrix(store, { globalDefault: 'L3' });
    assert.deepEqual(m.list(), [
      {
        domain: 'marketing',
        cartridge: 'poster',
        level: 'L2',
        source: 'cli',
        setAt: Date.UTC(2026, 0, 1),
        setBy: 'ada',
      },
      { domain: 'sales', level: 'L2', source: 'cli', setAt: Date.UTC(2026, 0, 1) + 2000, setBy: 'bob' },
    ]);
    assert.equal(m.resolve(Q).level, 'L2');
    assert.equal(m.resolve({ ...Q, domain: 'sales' }).level, 'L2');
    await store.close();
  } finally {
    cleanup();
  }
});

test('resolve answers from memory: no SQL once the rules are loaded', async () => {
  const store = openStore();
  const m = new AutonomyMatrix(store, { globalDefault: 'L3' });
  await m.set({ domain: 'marketing', level: 'L1' });
  m.resolve(Q);
  await store.close();
  // The store is closed: any SQL would throw.
  assert.equal(m.resolve(Q).level, 'L1');
  assert.equal(m.resolve({ ...Q, eventType: 'post.other' }).level, 'L1');
});

test('setFileRules replaces the rules of that domain only, and clearFileRules forgets them', async () => {
  const store = openStore();
  const m = new AutonomyMatrix(store, { globalDefault: 'L3' });
  m.setFileRules('marketing', { level: 'L1', cartridges: { poster: 'L2' } });
  m.setFileRules('sales', { level: 'L2' });
  assert.equal(m.resolve(Q).level, 'L2');
  m.setFileRules('marketing', { events: { 'post.published': 'L1' } });
  assert.deepEqual(
    m.list().map((r) => [r.domain, r.cartridge, r.eventType, r.level, r.source]),
    [
      ['marketing', undefined, 'post.published', 'L1', 'domain.toml'],
      ['sales', undefined, undefined, 'L2', 'domain.toml'],
    ],
  );
  assert.equal(m.resolve({ ...Q, eventType: 'post.draft' }).level, 'L3');
  m.clearFileRules('marketing');
  assert.equal(m.resolve(Q).level, 'L3');
  assert.equal(m.list().length, 1);
  await store.close();
});

test('explain names the rule that decided and lists the less specific ones below it', async () => {
  const store = openStore();
  const m = new AutonomyMatrix(store, { globalDefault: 'L3' });
  await m.set({ domain: 'marketing', eventType: 'post.*', level: 'L1', setBy: 'weft config autonomy set' });
  await m.set({ domain: 'marketing', cartridge: 'poster', level: 'L2', setBy: 'ada' });
  m.setFileRules('marketing', { level: 'L3' });
  const d = m.explain(Q);
  assert.equal(d.level, 'L1');
  assert.equal(d.reason, 'event type rule post.* in domain marketing (set by weft config autonomy set)');
  assert.deepEqual(
    d.considered.map((r) => r.level),
    ['L1', 'L2', 'L3'],
  );
  assert.equal(
    m.explain({ ...Q, eventType: 'build.failed' }).reason,
    'cartridge rule poster in domain marketing (set by ada)',
  );
  assert.equal(
    m.explain({ ...Q, cartridge: 'mailer', eventType: 'build.failed' }).reason,
    'domain rule marketing (from domain.toml)',
  );
  assert.equal(m.explain({ ...Q, domain: 'sales' }).reason, 'global default autonomy.domain_default = L3');
  await store.close();
});

test('invalid input is refused with an error that names the field', async () => {
  const store = openStore();
  const m = new AutonomyMatrix(store, { globalDefault: 'L3' });
  const refused = async (p: Promise<unknown> | (() => unknown), field: string) => {
    const run = typeof p === 'function' ? Promise.resolve().then(p) : p;
    await assert.rejects(run, (e: unknown) => {
      assert.ok(isWeftError(e), String(e));
      assert.equal(e.code, 'WEFT_VALIDATION');
      assert.equal(e.details?.field, field);
      assert.match(e.message, new RegExp(field));
      return true;
    });
  };
  await refused(m.set({ domain: 'Marketing Team', level: 'L2' }), 'domain');
  await refused(m.set({ cartridge: '-poster', level: 'L2' }), 'cartridge');
  await refused(m.set({ eventType: 'post..published', level: 'L2' }), 'eventType');
  await refused(m.set({ eventType: '*', level: 'L2' }), 'eventType');
  await refused(m.set({ eventType: `a.${'b'.repeat(200)}`, level: 'L2' }), 'eventType');
  await refused(m.set({ domain: 'marketing', level: 'L4' as AutonomyLevel }), 'level');
  await refused(m.set({ level: 'L2' }), 'domain');
  await refused(m.unset({}), 'domain');
  await refused(() => m.setFileRules('marketing', { cartridges: { 'Bad Name': 'L1' } }), 'cartridge');
  await refused(() => m.setFileRules('marketing', { events: { 'post.*': 'L9' as AutonomyLevel } }), 'level');
  assert.equal(m.list().length, 0);
  await store.close();
});

test('the stored rules are bounded: past the limit set refuses a new key but still updates one', async () => {
  const store = openStore();
  const m = new AutonomyMatrix(store, { globalDefault: 'L3', maxRules: 2 });
  await m.set({ domain: 'a', level: 'L1' });
  await m.set({ domain: 'b', level: 'L1' });
  await assert.rejects(
    m.set({ domain: 'c', level: 'L1' }),
    (e: unknown) => isWeftError(e) && e.code === 'WEFT_LIMIT' && /2 rules/.test(e.message),
  );
  await m.set({ domain: 'b', level: 'L2' });
  assert.equal(m.resolve({ domain: 'b', cartridge: 'x', eventType: 'y' }).level, 'L2');
  await store.close();
});

test('API: PUT a rule, then GET explain names it; DELETE removes it', async () => {
  const TOKEN = 'test-token-0123456789';
  const headers = { authorization: `Bearer ${TOKEN}` };
  const t = await startTestNode();
  const matrix = new AutonomyMatrix(t.node.ns.store, { globalDefault: 'L3' });
  const { app } = await buildApi(
    { token: TOKEN },
    { node: t.node, logger: silentLogger, extraRoutes: [autonomyRoutes({ matrix })] },
  );
  try {
    const put = await app.inject({
      method: 'PUT',
      url: '/api/autonomy',
      headers,
      payload: { domain: 'marketing', cartridge: 'poster', level: 'L2', setBy: 'weft config autonomy set' },
    });
    assert.equal(put.statusCode, 200, put.body);
    assert.equal((put.json() as { rule: AutonomyRule }).rule.level, 'L2');

    const ex = await app.inject({
      method: 'GET',
      url: '/api/autonomy/explain?eventType=post.published&cartridge=poster&domain=marketing',
      headers,
    });
    assert.equal(ex.statusCode, 200, ex.body);
    const d = ex.json() as {
      level: string;
      reason: string;
      rule: AutonomyRule;
      considered: AutonomyRule[];
      globalDefault: string;
    };
    assert.equal(d.level, 'L2');
    assert.equal(d.reason, 'cartridge rule poster in domain marketing (set by weft config autonomy set)');
    assert.equal(d.considered.length, 1);
    assert.equal(d.globalDefault, 'L3');

    const list = await app.inject({ method: 'GET', url: '/api/autonomy', headers });
    assert.equal((list.json() as { rules: AutonomyRule[] }).rules.length, 1);

    const bad = await app.inject({
      method: 'PUT',
      url: '/api/autonomy',
      headers,
      payload: { domain: 'Marketing!', level: 'L2' },
    });
    assert.equal(bad.statusCode, 400);
    assert.match((bad.json() as { error: { message: string } }).error.message, /domain/);
    // A DELETE body is a key: a level in it is a mistake, not something to ignore.
    const odd = await app.inject({
      method: 'DELETE',
      url: '/api/autonomy',
      headers,
      payload: { domain: 'marketing', level: 'L2' },
    });
    assert.equal(odd.statusCode, 400, odd.body);
    assert.match((odd.json() as { error: { message: string } }).error.message, /body/);

    const del = await app.inject({
      method: 'DELETE',
      url: '/api/autonomy?domain=marketing&cartridge=poster',
      headers,
    });
    assert.equal(del.statusCode, 200, del.body);
    const again = await app.inject({
      method: 'DELETE',
      url: '/api/autonomy',
      headers,
      payload: { domain: 'marketing', cartridge: 'poster' },
    });
    assert.equal(again.statusCode, 404, again.body);
    const after = await app.inject({
      method: 'GET',
      url: '/api/autonomy/explain?eventType=post.published&cartridge=poster&domain=marketing',
      headers,
    });
    assert.equal((after.json() as { reason: string }).reason, 'global default autonomy.domain_default = L3');
  } finally {
    await app.close();
    await t.close();
  }
});

test('API: explain of a cartridge install into a domain gives the level the install gets (a domain rule about actions does not decide it)', async () => {
  const TOKEN = 'test-token-0123456789';
  const headers = { authorization: `Bearer ${TOKEN}` };
  const t = await startTestNode();
  const matrix = new AutonomyMatrix(t.node.ns.store, { globalDefault: 'L3' });
  const { app } = await buildApi(
    { token: TOKEN },
    { node: t.node, logger: silentLogger, extraRoutes: [autonomyRoutes({ matrix, installDefault: 'L1' })] },
  );
  const explain = async () =>
    (await app.inject({ method: 'GET', url: '/api/autonomy/explain?eventType=cartridge.install&cartridge=carls&domain=software-development', headers })).json() as { level: string; reason: string };
  try {
    // A pillar's domain.toml says `[autonomy] level = "L3"`: a domain rule, naming no event type.
    await matrix.set({ domain: 'software-development', level: 'L3', setBy: 'domain.toml' });
    let d = await explain();
    assert.equal(d.level, 'L1', 'a member submitting waits for an admin: L1, as the install does');
    assert.match(d.reason, /^autonomy\.cartridge_install = L1 \(no rule names cartridge\.install; domain rule software-development .* is about actions, not installs\)$/);
    await matrix.set({ domain: 'software-development', eventType: 'cartridge.install', level: 'L2', setBy: 'ada' });
    d = await explain();
    assert.equal(d.level, 'L2', 'a rule naming the install decides it');
  } finally {
    await app.close();
    await t.close();
  }
});
