/** bus: the local event bus: the embedded SQLite log or a Redis stream with a consumer group. */
export * from './bus.js';
export * from './redis-bus.js';
export * from './sqlite-bus.js';
