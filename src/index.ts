/** weft: the public face of the package. */
export * from './bus/index.js';
export * from './cartridges/index.js';
export * from './catalog/index.js';
export * from './client/index.js';
export * from './config/index.js';
export * from './daemon/index.js';
export * from './node/index.js';
export * from './envelope/index.js';
export * from './delivery/index.js';
export * from './errors/index.js';
export * from './pipeline/index.js';
export * from './store/index.js';
export * from './util/index.js';
