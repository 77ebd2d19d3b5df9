/** The software-development pillar: build, review, deploy and incident lifecycles that tell the team what needs them. */
import type { PillarPack } from './pack.js';
import { starterCartridge, starterManifest } from './pack.js';

const D = 'domain.software-development';

const buildNotifier = starterCartridge(
  starterManifest({
    name: 'build-notifier',
    description: 'Alerts on a failed build of a work item, and once more when it passes again',
    consumes: [`${D}.build.*`],
    emits: ['domains.alert'],
  }),
  `
var PREFIX = '${D}.build.';
var FAILED = /^(fail|failed|failure|error|errored|broken|red)$/i;
var failing = memory(1000);

function process(event, ctx) {
  var p = event.payload || {};
  if (event.event !== PREFIX + 'completed') return event;
  var slug = str(p.slug, 180) || 'unknown';
  var failed = p.success === false || FAILED.test(str(p.status, 20));
  if (failed) {
    failing.set(slug, true);
    alert(ctx, {
      title: 'Build failed: ' + slug,
      body: lines([str(p.error, 4000) || 'the build of ' + slug + ' failed', p.branch ? 'branch ' + str(p.branch, 300) : '', p.sha ? 'commit ' + str(p.sha, 64).slice(0, 12) : '']),
      key: alertKey('build', slug),
      tags: ['build', 'failed'],
      url: p.url,
    });
  } else if (failing.has(slug)) {
    failing.del(slug);
    alert(ctx, { title: 'Build fixed: ' + slug, body: 'the build of ' + slug + ' passes again', key: alertKey('build', slug), tags: ['build', 'fixed'], url: p.url });
  }
  return event;
}
`,
);

const reviewReminder = starterCartridge(
  starterManifest({
    name: 'review-reminder',
    description: 'Alerts when a review waits for a human decision or asks for changes, and reminds once when the decision is still open hours later',
    consumes: [`${D}.review.*`],
    emits: ['domains.alert'],
  }),
  `
var PREFIX = '${D}.review.';
// Remind once when a decision has waited this long (by the events' own timestamps).
var REMIND_AFTER_HOURS = 4;
var CHANGES = /change|reject|needs[ _]?work|fail/i;
var waiting = memory(500);

function remind(event, ctx, except) {
  waiting.keys().forEach(function (slug) {
    var w = waiting.get(slug);
    if (slug === except || w.reminded || hoursBetween(w.since, event.timestamp) < REMIND_AFTER_HOURS) return;
    w.reminded = true;
    alert(ctx, {
      title: 'Still waiting for a review decision: ' + slug,
      body: lines([w.question, 'waiting since ' + w.since]),
      key: alertKey('review', slug),
      tags: ['review', 'waiting', 'reminder'],
    });
  });
}

function process(event, ctx) {
  var p = event.payload || {};
  var kind = event.event.slice(PREFIX.length);
  var slug = str(p.slug, 180);
  if (slug && kind === 'needs_decision') {
    var question = str(p.question, 2000);
    waiting.set(slug, { since: event.timestamp, question: question, reminded: false });
    alert(ctx, { title: 'Review waits for your decision: ' + slug, body: lines([question, p.round !== undefined ? 'review round ' + str(p.round, 10) : '']), key: alertKey('review', slug), tags: ['review', 'waiting'] });
  } else if (slug && kind === 'verdict_ready' && CHANGES.test(str(p.verdict, 100))) {
    waiting.del(slug);
    alert(ctx, { title: 'Changes requested: ' + slug, body: lines(['verdict: ' + str(p.verdict, 100), p.round !== undefined ? 'review round ' + str(p.round, 10) : '']), key: alertKey('review', slug), tags: ['review', 'changes'] });
  } else if (slug && (kind === 'approved' || kind === 'verdict_ready') && waiting.has(slug)) {
    waiting.del(slug);
    alert(ctx, { title: 'Review decided: ' + slug, body: kind === 'approved' ? 'approved' : 'verdict: ' + str(p.verdict, 100), key: alertKey('review', slug), tags: ['review', 'decided'] });
  }
  remind(event, ctx, slug);
  return event;
}
`,
);

const deployTracker = starterCartridge(
  starterManifest({
    name: 'deploy-tracker',
    description: 'Alerts on a failed deploy or a blocked integration, and once more when it recovers',
    consumes: [`${D}.deploy.*`, `${D}.deployment.*`],
    emits: ['domains.alert'],
  }),
  `
var failing = memory(1000);

function process(event, ctx) {
  var p = event.payload || {};
  var slug = str(p.slug, 120) || 'unknown';
  var env = str(p.environment, 60);
  var kind = event.event.slice('${D}.'.length);
  if (kind === 'deploy.failed') {
    var key = alertKey('deploy', slug + (env ? '@' + env : ''));
    failing.set(key, true);
    alert(ctx, { title: 'Deploy failed: ' + slug + (env ? ' to ' + env : ''), body: lines([str(p.error, 4000), p.sha ? 'commit ' + str(p.sha, 64).slice(0, 12) : '']) || 'the deploy failed', key: key, tags: ['deploy', 'failed', env], url: p.url });
  } else if (kind === 'deploy.succeeded') {
    var k = alertKey('deploy', slug + (env ? '@' + env : ''));
    if (failing.has(k)) {
      failing.del(k);
      alert(ctx, { title: 'Deploy recovered: ' + slug + (env ? ' to ' + env : ''), body: 'the deploy succeeded', key: k, tags: ['deploy', 'recovered', env], url: p.url });
    }
  } else if (kind === 'deployment.failed') {
    var ik = alertKey('integration', slug);
    failing.set(ik, true);
    var evidence = [].concat(p.diagnostics || [], p.conflict_evidence || []).slice(0, 20).map(function (x) { return '- ' + str(x, 300); });
    alert(ctx, { title: 'Integration blocked: ' + slug, body: lines([p.next_action ? 'next: ' + str(p.next_action, 1000) : '', evidence.join('\\n'), p.branch ? 'branch ' + str(p.branch, 300) : '']) || 'integration is blocked', key: ik, tags: ['integration', 'blocked'] });
  } else if (kind === 'deployment.completed' && failing.has(alertKey('integration', slug))) {
    failing.del(alertKey('integration', slug));
    alert(ctx, { title: 'Integrated: ' + slug, body: 'merged' + (p.merge_commit ? ' as ' + str(p.merge_commit, 64).slice(0, 12) : ''), key: alertKey('integration', slug), tags: ['integration', 'done'] });
  }
  return event;
}
`,
);

