/** `weft cartridges`: installed cartridges and their lifecycle, through the daemon's API. */
import { resolve } from 'node:path';
import type { CartridgeView } from '../../api/index.js';
import type { CommandModule } from '../context.js';
import { table } from '../format.js';

function row(c: CartridgeView): Record<string, unknown> {
  return {
    name: c.name,
    version: c.version,
    author: c.author,
    status: c.status,
    origin: c.origin,
    invocations: c.invocationCount,
    'last invoked': c.lastInvokedAt,
    failures: c.failureCount,
  };
}

function describe(c: CartridgeView): string {
  return `cartridge ${c.name} ${c.version} is ${c.status}`;
}

/**
 * Adds `weft cartridges list | install <path> | publish <path> | activate <name> [--alpha] | reject <name> |
 * promote <name>`.
 * @example
 * // weft cartridges install ./tagger && weft cartridges activate tagger
 */
export const cartridgesCommands: CommandModule = (ctx) => {
  const cartridges = ctx.program
    .command('cartridges')
    .description('installed cartridges: install, activate (or run as alpha), reject, promote');
  const name = (n: string) => encodeURIComponent(n);

  cartridges
    .command('list')
    .description('installed cartridges with status, origin, invocation and failure counts')
    .action(async () => {
      const r = await (await ctx.client()).request<{ items: CartridgeView[] }>('GET', '/api/cartridges');
      ctx.out(table(r.items.map(row)), r);
    });
  cartridges
    .command('install <path>')
    .description('install a cartridge package directory (manifest.json + cartridge.js); it stays pending until activated')
    .action(async (path: string) => {
      const r = await (await ctx.client()).request<{ cartridge: CartridgeView; changed: boolean; repaired?: boolean }>(
        'POST',
        '/api/cartridges/install',
        { path: resolve(path) },
      );
      const c = r.cartridge;
      const again = c.status === 'suspended' ? `; bring it back with: weft cartridges activate ${c.name}` : '';
      ctx.out(
        r.changed
          ? `installed ${c.name} ${c.version} (${c.status}); activate it with: weft cartridges activate ${c.name}`
          : r.repaired
            ? `${c.name} ${c.version} is installed (${c.status}); its files did not match the installed source and were written again${again}`
            : `${c.name} ${c.version} is already installed (${c.status})`,
        r,
      );
    });
  cartridges
    .command('publish <path>')
    .description('publish a package directory to the mesh (cartridge.published, visibility public); peers decide through their sovereignty gate')
    .action(async (path: string) => {
      // A publication the node's pipeline stopped (a duplicate of an earlier one) is an error saying why: nothing went out.
      const r = await (await ctx.client()).request<{ id: string; name: string; version: string; visibility: string; outcome?: string }>(
        'POST',
        '/api/cartridges/publish',
        { path: resolve(path) },
      );
      const queued = r.outcome === 'queued' ? ' (queued: the pipeline sends it to peers once it has passed the events before it)' : '';
      ctx.out(`published ${r.name} ${r.version} (${r.visibility}) as event ${r.id}${queued}`, r);
    });
  cartridges
    .command('activate <name>')
    .description('run a pending cartridge in the pipeline, or with --alpha beside it (it may only add events)')
    .option('--alpha', 'run as alpha: after the approved pipeline, on copies of its output')
    .action(async (n: string, o: { alpha?: boolean }) => {
      const c = await (await ctx.client()).request<CartridgeView>('POST', `/api/cartridges/${name(n)}/activate`, {
        alpha: o.alpha === true,
      });
      ctx.out(describe(c), c);
    });
  cartridges
    .command('reject <name>')
    .description('stop and remove a cartridge (its files are deleted; the record stays)')
    .action(async (n: string) => {
      const c = await (await ctx.client()).request<CartridgeView>('POST', `/api/cartridges/${name(n)}/reject`, {});
      ctx.out(describe(c), c);
    });
  cartridges
    .command('promote <name>')
    .description('move an alpha cartridge into the approved pipeline')
    .action(async (n: string) => {
      const c = await (await ctx.client()).request<CartridgeView>('POST', `/api/cartridges/${name(n)}/promote`, {});
      ctx.out(describe(c), c);
    });
};
