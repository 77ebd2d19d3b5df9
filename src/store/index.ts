/** store: the node's SQLite file: local log, notifications, dead letters, quarantine, stats. */
import { EventLog } from './event-log.js';
import { NotificationStore } from './notifications.js';
import { CartridgeFailures, CartridgeStats, DeadLetters, DedupKeys, EmitJournal, Offsets, Quarantine, Rejections } from './records.js';
import { Store, type StoreDeps, type StoreInit } from './store.js';

export * from './event-log.js';
export * from './migrations.js';
export * from './notifications.js';
export * from './records.js';
export * from './rows.js';
export * from './session-lineage.js';
export * from './store.js';

/** The store with every table's accessor. */
export interface NodeStore {
  store: Store;
  log: EventLog;
  notifications: NotificationStore;
  offsets: Offsets;
  dedup: DedupKeys;
  deadLetters: DeadLetters;
  quarantine: Quarantine;
  stats: CartridgeStats;
  /** Per-event failures of installed cartridges, counted per cartridge. */
  failures: CartridgeFailures;
  emitJournal: EmitJournal;
  rejections: Rejections;
}

/** Opens the file and prepares every accessor. */
export function openNodeStore(init: StoreInit, deps: StoreDeps): NodeStore {
  const store = Store.open(init, deps);
  return {
    store,
    log: new EventLog(store),
    notifications: new NotificationStore(store),
    offsets: new Offsets(store),
    dedup: new DedupKeys(store),
    deadLetters: new DeadLetters(store),
    quarantine: new Quarantine(store),
    stats: new CartridgeStats(store),
    failures: new CartridgeFailures(store),
    emitJournal: new EmitJournal(store),
    rejections: new Rejections(store),
  };
}
