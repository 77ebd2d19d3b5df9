/**
 * The four business pillars' event types, and the content and deployment lifecycles, under
 * TeleClaude's names and payload fields (InstruktAI/TeleClaude `teleclaude/events/schemas/`:
 * software_development, marketing, creative_production, customer_relations, content, deployment)
 * so its producers publish to Weft unchanged. TeleClaude declares names, levels and lifecycles
 * but no payload schemas: the fields here are the ones its producers send (orchestrator and
 * prepare emitters, cartridges, tests), the rest optional, and every payload keeps fields we do
 * not name (`additionalProperties`), so a producer that sends more is never refused.
 *
 * Where TeleClaude's lifecycle is weak we do better, and say so on the type:
 * - a type that opens a lifecycle also declares its group key, so the updates and the resolve
 *   that follow find its notification (TeleClaude's `creates` types have none);
 * - idempotency fields are widened where TeleClaude's would drop a legitimate repeat (a second
 *   update of one ticket, a second build of one work item);
 * - a finished build or transcode does not resolve the work item's or the asset's notification.
 *
 * Weft's own additions, marked "(Weft)", fill lifecycle steps TeleClaude has no type for:
 * `build.started`, the `incident.*` lifecycle, and `campaign.spend_reported`.
 */
import { type TProperties, Type } from '@sinclair/typebox';
import type { Catalog, EventTypeDefinition } from '../catalog.js';

const SD = 'domain.software-development';
const MK = 'domain.marketing';
const CP = 'domain.creative-production';
const CR = 'domain.customer-relations';

/** A payload object that keeps the fields we do not name. */
const open = (props: TProperties) => Type.Object(props, { additionalProperties: true });
const id = (description: string) => Type.String({ minLength: 1, maxLength: 200, description });
const text = (max: number, description?: string) => Type.String({ maxLength: max, ...(description ? { description } : {}) });
const time = (description: string) => Type.String({ maxLength: 64, description: `${description} (ISO 8601)` });
const strings = (description: string) => Type.Array(Type.String({ maxLength: 2000 }), { maxItems: 500, description });
const num = (description: string) => Type.Number({ description });
const opt = Type.Optional;
const slug = id('the work item (todo) slug');

type Def = Omit<EventTypeDefinition, 'domain'>;

function registerAll(catalog: Catalog, domain: string, defs: readonly Def[]): void {
  for (const d of defs) catalog.register({ ...d, domain });
}

