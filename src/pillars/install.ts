/** Writes a pillar pack into a data directory: `<data_dir>/company/domains/<pillar>/`. */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { domainDir, ensureLayout, layoutOf } from '../domains/index.js';
import { PACKAGE_FILES, writePackageDir } from '../sovereignty/index.js';
import { PillarExistsError } from './errors.js';
import type { PillarPack, PillarPackInit } from './pack.js';
import { pillarPack } from './registry.js';

/** Options of {@link installPillar}. */
export interface InstallPillarOptions extends PillarPackInit {
  /**
   * Install over an existing domain of the pillar's name: rewrites domain.toml, README.md and
   * the pack's cartridges; other cartridges in the folder stay. Default false (refused).
   */
  readonly force?: boolean;
  readonly signal?: AbortSignal;
}

/** What {@link installPillar} wrote. */
export interface InstalledPillar {
  /** `<data_dir>/company/domains/<pillar>`. */
  readonly domainDir: string;
  /** The names of the cartridges written, in the pack's order. */
  readonly cartridges: readonly string[];
  /** Every path written: the layout's folders and READMEs when they were missing, then the domain's files. */
  readonly created: readonly string[];
}

async function writePack(dir: string, pack: PillarPack): Promise<string[]> {
  const written: string[] = [];
  await mkdir(join(dir, 'cartridges'), { recursive: true, mode: 0o700 });
  await writeFile(join(dir, 'domain.toml'), pack.domainToml, 'utf8');
  written.push(join(dir, 'domain.toml'));
  await writeFile(join(dir, 'README.md'), pack.readme, 'utf8');
  written.push(join(dir, 'README.md'));
  for (const c of pack.cartridges) {
    const cdir = join(dir, 'cartridges', c.manifest.name);
    await writePackageDir(cdir, c);
    written.push(join(cdir, PACKAGE_FILES.manifest), join(cdir, PACKAGE_FILES.source));
  }
  return written;
}

/**
 * Installs a pillar: its domain.toml, starter cartridges and README under
 * `<data_dir>/company/domains/<pillar>/` (creating the data directory's folders where they are
 * missing). A new domain is written aside and moved into place, so a failed install leaves
 * nothing half-written. The daemon picks it up at its next start or `weft domains reload`.
 * @throws {PillarExistsError} when the domain exists and `force` is not set.
 * @throws {UnknownPillarError} naming the pillars there are.
 * @example
 * const { domainDir, cartridges } = await installPillar(cfg.data_dir, 'software-development');
 * // cartridges: ['build-notifier', 'review-reminder', 'deploy-tracker', 'incident-tracker']
 */
export async function installPillar(dataDir: string, name: string, options: InstallPillarOptions = {}): Promise<InstalledPillar> {
  options.signal?.throwIfAborted();
  const pack = pillarPack(name, options);
  const dir = domainDir(dataDir, pack.name);
  const cartridges = pack.cartridges.map((c) => c.manifest.name);
  if (existsSync(dir) && !options.force) throw new PillarExistsError(pack.name, dir);
  const { created } = await ensureLayout(dataDir);
  options.signal?.throwIfAborted();
  if (existsSync(dir)) {
    if (!options.force) throw new PillarExistsError(pack.name, dir);
    return { domainDir: dir, cartridges, created: [...created, ...(await writePack(dir, pack))] };
  }
  // Beside the domains folder, not in it: the loader would take a temporary folder for a domain.
  const tmp = join(layoutOf(dataDir).company, `.pillar-${pack.name}-${randomBytes(4).toString('hex')}`);
  try {
    const written = await writePack(tmp, pack);
    options.signal?.throwIfAborted();
    try {
      await rename(tmp, dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') throw new PillarExistsError(pack.name, dir);
      throw err;
    }
    return { domainDir: dir, cartridges, created: [...created, dir, ...written.map((p) => join(dir, p.slice(tmp.length + 1)))] };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
