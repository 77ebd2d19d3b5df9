import { Type } from '@sinclair/typebox';
import type { Catalog } from '../catalog.js';

/** mesh.* and transport.*: what the mesh itself reports. */
export function registerMeshTypes(catalog: Catalog): void {
  catalog.register({
    control: true,
    type: 'mesh.message.received',
    description: 'A peer sent this node a message (weft mesh send)',
    domain: 'mesh',
    defaultLevel: 'operational',
    payload: Type.Object({ from: Type.String(), text: Type.String({ maxLength: 4000 }), kind: Type.String() }),
    lifecycle: { creates: true },
  });
  catalog.register({
    type: 'mesh.test.ping',
    description: 'A test event for checking that the mesh carries events (any visibility)',
    domain: 'mesh',
    defaultLevel: 'operational',
    payload: Type.Object({ n: Type.Integer(), note: Type.Optional(Type.String({ maxLength: 1000 })) }),
    lifecycle: { creates: true },
  });
  catalog.register({
    type: 'mesh.test.load',
    description: 'A load-test event that carries its send time, for end-to-end latency (npm run load, bench compare)',
    domain: 'mesh',
    defaultLevel: 'operational',
    payload: Type.Object({ n: Type.Integer(), sentAt: Type.Number(), note: Type.Optional(Type.String({ maxLength: 200 })) }),
    lifecycle: { creates: true },
  });
  catalog.register({
    control: true,
    type: 'mesh.event.undeliverable',
    description: 'An event is too large for any frame to a peer: it went to the dead letters instead of stopping the link',
    domain: 'mesh',
    defaultLevel: 'operational',
    payload: Type.Object({
      peer: Type.String({ maxLength: 200 }),
      eventId: Type.String({ maxLength: 200 }),
      eventType: Type.String({ maxLength: 200 }),
      bytes: Type.Integer({ minimum: 0, description: 'its size as a frame' }),
      limit: Type.Integer({ minimum: 0, description: 'the largest frame' }),
    }),
    idempotencyFields: ['peer', 'eventId'],
    lifecycle: { creates: true },
  });
  catalog.register({
    control: true,
    type: 'transport.noprov',
    description: 'No transport satisfies the caps a mount to a peer requires: the link is not made',
    domain: 'transport',
    defaultLevel: 'operational',
    payload: Type.Object({ peer: Type.String(), required: Type.Array(Type.String()), reason: Type.String() }),
    idempotencyFields: ['peer', 'reason'],
    lifecycle: { creates: true },
  });
  catalog.register({
    control: true,
    type: 'transport.flatneg',
    description: 'A link to a peer runs without a preferred serializer cap (downgraded)',
    domain: 'transport',
    defaultLevel: 'infrastructure',
    payload: Type.Object({ peer: Type.String(), missing: Type.Array(Type.String()) }),
    idempotencyFields: ['peer'],
  });
  catalog.register({
    control: true,
    type: 'telemetry.shell.command',
    description: 'A shell command observed on this computer: raw data that never leaves it',
    domain: 'privacy',
    defaultLevel: 'infrastructure',
    dataClass: 'raw',
    payload: Type.Object({ command: Type.String({ maxLength: 10_000 }), cwd: Type.Optional(Type.String()), exitCode: Type.Optional(Type.Integer()) }),
  });
}
