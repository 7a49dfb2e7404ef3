import { randomInt } from 'node:crypto';

/**
 * A seeded generator for fuzz tests (sfc32, 32-bit arithmetic), so a failing
 * run can be replayed: every fuzz test prints its seed and takes DK_FUZZ_SEED to repeat it.
 */
export class Prng {
  readonly seed: number;
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.#a = 0x9e3779b9;
    this.#b = 0x243f6a88;
    this.#c = 0xb7e15162;
    this.#d = this.seed;
    for (let i = 0; i < 16; i++) this.next();
  }

  /** A fresh seed from DK_FUZZ_SEED, else from the system. */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): Prng {
    const given = env.DK_FUZZ_SEED;
    return new Prng(given !== undefined && given !== '' ? Number(given) : randomInt(2 ** 32));
  }

  /** 32 random bits (sfc32). */
  next(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  /** An integer in [min, max) (or [0, min) with one argument), like crypto.randomInt. */
  int(min: number, max?: number): number {
    const [lo, hi] = max === undefined ? [0, min] : [min, max];
    return lo + Math.floor((this.next() / 2 ** 32) * (hi - lo));
  }

  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.next() & 0xff;
    return b;
  }
}
