/** api: the HTTP API and WebSocket hub a daemon serves on loopback, its routes and its metrics. */
export * from './cartridge-routes.js';
export * from './dashboard-auth.js';
export * from './dashboard-routes.js';
export * from './hub.js';
export * from './member-auth.js';
export * from './autonomy-routes.js';
export * from './domain-routes.js';
export * from './signal-routes.js';
export * from './metrics.js';
export * from './prometheus.js';
export * from './node-routes.js';
export * from './privacy-routes.js';
export * from './routes.js';
export * from './server.js';
