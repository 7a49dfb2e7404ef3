import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from './errors.ts';

/** Reads a YAML config file; an absent path means "no file" (embedded defaults). */
export function readYaml(path: string | undefined): Record<string, unknown> {
  if (!path) return {};
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config file ${path}: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new ConfigError(`${path} is not valid YAML: ${(e as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`${path}: the top level must be a mapping of keys`);
  return doc as Record<string, unknown>;
}

/**
 * A relative path in a config file is relative to the file's directory, not to wherever the
 * program was started: `data_dir: ./dk-data` in /etc/dk/gateway.yaml is /etc/dk/dk-data from any
 * working directory. Flags and environment variables stay relative to the working directory.
 * Rewrites the string values of `keys` in `file` (read from `path`) in place, and returns it.
 */
export function resolveFilePaths(file: Record<string, unknown>, path: string | undefined, keys: readonly string[]): Record<string, unknown> {
  if (!path) return file;
  for (const k of keys) {
    const v = file[k];
    if (typeof v === 'string' && v !== '' && !isAbsolute(v)) file[k] = resolve(dirname(path), v);
  }
  return file;
}

/** Where a relative path that a config file would hold points: next to the file, or under the working directory without one. */
export function besideConfig(path: string | undefined, relative: string): string {
  return path ? resolve(dirname(path), relative) : relative;
}

/**
 * Environment variables DK_<KEY> (upper-case key) override the file; flags override both.
 * Values are strings; the schema coerces them.
 */
export function fromEnv(keys: readonly string[], env: NodeJS.ProcessEnv = process.env): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) {
    const v = env[`DK_${k.toUpperCase()}`];
    if (v !== undefined && v !== '') out[k] = v;
  }
  return out;
}

/** Validates with a zod schema; failures name each key and say why. */
export function validate<T extends z.ZodType>(schema: T, input: unknown, source: string): z.infer<T> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => {
    const key = i.path.length > 0 ? i.path.join('.') : '(top level)';
    return `  ${key}: ${i.message}`;
  });
  throw new ConfigError(`invalid configuration (${source}):\n${lines.join('\n')}`);
}

export function dropUndefined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
