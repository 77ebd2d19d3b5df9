/** sovereignty: cartridge packages (manifest + source), dependency ordering, and the sandboxed cartridge runtime. */
export * from './dag.js';
export * from './errors.js';
export * from './package.js';
export * from './sandbox/index.js';
export * from './registry.js';
export * from './runtime.js';
export * from './published.js';