/** Software development beyond the todo types of software-development.ts: planning, prepare, build, review, deploy, integration, ops, incidents, maintenance. */
export function registerSoftwareDevelopmentPillarTypes(catalog: Catalog): void {
  const prepare = (name: string, description: string, extra: TProperties = {}, def: Partial<Def> = {}): Def => ({
    type: `${SD}.prepare.${name}`,
    description,
    defaultLevel: 'workflow',
    payload: open({ slug, ...extra }),
    idempotencyFields: ['slug'],
    lifecycle: { updates: true, groupKey: 'slug', meaningfulFields: ['slug'] },
    ...def,
  });
  registerAll(catalog, 'software-development', [
    // --- planning (TeleClaude's todo_created and dor_assessed are aliases of our todo.* types) ---
    {
      type: `${SD}.planning.todo_dumped`,
      description: 'A brain dump was captured for a work item (telec todo dump)',
      defaultLevel: 'workflow',
      payload: open({ slug, title: opt(text(500)), content: opt(text(20_000)) }),
      idempotencyFields: ['slug'],
      lifecycle: { creates: true, updates: true, groupKey: 'slug', meaningfulFields: ['slug'] },
    },
    {
      type: `${SD}.planning.todo_activated`,
      description: 'A work item moved to active state',
      defaultLevel: 'workflow',
      payload: open({ slug, phase: opt(text(100, 'the phase it entered')) }),
      idempotencyFields: ['slug'],
      lifecycle: { updates: true, groupKey: 'slug', meaningfulFields: ['slug', 'phase'] },
    },
    {
      type: `${SD}.planning.artifact_changed`,
      description: 'A planning artifact was modified',
      defaultLevel: 'operational',
      payload: open({ slug, artifact: text(500, 'file name, e.g. requirements.md'), changed_at: opt(time('when')) }),
      idempotencyFields: ['slug', 'artifact', 'changed_at'],
      lifecycle: { updates: true, groupKey: 'slug', silentFields: ['artifact', 'changed_at'] },
    },
    {
      type: `${SD}.planning.dependency_resolved`,
      description: 'A work item dependency was resolved',
      defaultLevel: 'workflow',
      payload: open({ slug, dependency: text(200), resolved_at: opt(time('when')) }),
      idempotencyFields: ['slug', 'dependency'],
      lifecycle: { updates: true, groupKey: 'slug', meaningfulFields: ['dependency', 'resolved_at'] },
    },
    // --- prepare (TeleClaude's prepare state machine) ---
    prepare('input_refined', 'Human thinking was captured or updated in input.md'),
    prepare('discovery_started', 'Requirements discovery phase dispatched'),
    prepare('requirements_drafted', 'Requirements derived from triangulation'),
    prepare('requirements_approved', 'Requirements reviewed and approved, ready for plan drafting'),
    prepare('plan_drafted', 'Implementation plan drafted from approved requirements'),
    prepare('plan_approved', 'Implementation plan reviewed and approved'),
    prepare(
      'grounding_invalidated',
      'Preparation artifacts invalidated due to drift',
      { reason: text(500), changed_paths: opt(strings('changed files that overlap the grounding')) },
      { defaultLevel: 'operational', idempotencyFields: ['slug', 'reason'], lifecycle: { updates: true, groupKey: 'slug', meaningfulFields: ['reason', 'changed_paths'] } },
    ),
    prepare('regrounded', 'Preparation artifacts updated against current truth'),
    prepare('completed', 'Preparation complete, todo ready for build', {}, { lifecycle: { resolves: true, groupKey: 'slug' } }),
    prepare(
      'blocked',
      'Preparation blocked, requires human decision',
      { blocker: opt(text(4000)) },
      { defaultLevel: 'business', actionable: true, lifecycle: { updates: true, groupKey: 'slug', meaningfulFields: ['blocker'] } },
    ),
    // Observation events of the prepare machine: logged, no notification.
    prepare('phase_skipped', 'A prepare phase was skipped (inherited from a parent todo)', { phase: text(100), reason: opt(text(500)) }, { defaultLevel: 'operational', idempotencyFields: ['slug', 'phase'], lifecycle: undefined }),
    prepare('input_consumed', 'input.md was read by a prepare phase', { phase: opt(text(100)), digest: opt(text(128)) }, { defaultLevel: 'operational', idempotencyFields: ['slug', 'phase', 'digest'], lifecycle: undefined }),
    prepare('artifact_produced', 'A preparation artifact was produced', { artifact: text(500), digest: opt(text(128)) }, { defaultLevel: 'operational', idempotencyFields: ['slug', 'artifact', 'digest'], lifecycle: undefined }),
    prepare('artifact_invalidated', 'A preparation artifact went stale', { artifact: opt(text(500)), reason: opt(text(500)) }, { defaultLevel: 'operational', idempotencyFields: ['slug', 'artifact', 'reason'], lifecycle: undefined }),
    prepare(
      'finding_recorded',
      'A review of a preparation artifact recorded a finding',
      { review_type: text(100), severity: opt(text(50)), summary: opt(text(4000)) },
      { defaultLevel: 'operational', idempotencyFields: ['slug', 'review_type', 'summary'], lifecycle: undefined },
    ),
    prepare(
      'finding_resolved',
      'A finding of a preparation review was resolved',
      { review_type: text(100), finding_id: text(200), resolution_method: opt(text(200)) },
      { defaultLevel: 'operational', idempotencyFields: ['slug', 'review_type', 'finding_id'], lifecycle: undefined },
    ),
    prepare('review_scoped', 'The scope of a preparation review was set', { review_type: opt(text(100)) }, { defaultLevel: 'operational', idempotencyFields: ['slug', 'review_type'], lifecycle: undefined }),
    {
      type: `${SD}.prepare.split_inherited`,
      description: 'A child todo inherited its parent’s approved preparation',
      defaultLevel: 'operational',
      payload: open({ parent_slug: id('the parent todo'), child_slug: id('the child todo'), inherited_phase: opt(text(100)) }),
      idempotencyFields: ['parent_slug', 'child_slug'],
    },
    // --- build ---
    {
      type: `${SD}.build.started`,
      description: '(Weft) A build of a work item started',
      defaultLevel: 'operational',
      payload: open({ slug, build_id: opt(text(200)), branch: opt(text(300)), sha: opt(text(64)), url: opt(text(2000)) }),
      idempotencyFields: ['slug', 'build_id', 'sha'],
    },
    {
      type: `${SD}.build.completed`,
      description: 'Build phase completed for a work item',
      defaultLevel: 'workflow',
      payload: open({
        slug,
        success: opt(Type.Boolean({ description: 'false when the build failed; absent means it passed' })),
        status: opt(text(50, 'passed, failed, ... (CI producers)')),
        build_id: opt(text(200)),
        branch: opt(text(300)),
        sha: opt(text(64)),
        error: opt(text(10_000, 'why it failed')),
        url: opt(text(2000)),
        duration_ms: opt(Type.Integer({ minimum: 0 })),
      }),
      // TeleClaude keys on the slug alone, which would drop a second build of one work item.
      idempotencyFields: ['slug', 'build_id', 'sha', 'success'],
      // As TeleClaude, a build that completed resolves the work item's notification; a failed
      // one (success false, or a CI status saying so) updates it instead.
      lifecycle: {
        updates: true,
        groupKey: 'slug',
        meaningfulFields: ['success', 'status'],
        resolvesUnless: { success: [false], status: ['failed', 'failure', 'error', 'errored', 'cancelled', 'canceled', 'timed_out'] },
      },
    },
    // --- review ---
    {
      type: `${SD}.review.verdict_ready`,
      description: 'Code review verdict is ready',
      defaultLevel: 'workflow',
      payload: open({ slug, round: opt(Type.Integer({ minimum: 0 })), verdict: text(100, 'APPROVE, REQUEST CHANGES, ...'), reviewer: opt(text(200)), findings: opt(Type.Unknown()) }),
      idempotencyFields: ['slug', 'round'],
      lifecycle: { updates: true, groupKey: 'slug', meaningfulFields: ['verdict', 'round'] },
    },
    {
      type: `${SD}.review.needs_decision`,
      description: 'Review requires a human decision before proceeding',
      defaultLevel: 'business',
      payload: open({ slug, round: opt(Type.Integer({ minimum: 0 })), question: text(4000), options: opt(strings('the choices offered')) }),
      idempotencyFields: ['slug', 'round'],
      lifecycle: { updates: true, groupKey: 'slug', meaningfulFields: ['question', 'round'] },
      actionable: true,
    },
    {
      type: `${SD}.review.approved`,
      description: 'Review passed, candidate eligible for finalization',
      defaultLevel: 'workflow',
      payload: open({ slug, review_round: opt(Type.Integer({ minimum: 0 })), reviewer_session_id: opt(text(200)), approved_at: opt(time('when')) }),
      idempotencyFields: ['slug', 'review_round'],
      lifecycle: { creates: true, groupKey: 'slug', meaningfulFields: ['approved_at'] },
    },
    // --- deploy ---
    {
      type: `${SD}.deploy.triggered`,
      description: 'Deployment was triggered for a work item',
      defaultLevel: 'workflow',
      payload: open({ slug, environment: text(100), sha: opt(text(64)), version: opt(text(100)), triggered_by: opt(text(200)), url: opt(text(2000)) }),
      idempotencyFields: ['slug', 'environment', 'sha'],
      lifecycle: { creates: true, updates: true, groupKey: 'slug', meaningfulFields: ['slug', 'environment'] },
    },
    {
      type: `${SD}.deploy.succeeded`,
      description: 'Deployment completed successfully',
      defaultLevel: 'workflow',
      payload: open({ slug, environment: text(100), sha: opt(text(64)), version: opt(text(100)), url: opt(text(2000)) }),
      idempotencyFields: ['slug', 'environment', 'sha'],
      lifecycle: { resolves: true, groupKey: 'slug' },
    },
    {
      type: `${SD}.deploy.failed`,
      description: 'Deployment failed and requires attention',
      defaultLevel: 'business',
      payload: open({ slug, environment: text(100), error: opt(text(10_000)), sha: opt(text(64)), url: opt(text(2000)) }),
      idempotencyFields: ['slug', 'environment', 'sha'],
      lifecycle: { updates: true, groupKey: 'slug', meaningfulFields: ['error'] },
      actionable: true,
    },
    // --- integration (TeleClaude's finalizer and integrator) ---
    {
      type: `${SD}.branch.pushed`,
      description: 'Worktree branch pushed to remote, candidate ready for integration',
      defaultLevel: 'workflow',
      payload: open({ branch: id('the branch'), sha: text(64), remote: text(200), pushed_at: opt(time('when')), pusher: opt(text(200)) }),
      idempotencyFields: ['branch', 'sha', 'remote'],
      lifecycle: { creates: true, groupKey: 'branch', meaningfulFields: ['pushed_at'] },
    },
    {
      type: `${SD}.deployment.started`,
      description: 'Finalize ready, candidate queued for integration',
      defaultLevel: 'workflow',
      payload: open({ slug, branch: text(300), sha: text(64), worker_session_id: opt(text(200)), orchestrator_session_id: opt(text(200)), ready_at: opt(time('when')) }),
      idempotencyFields: ['slug', 'branch', 'sha'],
      lifecycle: { creates: true, groupKey: 'slug', meaningfulFields: ['ready_at'] },
    },
    {
      type: `${SD}.deployment.completed`,
      description: 'Integrated to main, delivery bookkeeping done',
      defaultLevel: 'workflow',
      payload: open({ slug, branch: opt(text(300)), sha: opt(text(64)), merge_commit: text(64), integrated_at: opt(time('when')) }),
      idempotencyFields: ['slug', 'merge_commit'],
      lifecycle: { resolves: true, groupKey: 'slug' },
    },
    {
      type: `${SD}.deployment.failed`,
      description: 'Integration blocked, needs attention',
      defaultLevel: 'business',
      payload: open({
        slug,
        branch: text(300),
        sha: text(64),
        conflict_evidence: opt(strings('conflicting files or hunks')),
        diagnostics: opt(strings('what the integrator saw')),
        next_action: opt(text(2000)),
        blocked_at: time('when'),
      }),
      idempotencyFields: ['slug', 'branch', 'sha', 'blocked_at'],
      lifecycle: { updates: true, groupKey: 'slug', meaningfulFields: ['blocked_at'] },
      actionable: true,
    },
    {
      type: `${SD}.integration.started`,
      description: 'The integrator began processing a candidate',
      defaultLevel: 'workflow',
      payload: open({ slug, session_id: opt(text(200)), queue_depth: opt(Type.Integer({ minimum: 0 })) }),
      idempotencyFields: ['slug', 'session_id'],
    },
    {
      type: `${SD}.integration.candidate.delivered`,
      description: 'A candidate was fully integrated into main',
      defaultLevel: 'workflow',
      payload: open({ slug, branch: opt(text(300)), merge_commit_sha: text(64), integrated_at: opt(time('when')) }),
      idempotencyFields: ['slug', 'merge_commit_sha'],
    },
    {
      type: `${SD}.integration.candidate.blocked`,
      description: 'A candidate cannot be integrated',
      defaultLevel: 'business',
      payload: open({ slug, branch: opt(text(300)), sha: opt(text(64)), reason: opt(text(4000)), blocked_at: opt(time('when')) }),
      idempotencyFields: ['slug', 'sha', 'blocked_at'],
      lifecycle: { updates: true, groupKey: 'slug', meaningfulFields: ['reason'] },
    },
    // --- ops and incidents ---
    {
      type: `${SD}.ops.alert_fired`,
      description: 'An operational alert was triggered',
      defaultLevel: 'business',
      payload: open({ alert_id: id('the alert'), severity: text(50, 'critical, high, warning, ...'), title: opt(text(500)), service: opt(text(200)), url: opt(text(2000)) }),
      idempotencyFields: ['alert_id'],
      lifecycle: { creates: true, groupKey: 'alert_id', meaningfulFields: ['alert_id', 'severity'] },
      actionable: true,
    },
    {
      type: `${SD}.ops.alert_resolved`,
      description: 'An operational alert was resolved',
      defaultLevel: 'workflow',
      payload: open({ alert_id: id('the alert'), resolved_at: opt(time('when')) }),
      idempotencyFields: ['alert_id'],
      lifecycle: { resolves: true, groupKey: 'alert_id' },
    },
    {
      type: `${SD}.incident.opened`,
      description: '(Weft) An incident was opened',
      defaultLevel: 'business',
      payload: open({
        incident_id: id('the incident'),
        title: text(500),
        severity: opt(text(50, 'sev1, critical, ...')),
        service: opt(text(200)),
        commander: opt(text(200)),
        url: opt(text(2000)),
        opened_at: opt(time('when')),
      }),
      idempotencyFields: ['incident_id'],
      lifecycle: { creates: true, updates: true, groupKey: 'incident_id', meaningfulFields: ['title', 'severity'] },
    },
    {
      type: `${SD}.incident.updated`,
      description: '(Weft) An incident changed status or severity',
      defaultLevel: 'workflow',
      payload: open({ incident_id: id('the incident'), status: opt(text(100)), severity: opt(text(50)), note: opt(text(4000)), updated_at: opt(time('when')) }),
      idempotencyFields: ['incident_id', 'updated_at', 'status', 'severity'],
      lifecycle: { updates: true, groupKey: 'incident_id', meaningfulFields: ['status', 'severity'] },
    },
    {
      type: `${SD}.incident.resolved`,
      description: '(Weft) An incident was resolved',
      defaultLevel: 'workflow',
      payload: open({ incident_id: id('the incident'), resolution: opt(text(4000)), resolved_at: opt(time('when')) }),
      idempotencyFields: ['incident_id'],
      lifecycle: { resolves: true, groupKey: 'incident_id' },
    },
    // --- maintenance ---
    {
      type: `${SD}.maintenance.dependency_update`,
      description: 'A dependency was updated to a new version',
      defaultLevel: 'operational',
      payload: open({ package: id('the package'), version: text(100), previous_version: opt(text(100)), ecosystem: opt(text(50)) }),
      idempotencyFields: ['package', 'version'],
      lifecycle: { updates: true, groupKey: 'package', meaningfulFields: ['package', 'version'] },
    },
    {
      type: `${SD}.maintenance.security_patch`,
      description: 'A security patch is required for a dependency',
      defaultLevel: 'business',
      payload: open({ advisory_id: id('CVE or advisory id'), severity: text(50), package: opt(text(200)), fixed_version: opt(text(100)), url: opt(text(2000)) }),
      idempotencyFields: ['advisory_id'],
      lifecycle: { creates: true, groupKey: 'advisory_id', meaningfulFields: ['advisory_id', 'severity'] },
      actionable: true,
    },
  ]);
}

