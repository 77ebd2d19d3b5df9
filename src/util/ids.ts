import { randomFillSync } from 'node:crypto';

/**
 * Time-ordered unique ids (UUID version 7, RFC 9562): 48 bits of Unix milliseconds, then a
 * 12-bit counter that keeps ids monotonic inside one millisecond, then 62 random bits.
 * Sorting the strings sorts by creation time.
 * @example
 * const gen = new IdGenerator(); const a = gen.next(Date.now()); const b = gen.next(Date.now()); a < b;
 */
export class IdGenerator {
  private lastMs = -1;
  private counter = 0;
  private readonly pool = Buffer.alloc(8 * 512);
  private poolPos = this.pool.length;

  next(nowMs: number): string {
    let ms = Math.floor(nowMs);
    if (ms <= this.lastMs) {
      ms = this.lastMs;
      this.counter++;
      if (this.counter > 0xfff) {
        ms = this.lastMs + 1;
        this.counter = 0;
      }
    } else {
      this.counter = 0;
    }
    this.lastMs = ms;
    if (this.poolPos + 8 > this.pool.length) {
      randomFillSync(this.pool);
      this.poolPos = 0;
    }
    const r = this.pool;
    const p = this.poolPos;
    this.poolPos += 8;
    const msHex = ms.toString(16).padStart(12, '0');
    const c = this.counter;
    return (
      msHex.slice(0, 8) +
      '-' +
      msHex.slice(8, 12) +
      '-' +
      HEX[0x70 | (c >> 8)] +
      HEX[c & 0xff] +
      '-' +
      HEX[0x80 | ((r[p] as number) & 0x3f)] +
      HEX[r[p + 1] as number] +
      '-' +
      HEX[r[p + 2] as number] +
      HEX[r[p + 3] as number] +
      HEX[r[p + 4] as number] +
      HEX[r[p + 5] as number] +
      HEX[r[p + 6] as number] +
      HEX[r[p + 7] as number]
    );
  }
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Milliseconds encoded in a UUIDv7 string. */
export function uuidv7Time(id: string): number {
  return Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
