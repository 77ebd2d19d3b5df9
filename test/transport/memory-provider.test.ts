import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateIdentity } from '../../src/identity/index.js';
import { MemoryNetwork, memoryProvider } from '../../src/transport/index.js';
import { systemClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { eventsFrame, providerCompliance, take } from './provider-compliance.js';

const deps = { logger: silentLogger, clock: systemClock };

providerCompliance('memory', async () => {
  const network = new MemoryNetwork();
  const a = memoryProvider({ network, computer: 'a' })(deps);
  let b = memoryProvider({ network, computer: 'b' })(deps);
  await a.start();
  await b.start();
  return {
    a,
    get b() {
      return b;
    },
    aToB: 'b',
    bToA: 'a',
    idA: generateIdentity(),
    idB: generateIdentity(),
    restartB: async () => {
      b = memoryProvider({ network, computer: 'b' })(deps);
      await b.start();
      return b;
    },
    cleanup: async () => {
      await a.stop();
      await b.stop();
    },
  };
});

test('memory: a consumer that does not ack stops receiving at maxInflight (backpressure, bounded memory)', async () => {
  const network = new MemoryNetwork();
  const a = memoryProvider({ network, computer: 'a' })(deps);
  const b = memoryProvider({ network, computer: 'b', maxInflight: 4 })(deps);
  await a.start();
  await b.start();
  const id = generateIdentity();
  for (let i = 0; i < 10; i++) await a.send('b', eventsFrame(id, `f${i}`));
  const held = await take(b, 4, { ack: false });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(network.backlog('b'), { waiting: 6, pending: 4 });
  await held[0]!.ack();
  await take(b, 1, { ack: false });
  assert.deepEqual(network.backlog('b'), { waiting: 5, pending: 4 });
  await a.stop();
  await b.stop();
});
