/** catalog: the event-type registry (payload schemas, defaults, idempotency, lifecycle). */
import { Catalog } from './catalog.js';
import { CARTRIDGE_EVENTS, registerCartridgeTypes } from './schemas/cartridges.js';
import { registerCorrelationTypes } from './schemas/correlation.js';
import { DOMAIN_EVENTS, registerDomainTypes } from './schemas/domains.js';
import { FEDERATION_EVENTS, FEDERATION_HEALTH_MAP, registerFederationTypes } from './schemas/federation.js';
import { registerMeshTypes } from './schemas/mesh.js';
import { MESH_ROADMAP_EVENTS, MESH_ROADMAP_PREFIX, registerMeshRoadmapTypes } from './schemas/mesh-roadmap.js';
import {
  registerContentTypes,
  registerCreativeProductionTypes,
  registerCustomerRelationsTypes,
  registerDeploymentTypes,
  registerMarketingTypes,
  registerPillarTypes,
  registerSoftwareDevelopmentPillarTypes,
} from './schemas/pillars.js';
import { registerPrivacyTypes } from './schemas/privacy.js';
import { RECOVERY_EVENTS, registerRecoveryTypes } from './schemas/recovery.js';
import { registerSignalTypes, SIGNAL_EVENTS } from './schemas/signal.js';
import { registerSoftwareDevelopmentTypes } from './schemas/software-development.js';
import { registerSystemTypes } from './schemas/system.js';
import { registerTeleClaudeAliases, toTeleClaudeEvent } from './schemas/teleclaude.js';

export * from './catalog.js';
export * from './schemas/privacy.js';
export { BURST_DETECTED, FAILURE_CASCADE, TRUST_THROTTLED } from './schemas/correlation.js';
export { FEDERATION_EVENTS, FEDERATION_HEALTH_MAP, registerFederationTypes };
export { CARTRIDGE_EVENTS, DOMAIN_EVENTS, registerCartridgeTypes, registerDomainTypes, registerSignalTypes, SIGNAL_EVENTS };
export { registerCorrelationTypes, registerMeshTypes, registerSoftwareDevelopmentTypes, registerSystemTypes, registerTeleClaudeAliases, toTeleClaudeEvent };
export { MESH_ROADMAP_EVENTS, MESH_ROADMAP_PREFIX, registerMeshRoadmapTypes };
export { RECOVERY_EVENTS, registerRecoveryTypes };
export {
  registerContentTypes,
  registerCreativeProductionTypes,
  registerCustomerRelationsTypes,
  registerDeploymentTypes,
  registerMarketingTypes,
  registerPillarTypes,
  registerSoftwareDevelopmentPillarTypes,
};

/** A catalog with every built-in type registered, and the aliases TeleClaude's producers use. */
export function createDefaultCatalog(): Catalog {
  const c = new Catalog();
  registerSystemTypes(c);
  registerCorrelationTypes(c);
  registerSoftwareDevelopmentTypes(c);
  registerCartridgeTypes(c);
  registerMeshTypes(c);
  registerFederationTypes(c);
  registerRecoveryTypes(c);
  registerPrivacyTypes(c);
  registerDomainTypes(c);
  registerSignalTypes(c);
  registerPillarTypes(c);
  registerMeshRoadmapTypes(c);
  registerTeleClaudeAliases(c);
  return c;
}
