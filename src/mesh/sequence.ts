import type { MeshOutbox } from './outbox.js';

/**
 * This node's frame sequence: strictly increasing over its life (across restarts), persisted
 * in blocks so a frame costs no write.
 */
export class FrameSequence {
  private next = 1;
  private last = 0;
  private reserving: Promise<void> | undefined;

  constructor(
    private readonly outbox: Pick<MeshOutbox, 'reserveSequences'>,
    private readonly block = 1000,
  ) {}

  /** The next sequence number. */
  async take(): Promise<number> {
    while (this.next > this.last) {
      this.reserving ??= this.outbox.reserveSequences(this.block).then(
        (b) => {
          this.next = b.first;
          this.last = b.last;
          this.reserving = undefined;
        },
        (err: unknown) => {
          this.reserving = undefined;
          throw err;
        },
      );
      await this.reserving;
    }
    return this.next++;
  }
}
