/** signals: feeds polled into signal.ingest.received, clustered into signal.cluster.formed and synthesised into signal.synthesis.ready. */
export * from './types.js';
export * from './feeds/index.js';
export * from './text.js';
export * from './ingest.js';
export * from './cluster.js';
export * from './synthesize.js';
export * from './service.js';
