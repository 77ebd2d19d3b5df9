/** redis: what every Redis user in Weft shares: the client factory (one server or a cluster), the Lua scripts (trim own entries, claims, the cluster registry) and a bounded close. */
export * from './claims.js';
export * from './client.js';
export * from './scripts.js';
