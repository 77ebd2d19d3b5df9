/**
 * demo: three nodes in one process on the embedded default (SQLite each) linked by the
 * memory provider, showing visibility routing, a forged frame refused, and a cartridge going
 * through the sovereignty gate into the sandbox. `weft demo` runs it; it needs nothing else.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CARTRIDGE_EVENTS } from '../catalog/index.js';
import { type AssembledNode, assembleNode } from '../daemon/index.js';
import { generateIdentity, loadOrCreateIdentity, type NodeIdentity } from '../identity/index.js';
import type { KnownPeer } from '../mesh/index.js';
import { attachSovereignty, type CartridgePackage, publishedPayload, type Sovereignty } from '../sovereignty/index.js';
import { encodeFrame, MemoryNetwork, memoryProvider } from '../transport/index.js';
import { silentLogger, systemClock } from '../util/index.js';

/** User options of the demo. */
export interface DemoInit {
  /** Where the three data directories go (a new temporary directory, removed at the end, by default). */
  root?: string;
  /** Longest wait for one step, in ms (default 10,000). */
  stepTimeoutMs?: number;
}

/** What the demo found, for tests and callers. */
export interface DemoResult {
  /** Which computers received each ping, by its visibility. */
  received: Record<'local' | 'cluster' | 'public', string[]>;
  rejected: { code: string; reason: string };
  /** Invocation count of the demo cartridge on beta at the end. */
  invocations: number;
  durationMs: number;
}

const NODES = [
  { computer: 'alpha', cluster: 'home', autonomy: 'L1' },
  { computer: 'beta', cluster: 'home', autonomy: 'L1' },
  { computer: 'gamma', cluster: 'work', autonomy: 'L3' },
] as const;

type Name = (typeof NODES)[number]['computer'];

interface DemoNode {
  a: AssembledNode;
  sov: Sovereignty;
}

const PING = 'mesh.test.ping';

/** The demo cartridge: answers every ping it sees with a greeting ping. Runs only in the sandbox. */
const GREETER: CartridgePackage = {
  manifest: {
    name: 'greeter',
    version: '1.0.0',
    author: 'alpha',
    description: 'answers every mesh.test.ping with a greeting',
    entryPoint: 'process',
    dependencies: [],
    consumes: [PING],
    emits: [PING],
  },
  source:
    "function process(event, ctx) {\n  ctx.emit('mesh.test.ping', { n: event.payload.n + 1000, note: 'greeter says hi to ' + event.payload.note });\n  return event;\n}\n",
};

/**
 * Runs the demo, printing each step through `print`. Everything it starts is stopped and its
 * temporary directories are removed, also on failure.
 * @example
 * const r = await runDemo((line) => console.log(line));
 * r.received.cluster; // ['beta']
 */
