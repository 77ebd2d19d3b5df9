/**
 * cartridge.* and mesh.event.rejected: cartridges published as code-as-data, the sovereignty
 * gate's install steps, invocation meta-events and promotion, and refused mesh input.
 * Levels and lifecycles follow the event-mesh-distribution seed.
 */
import { Type } from '@sinclair/typebox';
import type { Catalog } from '../catalog.js';

/** Type names, so producers and the gate do not spell them twice. */
export const CARTRIDGE_EVENTS = {
  published: 'cartridge.published',
  installPending: 'cartridge.install_pending',
  installNotified: 'cartridge.install_notified',
  installed: 'cartridge.installed',
  invoked: 'cartridge.invoked',
  promotionSuggested: 'cartridge.promotion_suggested',
  meshEventRejected: 'mesh.event.rejected',
} as const;

/** Base64 of at most 256 KiB of UTF-8 source (the package limit), with padding. */
const MAX_CODE_BASE64 = 349_528;

const name = Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$', description: 'cartridge name (manifest name)' });
const version = Type.String({ minLength: 1, maxLength: 100, description: 'semantic version of the cartridge' });
const author = Type.String({ minLength: 1, maxLength: 200 });
const description = Type.String({ maxLength: 2000 });
const origin = Type.String({ minLength: 1, maxLength: 300, description: "'local' or the peer node id it came from" });
const eventTypes = Type.Array(Type.String({ maxLength: 128 }), { maxItems: 256 });

/** What every install-step event says about the cartridge. */
const installFacts = {
  name,
  version,
  author,
  description: Type.Optional(description),
  origin,
  sourceComputer: Type.Optional(Type.String({ maxLength: 200 })),
  sha256: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$', description: 'SHA-256 of the UTF-8 source' })),
  publishedEventId: Type.Optional(Type.String({ maxLength: 64 })),
};

