import { parseArgs, type ParseArgsConfig } from 'node:util';
import { LogitscopeError } from '../errors.ts';

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
    return parseArgs({ args: argv, options, strict: true, allowPositionals });
  } catch (e) {
    throw new LogitscopeError('argument_invalid', `${(e as Error).message}\n\n${help}`);
  }
}

export function intOption(value: string | undefined, name: string, opts: { min?: number; fallback?: number } = {}): number | undefined {
  if (value === undefined) return opts.fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || (opts.min !== undefined && n < opts.min)) {
    throw new LogitscopeError('argument_invalid', `--${name} must be an integer${opts.min !== undefined ? ` ≥ ${opts.min}` : ''}, got "${value}"`, `--${name}`);
  }
  return n;
}

export function requiredOption(value: string | undefined, name: string): string {
  if (value === undefined || value === '') throw new LogitscopeError('argument_invalid', `--${name} is required`, `--${name}`);
  return value;
}