export async function runDemo(print: (line: string) => void, init: DemoInit = {}): Promise<DemoResult> {
  const t0 = Date.now();
  const timeout = init.stepTimeoutMs ?? 10_000;
  const root = init.root ?? mkdtempSync(join(tmpdir(), 'weft-demo-'));
  const ownRoot = init.root === undefined;
  const net = new MemoryNetwork();
  const nodes = {} as Record<Name, DemoNode>;
  const started: DemoNode[] = [];
  try {
    print(`weft demo: three nodes in one process (embedded SQLite each, memory mesh), data in ${root}`);
    const ids = Object.fromEntries(
      NODES.map((n) => {
        const dir = join(root, n.computer);
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        return [n.computer, loadOrCreateIdentity(join(dir, 'identity.key')).identity];
      }),
    ) as Record<Name, NodeIdentity>;
    for (const n of NODES) {
      const peers: KnownPeer[] = NODES.filter((p) => p.computer !== n.computer).map((p) => ({
        computer: p.computer,
        cluster: p.cluster,
        nodeId: ids[p.computer].nodeId,
        trustLevel: 'peer',
        origin: 'static',
      }));
      const a = await assembleNode({
        dataDir: join(root, n.computer),
        computer: n.computer,
        cluster: n.cluster,
        mesh: { provider: memoryProvider({ network: net, computer: n.computer }), peers, options: { resendAfterMs: 500 } },
      });
      const sov = await attachSovereignty(
        { dataDir: join(root, n.computer), autonomy: n.autonomy, promotionThreshold: 10 },
        { node: a.node, logger: silentLogger, clock: a.node.clock },
      );
      await a.start();
      await sov.start();
      nodes[n.computer] = { a, sov };
      started.push(nodes[n.computer]);
      print(`  ${n.computer.padEnd(6)} cluster ${n.cluster.padEnd(5)} autonomy ${n.autonomy}  fingerprint ${ids[n.computer].fingerprint}`);
    }
    const { alpha, beta, gamma } = nodes;
    const wait = (what: string, fn: () => boolean) => waitFor(fn, timeout, what);

    // 1. visibility routing
    print('');
    print('1. visibility routing: alpha emits one mesh.test.ping per visibility');
    const notes = (d: DemoNode) =>
      d.a.node.ns.notifications.list({ eventType: PING, limit: 100 }).items.map((x) => String(x.payload.note));
    for (const [n, visibility] of (['local', 'cluster', 'public'] as const).entries()) {
      await alpha.a.node.emit({ event: PING, visibility, payload: { n: n + 1, note: visibility } });
    }
    await wait('the cluster and public pings', () => notes(beta).length === 2 && notes(gamma).length === 1);
    await wait('alpha to commit its own pings', () => notes(alpha).length === 3);
    const received = { local: [] as string[], cluster: [] as string[], public: [] as string[] };
    for (const v of ['local', 'cluster', 'public'] as const) {
      for (const c of ['beta', 'gamma'] as const) if (notes(nodes[c]).includes(v)) received[v].push(c);
      print(`   ${v.padEnd(8)} received by: ${received[v].length > 0 ? received[v].join(', ') : '(no peer)'}`);
    }
    print(`   alpha received none of its own events back (mesh events in: ${alpha.a.mesh?.counters.eventsIn ?? 0})`);

    // 2. a forged frame
    print('');
    print('2. forged event: a frame signed by an unknown key is put into beta\'s inbox');
    const intruder = generateIdentity();
    const forged = encodeFrame(
      {
        type: 'events',
        sequence: 1,
        timestamp: Date.now(),
        body: {
          envelopes: [
            {
              id: 'forged-0000000000000001',
              event: PING,
              version: 1,
              source: 'intruder',
              timestamp: new Date().toISOString(),
              level: 1,
              domain: 'mesh',
              description: 'forged',
              visibility: 'public',
              payload: { n: 666, note: 'forged' },
            },
          ],
        },
      },
      { identity: intruder },
    );
    const raw = memoryProvider({ network: net, computer: 'intruder' })({ logger: silentLogger, clock: systemClock });
    await raw.start();
    await raw.send('beta', forged);
    await raw.stop();
    const rejections = () => beta.a.node.ns.notifications.list({ eventType: CARTRIDGE_EVENTS.meshEventRejected, limit: 10 }).items;
    await wait('beta to reject the forged frame', () => rejections().length > 0);
    const r0 = rejections()[0]?.payload as { code?: string; reason?: string };
    const rejected = { code: String(r0.code ?? '?'), reason: String(r0.reason ?? '?') };
    print(`   beta: mesh.event.rejected  ${rejected.reason.startsWith(rejected.code) ? rejected.reason : `${rejected.code}: ${rejected.reason}`}`);
    print(`   the forged ping reached beta's pipeline: ${notes(beta).includes('forged') ? 'YES (bug)' : 'no'}`);

    // 3. a cartridge through the sovereignty gate
    print('');
    print(`3. cartridge: alpha publishes '${GREETER.manifest.name}' ${GREETER.manifest.version} (cartridge.published, public)`);
    await alpha.a.node.emit({ event: CARTRIDGE_EVENTS.published, visibility: 'public', payload: publishedPayload(GREETER) });
    const pending = () => beta.a.node.ns.notifications.list({ eventType: CARTRIDGE_EVENTS.installPending, limit: 10 }).items;
    await wait('beta to hold the cartridge', () => pending().length === 1);
    const held = pending()[0];
    if (!held) throw new Error('no install_pending notification on beta');
    print(`   beta  (L1): held: notification #${held.id} ${held.eventType} (actionable: ${held.actionable}); installed: ${beta.sov.runtime.registry.find('greeter') ? 'yes' : 'no'}`);
    await wait('gamma to install at once', () => gamma.sov.runtime.registry.find('greeter') !== undefined);
    print(`   gamma (L3): installed at once, ${gamma.sov.runtime.registry.get('greeter').status} (a human still activates it)`);
    print(`   alpha: its own publication is not installed on it (installed: ${alpha.sov.runtime.registry.find('greeter') ? 'yes' : 'no'})`);

    const entry = beta.a.node.catalog.get(held.eventType);
    await beta.a.node.ns.notifications.resolve(held.id, { resolution: { approved: true }, ...(entry ? { entry } : {}) });
    await beta.sov.onApproved(held.id, true);
    const installed = beta.sov.runtime.registry.get('greeter');
    print(`   beta: a human approves #${held.id} (weft notifications resolve ${held.id} --approve)`);
    print(`         -> installed ${installed.name} ${installed.version}, ${installed.status}, in ${join(beta.sov.runtime.registry.dirs.incoming, 'greeter.js')}`);
    const active = await beta.sov.runtime.activate('greeter');
    print(`   beta: weft cartridges activate greeter -> ${active.status}; it runs in the sandbox`);
    for (let i = 1; i <= 3; i++) await beta.a.node.emit({ event: PING, visibility: 'local', payload: { n: 100 + i, note: `hello ${i}` } });
    const count = () => beta.sov.runtime.registry.get('greeter').invocationCount;
    const greetings = () => notes(beta).filter((n) => n.startsWith('greeter says hi to hello')).sort();
    await wait('three runs of greeter', () => count() >= 3 && greetings().length === 3);
    print(`   beta: three pings went through greeter; it emitted "${greetings()[0]}", ...`);
    print(`   beta: weft cartridges list -> greeter ${installed.version} active, invocation count: ${count()}`);

    const durationMs = Date.now() - t0;
    print('');
    print(`done in ${(durationMs / 1000).toFixed(1)} s`);
    return { received, rejected, invocations: count(), durationMs };
  } finally {
    for (const d of started.reverse()) {
      await d.sov.gate.stop().catch(() => undefined);
      await d.a.stop().catch(() => undefined);
      await d.sov.stop().catch(() => undefined);
    }
    if (ownRoot) rmSync(root, { recursive: true, force: true });
    print(ownRoot ? 'stopped the three nodes and removed their temporary directories' : 'stopped the three nodes');
  }
}

async function waitFor(fn: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (fn()) return;
    if (Date.now() > deadline) throw new Error(`weft demo: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
