/** What the API commands print for people: aligned columns, durations and byte counts. Pure. */

/** Most rows a table prints; the API's own lists are bounded, this keeps a terminal usable too. */
export const MAX_ROWS = 10_000;

/**
 * Rows under a header, each column as wide as its widest cell, two spaces apart; the last column
 * is not padded (no trailing blanks). Cells are made printable: a control character in a name
 * from the API cannot move the cursor or break the columns.
 */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows.slice(0, MAX_ROWS)].map((r) => header.map((_, i) => printable(r[i] ?? '')));
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const out = all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
  if (rows.length > MAX_ROWS) out.push(`… ${rows.length - MAX_ROWS} more (use --json)`);
  return out.join('\n') + '\n';
}

/** Control characters shown as "?" (C0, DEL and C1). */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
export const printable = (s: string): string => s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');

/** A duration in its two largest units: "45s", "9m58s", "2h05m", "3d04h". */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

/** An ISO time relative to `now`: "in 9m58s", "5m02s ago"; "-" when absent or not a time. */
export function relative(iso: unknown, now: number): string {
  if (typeof iso !== 'string') return '-';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '-';
  return t >= now ? `in ${duration(t - now)}` : `${duration(now - t)} ago`;
}

/** A byte count in binary units with one decimal past KiB: "512 B", "1.5 KiB", "3.2 GiB". */
export function bytes(n: unknown): string {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** A cell from an API field: strings and numbers as they are, absent as "-". */
export const cell = (v: unknown): string => (v === null || v === undefined || v === '' ? '-' : typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v));
