/**
 * docs/delivery.md names the metrics a user scrapes and alerts on: each name it gives must be
 * one that `GET /metrics` exports, and each delivery metric exported must be named there in
 * full, so a dashboard built from the page works.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MetricsRegistry, nodeMetrics } from '../../src/api/index.js';
import { webhookDelivery } from '../../src/delivery/index.js';
import { createNode } from '../../src/node/index.js';
import { systemClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { tempDir } from '../helpers/tmp.js';

const DOC = fileURLToPath(new URL('../../../docs/delivery.md', import.meta.url));

test('docs/delivery.md: should name, in full, exactly the delivery metrics /metrics exports', async () => {
  const t = tempDir('weft-delivery-docs-');
  const node = await createNode({ dataDir: t.dir, computer: 'test' });
  // Never started: only its counters are read. Port 25999 is never asked.
  const channel = webhookDelivery(
    { url: 'http://127.0.0.1:25999/hook', minLevel: 2 },
    { ns: node.ns, clock: systemClock, logger: silentLogger },
  );
  const metrics = nodeMetrics(new MetricsRegistry(), node, { deliveries: [channel] });
  try {
    await node.start();
    const exported = new Set(
      [...metrics.render().matchAll(/^# TYPE (weft_[a-z_]+) /gm)].map((m) => m[1] as string),
    );
    const doc = readFileSync(DOC, 'utf8');
    const named = new Set([...doc.matchAll(/\bweft_[a-z_]+/g)].map((m) => m[0]));
    for (const name of named)
      assert.ok(exported.has(name), `the docs name ${name}, which /metrics does not export`);
    const delivery = [...exported].filter((n) => n.startsWith('weft_delivery_'));
    assert.ok(delivery.length > 0);
    for (const name of delivery)
      assert.ok(named.has(name), `/metrics exports ${name}; the docs do not name it in full`);
  } finally {
    await channel.stop();
    metrics.close();
    await node.stop();
    t.cleanup();
  }
});