const incidentTracker = starterCartridge(
  starterManifest({
    name: 'incident-tracker',
    description: 'Alerts when an incident opens (and when it is resolved) and on critical operational alerts',
    consumes: [`${D}.incident.*`, `${D}.ops.*`],
    emits: ['domains.alert'],
  }),
  `
var CRITICAL = /^(critical|sev[ -]?[01]|p[01]|emergency|page)$/i;
var open = memory(1000);

function process(event, ctx) {
  var p = event.payload || {};
  var kind = event.event.slice('${D}.'.length);
  if (kind === 'incident.opened') {
    var id = str(p.incident_id, 150);
    var title = str(p.title, 300) || id;
    open.set(id, title);
    alert(ctx, {
      title: 'Incident opened: ' + title + (p.severity ? ' (' + str(p.severity, 30) + ')' : ''),
      body: lines([p.service ? 'service ' + str(p.service, 200) : '', p.commander ? 'commander ' + str(p.commander, 200) : '', 'incident ' + id]),
      key: alertKey('incident', id),
      tags: ['incident', 'opened', str(p.severity, 30)],
      url: p.url,
    });
  } else if (kind === 'incident.resolved' && open.has(str(p.incident_id, 150))) {
    var rid = str(p.incident_id, 150);
    alert(ctx, { title: 'Incident resolved: ' + open.get(rid), body: str(p.resolution, 4000) || 'resolved', key: alertKey('incident', rid), tags: ['incident', 'resolved'] });
    open.del(rid);
  } else if (kind === 'ops.alert_fired' && CRITICAL.test(str(p.severity, 30))) {
    alert(ctx, { title: 'Critical alert: ' + (str(p.title, 300) || str(p.alert_id, 150)), body: lines([p.service ? 'service ' + str(p.service, 200) : '', 'alert ' + str(p.alert_id, 150)]), key: alertKey('ops', p.alert_id), tags: ['ops', 'critical'], url: p.url });
  }
  return event;
}
`,
);

const TOML = `# The software-development pillar (weft init --pillar software-development). docs/pillars.md explains it.
description = "builds, reviews, deploys and incidents: alerts when something needs the team"
enabled = true

# What its cartridges may emit: alerts, and the domain's own types.
emits = ["domains.alert", "domain.software-development.*"]

timeout_ms = 1000
max_parallel = 2       # four small cartridges share two sandbox processes

# Events whose envelope domain is software-development: the catalog's default for every
# domain.software-development.* type (todos, builds, reviews, deploys, incidents).
[subscribe]
domains = ["software-development"]
events = []

# Cartridges submitted later (weft domains install software-development ./pkg) are judged by
# the built-in rules; a command guardian can judge them too, e.g. an AI that knows the team:
#   "monitor todo lifecycle, build health and deployment patterns; refuse cartridges that
#    act on production without a human"
[guardian]
rules = true
# command = "my-guardian --domain software-development"
timeout_ms = 10000

# Alerts are the only action of the starter cartridges: they go out at once (L3).
[autonomy]
level = "L3"
[autonomy.cartridges]
[autonomy.events]
`;

const README = `# software-development (a Weft pillar)

Builds, reviews, deploys and incidents: the cartridges here alert the people of this domain
(\`weft notifications list --type domains.alert\`) when something needs them.

| cartridge | consumes | alerts when |
|---|---|---|
| build-notifier | domain.software-development.build.* | a build fails (\`build.completed\` with \`success: false\`), and once when it passes again |
| review-reminder | domain.software-development.review.* | a review needs a decision or asks for changes; once more when the decision is still open 4 hours later |
| deploy-tracker | domain.software-development.deploy.*, deployment.* | a deploy fails or an integration is blocked, and when it recovers |
| incident-tracker | domain.software-development.incident.*, ops.* | an incident opens (and is resolved); an ops alert is critical |

Every event type of the pillar is in the catalog (\`weft schemas list\`), under TeleClaude's names.
Alerts with one key (\`build:<slug>\`, \`incident:<id>\`, ...) are one notification that updates.

Change a cartridge: edit its \`cartridge.js\`, then \`weft domains reload\`. Settings: domain.toml.
`;

/** The software-development pillar pack. */
export function softwareDevelopmentPack(): PillarPack {
  return {
    name: 'software-development',
    description: 'builds, reviews, deploys and incidents: alerts on a failed build, an opened incident, a review waiting for a decision',
    eventTypes: [`${D}.*`],
    domainToml: TOML,
    cartridges: [buildNotifier, reviewReminder, deployTracker, incidentTracker],
    readme: README,
  };
}
