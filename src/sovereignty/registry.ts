import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { IllegalTransitionError, NotFoundError, WeftError } from '../errors/index.js';
import { camelRow, type Store } from '../store/index.js';
import { Mutex } from '../util/index.js';
import { PackageIoError } from './errors.js';
import { type CartridgeManifest, type CartridgePackage, validateManifest, validatePackage } from './package.js';

/**
 * Where an installed cartridge is:
 * - `pending_activation`: installed (files in `incoming/`), waiting for a human to activate it;
 * - `active`: approved, runs in the pipeline in dependency order (files in `active/`);
 * - `alpha`: runs after the approved pipeline on copies of its output, may only add events;
 * - `suspended`: was active or alpha, stopped after repeated failures (files stay in `active/`);
 * - `rejected`: refused or removed; its files are deleted, the record stays for the list.
 */
export type CartridgeStatus = 'pending_activation' | 'active' | 'rejected' | 'alpha' | 'suspended';

/** Every status, in lifecycle order. */
export const CARTRIDGE_STATUSES: readonly CartridgeStatus[] = [
  'pending_activation',
  'active',
  'alpha',
  'suspended',
  'rejected',
];

/** Origin of a cartridge installed on this computer by hand (API, CLI). */
export const LOCAL_ORIGIN = 'local';

/** One installed cartridge, as `weft cartridges list` shows it. */
export interface InstalledCartridge {
  readonly name: string;
  readonly version: string;
  readonly author: string;
  readonly description: string;
  readonly status: CartridgeStatus;
  /** `local`, or the node id (or computer) of the peer it came from. */
  readonly origin: string;
  readonly manifest: CartridgeManifest;
  /** SHA-256 (hex) of the UTF-8 source; checked again whenever the source is loaded. */
  readonly sha256: string;
  readonly sourceBytes: number;
  /** Why it is suspended or rejected, when known. */
  readonly statusReason: string | null;
  readonly installedAt: string;
  readonly activatedAt: string | null;
  readonly updatedAt: string;
  /** Successful runs, from `cartridge_stats`. */
  readonly invocationCount: number;
  readonly lastInvokedAt: string | null;
  /** Events it failed on (they passed unchanged), from `cartridge_failures`, since this code was installed. */
  readonly failureCount: number;
  readonly lastFailedAt: string | null;
  readonly lastError: string | null;
}

/** User options of the registry. */
export interface CartridgeRegistryInit {
  /** The node's data directory; files go to `<dataDir>/cartridges/{incoming,active}/`. */
  dataDir: string;
}

/** Collaborators of the registry. */
export interface CartridgeRegistryDeps {
  /** The node's SQLite store (migration 4 created the `cartridges` table). */
  store: Store;
}

/** How an install is made. */
export interface InstallOptions {
  /** `local`, or the node id of the peer that published it. */
  origin: string;
  signal?: AbortSignal;
  /**
   * Set when a peer's publication is installed (the sovereignty gate): it never replaces a
   * record of another origin (a local cartridge, another peer's) unless `replaces` names that
   * record, its origin and version, as the human approved it. Unset: the operator's own install.
   */
  peer?: { replaces?: { origin: string; version: string } };
}

/** A record a peer's publication would replace although it came from elsewhere: what the human is asked about. */
export interface ReplacedRecord {
  readonly origin: string;
  readonly version: string;
  readonly status: CartridgeStatus;
}

/** What `install` did. */
export interface InstallResult {
  readonly cartridge: InstalledCartridge;
  /** False when the same name, version and source were already installed (an idempotent repeat). */
  readonly changed: boolean;
  /**
   * True when that repeat found the installed files missing or changed behind the node's back
   * and wrote them again (the record said which source they must be).
   */
  readonly repaired?: boolean;
}

interface Row {
  name: string;
  version: string;
  author: string;
  description: string;
  status: CartridgeStatus;
  origin: string;
  manifest: string;
  source_sha256: string;
  source_bytes: number;
  status_reason: string | null;
  installed_at: string;
  activated_at: string | null;
  updated_at: string;
  invocation_count?: number | null;
  last_invoked_at?: string | null;
  failure_count?: number | null;
  last_failed_at?: string | null;
  last_error?: string | null;
}

const SELECT = `SELECT c.*, s.invocation_count, s.last_invoked_at, f.failure_count, f.last_failed_at, f.last_error
  FROM cartridges c
  LEFT JOIN cartridge_stats s ON s.cartridge_name = c.name
  LEFT JOIN cartridge_failures f ON f.cartridge_name = c.name`;

/** SHA-256 of a cartridge source as UTF-8, in hex. */
export function sourceDigest(source: string): string {
  return createHash('sha256').update(source, 'utf8').digest('hex');
}

