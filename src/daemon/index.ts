/** daemon: the process around a node: its config, files, lock, identity, mesh assembly and lifecycle. */
export * from './assemble.js';
export * from './daemon.js';
export * from './check-config.js';
export * from './identity-check.js';
export * from './doctor.js';
export * from './backup.js';
export * from './mesh-config.js';
export * from './run.js';
export * from './privacy-config.js';
export * from './redis-config.js';
