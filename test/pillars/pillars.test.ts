/**
 * The pillar packs: each installs on a fresh data directory, its domain validates with the real
 * loader and catalog, each starter cartridge runs in the real sandbox and alerts on the events
 * it should (and not on the others), customer relations holds every alert at L1, and a node
 * with the software-development pack alerts on a failed build end to end.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createDefaultCatalog } from '../../src/catalog/index.js';
import { AutonomyMatrix, createDomainRunner, loadDomain, readDomainConfig } from '../../src/domains/index.js';
import { isWeftError } from '../../src/errors/index.js';
import {
  installPillar,
  PillarExistsError,
  PILLARS,
  type PillarName,
  pillarPack,
  UnknownPillarError,
} from '../../src/pillars/index.js';
import {
  type CartridgePackage,
  createSandbox,
  FORBIDDEN_CONSTRUCTS,
  guardianRequest,
  ruleGuardian,
  type Sandbox,
} from '../../src/sovereignty/index.js';
import { Store } from '../../src/store/index.js';
import { ManualClock, silentLogger, systemClock } from '../../src/util/index.js';
import { weft } from '../helpers/cli.js';
import { startTestNode, waitFor } from '../helpers/node.js';
import { tempDir } from '../helpers/tmp.js';

const catalog = createDefaultCatalog();
const NAMES: PillarName[] = ['software-development', 'marketing', 'creative-production', 'customer-relations'];
const T0 = Date.parse('2026-03-08T09:00:00.000Z');
const at = (hours: number) => new Date(T0 + hours * 3_600_000).toISOString();

let seq = 0;
/** An envelope as the domain lane hands it to a cartridge; its payload must validate in the catalog. */
function envelope(type: string, payload: Record<string, unknown>, hours = 0): Record<string, unknown> {
  const normalized = catalog.normalize({ event: type, payload });
  catalog.validatePayload(normalized.event, normalized.payload);
  const entry = catalog.require(normalized.event);
  seq++;
  return {
    id: `evt-${seq}`,
    event: normalized.event,
    version: 1,
    source: 'test',
    timestamp: at(hours),
    level: entry.level,
    domain: entry.domain,
    description: entry.description,
    visibility: entry.visibility,
    payload: normalized.payload,
  };
}

interface Alert {
  title: string;
  body?: string;
  key?: string;
  tags?: string[];
  url?: string;
}

/**
 * A pack's cartridges loaded in one real sandbox, fed events the way a domain lane does: by
 * DAG order, a cartridge only the types it consumes, a dependent the outputs of its dependencies.
 */
class PackRunner {
  private readonly sandbox: Sandbox;
  private readonly order: CartridgePackage[];

  constructor(readonly cartridges: readonly CartridgePackage[]) {
    this.sandbox = createSandbox({ timeoutMs: 1000 }, { logger: silentLogger, clock: new ManualClock() });
    const done = new Set<string>();
    const order: CartridgePackage[] = [];
    while (order.length < cartridges.length) {
      const next = cartridges.find((c) => !done.has(c.manifest.name) && c.manifest.dependencies.every((d) => done.has(d)));
      assert.ok(next, 'the pack has no cycle');
      done.add(next.manifest.name);
      order.push(next);
    }
    this.order = order;
  }

  async start(): Promise<void> {
    await this.sandbox.start();
    for (const c of this.cartridges) await this.sandbox.load(c);
  }

  stop(): Promise<void> {
    return this.sandbox.stop();
  }

