/**
 * The pillar and mesh-roadmap catalog packs: every event type TeleClaude registers for the
 * pillars (InstruktAI/TeleClaude teleclaude/events/schemas/{software_development, marketing,
 * creative_production, customer_relations, content, deployment}.py, and the integration
 * events its orchestrator emits) is known here, under the same name or as an alias, and
 * payloads taken from TeleClaude's code and tests validate unchanged.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createDefaultCatalog, MESH_ROADMAP_EVENTS } from '../../src/catalog/index.js';

const SD = 'domain.software-development';

/** TeleClaude's names, as its schema modules and emitters spell them. */
const TELECLAUDE_TYPES = [
  // software_development.py: planning
  `${SD}.planning.todo_created`,
  `${SD}.planning.todo_dumped`,
  `${SD}.planning.todo_activated`,
  `${SD}.planning.artifact_changed`,
  `${SD}.planning.dependency_resolved`,
  `${SD}.planning.dor_assessed`,
  // build, review
  `${SD}.build.completed`,
  `${SD}.review.verdict_ready`,
  `${SD}.review.needs_decision`,
  `${SD}.review.approved`,
  // deploy
  `${SD}.deploy.triggered`,
  `${SD}.deploy.succeeded`,
  `${SD}.deploy.failed`,
  // ops, maintenance
  `${SD}.ops.alert_fired`,
  `${SD}.ops.alert_resolved`,
  `${SD}.maintenance.dependency_update`,
  `${SD}.maintenance.security_patch`,
  // prepare
  `${SD}.prepare.input_refined`,
  `${SD}.prepare.discovery_started`,
  `${SD}.prepare.requirements_drafted`,
  `${SD}.prepare.requirements_approved`,
  `${SD}.prepare.plan_drafted`,
  `${SD}.prepare.plan_approved`,
  `${SD}.prepare.grounding_invalidated`,
  `${SD}.prepare.regrounded`,
  `${SD}.prepare.completed`,
  `${SD}.prepare.blocked`,
  `${SD}.prepare.phase_skipped`,
  `${SD}.prepare.input_consumed`,
  `${SD}.prepare.artifact_produced`,
  `${SD}.prepare.artifact_invalidated`,
  `${SD}.prepare.finding_recorded`,
  `${SD}.prepare.finding_resolved`,
  `${SD}.prepare.review_scoped`,
  `${SD}.prepare.split_inherited`,
  // integration (schemas, and the orchestrator's emitters)
  `${SD}.branch.pushed`,
  `${SD}.deployment.started`,
  `${SD}.deployment.completed`,
  `${SD}.deployment.failed`,
  `${SD}.integration.started`,
  `${SD}.integration.candidate.delivered`,
  `${SD}.integration.candidate.blocked`,
  // marketing.py
  'domain.marketing.content.brief_created',
  'domain.marketing.content.draft_ready',
  'domain.marketing.content.published',
  'domain.marketing.content.performance_reported',
  'domain.marketing.campaign.launched',
  'domain.marketing.campaign.budget_threshold_hit',
  'domain.marketing.campaign.ended',
  'domain.marketing.campaign.report_ready',
  'domain.marketing.feed.signal_received',
  'domain.marketing.feed.cluster_formed',
  'domain.marketing.feed.synthesis_ready',
  // creative_production.py
  'domain.creative-production.asset.brief_created',
  'domain.creative-production.asset.draft_submitted',
  'domain.creative-production.asset.review_requested',
  'domain.creative-production.asset.revision_requested',
  'domain.creative-production.asset.approved',
  'domain.creative-production.asset.delivered',
  'domain.creative-production.format.transcode_started',
  'domain.creative-production.format.transcode_completed',
  'domain.creative-production.format.transcode_failed',
  // customer_relations.py
  'domain.customer-relations.helpdesk.ticket_created',
  'domain.customer-relations.helpdesk.ticket_updated',
  'domain.customer-relations.helpdesk.ticket_escalated',
  'domain.customer-relations.helpdesk.ticket_resolved',
  'domain.customer-relations.satisfaction.survey_sent',
  'domain.customer-relations.satisfaction.response_received',
  'domain.customer-relations.satisfaction.score_recorded',
  'domain.customer-relations.escalation.triggered',
  'domain.customer-relations.escalation.acknowledged',
  'domain.customer-relations.escalation.resolved',
  // content.py
  'content.dumped',
  'content.refined',
  'content.published',
  // deployment.py
  'deployment.started',
  'deployment.completed',
  'deployment.failed',
  'deployment.rolled_back',
] as const;

