/** Port lists like "22,3389,8000-8100" or "*": parse once, test membership cheaply. */
export class PortSet {
  readonly #ranges: [number, number][];
  readonly text: string;

  private constructor(ranges: [number, number][], text: string) {
    this.#ranges = ranges;
    this.text = text;
  }

  static readonly ALL = new PortSet([[1, 65535]], '*');

  /** Throws a RangeError that says which element is wrong. */
  static parse(text: string): PortSet {
    const t = text.trim();
    if (t === '*' || t === '') return PortSet.ALL;
    const ranges: [number, number][] = [];
    for (const part of t.split(',')) {
      const m = /^\s*(\d{1,5})(?:\s*-\s*(\d{1,5}))?\s*$/.exec(part);
      if (!m) throw new RangeError(`"${part.trim()}" is not a port or a port range (like 22 or 8000-8100)`);
      const lo = Number(m[1]);
      const hi = m[2] === undefined ? lo : Number(m[2]);
      if (lo < 1 || hi > 65535 || lo > hi) throw new RangeError(`port range ${part.trim()} must lie within 1-65535, low to high`);
      ranges.push([lo, hi]);
    }
    return new PortSet(ranges, t);
  }

  /** The inclusive ranges, as parsed ('*' is 1-65535). */
  get ranges(): readonly (readonly [number, number])[] {
    return this.#ranges;
  }

  has(port: number): boolean {
    for (const [lo, hi] of this.#ranges) if (port >= lo && port <= hi) return true;
    return false;
  }

  /** The first and last port of a single range (used for the access-port range). */
  bounds(): [number, number] {
    const lo = Math.min(...this.#ranges.map((r) => r[0]));
    const hi = Math.max(...this.#ranges.map((r) => r[1]));
    return [lo, hi];
  }
}
