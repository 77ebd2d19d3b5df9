/** The shared context every CLI command module receives. */
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { connect, type WeftClient } from '../client/index.js';
import { loadConfig, type WeftConfig } from '../config/index.js';
import { WeftError } from '../errors/index.js';
import { VERSION } from '../version.js';
import { forTerminal } from './format.js';

export interface Globals {
  config?: string;
  json?: boolean;
  logLevel?: string;
}

export interface CliContext {
  program: Command;
  /** Global options. */
  g(): Globals;
  /** The effective config (flags, environment, file). */
  cfg(): WeftConfig;
  /** A client of the running daemon. */
  client(): Promise<WeftClient>;
  /** Prints human text (control characters shown, not acted on), or the JSON value, exact, with --json. */
  out(human: string, json: unknown): void;
  /** Parses a JSON object argument, or @file. */
  parseJsonArg(what: string, v: string): Record<string, unknown>;
  /**
   * A commander parser for whole numbers, naming the option on error: a usage error (exit 2)
   * for anything but digits and for a number outside `range` (default 0 to 2^53 - 1), before
   * any request, so the daemon never answers with its schema's wording.
   * @example
   * .option('--limit <n>', 'how many, 1 to 1000', int('--limit', PAGE_LIMIT), 20)
   */
  int(name: string, range?: IntRange): (v: string) => number;
}

/** The whole numbers an option takes, both ends included. */
export interface IntRange {
  min?: number;
  max?: number;
}

/** A page's --limit, as every listing route of the API takes it. */
export const PAGE_LIMIT: IntRange = { min: 1, max: 1000 };
/** A --cursor (a nextCursor of a previous page) or a row id: positions start at 1. */
export const POSITION: IntRange = { min: 1 };

/**
 * Checks a whole-number argument.
 * @example
 * parseWholeNumber('--limit', '20', PAGE_LIMIT); // 20
 */
export function parseWholeNumber(name: string, v: string, range: IntRange = {}): number {
  const min = range.min ?? 0;
  const max = range.max ?? Number.MAX_SAFE_INTEGER;
  const span = max === Number.MAX_SAFE_INTEGER ? (min === 0 ? 'a whole number' : `a whole number from ${min} up`) : `a whole number from ${min} to ${max}`;
  const n = /^\d+$/.test(v.trim()) ? Number(v.trim()) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new WeftError('WEFT_VALIDATION', `${name} must be ${span}, got '${v}'`);
  return n;
}

/**
 * Whether the arguments ask for --json (before any `--`): known before commander has parsed
 * them, so that a usage error it finds is shaped as JSON too.
 * @example
 * jsonWanted(['events', 'list', '--json']); // true
 */
export function jsonWanted(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).includes('--json');
}

/** Commands that print only text (a running daemon's banner, the demo's story): --json is refused, not ignored. */
const TEXT_ONLY = new WeakSet<Command>();

/**
 * Marks a command as printing text only, so that `--json` with it is a usage error rather than
 * text where a script expects one JSON document.
 * @example
 * textOnly(program.command('demo')).action(...)
 */
export function textOnly(cmd: Command): Command {
  TEXT_ONLY.add(cmd);
  return cmd;
}

/**
 * Refuses an empty value given on the command line (`--type ""`, `weft emit ""`): a script whose
 * variable came out empty would otherwise list everything (an empty filter is no filter) or get
 * the API's schema wording back. Defaults are not checked; a value of spaces counts as empty.
 */
function refuseEmpty(cmd: Command): void {
  for (const opt of cmd.options) {
    const key = opt.attributeName();
    if (cmd.getOptionValueSource(key) !== 'cli') continue;
    const v = cmd.getOptionValue(key) as unknown;
    const values = Array.isArray(v) ? v : [v];
    if (values.some((x) => typeof x === 'string' && x.trim() === '')) {
      throw new WeftError('WEFT_VALIDATION', `${opt.long ?? opt.flags} is empty: give it a value, or leave it out`);
    }
  }
  cmd.registeredArguments.forEach((arg, i) => {
    const v = cmd.args[i];
    const values = arg.variadic ? cmd.args.slice(i) : [v];
    if (values.some((x) => typeof x === 'string' && x.trim() === '')) throw new WeftError('WEFT_VALIDATION', `<${arg.name()}> is empty: give it a value`);
  });
}

/** A module that adds commands to the program. */
export type CommandModule = (ctx: CliContext) => void;

export function createCliContext(): CliContext {
  const program = new Command();
  program
    .name('weft')
    .description('Weft: a sovereign event mesh. Emit events, see notifications, and run a node.')
    .version(VERSION)
    .option('-c, --config <path>', 'config file (default: $WEFT_CONFIG or ~/.weft/config.toml)')
    .option('--json', 'machine-readable: one JSON document on stdout; an error is one line {"error":{"code","message"}} on stderr')
    .addOption(new Option('--log-level <level>', 'daemon log level').choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal']))
    .showHelpAfterError()
    .addHelpText(
      'after',
      `
Exit codes: 0 done; 1 failed (the daemon refused, not found, no daemon answers: the --json
code says which, e.g. WEFT_NOT_FOUND, WEFT_STOPPED); 2 usage error (a bad option or value, a
config that does not allow it); 3 weft status: the node reports a problem.
Environment: WEFT_CONFIG (the config file), WEFT_URL and WEFT_TOKEN (the API to talk to, else
the data dir's daemon), and any config key (api.port: WEFT_API_PORT; weft config show lists the keys).

Example: weft emit system.worker.crashed -p '{"worker":"indexer","error":"disk full","restarts":1}'`,
    )
    .exitOverride();
  // With --json a usage error is one JSON line on stderr (program.ts), not commander's text and help.
  if (jsonWanted(process.argv.slice(2))) program.configureOutput({ writeErr: () => undefined });
  program.hook('preAction', (_program, action) => {
    if (program.opts<Globals>().json && TEXT_ONLY.has(action)) {
      throw new WeftError('WEFT_VALIDATION', `weft ${action.name()} has no JSON output: run it without --json`);
    }
    refuseEmpty(action);
  });
  const g = (): Globals => program.opts<Globals>();
  return {
    program,
    g,
    cfg: () => loadConfig({ path: g().config, overrides: g().logLevel ? { 'log.level': g().logLevel } : {} }),
    client: () => connect({ path: g().config }),
    out: (human, json) => console.log(g().json ? JSON.stringify(json, null, 2) : forTerminal(human)),
    parseJsonArg(what, v) {
      let text = v;
      if (v.startsWith('@')) {
        try {
          text = readFileSync(v.slice(1), 'utf8');
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          throw new WeftError('WEFT_VALIDATION', `${what}: cannot read ${v.slice(1)} (${code === 'ENOENT' ? 'no such file' : (code ?? (err as Error).message)})`);
        }
      }
      try {
        const o = JSON.parse(text) as unknown;
        if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new Error('not an object');
        return o as Record<string, unknown>;
      } catch (err) {
        throw new WeftError('WEFT_VALIDATION', `${what}: not a JSON object (${(err as Error).message})`);
      }
    },
    int: (name, range) => (v) => parseWholeNumber(name, v, range),
  };
}
