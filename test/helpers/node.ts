import { createNode, type NodeInit, type WeftNode } from '../../src/node/index.js';
import { tempDir } from './tmp.js';

/** A started embedded node on a temp dir, and its cleanup. */
export async function startTestNode(init: Partial<NodeInit> = {}): Promise<{ node: WeftNode; dir: string; close: () => Promise<void> }> {
  const t = tempDir('weft-node-');
  const node = await createNode({ dataDir: t.dir, computer: 'test', ...init });
  await node.start();
  return {
    node,
    dir: t.dir,
    close: async () => {
      await node.stop();
      t.cleanup();
    },
  };
}

/** Polls until `fn` is true, or fails after `ms` (a liveness bound, not a timing assertion). */
export async function waitFor(fn: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
