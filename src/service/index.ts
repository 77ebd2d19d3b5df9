/** service: run the node at login as a systemd user unit (Linux) or a launchd agent (macOS). */
export * from './definition.js';
export * from './environment.js';
export * from './install.js';
export * from './launchctl.js';
export * from './launchd.js';
export * from './manager.js';
export * from './managers.js';
export * from './paths.js';
export * from './platform.js';
export * from './report.js';
export * from './runner.js';
export * from './spec.js';
export * from './status.js';
export * from './systemctl.js';
export * from './systemd.js';
export * from './uninstall.js';
