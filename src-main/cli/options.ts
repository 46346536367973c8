import { parseArgs, type ParseArgsConfig } from 'node:util';
import { Lab } from '../api/lab.ts';
import { LogitscopeError } from '../errors.ts';
import { parseDevice } from '../protocol/device.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs with every mistake reported as an `argument_invalid` error naming the option. */
export function parseOptions<O extends Options>(argv: string[], options: O, help: string) {
  return parseCommandLine(argv, options, help, false)?.values;
}

/** As parseOptions, for commands that also take positional arguments (subcommands, run ids). */
export function parseCommandLine<O extends Options>(argv: string[], options: O, help: string, allowPositionals = true) {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(help);
    return undefined;
  }
  try {
    return parseArgs({ args: joinNegativeValues(argv, options), options, strict: true, allowPositionals });
  } catch (e) {
    throw new LogitscopeError('argument_invalid', `${(e as Error).message}\n\n${help}`);
  }
}

/** A whole number; range checks are the API schema's, so every front words them alike. */
export function intOption(value: string | undefined, name: string, opts: { min?: number; fallback?: number } = {}): number | undefined {
  if (value === undefined) return opts.fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || (opts.min !== undefined && n < opts.min)) {
    throw new LogitscopeError('argument_invalid', `--${name} must be a whole number${opts.min !== undefined ? ` ≥ ${opts.min}` : ''}, got "${value}"`, `--${name}`);
  }
  return n;
}

/** The Lab over the results database the user chose (--db, else LOGITSCOPE_DB, else app data). */
export async function withLab<T>(opts: { db?: string; readonly?: boolean }, fn: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = await Lab.open({ dbPath: opts.db, readonly: opts.readonly });
  try {
    return await fn(lab);
  } finally {
    await lab.close();
  }
}

/**
 * A device string checked by the engine's own parser (cpu, cuda, cuda:N, webgpu), so --device and
 * each entry of --devices are refused with the same words, before any database or process is opened.
 * Returns the text as given (`cuda` stays `cuda`: a devices sweep gives cuda:N's child only GPU N).
 */
export function deviceOption(text: string, name: string): string {
  parseDevice(text, name);
  return text;
}

export function requiredOption(value: string | undefined, name: string): string {
  if (value === undefined || value === '') throw new LogitscopeError('argument_invalid', `--${name} is required`, `--${name}`);
  return value;
}

/**
 * `--layers -1,0,5` and `--limit -5`: parseArgs takes a value that starts with "-" for an option,
 * and stops with "argument is ambiguous". A value that reads as a number is joined to its option
 * (`--layers=-1,0,5`), so negative values work in every documented form and are then validated.
 */
function joinNegativeValues(argv: string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].startsWith('--') ? argv[i].slice(2) : undefined;
    const next = argv[i + 1];
    if (name !== undefined && options[name]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      out.push(`--${name}=${next}`);
      i++;
    } else {
      out.push(argv[i]);
    }
  }
  return out;
}
