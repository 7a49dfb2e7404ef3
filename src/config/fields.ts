import { z } from 'zod';
import { PortSet } from '../util/port-range.ts';
import { parseCidr, parseNetRule } from '../util/cidr.ts';

/** Shared field schemas: each coerces env/flag strings and says what a valid value looks like. */
export const port = z.coerce.number().int('must be a whole number').min(0, 'must be 0-65535').max(65535, 'must be 0-65535');
export const seconds = z.coerce.number().positive('must be a positive number of seconds');
export const bytes = z.coerce.number().int().min(1024, 'must be at least 1024 bytes').max(16 * 1024 * 1024, 'must be at most 16 MiB');
export const portSet = z.string().refine((s) => { try { PortSet.parse(s); return true; } catch { return false; } },
  { message: 'must be ports and ranges like "22,3389,8000-8100" or "*"' });
export const cidr = z.string().refine((s) => { try { parseCidr(s); return true; } catch { return false; } },
  { message: 'must be an IP address or CIDR like 10.0.0.0/8 or ::1/128' });
export const netRule = z.string().refine((s) => { try { parseNetRule(s); return true; } catch { return false; } },
  { message: 'must be CIDR[:PORTS], like 192.168.1.0/24:22,3389 or 127.0.0.1' });
export const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
export const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be 1-64 letters, digits, ".", "_" or "-"');
/** A list from YAML, or a comma-separated string from env/flags. */
export function list<T extends z.ZodType>(item: T) {
  return z.preprocess((v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v), z.array(item));
}
/** Booleans from YAML, or "true"/"false"/"1"/"0" from env (z.coerce.boolean would read "false" as true). */
export const bool = z.preprocess((v) => {
  if (typeof v !== 'string') return v;
  const t = v.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(t)) return true;
  if (['0', 'false', 'no', 'off'].includes(t)) return false;
  return v;
}, z.boolean({ message: 'must be true or false' }));
