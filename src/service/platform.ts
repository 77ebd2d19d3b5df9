/** Which user service manager a platform has: systemd on Linux, launchd on macOS. */
import { ValidationError } from '../errors/index.js';

/** The platforms `weft service` writes for. */
export const SERVICE_PLATFORMS = ['linux', 'darwin'] as const;

export type ServicePlatform = (typeof SERVICE_PLATFORMS)[number];

/**
 * The platform to write for: the one asked for, else the running one; any other fails with the way out.
 * @example
 * resolvePlatform(undefined, 'linux'); // 'linux'
 * resolvePlatform('darwin', 'linux'); // 'darwin' (write a launchd agent from Linux, e.g. to look at it)
 */
export function resolvePlatform(
  asked: string | undefined,
  running: string = process.platform,
): ServicePlatform {
  const p = asked ?? running;
  if ((SERVICE_PLATFORMS as readonly string[]).includes(p)) return p as ServicePlatform;
  throw new ValidationError(
    asked === undefined
      ? `weft service knows systemd (linux) and launchd (darwin), not ${p}; run 'weft daemon' under this system's own supervisor`
      : `--platform must be one of ${SERVICE_PLATFORMS.join(', ')}, got '${p}'`,
    { platform: p },
  );
}
