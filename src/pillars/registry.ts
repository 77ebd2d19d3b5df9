/** The pillar packs by name. */
import { creativeProductionPack } from './creative-production.js';
import { customerRelationsPack } from './customer-relations.js';
import { UnknownPillarError } from './errors.js';
import { marketingPack } from './marketing.js';
import type { PillarName, PillarPack, PillarPackInit } from './pack.js';
import { softwareDevelopmentPack } from './software-development.js';

/** A pillar as `weft init --pillar` lists it. */
export interface PillarInfo {
  readonly name: PillarName;
  /** One line. */
  readonly description: string;
}

const BUILDERS: Readonly<Record<PillarName, (init: PillarPackInit) => PillarPack>> = {
  'software-development': () => softwareDevelopmentPack(),
  marketing: (init) => marketingPack(init),
  'creative-production': () => creativeProductionPack(),
  'customer-relations': () => customerRelationsPack(),
};

/**
 * The four pillars, with one line each.
 * @example
 * for (const p of PILLARS) console.log(`${p.name}  ${p.description}`);
 */
export const PILLARS: readonly PillarInfo[] = (Object.keys(BUILDERS) as PillarName[]).map((name) => ({
  name,
  description: (BUILDERS[name] as (init: PillarPackInit) => PillarPack)({}).description,
}));

/** Whether `name` is a pillar. */
export function isPillarName(name: string): name is PillarName {
  return Object.hasOwn(BUILDERS, name);
}

/**
 * One pillar pack, as data (nothing is written).
 * @throws {UnknownPillarError} naming the pillars there are.
 * @example
 * const pack = pillarPack('marketing', { keywords: ['pricing', 'launch'] });
 * pack.cartridges.map((c) => c.manifest.name); // ['content-pipeline', 'campaign-budget-monitor', 'feed-monitor']
 */
export function pillarPack(name: string, init: PillarPackInit = {}): PillarPack {
  if (!isPillarName(name)) throw new UnknownPillarError(name, PILLARS.map((p) => p.name));
  return BUILDERS[name](init);
}
