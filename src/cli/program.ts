/**
 * The `weft` program, loaded by main.ts unless a fast path answered first: the core commands
 * (core.ts), then only the command modules the command word needs (modules.ts).
 */
import { CommanderError } from 'commander';
import { misspeltEnv } from '../config/index.js';
import { isWeftError } from '../errors/index.js';
import { createCliContext } from './context.js';
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
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    if (isWeftError(err)) {
      if (g().json) console.error(JSON.stringify({ error: err.toJSON() }));
      else console.error(`weft: ${forTerminal(err.message)}`);
      process.exitCode = err.exitCode;
      return;
    }
    console.error(`weft: ${forTerminal((err as Error).message ?? String(err))}${moduleLoadHint(err)}`);
    process.exitCode = 1;
  }
}

await main();