/**
 * Creates the registry of installed cartridges: records in SQLite, source and manifest files
 * under the data directory.
 * @example
 * const registry = createCartridgeRegistry({ dataDir }, { store: node.ns.store });
 * await registry.install(await readPackageDir('./tagger'), { origin: 'local' });
 * await registry.activate('tagger');
 */
export function createCartridgeRegistry(
  init: CartridgeRegistryInit,
  deps: CartridgeRegistryDeps,
): CartridgeRegistry {
  return new CartridgeRegistry(init, deps);
}

/**
 * Installed cartridges and their state machine. It only records and moves files: running them
 * is the cartridge runtime's job (`createCartridgeRuntime`), which also checks dependencies.
 */
export class CartridgeRegistry {
  /** `<dataDir>/cartridges/incoming` and `<dataDir>/cartridges/active`. */
  readonly dirs: { readonly incoming: string; readonly active: string };
  private readonly store: Store;
  private readonly lock = new Mutex();

  constructor(init: CartridgeRegistryInit, deps: CartridgeRegistryDeps) {
    const root = join(init.dataDir, 'cartridges');
    this.dirs = { incoming: join(root, 'incoming'), active: join(root, 'active') };
    this.store = deps.store;
  }

  /**
   * Installs a package with status `pending_activation`, writing `incoming/<name>.js` and
   * `incoming/<name>.manifest.json`. Installing the same name, version and source again changes
   * nothing but files found missing or changed, which it writes again (`repaired`); a different version replaces a pending (or rejected) one and starts its invocation
   * count (`cartridge_stats`) from 0, but a peer's publication
   * (`options.peer`) never replaces a record of another origin unless `peer.replaces` names it.
   * @throws {ManifestError} invalid package; {@link IllegalTransitionError} when another version
   * is active, alpha or suspended (reject it first); `WEFT_CONFLICT` when the same version
   * arrives with a different source, or a peer's publication would replace another origin's record.
   * @example
   * const { cartridge } = await registry.install(pkg, { origin: 'local' });
   * cartridge.status; // 'pending_activation'
   */
  async install(pkg: CartridgePackage, options: InstallOptions): Promise<InstallResult> {
    options.signal?.throwIfAborted();
    const valid = validatePackage(pkg);
    const { manifest, source } = valid;
    const origin = options.origin.trim();
    if (origin.length === 0 || origin.length > 300) {
      throw new WeftError('WEFT_VALIDATION', 'install origin must be "local" or a peer id of at most 300 characters');
    }
    const sha256 = sourceDigest(source);
    return this.exclusive(async () => {
      const existing = this.find(manifest.name);
      if (existing && existing.status !== 'rejected') {
        if (existing.version === manifest.version) {
          if (existing.sha256 !== sha256) {
            throw new WeftError(
              'WEFT_CONFLICT',
              `cartridge '${manifest.name}' ${manifest.version} is already installed with a different source; publish a new version`,
              { details: { name: manifest.name, version: manifest.version } },
            );
          }
          // The same package again restores files changed or lost behind the node's back (what
          // a refused load tells the operator to do).
          const dir = this.dirOf(existing);
          if (dir && !(await this.filesMatch(dir, manifest.name, sha256))) {
            await this.writeFiles(dir, valid);
            return { cartridge: existing, changed: false, repaired: true };
          }
          return { cartridge: existing, changed: false };
        }
        if (existing.status !== 'pending_activation') {
          throw new IllegalTransitionError(
            `cartridge '${manifest.name}' ${existing.version} is ${existing.status}: reject it before installing ${manifest.version}`,
            { name: manifest.name, from: existing.status, action: 'install' },
          );
        }
        const agreed = options.peer?.replaces;
        if (options.peer && this.wouldReplace(manifest.name, origin) && !(agreed?.origin === existing.origin && agreed.version === existing.version)) {
          throw new WeftError(
            'WEFT_CONFLICT',
            `cartridge '${manifest.name}' ${existing.version} (${existing.status}) came from ${existing.origin}; ${manifest.version} from ${origin} would replace it, which only a human may approve`,
            { details: { name: manifest.name, origin: existing.origin, version: existing.version } },
          );
        }
      }
      await this.writeFiles(this.dirs.incoming, valid);
      const now = this.store.nowIso();
      await this.store.write(() => {
        this.store.db
          .prepare(
            `INSERT INTO cartridges (name, version, author, description, status, origin, manifest, source_sha256,
               source_bytes, status_reason, installed_at, activated_at, updated_at)
             VALUES (?, ?, ?, ?, 'pending_activation', ?, ?, ?, ?, NULL, ?, NULL, ?)
             ON CONFLICT(name) DO UPDATE SET version = excluded.version, author = excluded.author,
               description = excluded.description, status = excluded.status, origin = excluded.origin,
               manifest = excluded.manifest, source_sha256 = excluded.source_sha256,
               source_bytes = excluded.source_bytes, status_reason = NULL, installed_at = excluded.installed_at,
               activated_at = NULL, updated_at = excluded.updated_at`,
          )
          .run(
            manifest.name,
            manifest.version,
            manifest.author,
            manifest.description,
            origin,
            JSON.stringify(manifest),
            sha256,
            Buffer.byteLength(source, 'utf8'),
            now,
            now,
          );
        // Runs and failures counted for the code it replaces are not this code's (promotion reads the count).
        this.store.db.prepare('DELETE FROM cartridge_stats WHERE cartridge_name = ?').run(manifest.name);
        this.store.db.prepare('DELETE FROM cartridge_failures WHERE cartridge_name = ?').run(manifest.name);
      });
      return { cartridge: this.get(manifest.name), changed: true };
    });
  }

