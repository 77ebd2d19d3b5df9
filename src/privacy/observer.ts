/**
 * The observer: takes what the shell hooks left in the spool, drops what must never be
 * recorded (a leading space, `observe.exclude`), redacts secrets, classifies, and emits one
 * `terminal.command` per record. Exactly once: each record's idempotency key is its file and
 * byte offset, so a crash between the emit's commit and the read position's commit only
 * replays records the dedup stage then drops. Positions and removals happen after the emit.
 */
import { existsSync, type FSWatcher, watch } from 'node:fs';
import type { EmitInput, Envelope } from '../envelope/index.js';
import type { Store } from '../store/index.js';
import { type Clock, every, type Logger } from '../util/index.js';
import { type ClassifyRule, classifyCommand } from './classify.js';
import { PrivacyStore } from './privacy-store.js';
import { redactSecrets, type SecretPattern } from './secrets.js';
import { checkSpoolDir, ensureSpoolDir, listSpoolFiles, readSpoolChunk, removeIfDone, type SpoolPosition } from './spool.js';

/** The source name of observed commands (the trust evaluator gives it its own rate). */
export const OBSERVER_SOURCE = 'weft-observe';
/** The longest command kept; the rest is cut (and said so in the stored text). */
export const MAX_COMMAND_CHARS = 10_000;
const MAX_CWD_CHARS = 4096;

export interface ObserverInit {
  /** Where the hooks write (the first is created if missing). */
  spoolDirs: readonly string[];
  /**
   * More directories, asked at every scan: those `weft observe install` wrote into a hook for
   * this node (a hook installed while the daemon runs is read without a restart).
   */
  moreSpoolDirs?: () => readonly string[];
  /** Commands matching any of these are dropped before anything is stored. */
  exclude?: readonly RegExp[];
  rules?: readonly ClassifyRule[];
  secretPatterns?: readonly SecretPattern[];
  /** A full scan this often, ms (default 1000); file-system notifications wake it sooner. */
  scanEveryMs?: number;
  /** Records per emit (default 2048). */
  batch?: number;
}

/** What the observer needs of the node. */
export interface ObserverNode {
  emitMany(inputs: readonly unknown[]): Promise<Envelope[]>;
  /** Resolves once the pipeline applied everything in the log (or the bound passed). */
  idle(timeoutMs?: number): Promise<boolean>;
  readonly ns: { readonly store: Store; readonly dedup: { has(key: string): boolean } };
}

export interface ObserverDeps {
  node: ObserverNode;
  clock: Clock;
  logger: Logger;
  /** Records that could not be read, from one pass over a file: recorded as refusals (no command text is passed on). */
  refuse(list: ReadonlyArray<{ file: string; offset: number; reason: string }>): void;
}

export interface ObserverStats {
  ingested: number;
  excluded: number;
  leadingSpace: number;
  redacted: number;
  refused: number;
  /** Records read a second time (their position was lost) and found already recorded. */
  replayed: number;
  filesRemoved: number;
  lastScanAt: number | null;
  spoolDirs: string[];
  /** Why a spool directory is not read (unsafe ownership or mode). */
  problems: string[];
}

/** Reads the spool into the node; see the module comment. */
export class Observer {
  readonly stats: ObserverStats;
  private readonly ps: PrivacyStore;
  private positions: Map<string, SpoolPosition> | undefined;
  private stopTimer: (() => void) | undefined;
  private watchers: FSWatcher[] = [];
  private scanning: Promise<number> | undefined;
  private again = false;
  private stopped = false;

  constructor(
    private readonly init: ObserverInit,
    private readonly deps: ObserverDeps,
  ) {
    this.ps = new PrivacyStore(deps.node.ns.store);
    this.stats = { ingested: 0, excluded: 0, leadingSpace: 0, redacted: 0, refused: 0, replayed: 0, filesRemoved: 0, lastScanAt: null, spoolDirs: [...init.spoolDirs], problems: [] };
  }

