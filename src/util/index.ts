/** util: small shared pieces: the injected clock and logger types. */
export * from './clock.js';
export * from './logger.js';
