/** pillars: ready-made domains for software development, marketing, creative production and customer relations (settings, starter cartridges, docs), and their install. */
export { PillarExistsError, UnknownPillarError } from './errors.js';
export { type InstalledPillar, type InstallPillarOptions, installPillar } from './install.js';
export { CARTRIDGE_KIT, PILLAR_AUTHOR, type PillarName, type PillarPack, type PillarPackInit } from './pack.js';
export { isPillarName, PILLARS, type PillarInfo, pillarPack } from './registry.js';
export { softwareDevelopmentPack } from './software-development.js';
export { DEFAULT_MARKETING_KEYWORDS, FEED_MIN_CONFIDENCE, marketingPack } from './marketing.js';
export { APPROVAL_SLA_HOURS, creativeProductionPack } from './creative-production.js';
export { customerRelationsPack, LOW_AVERAGE, LOW_SCORE } from './customer-relations.js';
