/** The marketing pillar: content lifecycle, campaign budgets, and the signal pipeline's syntheses that matter to marketing. */
import { ValidationError } from '../errors/index.js';
import type { PillarPack, PillarPackInit } from './pack.js';
import { starterCartridge, starterManifest } from './pack.js';

const D = 'domain.marketing';

/** Words the feed monitor looks for when none are given. */
export const DEFAULT_MARKETING_KEYWORDS: readonly string[] = ['marketing', 'brand', 'campaign', 'competitor', 'pricing', 'launch', 'advertising', 'seo', 'social media'];

/** Syntheses below this confidence are not surfaced. */
export const FEED_MIN_CONFIDENCE = 0.7;

const KEYWORD = /^[\p{L}\p{N}][\p{L}\p{N} ._+#-]{0,63}$/u;

const contentPipeline = starterCartridge(
  starterManifest({
    name: 'content-pipeline',
    description: 'Follows content from brief to publication: alerts when a draft waits for review, and when it is published',
    consumes: [`${D}.content.*`],
    emits: ['domains.alert'],
  }),
  `
var PREFIX = '${D}.content.';
var titles = memory(2000);

function process(event, ctx) {
  var p = event.payload || {};
  var kind = event.event.slice(PREFIX.length);
  var id = str(p.content_id, 150);
  if (!id) return event;
  if (p.title) titles.set(id, str(p.title, 300));
  var title = titles.get(id) || id;
  if (kind === 'draft_ready') {
    alert(ctx, { title: 'Draft ready for review: ' + title, body: lines([p.author ? 'by ' + str(p.author, 200) : '', p.version ? 'version ' + str(p.version, 50) : '']), key: alertKey('content', id), tags: ['content', 'draft'], url: p.url });
  } else if (kind === 'published') {
    alert(ctx, { title: 'Published: ' + title, body: p.channel ? 'on ' + str(p.channel, 100) : 'published', key: alertKey('content', id), tags: ['content', 'published'], url: p.url });
    titles.del(id);
  }
  return event;
}
`,
);

const budgetMonitor = starterCartridge(
  starterManifest({
    name: 'campaign-budget-monitor',
    description: "Alerts when a campaign's spend passes the threshold its payload sets (default 80% of the budget), again past 100%, and on every budget_threshold_hit",
    consumes: [`${D}.campaign.*`],
    emits: ['domains.alert'],
  }),
  `
var PREFIX = '${D}.campaign.';
var DEFAULT_ALERT_AT = 0.8;
// campaign id -> { name, budget, alertAt, currency, level }: level 0 fine, 1 past the threshold, 2 over budget.
var campaigns = memory(2000);

function money(v, currency) {
  var n = num(v);
  return isNaN(n) ? '?' : (Math.round(n * 100) / 100) + (currency ? ' ' + currency : '');
}

function process(event, ctx) {
  var p = event.payload || {};
  var kind = event.event.slice(PREFIX.length);
  var id = str(p.campaign_id, 150);
  if (!id) return event;
  var c = campaigns.get(id) || { name: id, budget: NaN, alertAt: DEFAULT_ALERT_AT, currency: '', level: 0 };
  if (p.name) c.name = str(p.name, 300);
  if (!isNaN(num(p.budget))) c.budget = num(p.budget);
  if (!isNaN(num(p.alert_at)) && num(p.alert_at) > 0) c.alertAt = num(p.alert_at);
  if (p.currency) c.currency = str(p.currency, 10);
  campaigns.set(id, c);
  if (kind === 'ended') {
    campaigns.del(id);
  } else if (kind === 'spend_reported') {
    var spent = num(p.spent);
    if (isNaN(spent) || !(c.budget > 0)) return event;
    var ratio = spent / c.budget;
    var level = ratio >= 1 ? 2 : ratio >= c.alertAt ? 1 : 0;
    if (level > c.level) {
      alert(ctx, {
        title: (level === 2 ? 'Over budget: ' : 'Budget threshold passed: ') + c.name + ' (' + Math.round(ratio * 100) + '% of budget)',
        body: 'spent ' + money(spent, c.currency) + ' of ' + money(c.budget, c.currency) + '; alerts at ' + Math.round(c.alertAt * 100) + '%',
        key: alertKey('budget', id),
        tags: ['campaign', 'budget', level === 2 ? 'over' : 'threshold'],
      });
    }
    c.level = Math.max(c.level, level);
  } else if (kind === 'budget_threshold_hit') {
    var budget = !isNaN(num(p.budget)) ? num(p.budget) : c.budget;
    var pct = budget > 0 && !isNaN(num(p.spent)) ? ' (' + Math.round((num(p.spent) / budget) * 100) + '% of budget)' : '';
    alert(ctx, {
      title: 'Budget threshold hit: ' + c.name + pct,
      body: lines(['spent ' + money(p.spent, c.currency) + (budget > 0 ? ' of ' + money(budget, c.currency) : ''), 'threshold ' + str(p.threshold, 50)]),
      key: alertKey('budget', id),
      tags: ['campaign', 'budget', 'threshold'],
    });
  }
  return event;
}
`,
);

function feedMonitor(keywords: readonly string[]) {
  return starterCartridge(
    starterManifest({
      name: 'feed-monitor',
      description: 'Surfaces signal-pipeline syntheses (signal.synthesis.ready) of high confidence that are tagged with, or titled by, one of its keywords',
      consumes: ['signal.synthesis.ready'],
      emits: ['domains.alert'],
    }),
    `
// Edit these, then: weft domains reload
var KEYWORDS = ${JSON.stringify(keywords.map((k) => k.toLowerCase()))};
var MIN_CONFIDENCE = ${FEED_MIN_CONFIDENCE};

function words(s) {
  return ' ' + str(s, 2000).toLowerCase().replace(/[^\\p{L}\\p{N}]+/gu, ' ') + ' ';
}

function process(event, ctx) {
  var p = event.payload || {};
  var syn = p.synthesis || {};
  var confidence = num(syn.confidence);
  if (isNaN(confidence) || confidence < MIN_CONFIDENCE) return event;
  var tags = (Array.isArray(p.tags) ? p.tags : []).map(function (t) { return str(t, 64).toLowerCase(); });
  var title = str(p.title, 300) || str((syn.key_points || [])[0], 300) || 'a new synthesis';
  var text = words(title);
  var hits = KEYWORDS.filter(function (k) { return tags.indexOf(k) >= 0 || text.indexOf(' ' + words(k).trim() + ' ') >= 0; });
  if (hits.length === 0) return event;
  var sources = (Array.isArray(syn.sources) ? syn.sources : []).slice(0, 10);
  var points = (Array.isArray(syn.key_points) ? syn.key_points : []).slice(0, 8).map(function (k) { return '- ' + str(k, 500); });
  alert(ctx, {
    title: 'Signal: ' + title,
    body: lines([str(syn.summary, 3000), points.join('\\n'), sources.map(function (s) { return str(s && (s.title || s.url), 300); }).filter(Boolean).join('\\n'), 'confidence ' + Math.round(confidence * 100) + '%, matched: ' + hits.join(', ')]),
    key: alertKey('signal', p.cluster_id || title),
    tags: ['signal'].concat(hits),
    url: sources[0] && sources[0].url,
  });
  return event;
}
`,
  );
}

const TOML = `# The marketing pillar (weft init --pillar marketing). docs/pillars.md explains it.
description = "content from brief to publication, campaign budgets, and the signals that matter to marketing"
enabled = true

emits = ["domains.alert", "domain.marketing.*"]

timeout_ms = 1000
max_parallel = 2

# Its own types (envelope domain marketing), and the signal pipeline's syntheses.
[subscribe]
domains = ["marketing"]
events = ["signal.synthesis.ready"]

# A command guardian could judge submissions for content quality and budget rules, e.g.
#   "flag budget overruns and stalled content pipelines; refuse cartridges that spend money"
[guardian]
rules = true
# command = "my-guardian --domain marketing"
timeout_ms = 10000

[autonomy]
level = "L3"
[autonomy.cartridges]
[autonomy.events]
`;

const README = `# marketing (a Weft pillar)

Content from brief to publication, campaign budgets, and the signals that matter to marketing.

| cartridge | consumes | alerts when |
|---|---|---|
| content-pipeline | domain.marketing.content.* | a draft is ready for review; it is published (one notification per piece) |
| campaign-budget-monitor | domain.marketing.campaign.* | \`campaign.spend_reported\` passes the campaign's \`alert_at\` (default 0.8 of the budget; the budget and threshold come from the payload or the launch), again past 100%; every \`campaign.budget_threshold_hit\` |
| feed-monitor | signal.synthesis.ready | a synthesis of confidence ≥ ${FEED_MIN_CONFIDENCE} is tagged with (or titled by) one of its keywords |

The feed monitor composes the signal pipeline (feeds → \`signal.ingest.received\` → clusters →
\`signal.synthesis.ready\`; docs/signals.md): give the pipeline the feeds you follow
(\`[[signals.sources]]\` in the config), then edit \`KEYWORDS\` at
the top of \`cartridges/feed-monitor/cartridge.js\` and run \`weft domains reload\`.
`;

/**
 * The marketing pillar pack.
 * @throws {ValidationError} when a keyword is not 1–64 letters, digits, spaces or `._+#-`.
 */
export function marketingPack(init: PillarPackInit = {}): PillarPack {
  const keywords = init.keywords ?? DEFAULT_MARKETING_KEYWORDS;
  if (keywords.length === 0 || keywords.length > 100) throw new ValidationError('keywords: give 1 to 100 keywords', { field: 'keywords' });
  for (const k of keywords) {
    if (typeof k !== 'string' || !KEYWORD.test(k)) {
      throw new ValidationError(`keyword ${JSON.stringify(k)}: 1-64 letters, digits, spaces or ._+#-, starting with a letter or digit`, { field: 'keywords' });
    }
  }
  return {
    name: 'marketing',
    description: 'content lifecycle, campaign budget monitor, and feed monitoring of the signal pipeline for its keywords',
    eventTypes: [`${D}.*`, 'signal.synthesis.ready'],
    domainToml: TOML,
    cartridges: [contentPipeline, budgetMonitor, feedMonitor(keywords)],
    readme: README,
  };
}