  /** The alerts each cartridge emitted for `event` (validated against the catalog), and the event as the last cartridge passed it on. */
  async run(event: Record<string, unknown>): Promise<{ alerts: Array<Alert & { by: string }>; outputs: Record<string, unknown> }> {
    const passed = new Map<string, Record<string, unknown>>();
    const alerts: Array<Alert & { by: string }> = [];
    const outputs: Record<string, unknown> = {};
    for (const c of this.order) {
      const m = c.manifest;
      let input = event;
      for (const d of m.dependencies) {
        const got = passed.get(d);
        if (got) input = { ...input, payload: { ...(input.payload as object), ...(got.payload as object) } };
      }
      const type = String(event.event);
      const consumes = m.consumes.some((p) => p === type || (p.endsWith('.*') && type.startsWith(p.slice(0, -1))));
      if (!consumes) {
        passed.set(m.name, input);
        continue;
      }
      const [r] = await this.sandbox.process(m.name, [input]);
      assert.ok(r?.ok, `${m.name} on ${type}: ${r && !r.ok ? r.error.message : 'no result'}`);
      const out = r.event ?? input;
      const kept: Record<string, unknown> = {};
      for (const f of m.outputs ?? []) {
        const v = (out.payload as Record<string, unknown>)[f];
        if (v !== undefined) kept[f] = v;
      }
      Object.assign(outputs, kept);
      passed.set(m.name, { ...input, payload: { ...(input.payload as object), ...kept } });
      for (const e of r.emitted) {
        assert.ok(m.emits.includes(e.type), `${m.name} emitted a declared type`);
        catalog.validatePayload(e.type, e.payload);
        alerts.push({ ...(e.payload as unknown as Alert), by: m.name });
      }
    }
    return { alerts, outputs };
  }

  /** Runs `type` with `payload` at `hours` and answers the titles of the alerts. */
  async titles(type: string, payload: Record<string, unknown>, hours = 0): Promise<string[]> {
    return (await this.run(envelope(type, payload, hours))).alerts.map((a) => a.title);
  }
}