/** Marketing: content lifecycle, campaigns and budget, and the feed bridge from the signal pipeline. */
export function registerMarketingTypes(catalog: Catalog): void {
  const contentId = id('the piece of content');
  const campaignId = id('the campaign');
  registerAll(catalog, 'marketing', [
    {
      type: `${MK}.content.brief_created`,
      description: 'A content brief was created, kicking off the content lifecycle',
      defaultLevel: 'workflow',
      payload: open({ content_id: contentId, title: text(500), channel: opt(text(100)), owner: opt(text(200)), due: opt(time('due date')) }),
      idempotencyFields: ['content_id'],
      lifecycle: { creates: true, groupKey: 'content_id', meaningfulFields: ['content_id', 'title'] },
    },
    {
      type: `${MK}.content.draft_ready`,
      description: 'A content draft is ready for review',
      defaultLevel: 'workflow',
      payload: open({ content_id: contentId, title: opt(text(500)), version: opt(text(50)), author: opt(text(200)), url: opt(text(2000)) }),
      idempotencyFields: ['content_id', 'version'],
      lifecycle: { updates: true, groupKey: 'content_id', meaningfulFields: ['title'] },
    },
    {
      type: `${MK}.content.published`,
      description: 'Content was published',
      defaultLevel: 'workflow',
      payload: open({ content_id: contentId, title: opt(text(500)), url: opt(text(2000)), channel: opt(text(100)), published_at: opt(time('when')) }),
      idempotencyFields: ['content_id'],
      lifecycle: { resolves: true, groupKey: 'content_id' },
    },
    {
      type: `${MK}.content.performance_reported`,
      description: 'Content performance metrics were reported',
      defaultLevel: 'operational',
      payload: open({ content_id: contentId, period: text(100, 'e.g. 2026-W07'), metrics: opt(Type.Record(Type.String(), Type.Unknown())) }),
      idempotencyFields: ['content_id', 'period'],
      lifecycle: { updates: true, groupKey: 'content_id', silentFields: ['metrics'] },
    },
    {
      type: `${MK}.campaign.launched`,
      description: 'A marketing campaign was launched',
      defaultLevel: 'workflow',
      payload: open({
        campaign_id: campaignId,
        name: text(500),
        budget: opt(num('total budget')),
        currency: opt(text(10)),
        alert_at: opt(Type.Number({ minimum: 0, maximum: 10, description: 'fraction of the budget past which the budget monitor alerts (default 0.8)' })),
        channel: opt(text(100)),
        starts_at: opt(time('start')),
        ends_at: opt(time('end')),
      }),
      idempotencyFields: ['campaign_id'],
      lifecycle: { creates: true, groupKey: 'campaign_id', meaningfulFields: ['campaign_id', 'name'] },
    },
    {
      type: `${MK}.campaign.spend_reported`,
      description: '(Weft) Spend of a campaign so far; the budget monitor alerts when it passes the threshold',
      defaultLevel: 'operational',
      payload: open({
        campaign_id: campaignId,
        spent: num('spent so far'),
        budget: opt(num('total budget (default: the one the launch said)')),
        alert_at: opt(Type.Number({ minimum: 0, maximum: 10, description: 'fraction of the budget past which to alert (default 0.8)' })),
        currency: opt(text(10)),
        name: opt(text(500)),
      }),
      idempotencyFields: ['campaign_id', 'spent'],
    },
    {
      type: `${MK}.campaign.budget_threshold_hit`,
      description: 'Campaign spend crossed a budget threshold requiring attention',
      defaultLevel: 'business',
      payload: open({ campaign_id: campaignId, spent: num('spent so far'), threshold: num('the threshold crossed'), budget: opt(num('total budget')), currency: opt(text(10)), name: opt(text(500)) }),
      idempotencyFields: ['campaign_id', 'threshold'],
      lifecycle: { updates: true, groupKey: 'campaign_id', meaningfulFields: ['spent', 'threshold'] },
      actionable: true,
    },
    {
      type: `${MK}.campaign.ended`,
      description: 'A marketing campaign ended',
      defaultLevel: 'workflow',
      payload: open({ campaign_id: campaignId, spent: opt(num('final spend')), ended_at: opt(time('when')) }),
      idempotencyFields: ['campaign_id'],
      lifecycle: { resolves: true, groupKey: 'campaign_id' },
    },
    {
      type: `${MK}.campaign.report_ready`,
      description: 'Post-campaign performance report is ready',
      defaultLevel: 'workflow',
      payload: open({ campaign_id: campaignId, report_id: id('the report'), url: opt(text(2000)), summary: opt(text(10_000)) }),
      idempotencyFields: ['campaign_id', 'report_id'],
      lifecycle: { creates: true, meaningfulFields: ['campaign_id', 'report_id'] },
    },
    {
      type: `${MK}.feed.signal_received`,
      description: 'Raw signal input received from the feed monitor',
      defaultLevel: 'operational',
      payload: open({ signal_id: id('the signal'), source_id: opt(text(200)), title: opt(text(500)), url: opt(text(2000)), raw: opt(Type.Unknown()) }),
      idempotencyFields: ['signal_id'],
      lifecycle: { creates: true, silentFields: ['raw'] },
    },
    {
      type: `${MK}.feed.cluster_formed`,
      description: 'Signals were clustered into a topic cluster',
      defaultLevel: 'operational',
      payload: open({ cluster_id: id('the cluster'), topic: opt(text(500)), size: opt(Type.Integer({ minimum: 0 })) }),
      idempotencyFields: ['cluster_id'],
      lifecycle: { creates: true, meaningfulFields: ['cluster_id', 'topic'] },
    },
    {
      type: `${MK}.feed.synthesis_ready`,
      description: 'Signal synthesis output is ready for marketing review',
      defaultLevel: 'workflow',
      payload: open({ synthesis_id: id('the synthesis'), summary: text(10_000), cluster_id: opt(text(200)), confidence: opt(Type.Number({ minimum: 0, maximum: 1 })), sources: opt(Type.Array(Type.Unknown(), { maxItems: 200 })) }),
      idempotencyFields: ['synthesis_id'],
      lifecycle: { creates: true, meaningfulFields: ['synthesis_id', 'summary'] },
      actionable: true,
    },
  ]);
}

