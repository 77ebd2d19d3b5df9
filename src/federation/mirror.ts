/**
 * Mirror: resumable replication of a peer's log into this node. The source side
 * (mirror-source.ts) answers pulls with what the asking peer may see; the mirror side
 * (mirror-puller.ts, one per mount) pulls after the mount's resume token and applies in
 * order, the token committing with the events. The two message kinds are in mirror-wire.ts.
 * @example
 * const fed = assembled.federation;
 * await fed.openMount({ peer: 'saturn', mode: 'mirror', options: { stream: 'deploy.*' } });
 * fed.mirror.status(fed.showMount('saturn/mirror/main').id); // { lag, active, applied_count, ... }
 */
import { isWeftError } from '../errors/index.js';
import { type EgressCheck, MirrorSource } from './mirror-source.js';
import { MirrorPuller, type MirrorStatus, tokenStreamOf } from './mirror-puller.js';
import { checkStreamPattern, MAX_PULL_WINDOW, MIRROR_BATCH, parseBatch } from './mirror-wire.js';
import type { MountRecord } from './mounts.js';
import type { OrganDeps } from './ports.js';

export { type EgressCheck, MirrorSource, type MirrorSourceInit } from './mirror-source.js';
export type { MirrorStatus } from './mirror-puller.js';
export { MIRROR_BATCH, MIRROR_PULL, type MirrorBatch, type MirrorEvent, type MirrorPull, parseBatch } from './mirror-wire.js';

export interface MirrorInit {
  /** ms between a caught-up mirror's polls; two beats with lag and no progress raise mirror.stalled. */
  beatMs: number;
  /** Source sequences one batch covers (beat_window). */
  window: number;
  /** Batches requested ahead of the one being applied (max_in_flight). */
  inFlight: number;
  /** A pull with no answer after this long is sent again, ms (default max(2 s, 4 beats); doubling per repeat, at most 30 s). */
  requestTimeoutMs?: number;
}

/**
 * Pulls one mount keeps unanswered at most, whatever its options say: a node handles at most 8
 * messages of one peer at once (mesh ingress) and drops the rest; half of them leaves room for
 * the peer's other messages (invoke results and cancels) whatever the mirror does.
 */
export const MAX_IN_FLIGHT = 4;

/** A whole number in [1, max] from a mount option, else the default. */
function option(v: unknown, d: number, max: number): number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 ? Math.min(v, max) : d;
}

export class MirrorOrgan {
  private readonly source: MirrorSource;
  private readonly pullers = new Map<number, MirrorPuller>();
  private unsubBatch: (() => void) | undefined;
  private closing: Promise<void> | undefined;
  /** Answers refused as malformed, over every mount (also those no mount could be told of). */
  private malformed = 0;

  constructor(
    readonly init: MirrorInit,
    readonly deps: OrganDeps,
  ) {
    this.source = new MirrorSource({}, deps);
  }

  /** Serves other nodes' mirrors of this node (registers the source's message handler). */
  serve(): void {
    if (this.closing) return;
    this.source.serve();
    this.listen();
  }

  /** The sharing policy's egress check, asked for each event a peer would mirror (the publisher's own). */
  setEgress(check: EgressCheck | undefined): void {
    this.source.setEgress(check);
  }

  /** Source-side counters (pulls answered, events sent, pulls refused, batches cut to fit a frame, pulls dropped busy or repeated), and mirror-side answers refused as malformed. */
  sourceCounters(): Readonly<MirrorSource['counters'] & { malformed: number }> {
    return { ...this.source.counters, malformed: this.malformed };
  }

  /**
   * Begins (or resumes from its token) pulling for a mirror mount. Mount options `beat_window`
   * and `max_in_flight` (at most 4) override the node's; `stream` narrows what is mirrored. A mount whose
   * options do not validate is marked `error` (never thrown: a daemon start resumes mounts).
   * A token built with another stream than the mount's now (telemetry `token_stream`) starts
   * again from 0: continuing it would skip what the new stream adds before it; what is here
   * already counts as duplicates (the envelope id keeps each event once).
   */
  start(mount: MountRecord): void {
    if (this.closing || mount.mode !== 'mirror' || this.pullers.has(mount.id)) return;
    let stream: string | undefined;
    try {
      stream = checkStreamPattern(mount.options.stream);
    } catch (err) {
      const message = isWeftError(err) ? err.message : String(err);
      this.deps.logger.warn({ mount: mount.key, err: message }, 'mirror mount not started');
      void this.deps.mounts.setState(mount.id, 'error', message).catch(() => undefined);
      return;
    }
    this.listen();
    const was = mount.telemetry.token_stream;
    const resetFrom = mount.resumeToken > 0 && typeof was === 'string' && was !== tokenStreamOf(stream) ? was : undefined;
    const p = new MirrorPuller(
      mount,
      {
        beatMs: this.init.beatMs,
        window: option(mount.options.beat_window, this.init.window, MAX_PULL_WINDOW),
        inFlight: Math.min(MAX_IN_FLIGHT, option(mount.options.max_in_flight, this.init.inFlight, MAX_IN_FLIGHT)),
        ...(stream !== undefined ? { stream } : {}),
        ...(this.init.requestTimeoutMs !== undefined ? { requestTimeoutMs: this.init.requestTimeoutMs } : {}),
        ...(resetFrom !== undefined ? { resetFromStream: resetFrom } : {}),
      },
      this.deps,
    );
    this.pullers.set(mount.id, p);
    p.start();
  }

  /** Stops pulling for one mount; what was applied stays, with its token. */
  async stop(mountId: number): Promise<void> {
    const p = this.pullers.get(mountId);
    if (!p) return;
    this.pullers.delete(mountId);
    await p.stop();
  }

  /** Live figures of one mount (lag, active, in flight, last event, error), or undefined when not running. */
  status(mountId: number): MirrorStatus | undefined {
    return this.pullers.get(mountId)?.status();
  }

  /** Stops every mount and the source side. A second call returns the same promise. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.source.close();
      const all = [...this.pullers.values()];
      this.pullers.clear();
      await Promise.all(all.map((p) => p.stop()));
      this.unsubBatch?.();
      this.unsubBatch = undefined;
    })();
    return this.closing;
  }

  /** The mirror side's handler of `mirror.batch`: hands an answer to its mount (only from that mount's peer). */
  private listen(): void {
    if (this.unsubBatch) return;
    this.unsubBatch = this.deps.mesh.onMessage(MIRROR_BATCH, (m) => {
      let batch: ReturnType<typeof parseBatch>;
      try {
        batch = parseBatch(m.data);
      } catch (err) {
        const message = `${m.computer} sent a malformed answer: ${(err as Error).message}`;
        this.malformed++;
        this.deps.logger.warn({ peer: m.computer, err: (err as Error).message }, 'mirror batch refused');
        // Counted on its mount when it names one of this peer's.
        const mount = (m.data as { mount?: unknown } | null)?.mount;
        for (const p of this.pullers.values()) if (p.key === mount && p.peer === m.computer) p.onMalformed(message);
        return;
      }
      for (const p of this.pullers.values()) {
        if (p.key === batch.mount && p.peer === m.computer) {
          p.onBatch(batch, m.nodeId);
          return;
        }
      }
    });
  }
}
