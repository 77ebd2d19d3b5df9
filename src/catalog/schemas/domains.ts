/**
 * domains.*: the domain pipelines' own events — what their cartridges emit by default
 * (`domains.alert`), actions held for a human (L1) or reported (L2), refused pipeline changes,
 * a full inbox, and the install / removal / promotion of domain and personal cartridges.
 * Types a domain's cartridges define for themselves live under `domain.<name>.*`.
 */
import { Type } from '@sinclair/typebox';
import type { Catalog } from '../catalog.js';

/** Type names, so the runner and the routes do not spell them twice. */
export const DOMAIN_EVENTS = {
  alert: 'domains.alert',
  actionPending: 'domains.action.pending',
  actionTaken: 'domains.action.taken',
  pipelineLoaded: 'domains.pipeline.loaded',
  pipelineRefused: 'domains.pipeline.refused',
  inboxOverflow: 'domains.inbox.overflow',
  cartridgeSubmitted: 'domains.cartridge.submitted',
  cartridgeInstalled: 'domains.cartridge.installed',
  cartridgeRemoved: 'domains.cartridge.removed',
  cartridgePromoted: 'domains.cartridge.promoted',
} as const;

const name = Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' });
/** `marketing` for a domain, `personal:alice` for a member's pipeline. */
const scope = Type.String({ minLength: 1, maxLength: 80, description: "the domain, or 'personal:<member>'" });
const level = Type.Union([Type.Literal('L1'), Type.Literal('L2'), Type.Literal('L3')]);