/** Registers the cartridge.* types and mesh.event.rejected. */
export function registerCartridgeTypes(catalog: Catalog): void {
  catalog.register({
    control: true,
    type: CARTRIDGE_EVENTS.published,
    description: 'A node published a cartridge (code as data) for its peers to install',
    domain: 'cartridges',
    defaultLevel: 'workflow',
    defaultVisibility: 'public',
    payload: Type.Object({
      event_type: Type.String({ minLength: 1, maxLength: 200, description: 'event type the cartridge handles' }),
      version,
      author,
      code: Type.String({
        minLength: 1,
        maxLength: MAX_CODE_BASE64,
        pattern: '^[A-Za-z0-9+/]*={0,2}$',
        description: 'the JavaScript source, UTF-8, base64-encoded for the wire',
      }),
      entry_point: Type.String({ pattern: '^[A-Za-z_$][A-Za-z0-9_$]{0,63}$' }),
      dependencies: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 64 }),
      description,
      name: Type.Optional(name),
      consumes: Type.Optional(eventTypes),
      emits: Type.Optional(eventTypes),
      invoke: Type.Optional(Type.Array(Type.String({ maxLength: 128 }), { maxItems: 32, description: 'invoke handlers the cartridge serves' })),
      sha256: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$', description: 'SHA-256 (hex) of the UTF-8 source; the receiving gate checks it against code' })),
    }),
    // What identifies the code: another cartridge, or a corrected source under the same version,
    // is another publication (author + event_type, the first consumed type, made those one).
    idempotencyFields: ['name', 'version', 'sha256'],
  });
  catalog.register({
    control: true,
    type: CARTRIDGE_EVENTS.installPending,
    description: 'A cartridge from a peer waits for a human to approve its installation (L1)',
    domain: 'cartridges',
    defaultLevel: 'workflow',
    payload: Type.Object({
      ...installFacts,
      reason: Type.Optional(Type.String({ maxLength: 2000 })),
      replaces: Type.Optional(
        Type.Object(
          { origin, version, status: Type.String({ maxLength: 40 }) },
          { description: 'the installed record of another origin (a local cartridge, another peer) that approving replaces' },
        ),
      ),
    }),
    idempotencyFields: ['origin', 'name', 'version'],
    lifecycle: { creates: true },
    actionable: true,
    resolutionShape: { approved: 'boolean' },
  });
  catalog.register({
    control: true,
    type: CARTRIDGE_EVENTS.installNotified,
    description: 'The guardian installed a cartridge from a peer (L2); this tells the human',
    domain: 'cartridges',
    defaultLevel: 'workflow',
    payload: Type.Object({
      ...installFacts,
      guardian: Type.Optional(Type.String({ maxLength: 200 })),
      reason: Type.Optional(Type.String({ maxLength: 2000 })),
    }),
    idempotencyFields: ['origin', 'name', 'version'],
    lifecycle: { creates: true },
  });
  catalog.register({
    control: true,
    type: CARTRIDGE_EVENTS.installed,
    description: 'A cartridge was installed and waits for activation (weft cartridges activate <name>)',
    domain: 'cartridges',
    defaultLevel: 'workflow',
    payload: Type.Object({
      ...installFacts,
      autonomy: Type.Optional(Type.Union([Type.Literal('L1'), Type.Literal('L2'), Type.Literal('L3')])),
    }),
    idempotencyFields: ['origin', 'name', 'version'],
    lifecycle: { creates: true },
  });
  catalog.register({
    control: true,
    type: CARTRIDGE_EVENTS.invoked,
    description: 'An installed cartridge ran successfully on one event (stats only, never a notification)',
    domain: 'cartridges',
    defaultLevel: 'infrastructure',
    defaultVisibility: 'local',
    payload: Type.Object({
      cartridge: name,
      version,
      mode: Type.Union([Type.Literal('active'), Type.Literal('alpha')]),
      eventId: Type.String({ maxLength: 64 }),
      eventType: Type.String({ maxLength: 200 }),
      emitted: Type.Integer({ minimum: 0, description: 'events the run emitted' }),
    }),
    // No lifecycle: high volume, counted in cartridge_stats, never projected.
  });
  catalog.register({
    control: true,
    type: CARTRIDGE_EVENTS.promotionSuggested,
    description: 'A cartridge crossed the invocation threshold; promoting it is suggested',
    domain: 'cartridges',
    defaultLevel: 'workflow',
    payload: Type.Object({
      cartridge: name,
      version,
      invocations: Type.Integer({ minimum: 0 }),
      threshold: Type.Integer({ minimum: 1 }),
      status: Type.Optional(Type.String({ maxLength: 40 })),
    }),
    idempotencyFields: ['cartridge', 'version'],
    lifecycle: { creates: true },
    actionable: true,
    resolutionShape: { approved: 'boolean' },
  });
  catalog.register({
    control: true,
    type: CARTRIDGE_EVENTS.meshEventRejected,
    description: 'An event arriving from the mesh was refused (signature, replay or trust) and never entered the pipeline',
    domain: 'mesh',
    defaultLevel: 'operational',
    defaultVisibility: 'local',
    payload: Type.Object({
      sender: Type.String({ maxLength: 300, description: 'node id (or computer) that sent it' }),
      senderComputer: Type.Optional(Type.String({ maxLength: 200 })),
      reason: Type.String({ maxLength: 2000 }),
      code: Type.Optional(Type.String({ maxLength: 100 })),
      eventId: Type.Optional(Type.String({ maxLength: 64 })),
      eventType: Type.Optional(Type.String({ maxLength: 200 })),
      outcome: Type.Optional(Type.Union([Type.Literal('reject'), Type.Literal('quarantine'), Type.Literal('flag')])),
      count: Type.Optional(Type.Integer({ minimum: 1, description: 'refusals of this sender and cause this notification stands for' })),
      windowStart: Type.Optional(Type.String({ maxLength: 40 })),
    }),
    idempotencyFields: ['sender', 'eventId', 'reason', 'windowStart'],
    lifecycle: { creates: true },
  });
}