describe('pillar packs: install and validation', () => {
  it('lists the four pillars with one line each, and refuses an unknown one by name', () => {
    assert.deepEqual(
      PILLARS.map((p) => p.name),
      NAMES,
    );
    for (const p of PILLARS) assert.ok(p.description.length > 20 && !p.description.includes('\n'), p.name);
    assert.throws(
      () => pillarPack('sales'),
      (e: unknown) => e instanceof UnknownPillarError && e.code === 'WEFT_NOT_FOUND' && /software-development, marketing/.test(e.message),
    );
  });

  it('weft init --pillar with no such pillar is a usage error (exit 2) naming the pillars, and writes nothing', () => {
    const t = tempDir('weft-pillar-cli-');
    try {
      const dataDir = join(t.dir, 'data');
      const r = weft(['init', '--pillar', 'nosuch'], { HOME: t.dir, WEFT_DATA_DIR: dataDir, WEFT_API_PORT: '0', WEFT_TOKEN: '', WEFT_URL: '' });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^weft: --pillar: there is no pillar 'nosuch': the pillars are software-development, marketing, creative-production, customer-relations$/m);
      assert.ok(!existsSync(join(dataDir, 'company', 'domains', 'nosuch')));
    } finally {
      t.cleanup();
    }
  });

  for (const name of NAMES) {
    it(`installs ${name} on a fresh data dir, and the real loader validates its domain`, async () => {
      const t = tempDir('weft-pillar-');
      try {
        const r = await installPillar(t.dir, name);
        const pack = pillarPack(name);
        assert.equal(r.domainDir, join(t.dir, 'company', 'domains', name));
        assert.deepEqual(
          r.cartridges,
          pack.cartridges.map((c) => c.manifest.name),
        );
        for (const f of ['domain.toml', 'README.md']) assert.ok(existsSync(join(r.domainDir, f)), f);
        for (const c of r.cartridges) {
          assert.ok(existsSync(join(r.domainDir, 'cartridges', c, 'manifest.json')));
          assert.ok(existsSync(join(r.domainDir, 'cartridges', c, 'cartridge.js')));
        }
        assert.ok(r.created.includes(join(r.domainDir, 'domain.toml')));
        assert.ok(existsSync(join(t.dir, 'company', 'README.md')), 'the layout was created too');
        assert.deepEqual(
          readdirSync(join(t.dir, 'company')).filter((f) => f.startsWith('.')),
          [],
          'no temporary folder left',
        );
        const def = await loadDomain(t.dir, name, { knowsEventType: (type) => catalog.has(type), rolesOf: () => undefined });
        assert.equal(def.cartridges.length, pack.cartridges.length);
        assert.equal(def.maxParallel, 2);
        // Each cartridge consumes types the catalog knows (or patterns over them), and passes the rule guardian.
        const rules = ruleGuardian()({ hasDependency: (d) => r.cartridges.includes(d), knowsEventType: (type) => catalog.has(type) });
        for (const c of def.cartridges) {
          for (const p of c.pkg.manifest.consumes) {
            const prefix = p.endsWith('.*') ? p.slice(0, -1) : p;
            assert.ok(catalog.list().some((e) => e.type === p || (p.endsWith('.*') && e.type.startsWith(prefix))), `${c.pkg.manifest.name} consumes ${p}, a known type`);
          }
          const v = await rules.judge(guardianRequest(c.pkg, { origin: 'test' }));
          assert.ok(v.approve, `${c.pkg.manifest.name}: ${v.reason}`);
          for (const f of FORBIDDEN_CONSTRUCTS) assert.equal(f.pattern.test(c.pkg.source), false, `${c.pkg.manifest.name} uses ${f.what}`);
        }
      } finally {
        t.cleanup();
      }
    });
  }

  it('refuses to overwrite an existing domain unless forced, and force keeps other cartridges', async () => {
    const t = tempDir('weft-pillar-');
    try {
      const first = await installPillar(t.dir, 'marketing');
      writeFileSync(join(first.domainDir, 'cartridges', 'feed-monitor', 'cartridge.js'), 'function process(e) { return e; }');
      mkdirSync(join(first.domainDir, 'cartridges', 'mine'));
      writeFileSync(join(first.domainDir, 'cartridges', 'mine', 'cartridge.js'), '// kept');
      await assert.rejects(installPillar(t.dir, 'marketing'), (e: unknown) => {
        assert.ok(e instanceof PillarExistsError);
        assert.ok(isWeftError(e) && e.code === 'WEFT_CONFLICT');
        assert.match(e.message, /domain 'marketing' exists already .* --force/);
        return true;
      });
      assert.equal(readFileSync(join(first.domainDir, 'cartridges', 'feed-monitor', 'cartridge.js'), 'utf8'), 'function process(e) { return e; }', 'untouched');
      await installPillar(t.dir, 'marketing', { force: true });
      assert.match(readFileSync(join(first.domainDir, 'cartridges', 'feed-monitor', 'cartridge.js'), 'utf8'), /KEYWORDS/);
      assert.equal(readFileSync(join(first.domainDir, 'cartridges', 'mine', 'cartridge.js'), 'utf8'), '// kept');
    } finally {
      t.cleanup();
    }
  });

  it('takes marketing keywords, and refuses one that is not a word', async () => {
    const pack = pillarPack('marketing', { keywords: ['Rust', 'WebAssembly'] });
    assert.match(pack.cartridges.find((c) => c.manifest.name === 'feed-monitor')?.source ?? '', /var KEYWORDS = \["rust","webassembly"\];/);
    assert.throws(() => pillarPack('marketing', { keywords: ["'];x=1;//"] }), /keyword/);
  });

  it('resolves every customer-relations alert to L1 from the domain.toml it wrote, and software-development to L3', async () => {
    const t = tempDir('weft-pillar-');
    const store = Store.open({ path: ':memory:' }, { clock: new ManualClock(), logger: silentLogger });
    try {
      const matrix = new AutonomyMatrix(store, { globalDefault: 'L3' });
      for (const name of ['customer-relations', 'software-development'] as const) {
        const { domainDir } = await installPillar(t.dir, name);
        const a = (await readDomainConfig(domainDir, name)).autonomy;
        matrix.setFileRules(name, { ...(a.level ? { level: a.level } : {}), cartridges: { ...a.cartridges }, events: { ...a.events } });
      }
      for (const c of pillarPack('customer-relations').cartridges) {
        const d = matrix.resolve({ domain: 'customer-relations', cartridge: c.manifest.name, eventType: 'domains.alert' });
        assert.equal(d.level, 'L1', `${c.manifest.name}: ${d.reason}`);
        assert.match(d.reason, /domain\.toml/);
      }
      // Even a cartridge someone adds later, emitting a type the domain may not emit today.
      assert.equal(matrix.resolve({ domain: 'customer-relations', cartridge: 'newcomer', eventType: 'domain.customer-relations.helpdesk.ticket_updated' }).level, 'L1');
      assert.equal(matrix.resolve({ domain: 'software-development', cartridge: 'build-notifier', eventType: 'domains.alert' }).level, 'L3');
      const cfg = await readDomainConfig(join(t.dir, 'company', 'domains', 'customer-relations'), 'customer-relations');
      assert.deepEqual([cfg.subscribeDomains, cfg.subscribeEvents, cfg.emits], [[], ['domain.customer-relations.*'], ['domains.alert']]);
      assert.equal(cfg.guardian.rules, true);
    } finally {
      await store.close();
      t.cleanup();
    }
  });
});

