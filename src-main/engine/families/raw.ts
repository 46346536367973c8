import { LogitscopeError } from '../../errors.ts';

/** A parsed config.json, and the file it came from for error messages. */
export interface RawConfig {
  readonly r: Record<string, unknown>;
  readonly file: string;
}

const invalid = (raw: RawConfig, msg: string) => new LogitscopeError('config_invalid', msg, raw.file);

/** A positive integer under `key`, or `fallback` when the key is absent (or null). */
export function int(raw: RawConfig, key: string, fallback?: number): number {
  const v = raw.r[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw invalid(raw, `"${key}" must be a positive integer, got ${JSON.stringify(raw.r[key])}`);
  return v;
}

/** A positive number under `key`, or `fallback` when absent (or null). */
export function positive(raw: RawConfig, key: string, fallback?: number): number {
  const v = raw.r[key] ?? fallback;
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) throw invalid(raw, `"${key}" must be a positive number, got ${JSON.stringify(raw.r[key])}`);
  return v;
}

/**
 * A positive number, or null where the model switches the feature off: `fallback` when the key is
 * absent (Hugging Face's class default), null when it is written as null.
 */
export function positiveOrNull(raw: RawConfig, key: string, fallback: number | null): number | null {
  if (raw.r[key] === null || (raw.r[key] === undefined && fallback === null)) return null;
  return positive(raw, key, fallback ?? undefined);
}

export function bool(raw: RawConfig, key: string, fallback: boolean): boolean {
  const v = raw.r[key] ?? fallback;
  if (typeof v !== 'boolean') throw invalid(raw, `"${key}" must be true or false, got ${JSON.stringify(raw.r[key])}`);
  return v;
}

/** A token id (non-negative integer) under `key`, or `fallback` when absent. */
export function tokenId(raw: RawConfig, key: string, fallback: number): number {
  const v = raw.r[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw invalid(raw, `"${key}" must be a non-negative integer`);
  return v;
}

/** The value of `key` when it is one of `allowed` (or absent: `fallback`); anything else is a coded refusal. */
export function oneOf<T extends string>(raw: RawConfig, key: string, allowed: Record<string, T>, fallback: string): T {
  const v = raw.r[key] ?? fallback;
  if (typeof v !== 'string' || !(v in allowed)) {
    throw new LogitscopeError('model_feature_unsupported', `${key} ${JSON.stringify(v)} is not supported (supported: ${Object.keys(allowed).join(', ')})`, raw.file);
  }
  return allowed[v];
}

/** A feature of the checkpoint that the engine does not implement, refused by name rather than run wrongly. */
export function unsupported(raw: RawConfig, what: string): LogitscopeError {
  return new LogitscopeError('model_feature_unsupported', what, raw.file);
}

export { invalid };
