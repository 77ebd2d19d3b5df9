/** The creative-production pillar: the asset lifecycle brief → draft → review → approval → delivery, and who it waits for. */
import type { PillarPack } from './pack.js';
import { starterCartridge, starterManifest } from './pack.js';

const D = 'domain.creative-production';

/** An asset waiting for approval with no deadline is overdue after this many hours. */
export const APPROVAL_SLA_HOURS = 48;

const assetLifecycle = starterCartridge(
  starterManifest({
    name: 'asset-lifecycle',
    description: 'Tracks each asset through brief, draft, review, revision, approval and delivery; writes stage and previous_stage for the cartridges after it; alerts on a failed transcode',
    consumes: [`${D}.asset.*`, `${D}.format.*`],
    emits: ['domains.alert'],
    outputs: ['stage', 'previous_stage', 'asset_title'],
  }),
  `
var STAGES = { brief_created: 'brief', draft_submitted: 'draft', review_requested: 'review', revision_requested: 'revision', approved: 'approved', delivered: 'delivered' };
var assets = memory(5000);

function process(event, ctx) {
  var p = event.payload || {};
  var id = str(p.asset_id, 150);
  if (!id) return event;
  var kind = event.event.slice('${D}.'.length);
  var a = assets.get(id) || { stage: 'none', title: '' };
  if (p.title) a.title = str(p.title, 300);
  if (kind === 'format.transcode_failed') {
    alert(ctx, {
      title: 'Transcode failed: ' + (a.title || id) + ' (' + str(p.format, 50) + ')',
      body: str(p.error, 4000) || 'the transcode to ' + str(p.format, 50) + ' failed',
      key: alertKey('transcode', id + '/' + str(p.format, 50)),
      tags: ['asset', 'transcode', 'failed'],
    });
    assets.set(id, a);
    return event;
  }
  var stage = STAGES[kind.slice('asset.'.length)];
  if (!stage) return event;
  event.payload.previous_stage = a.stage;
  event.payload.stage = stage;
  event.payload.asset_title = a.title || id;
  a.stage = stage;
  if (stage === 'delivered') assets.del(id);
  else assets.set(id, a);
  return event;
}
`,
);

const reviewGatekeeper = starterCartridge(
  starterManifest({
    name: 'review-gatekeeper',
    description: 'Alerts when an asset waits for approval, when the approval is overdue, when it is approved or sent back, and when an asset is delivered without approval',
    consumes: [`${D}.asset.*`],
    emits: ['domains.alert'],
    dependencies: ['asset-lifecycle'],
  }),
  `
// Overdue after the deadline in the review request, or this long after it without one.
var APPROVAL_SLA_HOURS = ${APPROVAL_SLA_HOURS};
var waiting = memory(2000);

function overdue(event, ctx) {
  waiting.keys().forEach(function (id) {
    var w = waiting.get(id);
    if (w.reminded) return;
    var late = w.deadline ? hoursBetween(w.deadline, event.timestamp) > 0 : hoursBetween(w.since, event.timestamp) >= APPROVAL_SLA_HOURS;
    if (!late) return;
    w.reminded = true;
    alert(ctx, {
      title: 'Approval overdue: ' + w.title,
      body: lines([w.reviewer ? 'waiting for ' + w.reviewer : '', w.deadline ? 'deadline was ' + w.deadline : 'waiting since ' + w.since]),
      key: alertKey('approval', id),
      tags: ['asset', 'approval', 'overdue'],
    });
  });
}

function process(event, ctx) {
  var p = event.payload || {};
  var id = str(p.asset_id, 150);
  var title = str(p.asset_title, 300) || id;
  var key = alertKey('approval', id);
  if (id && p.stage === 'review') {
    var w = { title: title, since: event.timestamp, deadline: str(p.deadline, 64), reviewer: str(p.reviewer, 200), reminded: false };
    waiting.set(id, w);
    alert(ctx, {
      title: 'Waiting for approval: ' + title,
      body: lines([w.reviewer ? 'reviewer ' + w.reviewer : 'no reviewer named yet', w.deadline ? 'wanted by ' + w.deadline : '']),
      key: key,
      tags: ['asset', 'approval', 'waiting'],
      url: p.url,
    });
  } else if (id && p.stage === 'approved' && waiting.has(id)) {
    waiting.del(id);
    alert(ctx, { title: 'Approved: ' + title, body: p.approved_by ? 'by ' + str(p.approved_by, 200) : 'approved', key: key, tags: ['asset', 'approval', 'approved'] });
  } else if (id && p.stage === 'revision' && waiting.has(id)) {
    waiting.del(id);
    alert(ctx, { title: 'Revisions requested: ' + title, body: str(p.feedback, 4000) || 'see the review', key: key, tags: ['asset', 'approval', 'revision'] });
  } else if (id && p.stage === 'delivered' && p.previous_stage !== 'approved' && p.previous_stage !== 'none') {
    waiting.del(id);
    alert(ctx, { title: 'Delivered without approval: ' + title, body: 'it was at ' + str(p.previous_stage, 20) + ' when it was delivered', key: key, tags: ['asset', 'approval', 'skipped'] });
  }
  overdue(event, ctx);
  return event;
}
`,
);

const TOML = `# The creative-production pillar (weft init --pillar creative-production). docs/pillars.md explains it.
description = "assets from brief to delivery: who they wait for, and what went wrong"
enabled = true

emits = ["domains.alert", "domain.creative-production.*"]

timeout_ms = 1000
max_parallel = 2

[subscribe]
domains = ["creative-production"]
events = []

# A command guardian could hold submissions to the studio's norms, e.g.
#   "asset quality standards, review cycle norms, multi-format delivery"
[guardian]
rules = true
# command = "my-guardian --domain creative-production"
timeout_ms = 10000

[autonomy]
level = "L3"
[autonomy.cartridges]
[autonomy.events]
`;

const README = `# creative-production (a Weft pillar)

Assets from brief to delivery: brief → draft → review → approval → delivery.

| cartridge | consumes | does |
|---|---|---|
| asset-lifecycle | domain.creative-production.asset.*, format.* | tracks each asset's stage and writes \`stage\`, \`previous_stage\` and \`asset_title\` for the cartridge after it; alerts on a failed transcode |
| review-gatekeeper (after asset-lifecycle) | domain.creative-production.asset.* | alerts when an asset waits for approval; once when the approval is overdue (past the request's \`deadline\`, or ${APPROVAL_SLA_HOURS} h without one); when it is approved or sent back; when an asset is delivered without approval |

One asset's approval alerts share the key \`approval:<asset_id>\`: one notification that updates.
`;

/** The creative-production pillar pack. */
export function creativeProductionPack(): PillarPack {
  return {
    name: 'creative-production',
    description: 'asset lifecycle brief → draft → review → approval → delivery, alerting when an asset waits for approval',
    eventTypes: [`${D}.*`],
    domainToml: TOML,
    cartridges: [assetLifecycle, reviewGatekeeper],
    readme: README,
  };
}
