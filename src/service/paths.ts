/** Where the service files go: the unit or agent in the user's config, the environment file and logs in the data dir. */
import { isAbsolute, join } from 'node:path';
import type { ServicePlatform } from './platform.js';

/** The systemd unit's name and the launchd agent's label. */
export const SYSTEMD_UNIT = 'weft.service';
export const LAUNCHD_LABEL = 'dev.weft.daemon';

/** Every path `weft service` writes, reads or removes. */
export interface ServicePaths {
  /** The systemd unit or the launchd plist. */
  definition: string;
  /** systemd only: the WEFT_* variables, 0600, referenced by `EnvironmentFile=`. */
  environment?: string;
  /** systemd only: the link `systemctl --user enable` makes (removed by uninstall when systemctl cannot). */
  wantsLink?: string;
  /** `<data_dir>/logs`. */
  logDir: string;
  /** `<data_dir>/logs/service.log`: the daemon's stdout and stderr. */
  logFile: string;
}

export interface ServicePathsInit {
  platform: ServicePlatform;
  home: string;
  dataDir: string;
  /** The installing shell's environment; only XDG_CONFIG_HOME is read. */
  env?: NodeJS.ProcessEnv;
}

/**
 * The paths for a platform, home and data dir (`$XDG_CONFIG_HOME` is used when it is absolute, as the XDG spec says).
 * @example
 * servicePaths({ platform: 'linux', home: '/home/caro', dataDir: '/home/caro/.weft/data' }).definition;
 * // '/home/caro/.config/systemd/user/weft.service'
 */
export function servicePaths(init: ServicePathsInit): ServicePaths {
  const logDir = join(init.dataDir, 'logs');
  const logFile = join(logDir, 'service.log');
  if (init.platform === 'darwin') {
    return {
      definition: join(init.home, 'Library', 'LaunchAgents', `${LAUNCHD_LABEL}.plist`),
      logDir,
      logFile,
    };
  }
  const xdg = init.env?.XDG_CONFIG_HOME;
  const configHome = xdg && isAbsolute(xdg) ? xdg : join(init.home, '.config');
  const userDir = join(configHome, 'systemd', 'user');
  return {
    definition: join(userDir, SYSTEMD_UNIT),
    environment: join(init.dataDir, 'service.env'),
    wantsLink: join(userDir, 'default.target.wants', SYSTEMD_UNIT),
    logDir,
    logFile,
  };
}