/** Creative production: the asset lifecycle brief → draft → review → approval → delivery, and format transcodes. */
export function registerCreativeProductionTypes(catalog: Catalog): void {
  const assetId = id('the asset');
  registerAll(catalog, 'creative-production', [
    {
      type: `${CP}.asset.brief_created`,
      description: 'A creative asset brief was created',
      defaultLevel: 'workflow',
      payload: open({ asset_id: assetId, title: text(500), client: opt(text(200)), formats: opt(strings('deliverable formats')), due: opt(time('due date')) }),
      idempotencyFields: ['asset_id'],
      lifecycle: { creates: true, groupKey: 'asset_id', meaningfulFields: ['asset_id', 'title'] },
    },
    {
      type: `${CP}.asset.draft_submitted`,
      description: 'A creative asset draft was submitted for review',
      defaultLevel: 'workflow',
      payload: open({ asset_id: assetId, title: opt(text(500)), version: opt(text(50)), url: opt(text(2000)), submitted_by: opt(text(200)) }),
      idempotencyFields: ['asset_id', 'version'],
      lifecycle: { updates: true, groupKey: 'asset_id', meaningfulFields: ['title'] },
    },
    {
      type: `${CP}.asset.review_requested`,
      description: 'Review was requested for a creative asset',
      defaultLevel: 'workflow',
      payload: open({ asset_id: assetId, reviewer: opt(text(200)), deadline: opt(time('approval wanted by')), title: opt(text(500)), version: opt(text(50)), url: opt(text(2000)) }),
      idempotencyFields: ['asset_id', 'version'],
      lifecycle: { updates: true, groupKey: 'asset_id', meaningfulFields: ['reviewer', 'deadline'] },
      actionable: true,
    },
    {
      type: `${CP}.asset.revision_requested`,
      description: 'Revisions were requested for a creative asset',
      defaultLevel: 'workflow',
      payload: open({ asset_id: assetId, feedback: opt(text(10_000)), reviewer: opt(text(200)), version: opt(text(50)) }),
      idempotencyFields: ['asset_id', 'version'],
      lifecycle: { updates: true, groupKey: 'asset_id', meaningfulFields: ['feedback'] },
    },
    {
      type: `${CP}.asset.approved`,
      description: 'A creative asset was approved',
      defaultLevel: 'workflow',
      payload: open({ asset_id: assetId, approved_by: opt(text(200)), approved_at: opt(time('when')), version: opt(text(50)) }),
      idempotencyFields: ['asset_id', 'version'],
      lifecycle: { updates: true, groupKey: 'asset_id', meaningfulFields: ['approved_by'] },
    },
    {
      type: `${CP}.asset.delivered`,
      description: 'A creative asset was delivered to the client or destination',
      defaultLevel: 'workflow',
      payload: open({ asset_id: assetId, destination: opt(text(500)), delivered_at: opt(time('when')), url: opt(text(2000)) }),
      idempotencyFields: ['asset_id'],
      lifecycle: { resolves: true, groupKey: 'asset_id' },
    },
    // A transcode has a life of its own: it neither opens nor resolves the asset's notification.
    {
      type: `${CP}.format.transcode_started`,
      description: 'Format transcoding started for an asset',
      defaultLevel: 'operational',
      payload: open({ asset_id: assetId, format: text(100), job_id: opt(text(200)) }),
      idempotencyFields: ['asset_id', 'format', 'job_id'],
    },
    {
      type: `${CP}.format.transcode_completed`,
      description: 'Format transcoding completed for an asset',
      defaultLevel: 'operational',
      payload: open({ asset_id: assetId, format: text(100), job_id: opt(text(200)), url: opt(text(2000)) }),
      idempotencyFields: ['asset_id', 'format', 'job_id'],
    },
    {
      type: `${CP}.format.transcode_failed`,
      description: 'Format transcoding failed and requires attention',
      defaultLevel: 'business',
      payload: open({ asset_id: assetId, format: text(100), error: opt(text(10_000)), job_id: opt(text(200)) }),
      idempotencyFields: ['asset_id', 'format', 'job_id'],
      lifecycle: { creates: true, meaningfulFields: ['error', 'format'] },
      actionable: true,
    },
  ]);
}

