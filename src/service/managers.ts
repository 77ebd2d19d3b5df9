/** The user service manager of a spec's platform. */
import { launchdManager } from './launchctl.js';
import type { ServiceManager } from './manager.js';
import type { ServiceRunner } from './runner.js';
import type { ServiceSpec } from './spec.js';
import { systemdManager } from './systemctl.js';

/**
 * The manager for a spec's platform.
 * @example
 * serviceManager(spec, systemRunner()).name; // 'systemctl --user' on Linux
 */
export function serviceManager(spec: ServiceSpec, runner: ServiceRunner): ServiceManager {
  return spec.platform === 'darwin'
    ? launchdManager({ runner, uid: spec.uid, plist: spec.paths.definition })
    : systemdManager({ runner });
}
