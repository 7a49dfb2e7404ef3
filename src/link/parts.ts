/** Byte ranges over a list of buffers, as views: how the link moves data without joining it. */

/**
 * The bytes [start, end) of `parts` taken as one sequence, as views of the parts. With `first`,
 * the sequence begins at parts[first] (offsets count from there) and earlier parts are skipped.
 */
export function slice(parts: readonly Buffer[], start: number, end: number, first = 0): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  for (let i = first; i < parts.length; i++) {
    const p = parts[i]!;
    const a = Math.max(start - pos, 0);
    const b = Math.min(end - pos, p.length);
    if (a < b) out.push(a === 0 && b === p.length ? p : p.subarray(a, b));
    pos += p.length;
    if (pos >= end) break;
  }
  return out;
}

/** One buffer with the parts' bytes; no copy when there is a single part. */
export function join(parts: readonly Buffer[]): Buffer {
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/**
 * Copies the parts' bytes back to back into `target` from `at` (a buffer kept for reuse, where
 * a join would allocate); returns the offset after the last byte. Throws RangeError when they do
 * not fit.
 */
export function copyInto(parts: readonly Buffer[], target: Buffer, at: number): number {
  for (const p of parts) {
    target.set(p, at);
    at += p.length;
  }
  return at;
}

export function totalLength(parts: readonly Buffer[]): number {
  let n = 0;
  for (const p of parts) n += p.length;
  return n;
}
