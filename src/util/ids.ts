import { createRequire } from 'node:module';

/** node:crypto, loaded with the first id (a CLI call that makes none never loads it). */
let randomFill: ((b: Uint8Array) => void) | undefined;
const loadRandomFill = (): ((b: Uint8Array) => void) =>
  (createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto')).randomFillSync;

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
  /**
   * The id's 36 characters are written here and read out as one string: built by `+` from
   * fifteen pieces it was a rope every later use flattened first (an id and a Map insert cost
   * 1.6–1.8 µs against 0.5 µs, 200,000 ids in one process).
   */
  private readonly out = Buffer.alloc(36);

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
      randomFill ??= loadRandomFill();
      randomFill(this.pool);
      this.poolPos = 0;
    }
    const r = this.pool;
    const p = this.poolPos;
    this.poolPos += 8;
    const o = this.out;
    // 48 bits of milliseconds, 12 hex digits as 8-4: the high 24 bits, then the low 24.
    let hi = Math.floor(ms / 0x1000000);
    let lo = ms % 0x1000000;
    for (let i = 5; i >= 0; i--) {
      o[i] = DIGIT[hi & 15] as number;
      hi >>>= 4;
    }
    for (const i of LOW_AT) {
      o[i] = DIGIT[lo & 15] as number;
      lo >>>= 4;
    }
    o[8] = DASH;
    o[13] = DASH;
    // Version 7, then the 12-bit counter.
    const c = this.counter;
    o[14] = DIGIT[7] as number;
    o[15] = DIGIT[(c >> 8) & 15] as number;
    o[16] = DIGIT[(c >> 4) & 15] as number;
    o[17] = DIGIT[c & 15] as number;
    o[18] = DASH;
    // Variant 10, then 62 random bits.
    hex(o, 19, 0x80 | ((r[p] as number) & 0x3f));
    hex(o, 21, r[p + 1] as number);
    o[23] = DASH;
    for (let k = 2; k < 8; k++) hex(o, 20 + 2 * k, r[p + k] as number);
    return o.toString('latin1', 0, 36);
  }
}

const DIGIT = Buffer.from('0123456789abcdef', 'latin1');
const DASH = 0x2d;
/** Where the low 24 bits of the milliseconds go, last digit first (8 is a dash). */
const LOW_AT = [12, 11, 10, 9, 7, 6];

/** Writes a byte as two hex digits at `at`. */
function hex(o: Buffer, at: number, byte: number): void {
  o[at] = DIGIT[byte >> 4] as number;
  o[at + 1] = DIGIT[byte & 15] as number;
}

/** Milliseconds encoded in a UUIDv7 string. */
export function uuidv7Time(id: string): number {
  return Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
