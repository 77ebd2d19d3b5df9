/** A user service manager (systemd's `systemctl --user`, launchd's `launchctl`) as `weft service` drives it. */
import type { ExecResult, ServiceRunner } from './runner.js';

/** Whether the user's service manager answers, and if not, why (said to the user as is). */
export type Reachability = { reachable: true } | { reachable: false; reason: string };

/** What the manager says about the service. */
export interface ManagerState {
  reachable: boolean;
  /** systemd: active, inactive, failed, activating...; launchd: running, loaded (not running), not loaded. */
  state?: string;
  /** systemd: enabled, disabled, ... */
  enabled?: string;
  pid?: number;
  /** Why the state is unknown. */
  reason?: string;
}

/** A command `weft service` ran, as it would be typed, and how it ended. */
export interface RanCommand {
  command: string;
  code: number | null;
  ok: boolean;
  /** Its stderr (or stdout), trimmed: what to read when it failed. */
  output: string;
}

/** How an install changed the files: first install, replaced, or the same as before. */
export type InstallKind = 'new' | 'changed' | 'unchanged';

/** Runs commands and keeps a record of each. */
export interface CommandLog {
  run(argv: string[]): Promise<RanCommand>;
  readonly ran: RanCommand[];
}

/** Drives one kind of user service manager. */
export interface ServiceManager {
  /** 'systemctl --user' or 'launchctl', for messages. */
  readonly name: string;
  probe(opts?: { signal?: AbortSignal }): Promise<Reachability>;
  /** The commands that load the service after an install of this kind (run, or printed when they cannot be). */
  loadPlan(kind: InstallKind): string[][];
  /** Loads the service; an unchanged one that is already loaded is left alone. */
  load(kind: InstallKind, log: CommandLog): Promise<{ ok: boolean; error?: string }>;
  /** Stops and unloads the service while its files are still there. */
  unload(log: CommandLog): Promise<{ ok: boolean; error?: string }>;
  /** What to run after the files are gone (systemd forgets the unit on daemon-reload). */
  afterRemove(log: CommandLog): Promise<void>;
  /** What to tell the user to run when the manager could not be reached at uninstall. */
  unloadHint(): string[][];
  state(opts?: { signal?: AbortSignal }): Promise<ManagerState>;
}

/**
 * Quotes an argument for a POSIX shell only when it needs it, so printed commands can be pasted.
 * @example
 * shellQuote("/home/caro/My Library/x.plist"); // "'/home/caro/My Library/x.plist'"
 */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * A command line for people: each argument quoted for a shell when needed.
 * @example
 * commandLine(['systemctl', '--user', 'enable', '--now', 'weft.service']); // 'systemctl --user enable --now weft.service'
 */
export function commandLine(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}

/**
 * A log that runs each command through the runner and records it.
 * @example
 * const log = commandLog(systemRunner());
 * await log.run(['systemctl', '--user', 'daemon-reload']);
 * log.ran; // [{ command: 'systemctl --user daemon-reload', code: 0, ok: true, output: '' }]
 */
export function commandLog(runner: ServiceRunner, opts: { signal?: AbortSignal } = {}): CommandLog {
  const ran: RanCommand[] = [];
  return {
    ran,
    async run(argv) {
      const [file, ...args] = argv;
      const r = await runner.exec(file as string, args, opts);
      const rec: RanCommand = {
        command: commandLine(argv),
        code: r.code,
        ok: r.code === 0,
        output: firstWords(r),
      };
      ran.push(rec);
      return rec;
    },
  };
}

/**
 * The useful part of a program's output: stderr if any, else stdout, trimmed and kept short.
 * @example
 * firstWords({ code: 1, stdout: '', stderr: 'Failed to connect to bus: No medium found\n', missing: false }); // 'Failed to connect to bus: No medium found'
 */
export function firstWords(r: ExecResult): string {
  const text = (r.stderr.trim() || r.stdout.trim()).replace(/\s*\n\s*/g, '; ');
  return text.length > 400 ? `${text.slice(0, 400)}...` : text;
}

/**
 * Whether a manager answered a probe, from the probe's result; `tool` names it in the reason.
 * @example
 * reachability({ code: 1, stdout: '', stderr: 'Failed to connect to bus\n', missing: false }, 'systemctl'); // { reachable: false, reason: 'Failed to connect to bus' }
 */
export function reachability(r: ExecResult, tool: string): Reachability {
  if (r.code === 0) return { reachable: true };
  return { reachable: false, reason: r.missing ? `${tool} is not installed` : firstWords(r) || `${tool} exited with ${r.code}` };
}