/**
 * Customer relations: help-desk tickets, satisfaction and escalations. Its input comes from
 * outside (customers): the pillar pack runs this domain "jailed" (docs/pillars.md).
 */
export function registerCustomerRelationsTypes(catalog: Catalog): void {
  const ticketId = id('the ticket');
  const surveyId = id('the survey');
  const escalationId = id('the escalation');
  const score = Type.Number({ minimum: 0, maximum: 100, description: 'the score given (scale: see `scale`, default 5)' });
  registerAll(catalog, 'customer-relations', [
    {
      type: `${CR}.helpdesk.ticket_created`,
      description: 'A new help desk ticket was created',
      defaultLevel: 'workflow',
      payload: open({
        ticket_id: ticketId,
        subject: text(1000),
        priority: opt(text(50, 'urgent, high, normal, low, p1..p4')),
        customer_id: opt(text(200)),
        channel: opt(text(100)),
        body: opt(text(20_000)),
        sla_due_at: opt(time('first answer due by')),
      }),
      idempotencyFields: ['ticket_id'],
      lifecycle: { creates: true, groupKey: 'ticket_id', meaningfulFields: ['ticket_id', 'subject'] },
    },
    {
      type: `${CR}.helpdesk.ticket_updated`,
      description: 'A help desk ticket was updated',
      defaultLevel: 'workflow',
      payload: open({
        ticket_id: ticketId,
        status: opt(text(50)),
        priority: opt(text(50)),
        assignee: opt(text(200)),
        sla_due_at: opt(time('answer due by')),
        sla_breached: opt(Type.Boolean()),
        updated_at: opt(time('when')),
      }),
      // TeleClaude keys on the ticket alone, which would drop every update after the first.
      idempotencyFields: ['ticket_id', 'updated_at', 'status', 'priority'],
      lifecycle: { updates: true, groupKey: 'ticket_id', silentFields: ['updated_at'] },
    },
    {
      type: `${CR}.helpdesk.ticket_escalated`,
      description: 'A help desk ticket was escalated and requires immediate attention',
      defaultLevel: 'business',
      payload: open({ ticket_id: ticketId, reason: text(4000), escalated_to: opt(text(200)), priority: opt(text(50)) }),
      idempotencyFields: ['ticket_id', 'escalated_to'],
      lifecycle: { updates: true, groupKey: 'ticket_id', meaningfulFields: ['reason', 'escalated_to'] },
      actionable: true,
    },
    {
      type: `${CR}.helpdesk.ticket_resolved`,
      description: 'A help desk ticket was resolved',
      defaultLevel: 'workflow',
      payload: open({ ticket_id: ticketId, resolution: opt(text(4000)), resolved_at: opt(time('when')) }),
      idempotencyFields: ['ticket_id'],
      lifecycle: { resolves: true, groupKey: 'ticket_id' },
    },
    {
      type: `${CR}.satisfaction.survey_sent`,
      description: 'A customer satisfaction survey was sent',
      defaultLevel: 'operational',
      payload: open({ survey_id: surveyId, ticket_id: opt(text(200)), customer_id: opt(text(200)), sent_at: opt(time('when')) }),
      idempotencyFields: ['survey_id'],
      lifecycle: { creates: true, groupKey: 'survey_id', silentFields: ['sent_at'] },
    },
    {
      type: `${CR}.satisfaction.response_received`,
      description: 'A customer satisfaction survey response was received',
      defaultLevel: 'workflow',
      payload: open({
        survey_id: surveyId,
        respondent_id: id('who answered'),
        score,
        scale: opt(Type.Number({ minimum: 1, maximum: 100, description: 'the best possible score (5 for CSAT, 10 for NPS)' })),
        comment: opt(text(10_000)),
        ticket_id: opt(text(200)),
      }),
      idempotencyFields: ['survey_id', 'respondent_id'],
      lifecycle: { updates: true, groupKey: 'survey_id', meaningfulFields: ['score'] },
    },
    {
      type: `${CR}.satisfaction.score_recorded`,
      description: 'Customer satisfaction score was aggregated and recorded',
      defaultLevel: 'workflow',
      payload: open({ survey_id: surveyId, score: Type.Number({ minimum: 0, maximum: 100, description: 'the average' }), responses: opt(Type.Integer({ minimum: 0 })), scale: opt(Type.Number({ minimum: 1, maximum: 100 })) }),
      idempotencyFields: ['survey_id'],
      lifecycle: { resolves: true, groupKey: 'survey_id' },
    },
    {
      type: `${CR}.escalation.triggered`,
      description: 'An escalation was triggered requiring human decision',
      defaultLevel: 'business',
      payload: open({ escalation_id: escalationId, reason: text(4000), ticket_id: opt(text(200)), customer_id: opt(text(200)), severity: opt(text(50)) }),
      idempotencyFields: ['escalation_id'],
      lifecycle: { creates: true, groupKey: 'escalation_id', meaningfulFields: ['escalation_id', 'reason'] },
      actionable: true,
    },
    {
      type: `${CR}.escalation.acknowledged`,
      description: 'An escalation was acknowledged by a team member',
      defaultLevel: 'workflow',
      payload: open({ escalation_id: escalationId, acknowledged_by: text(200) }),
      idempotencyFields: ['escalation_id'],
      lifecycle: { updates: true, groupKey: 'escalation_id', meaningfulFields: ['acknowledged_by'] },
    },
    {
      type: `${CR}.escalation.resolved`,
      description: 'An escalation was resolved',
      defaultLevel: 'workflow',
      payload: open({ escalation_id: escalationId, resolution: opt(text(4000)) }),
      idempotencyFields: ['escalation_id'],
      lifecycle: { resolves: true, groupKey: 'escalation_id' },
    },
  ]);
}

