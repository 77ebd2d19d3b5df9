import { Type } from '@sinclair/typebox';
import type { Catalog } from '../catalog.js';

const PREFIX = 'domain.software-development.planning.todo';

/**
 * domain.software-development.planning.todo.*: one notification per todo (grouped by slug)
 * that is created, refreshed by its readiness assessment, marked ready and resolved on close.
 */
export function registerSoftwareDevelopmentTypes(catalog: Catalog): void {
  const slug = Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' });
  catalog.register({
    type: `${PREFIX}.created`,
    description: 'A new work item (todo) was created',
    domain: 'software-development',
    defaultLevel: 'workflow',
    payload: Type.Object({
      slug,
      title: Type.String({ minLength: 1, maxLength: 500 }),
      description: Type.Optional(Type.String({ maxLength: 10_000 })),
      author: Type.Optional(Type.String({ maxLength: 200 })),
    }),
    idempotencyFields: ['slug'],
    lifecycle: { creates: true, updates: true, groupKey: 'slug', meaningfulFields: ['title'] },
  });
  catalog.register({
    type: `${PREFIX}.dor_assessed`,
    description: 'Definition of Ready was assessed for a todo',
    domain: 'software-development',
    defaultLevel: 'workflow',
    payload: Type.Object({
      slug,
      score: Type.Integer({ minimum: 0, maximum: 10 }),
      verdict: Type.Union([Type.Literal('ready'), Type.Literal('needs_work'), Type.Literal('blocked')]),
      notes: Type.Optional(Type.String({ maxLength: 10_000 })),
      assessor: Type.Optional(Type.String({ maxLength: 200 })),
    }),
    idempotencyFields: ['slug', 'score', 'verdict'],
    lifecycle: { creates: true, updates: true, groupKey: 'slug', meaningfulFields: ['score', 'verdict'], requiresClaim: true },
    actionable: true,
    resolutionShape: { outcome: 'string' },
  });
  catalog.register({
    type: `${PREFIX}.ready`,
    description: 'A todo passed its readiness gate and can be built',
    domain: 'software-development',
    defaultLevel: 'workflow',
    payload: Type.Object({ slug, readyBy: Type.Optional(Type.String({ maxLength: 200 })) }),
    idempotencyFields: ['slug'],
    lifecycle: { updates: true, groupKey: 'slug', meaningfulFields: ['slug'] },
  });
  catalog.register({
    type: `${PREFIX}.closed`,
    description: 'A todo was closed (delivered, dropped or superseded)',
    domain: 'software-development',
    defaultLevel: 'workflow',
    payload: Type.Object({
      slug,
      reason: Type.Union([Type.Literal('delivered'), Type.Literal('dropped'), Type.Literal('superseded')]),
      note: Type.Optional(Type.String({ maxLength: 10_000 })),
    }),
    idempotencyFields: ['slug'],
    lifecycle: { resolves: true, groupKey: 'slug' },
  });
}
