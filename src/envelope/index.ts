/** envelope: the five-layer event envelope, its validation and its stable byte forms. */
export * from './envelope.js';
export * from './serialize.js';
export * from './stream.js';
export * from './validate.js';
export * from './limits.js';
