/** config: the TOML file, environment variables and their validation. */
export * from './config.js';
export * from './redis-keys.js';
export * from './data-dir.js';
