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
  /** A commander parser for whole numbers, naming the option on error. */
  int(name: string): (v: string) => number;
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
    .option('--json', 'machine-readable JSON output')
    .addOption(new Option('--log-level <level>', 'daemon log level').choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal']))
    .showHelpAfterError()
    .exitOverride();
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
    int: (name) => (v) => {
      if (!/^\d+$/.test(v)) throw new WeftError('WEFT_VALIDATION', `${name} must be a whole number, got '${v}'`);
      return Number(v);
    },
  };
}