  /**
   * `pending_activation` or `suspended` → `active` (or `alpha` with `{ alpha: true }`); moves
   * the files from `incoming/` to `active/`. Does not check dependencies: the runtime does,
   * before it calls this.
   * @throws {NotFoundError} unknown name; {@link IllegalTransitionError} from any other status.
   */
  async activate(name: string, options: { alpha?: boolean } = {}): Promise<InstalledCartridge> {
    const to: CartridgeStatus = options.alpha ? 'alpha' : 'active';
    return this.exclusive(async () => {
      const c = this.get(name);
      if (c.status !== 'pending_activation' && c.status !== 'suspended') {
        throw this.illegal(c, options.alpha ? 'activate as alpha' : 'activate');
      }
      if (c.status === 'pending_activation') await this.moveFiles(name, this.dirs.incoming, this.dirs.active);
      const now = this.store.nowIso();
      await this.store.write(() =>
        this.store.db
          .prepare(
            'UPDATE cartridges SET status = ?, status_reason = NULL, activated_at = ?, updated_at = ? WHERE name = ?',
          )
          .run(to, now, now, name),
      );
      return this.get(name);
    });
  }

  /**
   * `alpha` → `active`: the cartridge joins the approved pipeline.
   * @throws {NotFoundError} unknown name; {@link IllegalTransitionError} unless it is alpha.
   */
  async promote(name: string): Promise<InstalledCartridge> {
    return this.exclusive(async () => {
      const c = this.get(name);
      if (c.status !== 'alpha') throw this.illegal(c, 'promote');
      await this.setStatus(name, 'active', null);
      return this.get(name);
    });
  }

  /**
   * Any status but `rejected` → `rejected`; the source and manifest files are deleted, the
   * record stays so the list shows what was refused.
   * @throws {NotFoundError} unknown name; {@link IllegalTransitionError} when already rejected.
   */
  async reject(name: string, options: { reason?: string } = {}): Promise<InstalledCartridge> {
    return this.exclusive(async () => {
      const c = this.get(name);
      if (c.status === 'rejected') throw this.illegal(c, 'reject');
      await this.setStatus(name, 'rejected', options.reason ?? null);
      await this.removeFiles(name);
      return this.get(name);
    });
  }

  /**
   * `active` or `alpha` → `suspended` (the sandbox gave up on it after repeated failures). It
   * is not loaded again at the next start; `activate` brings it back.
   * @throws {NotFoundError} unknown name; {@link IllegalTransitionError} from other statuses.
   */
  async suspend(name: string, reason: string): Promise<InstalledCartridge> {
    return this.exclusive(async () => {
      const c = this.get(name);
      if (c.status !== 'active' && c.status !== 'alpha') throw this.illegal(c, 'suspend');
      await this.setStatus(name, 'suspended', reason.slice(0, 2000));
      return this.get(name);
    });
  }

  /**
   * The record a publication of `name` from `origin` would replace although it came from
   * elsewhere (a local cartridge, another peer's): pending or not, rejected ones aside. The
   * sovereignty gate asks a human before it replaces one.
   */
  wouldReplace(name: string, origin: string): ReplacedRecord | undefined {
    const c = this.find(name);
    if (!c || c.status === 'rejected' || c.origin === origin) return undefined;
    return { origin: c.origin, version: c.version, status: c.status };
  }

  /** The cartridge, or undefined. Reads committed state. */
  find(name: string): InstalledCartridge | undefined {
    const row = this.store.reader.prepare(`${SELECT} WHERE c.name = ?`).get(name) as Row | undefined;
    return row ? toInstalled(row) : undefined;
  }

  /**
   * The cartridge.
   * @throws {NotFoundError} naming it.
   */
  get(name: string): InstalledCartridge {
    const c = this.find(name);
    if (!c) throw new NotFoundError('cartridge', name);
    return c;
  }

