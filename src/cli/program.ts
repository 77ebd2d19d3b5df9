/**
 * The `weft` program, loaded by main.ts unless a fast path answered first: the core commands
 * (core.ts), then only the command modules the command word needs (modules.ts).
 */
import { CommanderError } from 'commander';
import { misspeltEnv } from '../config/index.js';
import { isWeftError } from '../errors/index.js';
import { createCliContext, jsonWanted } from './context.js';
import { forTerminal } from './format.js';
import { moduleLoadHint } from './load-hint.js';
import { coreCommands } from './core.js';
import { commandWord, modulesFor } from './modules.js';

async function main(): Promise<void> {
  const ctx = createCliContext();
  const { program, g } = ctx;
  // A misspelt variable is ignored, so the node would quietly run on a default: say so.
  for (const { name, meant } of misspeltEnv(process.env)) {
    process.stderr.write(`weft: warning: ${name} is set, but Weft reads no such variable (did you mean ${meant}?); it is ignored\n`);
  }
  coreCommands(ctx);
  const core = new Set(program.commands.flatMap((c) => [c.name(), ...c.aliases()]));
  const wanted = modulesFor(commandWord(process.argv.slice(2)), core);
  try {
    const registers = await Promise.all(wanted.map((m) => m.load()));
    for (const register of registers) register(ctx);
    await program.parseAsync(process.argv);
  } catch (err) {
    // With --json every error is one line of JSON on stderr, shaped as the API's ({ error: { code, message } }).
    const json = g().json === true || jsonWanted(process.argv.slice(2));
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      // Without --json commander has printed the message and the help already.
      if (json && err.exitCode !== 0) console.error(JSON.stringify({ error: { code: 'WEFT_VALIDATION', message: usageMessage(err) } }));
      return;
    }
    if (isWeftError(err)) {
      if (json) console.error(JSON.stringify({ error: err.toJSON() }));
      else console.error(`weft: ${forTerminal(err.message)}`);
      process.exitCode = err.exitCode;
      return;
    }
    const message = `${(err as Error).message ?? String(err)}${moduleLoadHint(err)}`;
    if (json) console.error(JSON.stringify({ error: { code: 'WEFT_INTERNAL', message } }));
    else console.error(`weft: ${forTerminal(message)}`);
    process.exitCode = 1;
  }
}

/** A usage error in words, without commander's 'error: ' (a command group run without its subcommand says so). */
function usageMessage(err: CommanderError): string {
  if (err.code === 'commander.help') return 'a subcommand is missing: add --help to see them';
  return err.message.replace(/^error: /, '');
}

await main();