  /**
   * Creates the spool directory, starts reading what waited while the daemon was down (in the
   * background: a day's backlog does not hold up the daemon's start), then watches. A spool
   * directory that is not safe to read (a link, someone else's, open to others) is reported in
   * `stats.problems` and the log, and left alone; the node runs on.
   */
  async start(): Promise<void> {
    const [first] = this.init.spoolDirs;
    if (first) {
      try {
        ensureSpoolDir(first);
      } catch (err) {
        this.stats.problems.push((err as Error).message);
        this.deps.logger.error({ dir: first, err: (err as Error).message }, 'the spool directory is not safe to use: shell observation reads nothing from it');
      }
    }
    this.wake();
    for (const dir of this.dirs()) this.watchDir(dir);
    this.stopTimer = every(this.deps.clock, this.init.scanEveryMs ?? 1000, () => this.wake(), { unref: true });
  }

  /** Every spool directory read now: the configured ones, then those hooks were installed with. */
  private dirs(): string[] {
    const all = [...this.init.spoolDirs];
    for (const d of this.init.moreSpoolDirs?.() ?? []) if (!all.includes(d)) all.push(d);
    this.stats.spoolDirs = all;
    return all;
  }

  private readonly watched = new Set<string>();

  private watchDir(dir: string): void {
    if (this.watched.has(dir) || this.stopped) return;
    try {
      const w = watch(dir, { persistent: false }, () => this.wake());
      w.on('error', () => undefined);
      this.watchers.push(w);
      this.watched.add(dir);
    } catch (err) {
      this.deps.logger.debug({ dir, err: (err as Error).message }, 'spool directory not watched (scanned on a timer)');
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopTimer?.();
    for (const w of this.watchers) w.close();
    this.watchers = [];
    await this.scanning;
  }

  /** Scans soon; a scan asked for while one runs runs once more after it. */
  wake(): void {
    if (this.stopped) return;
    if (this.scanning) {
      this.again = true;
      return;
    }
    this.scanning = this.scanLoop();
  }

  /** Reads every spool file to its end; resolves with the records ingested. */
  async scan(): Promise<number> {
    if (this.scanning) {
      this.again = true;
      await this.scanning;
    }
    this.scanning = this.scanLoop();
    return this.scanning;
  }

  private async scanLoop(): Promise<number> {
    let n = 0;
    try {
      do {
        this.again = false;
        n += await this.scanOnce();
      } while (this.again && !this.stopped);
    } catch (err) {
      this.deps.logger.warn({ err: (err as Error).message }, 'reading the spool failed; retrying on the next scan');
    } finally {
      this.scanning = undefined;
    }
    return n;
  }

  private async scanOnce(): Promise<number> {
    if (!this.positions) {
      // Events appended before a crash are applied (their keys claimed) before any record is read again.
      await this.deps.node.idle(60_000);
      this.positions = this.ps.positions();
    }
    let n = 0;
    for (const dir of this.dirs()) {
      if (!existsSync(dir) || !safeDir(dir)) continue;
      this.watchDir(dir);
      for (const file of listSpoolFiles(dir)) {
        const key = `${dir}/${file}`;
        for (;;) {
          const chunk = readSpoolChunk(dir, file, this.positions.get(key));
          if (!chunk) break;
          let early = false;
          if (chunk.records.length > 0 || this.positions.get(key)?.ino !== chunk.ino) {
            const r = await this.ingest(key, chunk);
            n += r.ingested;
            early = r.early;
          }
          if ((!chunk.more && !early) || this.stopped) break;
        }
        const pos = this.positions.get(key);
        if (pos && removeIfDone(dir, file, pos)) {
          this.stats.filesRemoved++;
          this.positions.delete(key);
          await this.deps.node.ns.store.write(() => this.ps.forgetPosition(key));
        }
      }
    }
    this.stats.lastScanAt = this.deps.clock.now();
    return n;
  }

  private async ingest(key: string, chunk: NonNullable<ReturnType<typeof readSpoolChunk>>): Promise<{ ingested: number; early: boolean }> {
    const inputs: EmitInput[] = [];
    const refused: Array<{ file: string; offset: number; reason: string }> = [];
    const max = this.init.batch ?? 2048;
    let records = 0;
    let next = chunk.next;
    let early = false;
    for (const r of chunk.records) {
      if (inputs.length >= max) {
        next = r.offset;
        early = true;
        break;
      }
      records++;
      if (!r.parsed.ok) {
        this.stats.refused++;
        refused.push({ file: key, offset: r.offset, reason: r.parsed.reason });
        continue;
      }
      const rec = r.parsed.record;
      if (rec.command.startsWith(' ')) {
        this.stats.leadingSpace++;
        continue;
      }
      if (rec.command.trim() === '' || this.init.exclude?.some((x) => x.test(rec.command))) {
        this.stats.excluded++;
        continue;
      }
      const idempotencyKey = `observe:${key}:${chunk.ino}:${r.offset}`;
      // Read again after a lost position (a crash between the two commits): already in the log once.
      if (this.deps.node.ns.dedup.has(idempotencyKey)) {
        this.stats.replayed++;
        continue;
      }
      const cmd = redactSecrets(rec.command, this.init.secretPatterns);
      const cwd = redactSecrets(rec.cwd, this.init.secretPatterns);
      this.stats.redacted += cmd.redacted + cwd.redacted;
      const c = classifyCommand(cmd.text, this.init.rules);
      inputs.push({
        event: 'terminal.command',
        source: OBSERVER_SOURCE,
        timestamp: new Date(rec.ts).toISOString(),
        idempotencyKey,
        payload: {
          shell: rec.shell,
          command: cut(cmd.text, MAX_COMMAND_CHARS),
          cwd: cut(cwd.text, MAX_CWD_CHARS),
          exit_code: rec.exitCode,
          duration_ms: rec.durationMs,
          caro_generated: false,
          category: c.category,
          risk_level: c.riskLevel,
          user_confirmed: false,
          ...(cmd.redacted + cwd.redacted > 0 ? { redacted: cmd.redacted + cwd.redacted } : {}),
        },
      });
    }
    if (refused.length > 0) this.deps.refuse(refused);
    if (inputs.length > 0) await this.deps.node.emitMany(inputs);
    this.stats.ingested += inputs.length;
    const pos = { ino: chunk.ino, position: next };
    await this.deps.node.ns.store.write(() => this.ps.setPosition(key, pos, records, this.deps.clock.now()));
    (this.positions as Map<string, SpoolPosition>).set(key, pos);
    return { ingested: inputs.length, early };
  }
}

/** Reads only from a directory that is this user's own and closed to others (checked at every scan). */
function safeDir(dir: string): boolean {
  try {
    checkSpoolDir(dir);
    return true;
  } catch {
    return false;
  }
}

/**
 * The secrets filter on a `terminal.command` payload, whoever emitted it (the catalog runs it on
 * every emit of the type): the command and the cwd redacted, cut to their limits, `redacted`
 * counting what was removed. A payload with nothing to redact comes back as it is; one the
 * observer redacted already is (redacting twice changes nothing).
 * @example
 * catalog.setPayloadFilter('terminal.command', (p) => redactTerminalCommand(p, userPatterns));
 */
export function redactTerminalCommand(payload: Record<string, unknown>, extra: readonly SecretPattern[] = []): Record<string, unknown> {
  const cmd = typeof payload.command === 'string' ? redactSecrets(payload.command, extra) : undefined;
  const cwd = typeof payload.cwd === 'string' ? redactSecrets(payload.cwd, extra) : undefined;
  const n = (cmd?.redacted ?? 0) + (cwd?.redacted ?? 0);
  if (n === 0) return payload;
  return {
    ...payload,
    ...(cmd ? { command: cut(cmd.text, MAX_COMMAND_CHARS) } : {}),
    ...(cwd ? { cwd: cut(cwd.text, MAX_CWD_CHARS) } : {}),
    redacted: (typeof payload.redacted === 'number' ? payload.redacted : 0) + n,
  };
}

function cut(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 20)}… [${s.length - max + 20} cut]`;
}
