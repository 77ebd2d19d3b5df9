/** cartridges: the built-in system cartridges. */
export * from './dedup.js';
export * from './notification-projector.js';
