/** util: small shared pieces: the injected clock and logger types. */
export * from './clock.js';
export * from './logger.js';
export * from './canonical-json.js';
export * from './ids.js';
export * from './mutex.js';
export * from './pause.js';
export * from './pacer.js';
export * from './lazy.js';
export * from './program.js';
export * from './json-depth.js';
export * from './session-id.js';
export * from './failure-streak.js';
export * from './control-chars.js';
export * from './did-you-mean.js';
export * from './url-display.js';
