/**
 * Two whole nodes in this process over the in-memory network for the mirror's tests: `src`
 * (the source) does not know `dst` until `admit()` (so what it logged before was never pushed
 * to `dst`: only a mirror can bring it), `dst` knows `src` from the start. The memory network
 * keeps each node's inbox across a restart, like a Redis stream.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TrustEvaluatorInit } from '../../src/cartridges/index.js';
import { type AssembledNode, assembleNode } from '../../src/daemon/assemble.js';
import type { MirrorInit } from '../../src/federation/index.js';
import { loadOrCreateIdentity } from '../../src/identity/index.js';
import type { KnownPeer, TrustLevel } from '../../src/mesh/index.js';
import { MemoryNetwork, memoryProvider } from '../../src/transport/index.js';
import type { Logger } from '../../src/util/index.js';
import { tempDir } from '../helpers/tmp.js';

/** WEFT_TEST_LOG=1 prints the nodes' warnings and errors. */
function testLogger(name: string): Logger | undefined {
  if (!process.env.WEFT_TEST_LOG) return undefined;
  const at = (level: string) => (a: unknown, b?: unknown) => console.error(`[${name} ${level}]`, typeof a === 'string' ? a : `${String(b ?? '')} ${JSON.stringify(a)}`);
  const noop = () => undefined;
  const l: Logger = { trace: noop, debug: process.env.WEFT_TEST_LOG === 'debug' ? at('debug') : noop, info: noop, warn: at('warn'), error: at('error'), fatal: at('fatal'), child: () => l };
  return l;
}

export interface MirrorPair {
  src: AssembledNode;
  dst: AssembledNode;
  ids: { src: string; dst: string };
  /** `src` learns `dst` (with this trust level and cluster). */
  admit(trust?: TrustLevel, cluster?: string): void;
  restart(name: 'src' | 'dst'): Promise<AssembledNode>;
  /** `src` stops pushing by visibility (its publisher's outbox takes nothing) until it restarts: only a mirror brings what it logs. */
  pushOff(): void;
  cleanup(): Promise<void>;
}

export async function mirrorPair(opts: { mirror?: Partial<MirrorInit>; srcCluster?: string; srcTrust?: Omit<TrustEvaluatorInit, 'rate'> } = {}): Promise<MirrorPair> {
  const t = tempDir('weft-mirror-');
  const net = new MemoryNetwork();
  const ids = { src: '', dst: '' };
  for (const c of ['src', 'dst'] as const) {
    mkdirSync(join(t.dir, c), { recursive: true });
    ids[c] = loadOrCreateIdentity(join(t.dir, c, 'identity.key')).identity.nodeId;
  }
  const mirror: MirrorInit = { beatMs: 100, window: 128, inFlight: 4, ...opts.mirror };
  const admitted: KnownPeer[] = [];
  const build = async (c: 'src' | 'dst'): Promise<AssembledNode> => {
    const peers: KnownPeer[] = c === 'dst' ? [{ computer: 'src', cluster: opts.srcCluster ?? 'pair', nodeId: ids.src, trustLevel: 'peer', origin: 'static' }] : [...admitted];
    const n = await assembleNode({
      dataDir: join(t.dir, c),
      computer: c,
      cluster: c === 'src' ? (opts.srcCluster ?? 'pair') : 'pair',
      // Emitting as fast as a test can is no flood.
      system: { trust: { rate: false, ...(c === 'src' ? opts.srcTrust : {}) } },
      mesh: { provider: memoryProvider({ network: net, computer: c }), peers, federation: { mirror } },
    }, { ...(testLogger(c) ? { logger: testLogger(c) } : {}) });
    await n.start();
    return n;
  };
  const pair: MirrorPair = {
    src: await build('src'),
    dst: await build('dst'),
    ids,
    admit(trust = 'peer', cluster = 'pair') {
      const p: KnownPeer = { computer: 'dst', cluster, nodeId: ids.dst, trustLevel: trust, origin: 'static' };
      admitted.splice(0, admitted.length, p);
      pair.src.peers.upsert(p);
    },
    async restart(c) {
      await pair[c].stop();
      pair[c] = await build(c);
      return pair[c];
    },
    pushOff() {
      const outbox = pair.src.mesh?.outbox;
      if (outbox) outbox.addFor = () => undefined;
    },
    async cleanup() {
      await pair.dst.stop();
      await pair.src.stop();
      t.cleanup();
    },
  };
  return pair;
}

/** Emits pings n = from .. from + count - 1 (cluster unless said), in chunks. */
export async function emitPings(n: AssembledNode, from: number, count: number, visibility: (i: number) => 'local' | 'cluster' | 'public' = () => 'cluster'): Promise<void> {
  for (let i = from; i < from + count; i += 500) {
    const batch = [];
    for (let j = i; j < Math.min(from + count, i + 500); j++) batch.push({ event: 'mesh.test.ping', visibility: visibility(j), payload: { n: j } });
    await n.node.emitMany(batch);
  }
}

/** Waits until the node's pipeline has consumed everything in its log. */
export async function idle(n: AssembledNode): Promise<void> {
  if (!(await n.node.idle(30_000))) throw new Error(`${n.node.self.computer}'s pipeline did not catch up in 30 s`);
}
