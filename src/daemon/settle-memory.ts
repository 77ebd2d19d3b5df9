/**
 * Gives back what start-up allocated once the daemon has settled. Loading ~500 modules,
 * migrating and building the catalog grows V8's young generation to its 16 MB ceiling, and a
 * node that then goes quiet makes no garbage that would make V8 collect and shrink it: idle
 * daemons with the mesh on measured 88–95 MB where those V8's memory reducer happened to visit
 * measured 73–77 (docs/performance.md). One collection that asks V8 to reduce its footprint,
 * at the first quiet moment after start, does what the reducer would have done. It runs once,
 * on a heap of ~20 MB (a pause of about 15 ms, never in the middle of traffic), never again.
 *
 * V8 offers that collection only through its `gc` extension: the flag is set for the moment a
 * throwaway context takes the function, then cleared, so no context made later sees `gc`.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Logger } from '../util/index.js';

/** Milliseconds after start of the first look: links, beacons and the first catch-up are done by then. */
export const SETTLE_AFTER_MS = 10_000;
/** The node must have committed nothing for this long: a collection in the middle of traffic would pause it. */
export const SETTLE_QUIET_MS = 5_000;
/** Looks before giving up: a node busy from its start collects as it allocates and needs none of this. */
const SETTLE_TRIES = 12;

type GcFunction = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

/** Takes V8's `gc` function without leaving it exposed; undefined where this V8 does not offer it. */
export function memoryReducingGc(): GcFunction | undefined {
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as GcFunction;
  } catch {
    return undefined;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}

/**
 * Schedules the one collection for the first moment, from `settleMs` after start, that the node
 * has been quiet for {@link SETTLE_QUIET_MS} (`lastActivity` answers `performance.now()` of its
 * last commit); looks again every `settleMs`, {@link SETTLE_TRIES} times at most.
 * @example
 * settleMemoryAfterStart(logger, () => lastCommitAt); // idle mesh node 88–95 → 73–77 MB
 */
export function settleMemoryAfterStart(
  logger: Logger,
  lastActivity: () => number,
  settleMs = SETTLE_AFTER_MS,
): { stop(): void } {
  let tries = 0;
  let timer: NodeJS.Timeout | undefined;
  const look = () => {
    tries++;
    if (performance.now() - lastActivity() < SETTLE_QUIET_MS) {
      if (tries < SETTLE_TRIES) schedule();
      return;
    }
    settle(logger);
  };
  const schedule = () => {
    timer = setTimeout(look, settleMs);
    timer.unref();
  };
  schedule();
  return { stop: () => clearTimeout(timer) };
}

function settle(logger: Logger): void {
  const gc = memoryReducingGc();
  if (!gc) return;
  const before = process.memoryUsage.rss();
  const started = performance.now();
  try {
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  } catch (err) {
    logger.debug({ err: (err as Error).message }, 'the settling collection was refused');
    return;
  }
  logger.debug(
    {
      rssMB: Math.round(process.memoryUsage.rss() / 1e5) / 10,
      freedMB: Math.round((before - process.memoryUsage.rss()) / 1e5) / 10,
      ms: Math.round(performance.now() - started),
    },
    'start-up memory given back',
  );
}
