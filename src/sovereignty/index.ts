/** sovereignty: cartridge packages (manifest + source), dependency ordering, the sandboxed cartridge runtime, the sovereignty gate (L1/L2/L3) with its guardians, and promotion tracking. */
export * from './dag.js';
export * from './errors.js';
export * from './package.js';
export * from './sandbox/index.js';
export * from './registry.js';
export * from './alpha-lanes.js';
export * from './cartridge-stage.js';
export * from './runtime.js';
export * from './published.js';
export * from './guardian.js';
export * from './rule-guardian.js';
export * from './command-guardian.js';
export * from './gate.js';
export * from './attach.js';
export * from './promotion.js';
