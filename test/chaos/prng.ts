/** A small seeded PRNG (mulberry32): the same seed gives the same schedule and streams. */
export class Prng {
  private s: number;
  constructor(readonly seed: number) {
    this.s = seed >>> 0;
  }
  /** A float in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hiExclusive: number): number {
    return lo + Math.floor(this.next() * (hiExclusive - lo));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(0, xs.length)] as T;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.int(0, 256);
    return b;
  }
  /** A child generator, so adding draws in one stream does not shift another. */
  fork(salt: number): Prng {
    return new Prng((this.seed ^ Math.imul(salt + 1, 0x9e3779b1)) >>> 0);
  }
}

export function randomSeed(): number {
  return (Math.random() * 2 ** 32) >>> 0;
}
