/** catalog: the event-type registry (payload schemas, defaults, idempotency, lifecycle). */
import { Catalog } from './catalog.js';
import { registerSoftwareDevelopmentTypes } from './schemas/software-development.js';
import { registerSystemTypes } from './schemas/system.js';

export * from './catalog.js';
export { registerSoftwareDevelopmentTypes, registerSystemTypes };

/** A catalog with every built-in type registered. */
export function createDefaultCatalog(): Catalog {
  const c = new Catalog();
  registerSystemTypes(c);
  registerSoftwareDevelopmentTypes(c);
  return c;
}
