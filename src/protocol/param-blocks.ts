import { MAX_CMD_PARAMS } from './frame.ts';

/**
 * A list carried over several CMD frames (PORT QUERY answers, ALLOWLIST): each frame's parameters
 * are a flags byte and as many whole entries as fit in MAX_CMD_PARAMS; the last frame's flags
 * carry `lastFlag`. An empty list is one frame with the flags alone.
 */
export function packParamBlocks(entries: Iterable<Buffer>, flags: number, lastFlag: number): Buffer[] {
  const out: Buffer[] = [];
  let cur: Buffer[] = [];
  let size = 1;
  const flush = (last: boolean): void => {
    out.push(Buffer.concat([Buffer.from([flags | (last ? lastFlag : 0)]), ...cur]));
    cur = [];
    size = 1;
  };
  for (const entry of entries) {
    if (size + entry.length > MAX_CMD_PARAMS) flush(false);
    cur.push(entry);
    size += entry.length;
  }
  flush(true);
  return out;
}
