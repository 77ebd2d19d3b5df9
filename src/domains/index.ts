/** domains: domain and personal pipelines after the system pipeline, their folders and settings, validation, members and the autonomy matrix. */
export * from './layout.js';
export * from './scope.js';
export * from './domain-config.js';
export * from './validate.js';
export * from './autonomy.js';
export * from './members.js';
export * from './loader.js';
export * from './runner.js';
export * from './lifecycle.js';