/** Weft's own additions where TeleClaude has no type for a lifecycle step. */
const WEFT_ADDITIONS = [
  `${SD}.build.started`,
  `${SD}.incident.opened`,
  `${SD}.incident.updated`,
  `${SD}.incident.resolved`,
  'domain.marketing.campaign.spend_reported',
];

/** Payloads as TeleClaude's emitters and tests send them (teleclaude/events/*, tests/). */
const TELECLAUDE_PAYLOADS: Array<[string, Record<string, unknown>]> = [
  // orchestrator emit helpers and tests/integration/test_events_pipeline (history-search-upgrade)
  [`${SD}.review.approved`, { slug: 'history-search-upgrade', review_round: 2, reviewer_session_id: 'unknown', approved_at: '2026-03-08T10:00:57.170898+00:00' }],
  [
    `${SD}.branch.pushed`,
    { branch: 'history-search-upgrade', sha: '10af253e08abe4533b7718d714c39c692c6c108d', remote: 'origin', pushed_at: '2026-03-08T10:02:23.851094+00:00', pusher: 'finalizer/e9e69ee7-eb59-4837-933d-d623dbce8ffd' },
  ],
  [
    `${SD}.deployment.started`,
    {
      slug: 'history-search-upgrade',
      branch: 'history-search-upgrade',
      sha: '10af253e08abe4533b7718d714c39c692c6c108d',
      worker_session_id: 'e9e69ee7-eb59-4837-933d-d623dbce8ffd',
      orchestrator_session_id: 'unknown',
      ready_at: '2026-03-08T10:02:10.284693+00:00',
    },
  ],
  [`${SD}.deployment.completed`, { slug: 'history-search-upgrade', branch: 'history-search-upgrade', sha: '10af253e', merge_commit: '7c1d2e3f', integrated_at: '2026-03-08T10:05:00+00:00' }],
  [`${SD}.deployment.failed`, { slug: 'history-search-upgrade', branch: 'history-search-upgrade', sha: '10af253e', conflict_evidence: [], diagnostics: [], next_action: '', blocked_at: '2026-03-08T10:05:00+00:00' }],
  [`${SD}.integration.started`, { slug: 'history-search-upgrade', session_id: 'sess-1', queue_depth: 2 }],
  [`${SD}.integration.candidate.delivered`, { slug: 'history-search-upgrade', branch: 'history-search-upgrade', merge_commit_sha: '7c1d2e3f', integrated_at: '2026-03-08T10:05:00+00:00' }],
  [`${SD}.integration.candidate.blocked`, { slug: 'history-search-upgrade', branch: 'history-search-upgrade', sha: '10af253e', reason: 'conflict', blocked_at: '2026-03-08T10:05:00+00:00' }],
  // the prepare state machine (core/next_machine)
  [`${SD}.prepare.grounding_invalidated`, { slug: 'x', reason: 'files_changed', changed_paths: ['src/a.py'] }],
  [`${SD}.prepare.artifact_produced`, { slug: 'x', artifact: 'requirements.md', digest: 'ab12' }],
  [`${SD}.prepare.input_consumed`, { slug: 'x', phase: 'input_assessment', digest: '' }],
  [`${SD}.prepare.finding_recorded`, { slug: 'x', review_type: 'requirements_review', severity: 'high', summary: 'missing acceptance' }],
  [`${SD}.prepare.finding_resolved`, { slug: 'x', review_type: 'requirements_review', finding_id: 'f1', resolution_method: 'edited' }],
  [`${SD}.prepare.split_inherited`, { parent_slug: 'big', child_slug: 'big-part-1', inherited_phase: 'prepared' }],
  [`${SD}.prepare.phase_skipped`, { slug: 'big-part-1', phase: 'requirements_review', reason: 'inherited_from_parent' }],
  // the enrichment cartridge's build failure (tests: payload {"success": False}, on the todo's slug)
  [`${SD}.build.completed`, { slug: 'my-task', success: false, _enrichment: { failure_count: 1 } }],
  // TeleClaude's own names our todo types alias (todo_created with a slug only; a DOR verdict)
  [`${SD}.planning.todo_created`, { slug: 'fresh-task' }],
  [`${SD}.planning.dor_assessed`, { slug: 'fresh-task', score: 8, verdict: 'pass', assessed_commit: 'abc123' }],
  // the pillar plans (todos/event-domain-pillars): fields their lifecycles name
  ['domain.marketing.campaign.budget_threshold_hit', { campaign_id: 'spring', spent: 8200, threshold: 0.8 }],
  ['domain.marketing.content.performance_reported', { content_id: 'post-1', period: '2026-W07', metrics: { views: 1200 } }],
  ['domain.creative-production.asset.review_requested', { asset_id: 'hero-video', reviewer: 'ada', deadline: '2026-03-10T12:00:00Z' }],
  ['domain.creative-production.format.transcode_failed', { asset_id: 'hero-video', format: 'webm', error: 'codec' }],
  ['domain.customer-relations.helpdesk.ticket_escalated', { ticket_id: 'T-1', reason: 'angry customer', escalated_to: 'support-lead' }],
  ['domain.customer-relations.satisfaction.response_received', { survey_id: 's1', respondent_id: 'c9', score: 2 }],
  ['domain.customer-relations.escalation.acknowledged', { escalation_id: 'e1', acknowledged_by: 'bob' }],
  ['deployment.failed', { slug: 'api', sha: 'abc', reason: 'healthcheck' }],
  ['content.dumped', { content_id: 'c1' }],
];

