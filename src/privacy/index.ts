/** privacy: shell observation (hooks, spool, secrets filter, classifier), sharing policy and trust, signed summaries, aggregate queries. */
export * from './classify.js';
export * from './hooks.js';
export * from './observer.js';
export * from './policy.js';
export * from './privacy-store.js';
export * from './projection.js';
export * from './query.js';
export * from './secrets.js';
export * from './service.js';
export * from './spool.js';
export * from './summaries.js';