describe('software-development cartridges in the sandbox', () => {
  const run = new PackRunner(pillarPack('software-development').cartridges);
  before(() => run.start());
  after(() => run.stop());
  const D = 'domain.software-development';

  it('build-notifier alerts on a failed build, once more when it passes again, and not on a good one', async () => {
    assert.deepEqual(await run.titles(`${D}.build.started`, { slug: 'login-form', sha: 'abc' }), []);
    const { alerts } = await run.run(envelope(`${D}.build.completed`, { slug: 'login-form', success: false, error: '3 tests failed', sha: 'abcdef1234567', url: 'https://ci.example/1' }));
    assert.equal(alerts.length, 1);
    assert.deepEqual({ ...alerts[0], body: undefined }, { title: 'Build failed: login-form', body: undefined, key: 'build:login-form', tags: ['build', 'failed'], url: 'https://ci.example/1', by: 'build-notifier' });
    assert.match(String(alerts[0]?.body), /3 tests failed\ncommit abcdef123456/);
    assert.deepEqual(await run.titles(`${D}.build.completed`, { slug: 'search', success: true }), []);
    assert.deepEqual(await run.titles(`${D}.build.completed`, { slug: 'search', status: 'failed' }), ['Build failed: search']);
    assert.deepEqual(await run.titles(`${D}.build.completed`, { slug: 'login-form', success: true }), ['Build fixed: login-form']);
    assert.deepEqual(await run.titles(`${D}.build.completed`, { slug: 'login-form', success: true, sha: 'x' }), []);
  });

  it('review-reminder alerts on a decision to make and on changes asked, and reminds once hours later', async () => {
    assert.deepEqual(await run.titles(`${D}.review.needs_decision`, { slug: 'auth', round: 1, question: 'Ship without SSO?' }, 0), ['Review waits for your decision: auth']);
    assert.deepEqual(await run.titles(`${D}.review.verdict_ready`, { slug: 'cache', round: 1, verdict: 'APPROVE' }, 1), []);
    assert.deepEqual(await run.titles(`${D}.review.verdict_ready`, { slug: 'cache', round: 2, verdict: 'REQUEST CHANGES' }, 5), ['Changes requested: cache', 'Still waiting for a review decision: auth']);
    assert.deepEqual(await run.titles(`${D}.review.verdict_ready`, { slug: 'other', round: 1, verdict: 'APPROVE' }, 9), [], 'reminded once');
    assert.deepEqual(await run.titles(`${D}.review.approved`, { slug: 'auth', review_round: 1 }, 10), ['Review decided: auth']);
    assert.deepEqual(await run.titles(`${D}.review.approved`, { slug: 'cache', review_round: 3 }, 11), []);
  });

  it('deploy-tracker alerts on a failed deploy and a blocked integration, and on their recovery', async () => {
    assert.deepEqual(await run.titles(`${D}.deploy.triggered`, { slug: 'api', environment: 'prod' }), []);
    assert.deepEqual(await run.titles(`${D}.deploy.failed`, { slug: 'api', environment: 'prod', error: 'healthcheck timed out' }), ['Deploy failed: api to prod']);
    assert.deepEqual(await run.titles(`${D}.deploy.succeeded`, { slug: 'web', environment: 'prod' }), []);
    assert.deepEqual(await run.titles(`${D}.deploy.succeeded`, { slug: 'api', environment: 'prod', sha: '2' }), ['Deploy recovered: api to prod']);
    // TeleClaude's integrator, as its emit helper sends it.
    const { alerts } = await run.run(
      envelope(`${D}.deployment.failed`, { slug: 'history-search', branch: 'history-search', sha: '10af253e', conflict_evidence: ['src/a.py'], diagnostics: ['merge conflict'], next_action: 'rebase on main', blocked_at: at(0) }),
    );
    assert.deepEqual(alerts.map((a) => [a.title, a.key]), [['Integration blocked: history-search', 'integration:history-search']]);
    assert.match(String(alerts[0]?.body), /next: rebase on main\n- merge conflict\n- src\/a.py/);
    assert.deepEqual(await run.titles(`${D}.deployment.completed`, { slug: 'history-search', merge_commit: '7c1d2e3f' }), ['Integrated: history-search']);
  });

  it('incident-tracker alerts when an incident opens and is resolved, and on critical ops alerts only', async () => {
    assert.deepEqual(await run.titles(`${D}.incident.opened`, { incident_id: 'INC-7', title: 'Checkout errors', severity: 'sev1', service: 'checkout' }), ['Incident opened: Checkout errors (sev1)']);
    assert.deepEqual(await run.titles(`${D}.incident.updated`, { incident_id: 'INC-7', status: 'mitigated' }), []);
    assert.deepEqual(await run.titles(`${D}.incident.resolved`, { incident_id: 'INC-7', resolution: 'rolled back' }), ['Incident resolved: Checkout errors']);
    assert.deepEqual(await run.titles(`${D}.incident.resolved`, { incident_id: 'INC-8' }), []);
    assert.deepEqual(await run.titles(`${D}.ops.alert_fired`, { alert_id: 'disk', severity: 'warning' }), []);
    assert.deepEqual(await run.titles(`${D}.ops.alert_fired`, { alert_id: 'db-down', severity: 'critical', title: 'Database unreachable' }), ['Critical alert: Database unreachable']);
    // Types no cartridge of the pack consumes pass without a sound.
    assert.deepEqual(await run.titles(`${D}.planning.todo.created`, { slug: 'x', title: 'a todo' }), []);
  });
});

