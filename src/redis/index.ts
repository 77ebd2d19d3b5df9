/** redis: what every Redis user in Weft shares: the Lua scripts (trim own entries, claims) and a bounded close. */
export * from './claims.js';
export * from './scripts.js';