describe('pillar catalog pack', () => {
  const catalog = createDefaultCatalog();
  const aliases = new Map(catalog.listAliases().map((a) => [a.name, a.type]));

  it('knows every TeleClaude pillar type, registered under its own name or as an alias', () => {
    const missing = TELECLAUDE_TYPES.filter((t) => !catalog.has(t) && !aliases.has(t));
    assert.deepEqual(missing, []);
    // The two TeleClaude names Weft already had under its own are aliases, not second types.
    assert.equal(aliases.get(`${SD}.planning.todo_created`), `${SD}.planning.todo.created`);
    assert.equal(aliases.get(`${SD}.planning.dor_assessed`), `${SD}.planning.todo.dor_assessed`);
    assert.equal(catalog.has(`${SD}.planning.todo_created`), false);
    for (const t of WEFT_ADDITIONS) assert.ok(catalog.has(t), `${t} registered`);
  });

  it('registers each pillar type in its own domain, at TeleClaude level', () => {
    const expect: Array<[string, string, number, boolean]> = [
      [`${SD}.deploy.failed`, 'software-development', 3, true],
      [`${SD}.review.needs_decision`, 'software-development', 3, true],
      [`${SD}.prepare.blocked`, 'software-development', 3, true],
      ['domain.marketing.campaign.budget_threshold_hit', 'marketing', 3, true],
      ['domain.marketing.feed.synthesis_ready', 'marketing', 2, true],
      ['domain.creative-production.format.transcode_failed', 'creative-production', 3, true],
      ['domain.customer-relations.escalation.triggered', 'customer-relations', 3, true],
      ['content.published', 'content', 3, false],
      ['deployment.failed', 'deployment', 3, true],
    ];
    for (const [type, domain, level, actionable] of expect) {
      const e = catalog.require(type);
      assert.deepEqual([e.domain, e.level, e.actionable], [domain, level, actionable], type);
    }
  });

  it('accepts TeleClaude payloads unchanged, extra fields included', () => {
    for (const [type, payload] of TELECLAUDE_PAYLOADS) {
      const e = catalog.normalize({ event: type, payload });
      assert.doesNotThrow(() => catalog.validatePayload(e.event, e.payload), `${type} ${JSON.stringify(payload)}`);
    }
  });

  it('still refuses a payload without the field its lifecycle groups by', () => {
    assert.throws(() => catalog.validatePayload('domain.customer-relations.helpdesk.ticket_created', { subject: 'no id' }), /ticket_id/);
    assert.throws(() => catalog.validatePayload(`${SD}.build.completed`, { success: false }), /slug/);
  });

  it('opens a lifecycle with a group key, so its updates and resolve find the notification', () => {
    for (const [open, close] of [
      ['domain.marketing.content.brief_created', 'domain.marketing.content.published'],
      ['domain.creative-production.asset.brief_created', 'domain.creative-production.asset.delivered'],
      ['domain.customer-relations.helpdesk.ticket_created', 'domain.customer-relations.helpdesk.ticket_resolved'],
      [`${SD}.ops.alert_fired`, `${SD}.ops.alert_resolved`],
      [`${SD}.incident.opened`, `${SD}.incident.resolved`],
    ] as const) {
      const o = catalog.require(open).lifecycle;
      const c = catalog.require(close).lifecycle;
      assert.ok(o?.creates && c?.resolves && o.groupKey === c.groupKey, `${open} → ${close}`);
    }
    // A failed build updates the work item's notification; only one that passed resolves it.
    const build = catalog.require(`${SD}.build.completed`).lifecycle;
    assert.equal(build?.resolves, undefined);
    assert.deepEqual(build?.resolvesUnless?.success, [false]);
  });

  it('keeps two updates of one ticket apart (TeleClaude keys them on the ticket alone)', () => {
    const t = 'domain.customer-relations.helpdesk.ticket_updated';
    assert.notEqual(
      catalog.idempotencyKey(t, { ticket_id: 'T-1', status: 'open', updated_at: '2026-03-08T10:00:00Z' }),
      catalog.idempotencyKey(t, { ticket_id: 'T-1', status: 'pending', updated_at: '2026-03-08T11:00:00Z' }),
    );
  });
});