describe('marketing cartridges in the sandbox', () => {
  const run = new PackRunner(pillarPack('marketing').cartridges);
  before(() => run.start());
  after(() => run.stop());
  const D = 'domain.marketing';

  it('content-pipeline alerts when a draft waits for review and when it is published', async () => {
    assert.deepEqual(await run.titles(`${D}.content.brief_created`, { content_id: 'post-1', title: 'Spring launch post' }), []);
    const { alerts } = await run.run(envelope(`${D}.content.draft_ready`, { content_id: 'post-1', author: 'ada' }));
    assert.deepEqual(alerts.map((a) => [a.title, a.key]), [['Draft ready for review: Spring launch post', 'content:post-1']]);
    assert.deepEqual(await run.titles(`${D}.content.published`, { content_id: 'post-1', url: 'https://example.com/spring' }), ['Published: Spring launch post']);
    assert.deepEqual(await run.titles(`${D}.content.performance_reported`, { content_id: 'post-1', period: '2026-W10', metrics: { views: 10 } }), []);
  });

  it('campaign-budget-monitor alerts past the threshold in the campaign payload, again over budget, and on a threshold hit', async () => {
    assert.deepEqual(await run.titles(`${D}.campaign.launched`, { campaign_id: 'spring', name: 'Spring sale', budget: 1000, currency: 'EUR', alert_at: 0.75 }), []);
    assert.deepEqual(await run.titles(`${D}.campaign.spend_reported`, { campaign_id: 'spring', spent: 500 }), []);
    const { alerts } = await run.run(envelope(`${D}.campaign.spend_reported`, { campaign_id: 'spring', spent: 800 }));
    assert.deepEqual(alerts.map((a) => [a.title, a.body, a.key]), [['Budget threshold passed: Spring sale (80% of budget)', 'spent 800 EUR of 1000 EUR; alerts at 75%', 'budget:spring']]);
    assert.deepEqual(await run.titles(`${D}.campaign.spend_reported`, { campaign_id: 'spring', spent: 900 }), [], 'once per crossing');
    assert.deepEqual(await run.titles(`${D}.campaign.spend_reported`, { campaign_id: 'spring', spent: 1100 }), ['Over budget: Spring sale (110% of budget)']);
    // The threshold and budget may come with the spend itself.
    assert.deepEqual(await run.titles(`${D}.campaign.spend_reported`, { campaign_id: 'summer', spent: 90, budget: 100, alert_at: 0.9, name: 'Summer' }), ['Budget threshold passed: Summer (90% of budget)']);
    assert.deepEqual(await run.titles(`${D}.campaign.spend_reported`, { campaign_id: 'autumn', spent: 50, budget: 100 }), []);
    assert.deepEqual(await run.titles(`${D}.campaign.budget_threshold_hit`, { campaign_id: 'winter', spent: 8200, threshold: 0.8, budget: 10000 }), ['Budget threshold hit: winter (82% of budget)']);
  });

  it('feed-monitor surfaces high-confidence syntheses tagged with its keywords, and no others', async () => {
    const synthesis = (tags: string[], confidence: number, title = 'Rival cuts prices in Europe') =>
      envelope('signal.synthesis.ready', {
        cluster_id: `c-${seq}`,
        title,
        synthesis: { summary: 'Three sources report the cut.', key_points: ['20% off'], sources: [{ source_id: 'news', url: 'https://news.example/a', title: 'Cut' }], confidence },
        summarizer: 'extractive',
        tags,
      });
    const { alerts } = await run.run(synthesis(['pricing', 'europe'], 0.9));
    assert.deepEqual(alerts.map((a) => [a.title, a.url, a.tags]), [['Signal: Rival cuts prices in Europe', 'https://news.example/a', ['signal', 'pricing']]]);
    assert.deepEqual((await run.run(synthesis(['pricing'], 0.5))).alerts, [], 'low confidence is absorbed');
    assert.deepEqual((await run.run(synthesis(['sports'], 0.95, 'Local team wins'))).alerts, [], 'not about marketing');
    assert.equal((await run.run(synthesis([], 0.8, 'Competitor launch next week'))).alerts.length, 1, 'a keyword in the title counts');
  });
});

