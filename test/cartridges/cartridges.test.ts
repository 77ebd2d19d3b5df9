/** The cartridge compliance suite on every built-in cartridge and on the sandbox adapter. */
import { after } from 'node:test';
import {
  classification,
  correlation,
  dedupCartridge,
  enrichment,
  notificationProjector,
  trustEvaluator,
} from '../../src/cartridges/index.js';
import { generateIdentity } from '../../src/identity/index.js';
import { MeshOutbox, meshPublisher, PeerBook } from '../../src/mesh/index.js';
import type { Cartridge } from '../../src/pipeline/index.js';
import { createCartridgeRuntime, promotionTracker } from '../../src/sovereignty/index.js';
import { silentLogger } from '../../src/util/index.js';
import { startTestNode } from '../helpers/node.js';
import { cartridge } from '../sovereignty/fixtures.js';
import { cartridgeCompliance } from './cartridge-compliance.js';
import { TODO } from './harness.js';

cartridgeCompliance('trust', () => trustEvaluator());
cartridgeCompliance('dedup', () => dedupCartridge());
cartridgeCompliance('enrichment', () => enrichment());
cartridgeCompliance('correlation', () => correlation());
cartridgeCompliance('classification', () => classification());
cartridgeCompliance('notification-projection', () => notificationProjector());
cartridgeCompliance('mesh-publisher', (h) => {
  const peers = new PeerBook({ computer: h.self.computer, cluster: 'home', nodeId: generateIdentity().nodeId }, [
    { computer: 'desktop', cluster: 'home', nodeId: generateIdentity().nodeId, trustLevel: 'peer', origin: 'static' },
  ]);
  const outbox = new MeshOutbox(h.ns.store);
  return meshPublisher({ peers, outbox: () => outbox, self: { computer: h.self.computer }, logger: silentLogger });
});
cartridgeCompliance('promotion-tracker', () => promotionTracker());

// The sandbox adapter: a cartridge package installed and activated in a real runtime, whose
// stage runs the package in the sandbox child process.
const started: Array<() => Promise<void>> = [];
after(async () => {
  for (const stop of started.splice(0)) await stop();
});
cartridgeCompliance('sandbox adapter', async (): Promise<Cartridge> => {
  const { node, dir, close } = await startTestNode();
  const runtime = createCartridgeRuntime({ dataDir: dir, builtins: node.pipeline.order }, { node, logger: silentLogger, clock: node.clock });
  started.push(async () => {
    await runtime.stop();
    await close();
  });
  await runtime.start();
  await runtime.install(
    cartridge('tagger', `function process(e) { e.payload.title = 'tagged: ' + e.payload.title; return e; }`, { consumes: [TODO] }),
    { origin: 'local' },
  );
  await runtime.activate('tagger');
  return runtime.stages()[0] as Cartridge;
});
