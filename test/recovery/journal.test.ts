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
import { JOURNAL_EVENT_BYTES, type NoteEntry, NotificationJournal, noteEntry, rowOfEntry } from '../../src/recovery/journal.js';
import { notificationColumns, notificationRowOf, openNodeStore } from '../../src/store/index.js';
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

test("an entry leaves out what its event says and a new notification's state; the restore rebuilds the same row from it, and from entries written before that", async () => {
  const ns = openNodeStore({ path: join(t.dir, 'entries.db') }, { clock: systemClock, logger: silentLogger });
  const catalog = createDefaultCatalog();
  const entry = catalog.get('mesh.test.ping');
  assert.ok(entry);
  const now = '2026-12-06T10:00:00.000Z';
  const later = '2026-12-06T10:05:00.000Z';
  const self = 'weft:ed25519:self';
  const events: Envelope[] = [0, 1, 2].map((i) => ({ id: `x-${i}`, event: 'mesh.test.ping', version: 1, source: 'test', timestamp: now, level: 1, domain: 'mesh', description: `ping ${i}`, visibility: 'cluster', origin: self, payload: { n: i, note: 'é "q"' } }) as unknown as Envelope);
  await ns.store.write(() => {
    for (const e of events) ns.notifications.createFromEvent(e, entry, now);
  });
  // One stays new; one is seen; one is claimed and resolved with a resolution, later.
  await ns.store.write(() => {
    ns.store.db.prepare("UPDATE notifications SET human_status = 'seen', seen_at = ?, updated_at = ? WHERE id = 2").run(later, later);
    ns.store.db.prepare("UPDATE notifications SET agent_status = 'resolved', agent_id = 'agent-1', claimed_at = ?, resolved_at = ?, resolution = '{\"ok\":true}', updated_at = ? WHERE id = 3").run(later, later, later);
  });
  const rows = ns.store.db.prepare(`SELECT ${notificationColumns()} FROM notifications ORDER BY id`).raw().all().map((a) => notificationRowOf(a as unknown[]));
  const entries = rows.map((r, i) => noteEntry(r, events[i]));
  // A new notification: its id, its event and when it was created; nothing else.
  assert.deepEqual(entries[0], { n: 1, e: 'x-0', ca: now });
  assert.deepEqual(entries[1], { n: 2, e: 'x-1', hs: 'seen', ca: now, ua: later, sa: later });
  assert.deepEqual(entries[2], { n: 3, e: 'x-2', as: 'resolved', ai: 'agent-1', ca: now, ua: later, cla: later, ra: later, r: { ok: true } });
  for (const [i, r] of rows.entries()) {
    const { id: _id, ...want } = r;
    assert.deepEqual(rowOfEntry(entries[i] as NoteEntry, events[i]), want, `row ${r.id} from its entry`);
    // Entries journaled before this change carried the defaults: they restore the same row.
    const full: NoteEntry = { ...(entries[i] as NoteEntry), ac: r.actionable, hs: r.human_status, as: r.agent_status, ua: r.updated_at };
    assert.deepEqual(rowOfEntry(full, events[i]), want, `row ${r.id} from an entry written before`);
  }
  await ns.store.close();
});