describe('mesh-roadmap catalog pack', () => {
  const catalog = createDefaultCatalog();
  const ROADMAP = [
    // published today
    'graph_update',
    'fo_insight',
    'attention_decision',
    'coherence_alert',
    'aha_moment',
    'economics_session_start',
    'economics_session_end',
    'resonance_detected',
    'meta_fo_update',
    'conflict_alert',
    'recovery_beacon',
    // planned
    'mission_control_synthesis',
    'edge_discovery',
    'topology_update',
    'monologue_chunk',
    'context_enter',
    'context_exit',
    'session_debrief',
    'hygiene_check',
    'gravity_well_formed',
  ];

  it('registers every roadmap type as sovereign.<name>, and its bare name as an alias', () => {
    assert.deepEqual([...MESH_ROADMAP_EVENTS.published, ...MESH_ROADMAP_EVENTS.planned].sort(), [...ROADMAP].sort());
    for (const name of ROADMAP) {
      const e = catalog.require(`sovereign.${name}`);
      assert.equal(e.domain, 'sovereign');
      assert.equal(e.visibility, 'cluster');
      assert.equal(catalog.normalize({ event: name, payload: {} }).event, `sovereign.${name}`, name);
    }
  });

  it('accepts what the roadmap systems send, named fields or not', () => {
    const payloads: Array<[string, Record<string, unknown>]> = [
      ['graph_update', { op: 'add_edge', edge: { from: 'a', to: 'b' }, node_count: 120 }],
      ['fo_insight', { insight: 'the tests are the spec', instance: 'laptop' }],
      ['economics_session_end', { session_id: 's1', sats: 1200, spent_sats: 300, anything: 'else' }],
      ['recovery_beacon', { session_id: 's1', seed: 'resume from step 4', state: { step: 4 } }],
      ['conflict_alert', {}],
    ];
    for (const [name, payload] of payloads) {
      const e = catalog.normalize({ event: name, payload });
      assert.doesNotThrow(() => catalog.validatePayload(e.event, e.payload), name);
    }
    assert.throws(() => catalog.validatePayload('sovereign.fo_insight', { confidence: 'very' }), /confidence/);
  });
});