describe('creative-production cartridges in the sandbox', () => {
  const run = new PackRunner(pillarPack('creative-production').cartridges);
  before(() => run.start());
  after(() => run.stop());
  const D = 'domain.creative-production';

  it('walks an asset from brief to delivery, alerting when it waits for approval and when it is approved', async () => {
    assert.deepEqual(await run.titles(`${D}.asset.brief_created`, { asset_id: 'hero', title: 'Hero video' }, 0), []);
    const draft = await run.run(envelope(`${D}.asset.draft_submitted`, { asset_id: 'hero', version: '1' }, 1));
    assert.deepEqual(draft.alerts, []);
    assert.deepEqual(draft.outputs, { stage: 'draft', previous_stage: 'brief', asset_title: 'Hero video' });
    const review = await run.run(envelope(`${D}.asset.review_requested`, { asset_id: 'hero', reviewer: 'ada', deadline: at(24) }, 2));
    assert.deepEqual(review.alerts.map((a) => [a.title, a.key, a.by]), [['Waiting for approval: Hero video', 'approval:hero', 'review-gatekeeper']]);
    assert.match(String(review.alerts[0]?.body), /reviewer ada/);
    assert.deepEqual(await run.titles(`${D}.asset.approved`, { asset_id: 'hero', approved_by: 'ada' }, 3), ['Approved: Hero video']);
    assert.deepEqual(await run.titles(`${D}.asset.delivered`, { asset_id: 'hero', destination: 'client' }, 4), [], 'delivered after approval: nothing to say');
  });

  it('says when an approval is overdue, when revisions are asked, and when an asset skips approval', async () => {
    await run.run(envelope(`${D}.asset.brief_created`, { asset_id: 'logo', title: 'New logo' }, 0));
    assert.deepEqual(await run.titles(`${D}.asset.review_requested`, { asset_id: 'logo' }, 0), ['Waiting for approval: New logo']);
    assert.deepEqual(await run.titles(`${D}.asset.brief_created`, { asset_id: 'banner', title: 'Banner' }, 10), []);
    assert.deepEqual(await run.titles(`${D}.asset.draft_submitted`, { asset_id: 'banner' }, 49), ['Approval overdue: New logo']);
    assert.deepEqual(await run.titles(`${D}.asset.revision_requested`, { asset_id: 'logo', feedback: 'bolder' }, 50), ['Revisions requested: New logo']);
    assert.deepEqual(await run.titles(`${D}.asset.delivered`, { asset_id: 'banner' }, 51), ['Delivered without approval: Banner']);
  });

  it('alerts on a failed transcode only', async () => {
    assert.deepEqual(await run.titles(`${D}.format.transcode_started`, { asset_id: 'hero', format: 'webm', job_id: 'j1' }), []);
    assert.deepEqual(await run.titles(`${D}.format.transcode_failed`, { asset_id: 'promo', format: 'webm', error: 'codec not found' }), ['Transcode failed: promo (webm)']);
  });
});

