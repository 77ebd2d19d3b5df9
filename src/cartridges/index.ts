/** cartridges: the built-in system cartridges. */
export * from './dedup.js';
export * from './notification-projector.js';
export * from './session-lineage.js';
export * from './classification.js';
export * from './correlation.js';
export * from './enrichment.js';
export * from './event-kind.js';
export * from './system-pipeline.js';
export * from './trust/index.js';
