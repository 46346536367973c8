import { LogitscopeError } from '../errors.ts';

/**
 * Checks for payloads that arrive from a renderer or over HTTP: untrusted until proven otherwise.
 * Each failure names the field, so the UI can say what is wrong.
 */
export type Fields = Record<string, unknown>;

export function object(payload: unknown, what = 'payload'): Fields {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    throw new LogitscopeError('argument_invalid', `${what} must be an object`, what);
  }
  return payload as Fields;
}

function bad(field: string, expected: string, got: unknown): never {
  throw new LogitscopeError('argument_invalid', `${field} must be ${expected}, got ${JSON.stringify(got) ?? String(got)}`, field);
}

export function string(o: Fields, field: string, opts: { optional?: boolean; nonEmpty?: boolean } = {}): string | undefined {
  const v = o[field];
  if (v === undefined && opts.optional) return undefined;
  if (typeof v !== 'string' || (opts.nonEmpty && v.length === 0)) bad(field, opts.nonEmpty ? 'a non-empty string' : 'a string', v);
  return v;
}

export function requiredString(o: Fields, field: string): string {
  return string(o, field, { nonEmpty: true })!;
}

export function integer(o: Fields, field: string, opts: { optional?: boolean; min?: number; max?: number } = {}): number | undefined {
  const v = o[field];
  if (v === undefined && opts.optional) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || (opts.min !== undefined && v < opts.min) || (opts.max !== undefined && v > opts.max)) {
    const range = opts.min !== undefined ? ` ≥ ${opts.min}` : '';
    bad(field, `an integer${range}`, v);
  }
  return v;
}

export function boolean(o: Fields, field: string): boolean | undefined {
  const v = o[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') bad(field, 'true or false', v);
  return v;
}

export function oneOf<T extends string>(o: Fields, field: string, values: readonly T[], opts: { optional?: boolean } = {}): T | undefined {
  const v = o[field];
  if (v === undefined && opts.optional) return undefined;
  if (!values.includes(v as T)) bad(field, `one of ${values.join(', ')}`, v);
  return v as T;
}

export function stringList(o: Fields, field: string): string[] {
  const v = o[field];
  if (!Array.isArray(v) || v.length === 0 || v.some((x) => typeof x !== 'string' || x.length === 0)) bad(field, 'a non-empty list of strings', v);
  return v as string[];
}
