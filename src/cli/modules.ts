/**
 * The command modules beside the core commands, each loaded only for the top-level commands it
 * adds or extends: `weft emit` and `weft notifications list` load none of them, `weft mesh
 * status` loads the node commands only. With no command word, `help` or a word nobody claims,
 * every module is loaded, so help lists everything and a typo gets its suggestion.
 * test/cli/lazy-commands.test.ts checks each list against what its module registers.
 */
import type { CommandModule } from './context.js';

export interface LazyCommandModule {
  readonly name: string;
  /** The top-level commands it adds or adds subcommands to. */
  readonly commands: readonly string[];
  load(): Promise<CommandModule>;
}

/** In the order they register: a module that extends another's command comes after it. */
export const COMMAND_MODULES: readonly LazyCommandModule[] = [
  { name: 'node', commands: ['status', 'pipeline', 'quarantine', 'rejections', 'deadletters', 'deliveries', 'identity', 'peers', 'mesh', 'audit'], load: async () => (await import('./commands/node.js')).registerNodeCommands },
  { name: 'cartridges', commands: ['cartridges'], load: async () => (await import('./commands/cartridges.js')).cartridgesCommands },
  { name: 'privacy', commands: ['observe', 'trust', 'summaries', 'query', 'privacy'], load: async () => (await import('./commands/privacy.js')).privacyCommands },
  { name: 'dashboard', commands: ['dashboard'], load: async () => (await import('./commands/dashboard.js')).dashboardCommands },
  { name: 'service', commands: ['service'], load: async () => (await import('./commands/service.js')).serviceCommands },
  { name: 'demo', commands: ['demo'], load: async () => (await import('./commands/demo.js')).demoCommands },
  { name: 'members', commands: ['members'], load: async () => (await import('./commands/members.js')).membersCommands },
  // Adds `weft pipeline domains` under the node commands' `pipeline`.
  { name: 'domains', commands: ['pipeline', 'init', 'domains', 'personal'], load: async () => (await import('./commands/domains.js')).domainsCommands },
  { name: 'signals', commands: ['signals'], load: async () => (await import('./commands/signals.js')).signalsCommands },
  // Adds to the core `events` command.
  { name: 'events', commands: ['events'], load: async () => (await import('./commands/events.js')).eventsCommands },
  { name: 'mounts', commands: ['mounts'], load: async () => (await import('./commands/mounts.js')).mountsCommands },
  { name: 'invoke', commands: ['invoke'], load: async () => (await import('./commands/invoke.js')).invokeCommands },
  { name: 'sessions', commands: ['sessions'], load: async () => (await import('./commands/sessions.js')).sessionsCommands },
  // Adds `weft identity export/import` under the node commands' `identity`, and `weft backup`.
  { name: 'recovery', commands: ['identity', 'recovery', 'backup'], load: async () => (await import('./commands/recovery.js')).recoveryCommands },
  // Adds `weft config autonomy ...` under the core `config` command.
  { name: 'autonomy', commands: ['config'], load: async () => (await import('./commands/autonomy.js')).autonomyCommands },
];

/** Global options that take a value (the word after them is not the command). */
const GLOBAL_OPTIONS_WITH_VALUE = new Set(['-c', '--config', '--log-level']);

/**
 * The command word of the arguments after `node weft`: the first one that is neither a global
 * option nor its value; undefined when there is none.
 * @example
 * commandWord(['--json', '-c', 'x.toml', 'mesh', 'status']) === 'mesh'
 */
export function commandWord(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--') return args[i + 1];
    if (GLOBAL_OPTIONS_WITH_VALUE.has(a)) {
      i++;
      continue;
    }
    if (!a.startsWith('-')) return a;
  }
  return undefined;
}

/**
 * The modules a command word needs, in registration order: those that claim it; every module
 * when none does and the core commands (`core`: names and aliases) do not have it either.
 */
export function modulesFor(word: string | undefined, core: ReadonlySet<string>): LazyCommandModule[] {
  const claimed = word === undefined ? [] : COMMAND_MODULES.filter((m) => m.commands.includes(word));
  if (claimed.length > 0 || (word !== undefined && core.has(word))) return claimed;
  return [...COMMAND_MODULES];
}
