/**
 * The notification journal on a real SQLite file: every cluster notification of this node is
 * journaled once (another computer's are never marked),
 * a row that changes while its entry is on its way keeps its mark (journaled again next pass,
 * with the change), and a pass gathers many rows into few full events.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createDefaultCatalog } from '../../src/catalog/index.js';
import type { EmitInput, Envelope } from '../../src/envelope/index.js';
import { JOURNAL_EVENT_BYTES, NotificationJournal } from '../../src/recovery/journal.js';
import { openNodeStore } from '../../src/store/index.js';
import { systemClock, silentLogger } from '../../src/util/index.js';
import { tempDir } from '../helpers/tmp.js';

const t = tempDir('weft-journal-');
after(() => t.cleanup());

test('journals each cluster notification once; a change racing the journal is journaled again', async () => {
  const ns = openNodeStore({ path: join(t.dir, 'j.db') }, { clock: systemClock, logger: silentLogger });
  const entry = createDefaultCatalog().get('mesh.test.ping');
  assert.ok(entry);
  const N = 3000;
  const now = new Date().toISOString();
  const emitted: EmitInput[][] = [];
  let raced = false;
  const journal = new NotificationJournal({
    store: ns.store,
    db: () => 'db1',
    self: () => ({ computer: 'laptop', nodeId: 'weft:ed25519:self' }),
    emitMany: async (inputs) => {
      emitted.push([...inputs]);
      // While the first entries are on their way, one of them changes (seen by a human).
      if (!raced) {
        raced = true;
        await ns.store.write(() => ns.store.db.prepare("UPDATE notifications SET human_status = 'seen', seen_at = ? WHERE id = 1").run(now));
      }
    },
    logger: silentLogger,
  });
  // This node is 'laptop': another computer's notifications are that node's to journal, never marked here.
  await journal.ownComputer('laptop');
  await ns.store.write(() => {
    for (let i = 0; i < N; i++) {
      const env = { id: `e-${String(i).padStart(5, '0')}`, event: 'mesh.test.ping', version: 1, source: 'test', timestamp: now, level: 1, domain: 'mesh', description: 'ping', visibility: i % 2 === 0 ? 'cluster' : 'local', ...(i % 4 === 0 ? { sourceComputer: 'laptop' } : {}), payload: { n: i } } as unknown as Envelope;
      ns.notifications.createFromEvent(env, entry, now);
    }
    for (let i = 0; i < 100; i++) {
      const env = { id: `d-${i}`, event: 'mesh.test.ping', version: 1, source: 'test', timestamp: now, level: 1, domain: 'mesh', description: 'ping', visibility: 'cluster', sourceComputer: 'desk', payload: { n: i } } as unknown as Envelope;
      ns.notifications.createFromEvent(env, entry, now);
    }
  });
  assert.equal(journal.pending(), N / 2);
  const first = await journal.flush();
  assert.equal(first, N / 2);
  const entries = emitted.flat().flatMap((i) => (i.payload as { entries: Array<{ n: number; hs?: string }> }).entries);
  assert.equal(new Set(entries.map((e) => e.n)).size, N / 2);
  // Full events (JOURNAL_EVENT_BYTES of entries each), emitted a few at a time, not one per slice.
  const bytes = entries.reduce((s, e) => s + JSON.stringify(e).length + 1, 0);
  assert.ok(emitted.length <= Math.ceil(bytes / (4 * JOURNAL_EVENT_BYTES)) + 1, `${emitted.length} emits for ${bytes} bytes`);
  assert.ok(emitted.flat().length <= Math.ceil(bytes / JOURNAL_EVENT_BYTES) + emitted.length, `${emitted.flat().length} events for ${bytes} bytes`);
  for (const e of emitted.flat()) {
    // (An entry bigger than the limit would go alone; these are small.)
    const size = (e.payload as { entries: unknown[] }).entries.reduce((s: number, x) => s + JSON.stringify(x).length + 1, 0);
    assert.ok(size <= JOURNAL_EVENT_BYTES, `a journal event of ${size} bytes of entries`);
  }
  // Row 1 changed after it was read: still marked.
  assert.equal(journal.pending(), 1);
  assert.equal(journal.journaled(), N / 2);

  emitted.length = 0;
  assert.equal(await journal.flush(), 1);
  const again = emitted.flat().flatMap((i) => (i.payload as { entries: Array<{ n: number; hs?: string }> }).entries);
  assert.deepEqual(
    again.map((e) => [e.n, e.hs]),
    [[1, 'seen']],
  );
  assert.equal(journal.pending(), 0);
  assert.equal(journal.journaled(), N / 2 + 1);
  await ns.store.close();
});
