/** Everything an install would write, computed from the shell and the config (no side effects). */
import { type ServiceFile, SERVICE_FILE_MODE, type ServiceDefinition } from './definition.js';
import { type DaemonEnvironment, daemonEnvironment, maskSecrets } from './environment.js';
import { launchdPlist } from './launchd.js';
import { type ServicePaths, servicePaths } from './paths.js';
import type { ServicePlatform } from './platform.js';
import { systemdEnvironmentFile, systemdUnit } from './systemd.js';

export interface ServiceSpecInit {
  platform: ServicePlatform;
  /** Absolute path of the node binary (process.execPath). */
  node: string;
  /** Absolute path of `dist/src/cli/main.js`. */
  main: string;
  /** Absolute path of the config file, when --config or WEFT_CONFIG named one. */
  config?: string;
  /** The effective data dir (absolute). */
  dataDir: string;
  home: string;
  /** The user's id, for launchd's `gui/<uid>` domain. */
  uid: number;
  /** The installing shell's environment (WEFT_*, XDG_CONFIG_HOME). */
  env: NodeJS.ProcessEnv;
  /** The installing shell's working directory, for relative paths in WEFT_* variables. */
  cwd: string;
  /** Variables that win over the shell's (WEFT_LOG_LEVEL from --log-level). */
  overrides?: Record<string, string>;
}

/** The service for one platform: paths, the daemon's command line, its environment and the files to write. */
export interface ServiceSpec {
  platform: ServicePlatform;
  uid: number;
  dataDir: string;
  paths: ServicePaths;
  command: string[];
  environment: DaemonEnvironment;
  /** What install writes, in order; every one mode 0600. */
  files: ServiceFile[];
  mode: number;
}

/**
 * Computes what `weft service install` writes for a platform, shell and config, without touching anything.
 * @example
 * const spec = serviceSpec({ platform: 'linux', node: process.execPath, main: '/opt/weft/dist/src/cli/main.js',
 *   dataDir: '/home/caro/.weft/data', home: '/home/caro', uid: 1000, env: process.env, cwd: process.cwd() });
 * spec.files.map((f) => f.path); // ['/home/caro/.config/systemd/user/weft.service', '/home/caro/.weft/data/service.env']
 */
export function serviceSpec(init: ServiceSpecInit): ServiceSpec {
  const paths = servicePaths({
    platform: init.platform,
    home: init.home,
    dataDir: init.dataDir,
    env: init.env,
  });
  const environment = daemonEnvironment({
    env: init.env,
    cwd: init.cwd,
    ...(init.overrides ? { overrides: init.overrides } : {}),
  });
  const command = [init.node, init.main, 'daemon', ...(init.config ? ['--config', init.config] : [])];
  const def = (variables: Record<string, string>): ServiceDefinition => ({
    command,
    dataDir: init.dataDir,
    logFile: paths.logFile,
    variables,
    ...(paths.environment ? { environmentFile: paths.environment } : {}),
  });
  const masked = maskSecrets(environment);
  const files: ServiceFile[] =
    init.platform === 'darwin'
      ? [
          {
            role: 'plist',
            path: paths.definition,
            text: launchdPlist(def(environment.variables)),
            shown: launchdPlist(def(masked)),
          },
        ]
      : [
          {
            role: 'unit',
            path: paths.definition,
            text: systemdUnit(def(environment.variables)),
            shown: systemdUnit(def(masked)),
          },
          {
            role: 'environment',
            path: paths.environment as string,
            text: systemdEnvironmentFile(environment.variables),
            shown: systemdEnvironmentFile(masked),
          },
        ];
  return {
    platform: init.platform,
    uid: init.uid,
    dataDir: init.dataDir,
    paths,
    command,
    environment,
    files,
    mode: SERVICE_FILE_MODE,
  };
}
