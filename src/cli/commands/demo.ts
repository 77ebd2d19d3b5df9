/** `weft demo`: three nodes in one process, no daemon and no config needed. */
import { type CommandModule, textOnly } from '../context.js';

/**
 * Adds `weft demo`.
 * @example
 * // weft demo
 */
export const demoCommands: CommandModule = (ctx) => {
  textOnly(ctx.program.command('demo'))
    .description('run three nodes in this process (two in cluster home, one in work) and show routing, a forged event refused and a cartridge through the sovereignty gate')
    .action(async () => {
      const { runDemo } = await import('../../demo/index.js');
      await runDemo((line) => console.log(line));
    });
};