/** content.*: TeleClaude's raw content lifecycle (dumped → refined → published). */
export function registerContentTypes(catalog: Catalog): void {
  const contentId = id('the content');
  registerAll(catalog, 'content', [
    {
      type: 'content.dumped',
      description: 'Raw content was captured and queued for processing',
      defaultLevel: 'workflow',
      payload: open({ content_id: contentId, title: opt(text(500)), text: opt(text(50_000)), source: opt(text(500)) }),
      idempotencyFields: ['content_id'],
      lifecycle: { creates: true, groupKey: 'content_id', meaningfulFields: ['content_id'] },
    },
    {
      type: 'content.refined',
      description: 'Content was processed or edited',
      defaultLevel: 'workflow',
      payload: open({ content_id: contentId, title: opt(text(500)), version: opt(text(50)) }),
      idempotencyFields: ['content_id', 'version'],
      lifecycle: { updates: true, groupKey: 'content_id' },
    },
    {
      type: 'content.published',
      description: 'Content was made available externally',
      defaultLevel: 'business',
      payload: open({ content_id: contentId, url: opt(text(2000)), channel: opt(text(100)), published_at: opt(time('when')) }),
      idempotencyFields: ['content_id'],
      lifecycle: { resolves: true, groupKey: 'content_id' },
    },
  ]);
}

