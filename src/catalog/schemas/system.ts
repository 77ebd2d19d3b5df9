import { Type } from '@sinclair/typebox';
import type { Catalog } from '../catalog.js';

/** system.*: the node's own life. */
export function registerSystemTypes(catalog: Catalog): void {
  catalog.register({
    control: true,
    type: 'system.daemon.restarted',
    description: 'The node daemon started (after a stop, a crash or for the first time)',
    domain: 'system',
    defaultLevel: 'operational',
    payload: Type.Object({
      computer: Type.String(),
      pid: Type.Integer(),
      version: Type.String(),
      startedAt: Type.String(),
      previousStop: Type.Optional(Type.Union([Type.Literal('clean'), Type.Literal('unclean'), Type.Literal('first')])),
    }),
    idempotencyFields: ['computer', 'startedAt'],
    lifecycle: { creates: true },
  });
  catalog.register({
    control: true,
    type: 'system.worker.crashed',
    description: 'A background worker of the node crashed and is being restarted',
    domain: 'system',
    defaultLevel: 'operational',
    payload: Type.Object({
      worker: Type.String(),
      error: Type.String(),
      restarts: Type.Integer({ minimum: 0 }),
      backoffMs: Type.Optional(Type.Integer({ minimum: 0 })),
    }),
    lifecycle: { creates: true, updates: true, groupKey: 'worker', meaningfulFields: ['error'] },
  });
  catalog.register({
    control: true,
    type: 'system.cartridge.failed',
    description: 'A cartridge threw or misbehaved on an event; the event went to the dead-letter table',
    domain: 'system',
    defaultLevel: 'operational',
    payload: Type.Object({
      cartridge: Type.String(),
      eventId: Type.String(),
      eventType: Type.String(),
      error: Type.String(),
      suspended: Type.Optional(Type.Boolean()),
      suspendedAt: Type.Optional(
        Type.String({ maxLength: 64, description: 'when it was suspended: each suspension is a notification of its own' }),
      ),
      count: Type.Optional(Type.Integer({ minimum: 1, description: 'failures this notice stands for (at most one a minute per cartridge); eventId and error are the latest one' })),
    }),
    idempotencyFields: ['cartridge', 'eventId', 'suspendedAt'],
    lifecycle: { creates: true },
  });
  catalog.register({
    control: true,
    type: 'system.entry.rejected',
    description: 'Entries on the bus stream were refused (not an event, or an invalid one) and left there unacknowledged; weft rejections list shows them',
    domain: 'system',
    defaultLevel: 'operational',
    payload: Type.Object({
      origin: Type.String({ maxLength: 300, description: 'where they were read: bus:redis, ...' }),
      entryId: Type.String({ maxLength: 200, description: 'the first refused entry of this burst' }),
      code: Type.String({ maxLength: 100 }),
      reason: Type.String({ maxLength: 2000 }),
      field: Type.Optional(Type.String({ maxLength: 500, description: 'path of the field that failed' })),
      count: Type.Integer({ minimum: 1, description: 'refusals this notification stands for' }),
    }),
    lifecycle: { creates: true },
  });
  catalog.register({
    control: true,
    type: 'system.store.rolled_back',
    description: "The node's database is behind the last commit it recorded: acknowledged events were lost (a lost -wal file?); see weft doctor",
    domain: 'system',
    defaultLevel: 'business',
    payload: Type.Object({ recordedSeq: Type.Integer(), foundSeq: Type.Integer(), lost: Type.Integer({ minimum: 1 }) }),
    idempotencyFields: ['recordedSeq', 'foundSeq'],
    lifecycle: { creates: true },
  });
  catalog.register({
    control: true,
    type: 'system.store.file_lost',
    description: "The running node's database file was deleted or replaced: what it writes goes to a file nothing else can open until it stops (its stop saves it); see weft status",
    domain: 'system',
    defaultLevel: 'business',
    payload: Type.Object({
      path: Type.String({ maxLength: 4096 }),
      state: Type.Union([Type.Literal('deleted'), Type.Literal('replaced')]),
      detectedAt: Type.String({ maxLength: 64 }),
      rescuedTo: Type.Optional(Type.String({ maxLength: 4096, description: 'a copy of the open file made when it was noticed' })),
    }),
    idempotencyFields: ['path', 'detectedAt'],
    lifecycle: { creates: true },
  });
  catalog.register({
    control: true,
    type: 'system.cartridge.limited',
    description: 'A cartridge emitted past a limit (causation depth, emit rate); those emits were refused',
    domain: 'system',
    defaultLevel: 'operational',
    payload: Type.Object({
      cartridge: Type.String({ maxLength: 200 }),
      code: Type.String({ maxLength: 100 }),
      reason: Type.String({ maxLength: 2000 }),
      count: Type.Integer({ minimum: 1 }),
    }),
    lifecycle: { creates: true },
  });
}
