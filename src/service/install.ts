/** `weft service install`: write the unit or agent (0600), make the log directory, load it when the manager answers. */
import { basename, dirname } from 'node:path';
import { commandLine, commandLog, type InstallKind, type RanCommand } from './manager.js';
import { serviceManager } from './managers.js';
import type { ServicePlatform } from './platform.js';
import type { ServiceRunner } from './runner.js';
import type { ServiceSpec } from './spec.js';
import { environmentFileOf } from './systemd.js';

/** What happened to one file. */
export type FileAction = 'created' | 'changed' | 'unchanged';

/** What install wrote (or, with dryRun, would write) and did. */
export interface InstallResult {
  /** False when the manager answered but refused to load the service. */
  ok: boolean;
  platform: ServicePlatform;
  dryRun: boolean;
  kind: InstallKind;
  files: Array<{ role: string; path: string; mode: string; action: FileAction; text?: string }>;
  /** An environment file of an earlier install in another data dir, removed (it may hold secrets). */
  removed: string[];
  /** Directories made (or that would be). */
  directories: string[];
  /** Names of the WEFT_* variables the service gets (values stay in the 0600 file). */
  variables: string[];
  /** WEFT_* variables of this shell left out, with why. */
  skipped: Array<{ name: string; reason: string }>;
  /** The daemon's command line. */
  command: string[];
  logFile: string;
  manager: { name: string; loaded: boolean; reachable: boolean | null; reason?: string };
  ran: RanCommand[];
  /** Commands the user should run: the service was written but not loaded. */
  toRun: string[];
  error?: string;
}

export interface InstallDeps {
  runner: ServiceRunner;
  /** Load into the user's service manager (default true); false only writes the files. */
  load?: boolean;
  /** Compute and show, write and run nothing. */
  dryRun?: boolean;
  signal?: AbortSignal;
}

/**
 * Writes the service files (0600, atomically, only those that differ), makes the data and log directories (0700),
 * then loads the service if the user's service manager answers; otherwise says what to run. Idempotent.
 * @example
 * const r = await installService(spec, { runner: systemRunner() });
 * r.kind; // 'new', then 'unchanged' on a second run
 */
export async function installService(spec: ServiceSpec, deps: InstallDeps): Promise<InstallResult> {
  deps.signal?.throwIfAborted();
  const { runner } = deps;
  const manager = serviceManager(spec, runner);
  const files = spec.files.map((f) => {
    const now = runner.read(f.path);
    const action: FileAction = !now
      ? 'created'
      : now.text === f.text && now.mode === spec.mode
        ? 'unchanged'
        : 'changed';
    return { file: f, action };
  });
  const definitionExisted = files.some(
    (f) => f.file.path === spec.paths.definition && f.action !== 'created',
  );
  const kind: InstallKind = files.every((f) => f.action === 'unchanged')
    ? 'unchanged'
    : definitionExisted
      ? 'changed'
      : 'new';
  // The data dir moved since the last install: the old environment file would stay behind with its secrets.
  const before = runner.read(spec.paths.definition);
  const oldEnv = before ? environmentFileOf(before.text) : undefined;
  const stale =
    oldEnv && oldEnv !== spec.paths.environment && basename(oldEnv) === 'service.env' && runner.exists(oldEnv)
      ? oldEnv
      : undefined;
  const wanted = [spec.dataDir, spec.paths.logDir, ...spec.files.map((f) => dirname(f.path))].filter(
    (d, i, all) => all.indexOf(d) === i,
  );
  const result: InstallResult = {
    ok: true,
    platform: spec.platform,
    dryRun: deps.dryRun === true,
    kind,
    files: files.map(({ file, action }) => ({
      role: file.role,
      path: file.path,
      mode: spec.mode.toString(8).padStart(4, '0'),
      action,
      ...(deps.dryRun ? { text: file.shown } : {}),
    })),
    removed: [],
    directories: [],
    variables: Object.keys(spec.environment.variables),
    skipped: spec.environment.skipped,
    command: spec.command,
    logFile: spec.paths.logFile,
    manager: { name: manager.name, loaded: false, reachable: null },
    ran: [],
    toRun: [],
  };
  if (deps.dryRun) {
    if (stale) result.removed.push(stale);
    result.directories = wanted
      .flatMap((d) => missingDirs(runner, d))
      .filter((d, i, all) => all.indexOf(d) === i);
    result.toRun = manager.loadPlan(kind).map(commandLine);
    return result;
  }
  for (const d of wanted) result.directories.push(...runner.mkdir(d, 0o700));
  for (const { file, action } of files)
    if (action !== 'unchanged') runner.write(file.path, file.text, spec.mode);
  if (stale && runner.remove(stale)) result.removed.push(stale);
  if (deps.load === false) {
    result.manager.reason = '--load false';
    result.toRun = manager.loadPlan(kind === 'unchanged' ? 'new' : kind).map(commandLine);
    return result;
  }
  const reach = await manager.probe(deps.signal ? { signal: deps.signal } : {});
  result.manager.reachable = reach.reachable;
  if (!reach.reachable) {
    result.manager.reason = reach.reason;
    // Unchanged files may never have been loaded: print the whole first-install sequence.
    result.toRun = manager.loadPlan(kind === 'unchanged' ? 'new' : kind).map(commandLine);
    return result;
  }
  const log = commandLog(runner, deps.signal ? { signal: deps.signal } : {});
  const loaded = await manager.load(kind, log);
  result.ran = log.ran;
  result.manager.loaded = loaded.ok;
  if (!loaded.ok) {
    result.ok = false;
    if (loaded.error) result.error = loaded.error;
  }
  return result;
}

/** The directories a mkdir of `d` would make, outermost first. */
function missingDirs(runner: ServiceRunner, d: string): string[] {
  const out: string[] = [];
  for (let p = d; !runner.exists(p) && dirname(p) !== p; p = dirname(p)) out.unshift(p);
  return out;
}