  /** Every recorded cartridge (rejected ones included), by name, with invocation counts. */
  list(options: { status?: CartridgeStatus } = {}): InstalledCartridge[] {
    const rows = (
      options.status
        ? this.store.reader.prepare(`${SELECT} WHERE c.status = ? ORDER BY c.name`).all(options.status)
        : this.store.reader.prepare(`${SELECT} ORDER BY c.name`).all()
    ) as Row[];
    return rows.map(toInstalled);
  }

  /**
   * Reads an installed cartridge's package from its directory and checks that the source is
   * the one installed (its SHA-256), so a file changed behind the node's back is refused.
   * @throws {PackageIoError} missing file or a source that does not match the record.
   */
  async readPackage(name: string): Promise<CartridgePackage> {
    const c = this.get(name);
    if (c.status === 'rejected') throw new PackageIoError(`cartridge '${name}' is rejected: it has no files`);
    const dir = this.dirOf(c) as string;
    let source: string;
    try {
      source = await readFile(join(dir, `${name}.js`), 'utf8');
    } catch (err) {
      throw new PackageIoError(`cannot read cartridge '${name}' from ${dir}: ${(err as Error).message}`, err);
    }
    if (sourceDigest(source) !== c.sha256) {
      throw new PackageIoError(
        `cartridge '${name}': ${join(dir, `${name}.js`)} does not match the installed source (SHA-256 differs); install the same package again to restore it (weft cartridges install <its directory>)${c.status === 'pending_activation' ? '' : `, then weft cartridges activate ${name}`}`,
      );
    }
    return validatePackage({ manifest: c.manifest, source });
  }

  // ---- internals ----

  /** Where a cartridge's files are: `incoming/` while pending, `active/` after; none once rejected. */
  private dirOf(c: InstalledCartridge): string | undefined {
    if (c.status === 'rejected') return undefined;
    return c.status === 'pending_activation' ? this.dirs.incoming : this.dirs.active;
  }

  /** Whether the source file is there with the recorded SHA-256, and the manifest beside it. */
  private async filesMatch(dir: string, name: string, sha256: string): Promise<boolean> {
    try {
      const source = await readFile(join(dir, `${name}.js`), 'utf8');
      await readFile(join(dir, `${name}.manifest.json`), 'utf8');
      return sourceDigest(source) === sha256;
    } catch {
      return false;
    }
  }

  private async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.lock.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }

  private illegal(c: InstalledCartridge, action: string): IllegalTransitionError {
    return new IllegalTransitionError(`cannot ${action} cartridge '${c.name}': it is ${c.status}`, {
      name: c.name,
      from: c.status,
      action,
    });
  }

  private async setStatus(name: string, status: CartridgeStatus, reason: string | null): Promise<void> {
    const now = this.store.nowIso();
    await this.store.write(() =>
      this.store.db
        .prepare('UPDATE cartridges SET status = ?, status_reason = ?, updated_at = ? WHERE name = ?')
        .run(status, reason, now, name),
    );
  }

  /** Writes through a temporary file and a rename, so a crash never leaves half a source. */
  private async writeFiles(dir: string, pkg: CartridgePackage): Promise<void> {
    const { name } = pkg.manifest;
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await atomicWrite(join(dir, `${name}.js`), pkg.source);
      await atomicWrite(join(dir, `${name}.manifest.json`), `${JSON.stringify(pkg.manifest, null, 2)}\n`);
    } catch (err) {
      throw new PackageIoError(`cannot write cartridge '${name}' to ${dir}: ${(err as Error).message}`, err);
    }
  }

  private async moveFiles(name: string, from: string, to: string): Promise<void> {
    try {
      await mkdir(to, { recursive: true, mode: 0o700 });
      for (const file of [`${name}.js`, `${name}.manifest.json`]) await rename(join(from, file), join(to, file));
    } catch (err) {
      throw new PackageIoError(`cannot move cartridge '${name}' to ${to}: ${(err as Error).message}`, err);
    }
  }

  private async removeFiles(name: string): Promise<void> {
    for (const dir of [this.dirs.incoming, this.dirs.active]) {
      for (const file of [`${name}.js`, `${name}.manifest.json`]) await rm(join(dir, file), { force: true });
    }
  }
}

async function atomicWrite(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text, { encoding: 'utf8', mode: 0o600 });
  await rename(tmp, path);
}

function toInstalled(r: Row): InstalledCartridge {
  const { sourceSha256, ...rest } = camelRow(r);
  return {
    ...rest,
    manifest: validateManifest(JSON.parse(r.manifest)),
    sha256: sourceSha256,
    invocationCount: r.invocation_count ?? 0,
    lastInvokedAt: r.last_invoked_at ?? null,
    failureCount: r.failure_count ?? 0,
    lastFailedAt: r.last_failed_at ?? null,
    lastError: r.last_error ?? null,
  };
}