/** deployment.*: TeleClaude's generic deployment lifecycle. */
export function registerDeploymentTypes(catalog: Catalog): void {
  const fields = { slug: id('what is deployed'), sha: text(64), environment: opt(text(100)) };
  registerAll(catalog, 'deployment', [
    {
      type: 'deployment.started',
      description: 'Deployment initiated',
      defaultLevel: 'workflow',
      payload: open({ ...fields }),
      idempotencyFields: ['slug', 'sha'],
      lifecycle: { creates: true, groupKey: 'slug', meaningfulFields: ['slug'] },
    },
    {
      type: 'deployment.completed',
      description: 'Deployment succeeded',
      defaultLevel: 'workflow',
      payload: open({ ...fields }),
      idempotencyFields: ['slug', 'sha'],
      lifecycle: { resolves: true, groupKey: 'slug' },
    },
    {
      type: 'deployment.failed',
      description: 'Deployment failed and requires attention',
      defaultLevel: 'business',
      payload: open({ ...fields, reason: opt(text(10_000)) }),
      idempotencyFields: ['slug', 'sha'],
      lifecycle: { creates: true, updates: true, groupKey: 'slug', meaningfulFields: ['slug', 'reason'] },
      actionable: true,
    },
    {
      type: 'deployment.rolled_back',
      description: 'Rollback executed after deployment failure',
      defaultLevel: 'workflow',
      payload: open({ ...fields, reason: opt(text(10_000)) }),
      idempotencyFields: ['slug', 'sha'],
      lifecycle: { resolves: true, groupKey: 'slug' },
    },
  ]);
}

/** Every pillar type: software development, marketing, creative production, customer relations, content and deployment. */
export function registerPillarTypes(catalog: Catalog): void {
  registerSoftwareDevelopmentPillarTypes(catalog);
  registerMarketingTypes(catalog);
  registerCreativeProductionTypes(catalog);
  registerCustomerRelationsTypes(catalog);
  registerContentTypes(catalog);
  registerDeploymentTypes(catalog);
}