describe('customer-relations cartridges in the sandbox', () => {
  const run = new PackRunner(pillarPack('customer-relations').cartridges);
  before(() => run.start());
  after(() => run.stop());
  const D = 'domain.customer-relations';

  it('helpdesk-triage rates urgency from the priority and the subject, and says nothing itself', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ticket_id: 'T-1', subject: 'How do I change my avatar?', priority: 'low' }, 'low'],
      [{ ticket_id: 'T-2', subject: 'Invoice question' }, 'normal'],
      [{ ticket_id: 'T-3', subject: 'Your site is down for all of us' }, 'high'],
      [{ ticket_id: 'T-4', subject: 'Payment page broken', priority: 'P1' }, 'urgent'],
    ];
    for (const [payload, urgency] of cases) {
      const r = await run.run(envelope(`${D}.helpdesk.ticket_created`, payload));
      assert.equal(r.outputs.urgency, urgency, String(payload.subject));
      assert.ok(r.alerts.every((a) => a.by !== 'helpdesk-triage'));
    }
  });

  it('escalation-handler proposes alerts on urgent tickets, SLA breaches and escalations, and not on routine updates', async () => {
    assert.deepEqual(await run.titles(`${D}.helpdesk.ticket_created`, { ticket_id: 'T-9', subject: 'Checkout fails', priority: 'urgent' }, 0), ['Urgent ticket T-9: Checkout fails']);
    assert.deepEqual(await run.titles(`${D}.helpdesk.ticket_created`, { ticket_id: 'T-10', subject: 'Question', sla_due_at: at(4) }, 0), []);
    assert.deepEqual(await run.titles(`${D}.helpdesk.ticket_updated`, { ticket_id: 'T-10', status: 'open', updated_at: at(2) }, 2), []);
    assert.deepEqual(await run.titles(`${D}.helpdesk.ticket_updated`, { ticket_id: 'T-10', status: 'open', updated_at: at(5) }, 5), ['SLA breached: ticket T-10: Question']);
    assert.deepEqual(await run.titles(`${D}.helpdesk.ticket_updated`, { ticket_id: 'T-11', sla_breached: true }, 5), ['SLA breached: ticket T-11']);
    assert.deepEqual(await run.titles(`${D}.helpdesk.ticket_escalated`, { ticket_id: 'T-9', reason: 'third failed payment', escalated_to: 'billing-lead' }, 6), ['Escalated ticket T-9: Checkout fails']);
    assert.deepEqual(await run.titles(`${D}.escalation.triggered`, { escalation_id: 'E-1', reason: 'Chargeback threatened', ticket_id: 'T-9' }, 6), ['Escalation: Chargeback threatened']);
    assert.deepEqual(await run.titles(`${D}.escalation.acknowledged`, { escalation_id: 'E-1', acknowledged_by: 'bob' }, 7), []);
    assert.deepEqual(await run.titles(`${D}.helpdesk.ticket_resolved`, { ticket_id: 'T-9' }, 8), []);
  });

  it('satisfaction-tracker proposes alerts on a low score and a low average only', async () => {
    assert.deepEqual(await run.titles(`${D}.satisfaction.response_received`, { survey_id: 's1', respondent_id: 'c1', score: 2, comment: 'slow answers' }), ['Low satisfaction score: 2/5']);
    assert.deepEqual(await run.titles(`${D}.satisfaction.response_received`, { survey_id: 's1', respondent_id: 'c2', score: 4 }), []);
    assert.deepEqual(await run.titles(`${D}.satisfaction.response_received`, { survey_id: 's2', respondent_id: 'c3', score: 3, scale: 10 }), ['Low satisfaction score: 3/10']);
    assert.deepEqual(await run.titles(`${D}.satisfaction.score_recorded`, { survey_id: 's1', score: 2.8, responses: 40 }), ['Satisfaction average is low: 2.8/5']);
    assert.deepEqual(await run.titles(`${D}.satisfaction.score_recorded`, { survey_id: 's3', score: 4.2 }), []);
    assert.deepEqual(await run.titles(`${D}.satisfaction.survey_sent`, { survey_id: 's4' }), []);
  });
});

