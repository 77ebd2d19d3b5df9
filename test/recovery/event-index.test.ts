/**
 * The recovery index's paced pass over a node's events (`eachRow`), on a real SQLite file: a
 * beacon's ranges built in slices are the ones a single pass builds, and events indexed while
 * the pass runs are included when their ids come after its position.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createDefaultCatalog } from '../../src/catalog/index.js';
import { buildRanges, RangeBuilder } from '../../src/recovery/digest.js';
import { EventIndex } from '../../src/recovery/event-index.js';
import { openNodeStore } from '../../src/store/index.js';
import { Pacer, silentLogger, systemClock } from '../../src/util/index.js';
import { tempDir } from '../helpers/tmp.js';

const t = tempDir('weft-event-index-');
after(() => t.cleanup());

const idOf = (i: number) => `0190${String(i).padStart(8, '0')}-0000-7000-8000-000000000000`;
const hashOf = (i: number) => createHash('sha256').update(String(i)).digest();

test('ranges built in paced slices are those of one pass; events indexed meanwhile come in', async () => {
  const ns = openNodeStore({ path: join(t.dir, 'i.db') }, { clock: systemClock, logger: silentLogger });
  // Slices of 0.2 ms: the pass over 5,000 events takes many of them.
  const pacer = new Pacer(() => ns.store.commits, { sliceMs: 0.2, maxSliceMs: 0.2 });
  const index = new EventIndex({ store: ns.store, catalog: createDefaultCatalog(), nodeId: () => 'weft:ed25519:self', logger: silentLogger, pacer });
  await ns.store.write(() => {
    for (let i = 0; i < 5000; i++) index.addIn('weft:ed25519:other', idOf(i * 2), i + 1, hashOf(i));
  });
  const whole = buildRanges(index.rows('weft:ed25519:other'), 1000);

  let slices = 0;
  const b = new RangeBuilder(1000);
  const pass = index.eachRow('weft:ed25519:other', (r) => b.add(r));
  // While the pass runs: one event after every id it can have reached, one before them all.
  const late = new Promise<void>((resolve) => {
    const tick = () => {
      slices++;
      if (slices < 3) return void setImmediate(tick);
      void ns.store
        .write(() => {
          index.addIn('weft:ed25519:other', idOf(999_999), 9999, hashOf(999_999));
          index.addIn('weft:ed25519:other', idOf(1), 9998, hashOf(1));
        })
        .then(() => resolve());
    };
    setImmediate(tick);
  });
  await Promise.all([pass, late]);
  const paced = b.finish();
  // Everything of the single pass, plus the late event after it; the one before its position is the next pass's.
  assert.equal(paced.count, whole.count + 1);
  assert.deepEqual(
    paced.ranges.slice(0, 5).map((r) => [r.from, r.to, r.count, r.digest]),
    whole.ranges.map((r) => [r.from, r.to, r.count, r.digest]),
  );
  assert.equal(paced.ranges[5]?.from, idOf(999_999));
  await ns.store.close();
});