/** Registers the domains.* types. */
export function registerDomainTypes(catalog: Catalog): void {
  catalog.register({
    type: DOMAIN_EVENTS.alert,
    description: 'A domain or personal cartridge tells its people something',
    domain: 'domains',
    defaultLevel: 'workflow',
    payload: Type.Object({
      title: Type.String({ minLength: 1, maxLength: 500 }),
      body: Type.Optional(Type.String({ maxLength: 10_000 })),
      key: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'alerts with one key are one notification' })),
      url: Type.Optional(Type.String({ maxLength: 2000 })),
      tags: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 32 })),
    }),
    lifecycle: { creates: true, updates: true, groupKey: 'key', meaningfulFields: ['title', 'body'] },
  });
  catalog.register({
    control: true,
    type: DOMAIN_EVENTS.actionPending,
    description: 'A domain cartridge wants to emit an event its autonomy level (L1) holds for a human: approve to emit it',
    domain: 'domains',
    defaultLevel: 'workflow',
    payload: Type.Object({
      domain: scope,
      cartridge: name,
      sourceEventId: Type.String({ maxLength: 64 }),
      rule: Type.String({ maxLength: 500, description: 'which autonomy rule decided L1' }),
      proposed: Type.Object(
        {
          event: Type.String({ maxLength: 200 }),
          payload: Type.Record(Type.String(), Type.Unknown()),
          description: Type.Optional(Type.String({ maxLength: 2000 })),
        },
        { additionalProperties: false },
      ),
    }),
    idempotencyFields: ['domain', 'cartridge', 'sourceEventId', 'proposed'],
    lifecycle: { creates: true },
    actionable: true,
    resolutionShape: { approved: 'boolean' },
  });
  catalog.register({
    control: true,
    type: DOMAIN_EVENTS.actionTaken,
    description: "A domain cartridge acted at autonomy L2: its events were emitted and the domain's admins are told",
    domain: 'domains',
    defaultLevel: 'operational',
    payload: Type.Object({
      domain: scope,
      cartridge: name,
      count: Type.Integer({ minimum: 1 }),
      types: Type.Array(Type.String({ maxLength: 200 }), { maxItems: 64 }),
      eventIds: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 64 }),
    }),
    lifecycle: { creates: true },
  });
  catalog.register({
    control: true,
    type: DOMAIN_EVENTS.pipelineLoaded,
    description: 'The domain and personal pipelines were (re)loaded and validated',
    domain: 'domains',
    defaultLevel: 'infrastructure',
    defaultVisibility: 'local',
    payload: Type.Object({
      pipelines: Type.Array(
        Type.Object({ scope, cartridges: Type.Integer({ minimum: 0 }), levels: Type.Integer({ minimum: 0 }) }),
        { maxItems: 1000 },
      ),
    }),
  });
  catalog.register({
    control: true,
    type: DOMAIN_EVENTS.pipelineRefused,
    description: 'A change to a domain or personal pipeline was refused by validation; the previous pipeline keeps running',
    domain: 'domains',
    defaultLevel: 'operational',
    defaultVisibility: 'local',
    payload: Type.Object({
      scope: Type.String({ maxLength: 80 }),
      code: Type.String({ maxLength: 80 }),
      reason: Type.String({ maxLength: 4000 }),
      cartridges: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 64 }),
      since: Type.Optional(
        Type.String({
          maxLength: 64,
          description: 'when this refusal began: the same one again at the next reload is the same notification, again after it was fixed a new one',
        }),
      ),
    }),
    idempotencyFields: ['scope', 'code', 'reason', 'since'],
    lifecycle: { creates: true },
  });
  catalog.register({
    control: true,
    type: DOMAIN_EVENTS.inboxOverflow,
    description: 'A domain or personal lane fell behind by domains.inbox_limit events: newer events skip it until it catches up',
    domain: 'domains',
    defaultLevel: 'operational',
    defaultVisibility: 'local',
    payload: Type.Object({ scope: Type.Optional(scope), limit: Type.Integer({ minimum: 0 }), skipped: Type.Integer({ minimum: 0 }) }),
    lifecycle: { creates: true },
  });
  const installFacts = {
    domain: scope,
    cartridge: name,
    version: Type.String({ maxLength: 100 }),
    by: Type.String({ maxLength: 100, description: "the member who asked, or 'node'" }),
    sha256: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })),
  };
  catalog.register({
    control: true,
    type: DOMAIN_EVENTS.cartridgeSubmitted,
    description: "A cartridge waits for an admin of its domain to approve it (autonomy L1, or the guardian was unsure)",
    domain: 'domains',
    defaultLevel: 'workflow',
    payload: Type.Object({
      ...installFacts,
      guardian: Type.Optional(Type.String({ maxLength: 2000 })),
      submittedAt: Type.Optional(
        Type.String({ maxLength: 64, description: 'when it was submitted: a resubmission (after a refusal) is a notification of its own' }),
      ),
    }),
    idempotencyFields: ['domain', 'cartridge', 'sha256', 'submittedAt'],
    lifecycle: { creates: true },
    actionable: true,
    resolutionShape: { approved: 'boolean' },
  });
  catalog.register({
    control: true,
    type: DOMAIN_EVENTS.cartridgeInstalled,
    description: 'A cartridge joined a domain or personal pipeline',
    domain: 'domains',
    defaultLevel: 'operational',
    payload: Type.Object({ ...installFacts, autonomy: Type.Optional(level), guardian: Type.Optional(Type.String({ maxLength: 2000 })) }),
    lifecycle: { creates: true },
  });
  catalog.register({
    control: true,
    type: DOMAIN_EVENTS.cartridgeRemoved,
    description: 'A cartridge left a domain or personal pipeline',
    domain: 'domains',
    defaultLevel: 'operational',
    payload: Type.Object({ domain: scope, cartridge: name, by: Type.String({ maxLength: 100 }) }),
    lifecycle: { creates: true },
  });
  catalog.register({
    control: true,
    type: DOMAIN_EVENTS.cartridgePromoted,
    description: 'A cartridge was promoted: personal → domain, or domain → platform',
    domain: 'domains',
    defaultLevel: 'operational',
    payload: Type.Object({
      cartridge: name,
      from: scope,
      to: scope,
      by: Type.String({ maxLength: 100 }),
      state: Type.Union([Type.Literal('installed'), Type.Literal('submitted'), Type.Literal('pending_activation')]),
    }),
    lifecycle: { creates: true },
  });
}
