/**
 * `weft <command>` loads only the command modules that add or extend that command
 * (src/cli/modules.ts), so a call like `weft emit` does not pay for thirty others. Each must
 * still see exactly the commands, subcommands and options it would see with every module
 * loaded, or a subcommand would be "unknown" only when called directly.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Command } from 'commander';
import { createCliContext } from '../../src/cli/context.js';
import { coreCommands } from '../../src/cli/core.js';
import { COMMAND_MODULES, commandWord, modulesFor } from '../../src/cli/modules.js';
import { weft } from '../helpers/cli.js';

/** A command's whole surface: names, aliases, options and subcommands, recursively. */
function surface(c: Command): unknown {
  return {
    name: c.name(),
    aliases: c.aliases(),
    options: c.options.map((o) => o.flags),
    commands: c.commands.map(surface),
  };
}

async function program(modules: typeof COMMAND_MODULES) {
  const ctx = createCliContext();
  coreCommands(ctx);
  for (const m of modules) (await m.load())(ctx);
  return ctx.program;
}

const coreNames = async () => new Set((await program([])).commands.flatMap((c) => [c.name(), ...c.aliases()]));

test('each command module lists exactly the top-level commands it adds or extends', async () => {
  const ctx = createCliContext();
  coreCommands(ctx);
  const snapshot = () => new Map(ctx.program.commands.map((c) => [c.name(), JSON.stringify(surface(c))]));
  for (const m of COMMAND_MODULES) {
    const before = snapshot();
    (await m.load())(ctx);
    const touched = [...snapshot()].filter(([name, s]) => before.get(name) !== s).map(([name]) => name);
    assert.deepEqual([...touched].sort(), [...m.commands].sort(), `module ${m.name}`);
  }
});

test('every command, loaded for its own word, has the surface it has with every module loaded', async () => {
  const full = await program(COMMAND_MODULES);
  const core = await coreNames();
  assert.ok(full.commands.length > 20, 'the full program has the modules\' commands');
  for (const c of full.commands) {
    for (const word of [c.name(), ...c.aliases()]) {
      const lazy = await program(modulesFor(word, core));
      const mine = lazy.commands.find((x) => x.name() === c.name());
      assert.ok(mine, `weft ${word} is known when loaded for its word`);
      assert.deepEqual(surface(mine), surface(c), `weft ${word}`);
    }
  }
});

test('core commands load no module; help, no word and an unknown word load every module', async () => {
  const core = await coreNames();
  for (const word of ['emit', 'notifications', 'n', 'daemon', 'schemas', 'doctor']) assert.deepEqual(modulesFor(word, core), [], word);
  assert.deepEqual(modulesFor('events', core).map((m) => m.name), ['events']);
  assert.deepEqual(modulesFor('identity', core).map((m) => m.name), ['node', 'recovery']);
  for (const word of [undefined, 'help', 'mesj']) assert.equal(modulesFor(word, core).length, COMMAND_MODULES.length, String(word));
});

test('the command word skips the global options and their values', () => {
  assert.equal(commandWord(['--json', '-c', 'x.toml', 'mesh', 'status']), 'mesh');
  assert.equal(commandWord(['--config', 'mesh', '--log-level', 'debug', 'emit', 'a.b']), 'emit');
  assert.equal(commandWord(['--json']), undefined);
  assert.equal(commandWord(['--', 'peers']), 'peers');
});

test('a module command and a typo behave as with every module loaded, in a real process', () => {
  const help = weft(['identity', '--help'], {});
  assert.equal(help.code, 0, help.stderr);
  // `show` and `rotate` come from the node commands, `export` and `import` from recovery's.
  for (const sub of ['show', 'rotate', 'export', 'import']) assert.match(help.stdout, new RegExp(`\\n  ${sub}\\b`), sub);
  const typo = weft(['mesj'], {});
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /unknown command 'mesj'[\s\S]*Did you mean mesh\?/);
});
