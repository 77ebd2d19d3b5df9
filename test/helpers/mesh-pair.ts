/**
 * Two whole nodes (the daemon's own assembly, in this process) linked over a real transport:
 * the in-memory network, a real Redis, or real TLS sockets on 127.0.0.1. Each node pins the
 * other statically, with the shipped mesh defaults unless a test passes options. Tests also
 * get a raw link that speaks as one node (its key, its name) to put hand-made frames on the
 * wire, as a peer with a bug or an attacker holding the key would.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type AssembledNode, assembleNode } from '../../src/daemon/assemble.js';
import { loadOrCreateIdentity, type NodeIdentity } from '../../src/identity/index.js';
import type { MeshInit } from '../../src/mesh/index.js';
import {
  MemoryNetwork,
  memoryProvider,
  type Provider,
  type ProviderFactory,
  redisProvider,
  type TransportCap,
  tlsProvider,
} from '../../src/transport/index.js';
import { systemClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { freePort, TestRedis } from './redis.js';
import { tempDir } from './tmp.js';

export type Transport = 'memory' | 'redis' | 'tls';
export const TRANSPORTS: readonly Transport[] = ['memory', 'redis', 'tls'];

export interface MeshPair {
  transport: Transport;
  one: AssembledNode;
  two: AssembledNode;
  /** Identity of each node as loaded from its data dir. */
  ids: Record<'one' | 'two', NodeIdentity>;
  /** Stops a node and assembles it again on the same data dir and port (a restart). */
  restart(name: 'one' | 'two'): Promise<AssembledNode>;
  /** A raw link speaking as `as` (its key) towards the other node; stop it when done. Over TLS it replaces `as`'s mesh. */
  rawLink(as: 'one' | 'two', identity?: NodeIdentity): Promise<Provider>;
  /** Every frame a node's provider sent, as the bytes handed to the transport (before TLS encrypts them). */
  sent: Record<'one' | 'two', Uint8Array[]>;
  cleanup(): Promise<void>;
}

export interface PairOptions {
  /** Mesh options of node one (default: none, the shipped defaults). */
  oneMesh?: MeshInit;
  /** Caps the memory provider offers (memory only). */
  providerCaps?: TransportCap[];
  /** Caps one node's provider declares, on any transport (a peer that cannot do a feature). */
  capsOf?: Partial<Record<'one' | 'two', TransportCap[]>>;
}

/** Two linked nodes over `transport`; see the module comment. */
export async function meshPair(transport: Transport, opts: PairOptions = {}): Promise<MeshPair> {
  const t = tempDir(`weft-pair-${transport}-`);
  const names = ['one', 'two'] as const;
  const ids = {} as Record<'one' | 'two', NodeIdentity>;
  for (const c of names) {
    mkdirSync(join(t.dir, c), { recursive: true });
    ids[c] = loadOrCreateIdentity(join(t.dir, c, 'identity.key')).identity;
  }
  const redis = transport === 'redis' ? await TestRedis.start() : undefined;
  const net = transport === 'memory' ? new MemoryNetwork() : undefined;
  const ports = { one: await freePort(), two: await freePort() };
  const sent: MeshPair['sent'] = { one: [], two: [] };
  const other = (c: 'one' | 'two') => (c === 'one' ? 'two' : 'one');
  const links: Provider[] = [];

  const factory = (c: 'one' | 'two', computer: string = c, listen = true): ProviderFactory => {
    switch (transport) {
      case 'memory':
        return memoryProvider({ network: net as MemoryNetwork, computer, ...(opts.providerCaps ? { caps: opts.providerCaps } : {}) });
      case 'redis':
        return redisProvider({ url: (redis as TestRedis).url, computer });
      case 'tls': {
        const o = other(c);
        return tlsProvider({
          computer,
          host: '127.0.0.1',
          ...(listen ? { port: ports[c] } : {}),
          peers: [{ computer: o, nodeId: ids[o].nodeId, host: '127.0.0.1', port: ports[o] }],
        });
      }
    }
  };
  /** The node's provider, with every send recorded. */
  const tapped = (c: 'one' | 'two'): ProviderFactory => (deps) => {
    const p = factory(c)(deps);
    const caps = opts.capsOf?.[c];
    if (caps) Object.defineProperty(p, 'caps', { value: new Set(caps) });
    const send = p.send.bind(p);
    p.send = (peer, bytes) => {
      sent[c].push(bytes);
      return send(peer, bytes);
    };
    return p;
  };
  const build = async (c: 'one' | 'two'): Promise<AssembledNode> => {
    const o = other(c);
    const n = await assembleNode({
      dataDir: join(t.dir, c),
      computer: c,
      cluster: 'pair',
      mesh: {
        provider: tapped(c),
        peers: [{ computer: o, cluster: 'pair', nodeId: ids[o].nodeId, trustLevel: 'peer', origin: 'static' }],
        ...(c === 'one' && opts.oneMesh ? { options: opts.oneMesh } : {}),
      },
    });
    await n.start();
    return n;
  };
  const pair: MeshPair = {
    transport,
    one: await build('one'),
    two: await build('two'),
    ids,
    sent,
    async restart(c) {
      await pair[c].stop();
      pair[c] = await build(c);
      return pair[c];
    },
    async rawLink(as, identity = ids[as]) {
      // Over Redis and memory a link needs a name of its own (it would otherwise read `as`'s
      // inbox); the frames still say who signed them. Over TLS the key is the name, and a key
      // has one link at a time: the raw link takes the place of `as`'s own mesh, which stops.
      if (transport === 'tls') await pair[as].mesh?.stop();
      const p = factory(as, transport === 'tls' ? as : `${as}-raw`, false)({ logger: silentLogger, clock: systemClock, identity });
      // A TLS link can send once its handshake is done.
      const up =
        transport === 'tls'
          ? new Promise<void>((resolve, reject) => {
              const timer = setTimeout(() => reject(new Error(`the raw TLS link to ${other(as)} did not come up in 10 s`)), 10_000);
              const off = p.on((e) => {
                if (e.type !== 'peer.connected') return;
                clearTimeout(timer);
                off();
                resolve();
              });
            })
          : Promise.resolve();
      links.push(p);
      await p.start();
      await up;
      return p;
    },
    async cleanup() {
      for (const l of links) await l.stop();
      await pair.one.stop();
      await pair.two.stop();
      await redis?.stop();
      t.cleanup();
    },
  };
  return pair;
}