describe('pillar packs on a running node', () => {
  async function withPillarNode(name: PillarName, fn: (node: Awaited<ReturnType<typeof startTestNode>>['node']) => Promise<void>): Promise<void> {
    const t = await startTestNode();
    await installPillar(t.dir, name);
    // The matrix the daemon uses: the runner feeds it the domain.toml's [autonomy] at start.
    const autonomy = new AutonomyMatrix(t.node.ns.store, { globalDefault: 'L3' });
    const runner = createDomainRunner({ dataDir: t.dir }, { node: t.node, logger: silentLogger, clock: systemClock, autonomy, rolesOf: () => undefined });
    t.node.pipeline.replace([...t.node.pipeline.cartridges, runner.stage]);
    try {
      await runner.start();
      await fn(t.node);
    } finally {
      await runner.stop();
      await t.close();
    }
  }

  it('software-development: a failed build emitted to the node becomes a domains.alert notification', async () => {
    await withPillarNode('software-development', async (node) => {
      const alerts = () => node.ns.notifications.list({ eventType: 'domains.alert', limit: 50 }).items;
      // A good build first: the lane runs events in order, so its silence is settled when the failure's alert shows.
      await node.emitMany([{ event: 'domain.software-development.build.completed', payload: { slug: 'search', success: true } }]);
      const [failed] = await node.emitMany([{ event: 'domain.software-development.build.completed', payload: { slug: 'login-form', success: false, error: '3 tests failed' } }]);
      await waitFor(() => alerts().length >= 1, 20_000, 'the build alert');
      const all = alerts();
      assert.equal(all.length, 1, 'one alert: the good build said nothing');
      const n = all[0];
      assert.equal(n?.payload.title, 'Build failed: login-form');
      assert.equal(n?.domain, 'software-development');
      const out = node.ns.log.children(failed?.id as string).map((x) => x.envelope);
      assert.deepEqual(out.map((e) => [e.event, e.source]), [['domains.alert', 'domain:software-development/build-notifier']]);
    });
  });

  it('customer-relations: an urgent ticket becomes an alert held for a human (L1), not an alert', async () => {
    await withPillarNode('customer-relations', async (node) => {
      await node.emitMany([{ event: 'domain.customer-relations.helpdesk.ticket_created', payload: { ticket_id: 'T-1', subject: 'Checkout fails', priority: 'urgent' } }]);
      const pending = () => node.ns.notifications.list({ eventType: 'domains.action.pending', limit: 50 }).items;
      await waitFor(() => pending().length >= 1, 20_000, 'the held alert');
      const p = pending()[0]?.payload as { cartridge: string; proposed: { event: string; payload: { title: string } } };
      assert.equal(p.cartridge, 'escalation-handler');
      assert.deepEqual([p.proposed.event, p.proposed.payload.title], ['domains.alert', 'Urgent ticket T-1: Checkout fails']);
      assert.equal(node.ns.notifications.list({ eventType: 'domains.alert' }).items.length, 0);
    });
  });
});
