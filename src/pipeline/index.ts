/** pipeline: cartridges in order, emit() with group commit, and the exactly-once processor. */
export * from './build.js';
export * from './cartridge.js';
export * from './emitter.js';
export * from './processor.js';
export * from './pipeline.js';
export * from './refusals.js';
