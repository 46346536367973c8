/**
 * Every error the app reports on purpose carries a code from this closed union and,
 * where one is involved, the file or field it is about. Turning an error into text is
 * `formatError`, kept separate so the CLI and the UI can word it their own way.
 */
export type ErrorCode =
  | 'config_missing'
  | 'config_invalid'
  | 'model_type_unsupported'
  | 'model_feature_unsupported'
  | 'weights_missing'
  | 'weights_truncated'
  | 'weights_corrupt'
  | 'weights_shape_mismatch'
  | 'weights_dtype_unsupported'
  | 'tokenizer_missing'
  | 'tokenizer_invalid'
  | 'prompt_empty'
  | 'prompt_too_long'
  | 'prompt_unsuitable'
  | 'track_token_invalid'
  | 'position_out_of_range'
  | 'layer_out_of_range'
  | 'token_out_of_range'
  | 'device_unavailable'
  | 'engine_failed'
  | 'numerics_nonfinite'
  | 'dataset_missing'
  | 'dataset_parse'
  | 'dataset_unsupported'
  | 'slice_empty'
  | 'argument_invalid'
  | 'unauthorized'
  | 'forbidden_origin'
  | 'model_not_loaded'
  | 'model_mismatch'
  | 'model_busy'
  | 'run_busy'
  | 'output_unwritable'
  | 'cancelled'
  | 'cache_schema_newer'
  | 'cache_corrupt'
  | 'cache_locked'
  | 'cache_readonly'
  | 'cache_full'
  | 'cache_missing'
  | 'run_not_found'
  | 'shards_mismatch'
  | 'shards_incomplete'
  | 'desktop_only'
  | 'dataset_changed'
  | 'cache_dir_unusable'
  | 'cache_schema_unknown'
  | 'reference_parse';

/** One problem with a request: where (a dotted path into the payload, or an option) and what. */
export interface Issue {
  path: string;
  message: string;
  /** Its own code, where the problems of one request differ (a layer past the model's last beside a bad position). */
  code?: ErrorCode;
}

export class LogitscopeError extends Error {
  override readonly name = 'LogitscopeError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The file, field or argument the error is about, when there is one. */
    readonly path?: string,
    /** Every problem found, when a request was checked as a whole (argument_invalid). */
    readonly issues?: Issue[],
  ) {
    super(message);
  }
}

/**
 * Every problem found in one request as one error: a single issue reads as itself (its code, path and
 * message); several carry the code they share (argument_invalid where they differ) and each its own.
 */
export function issuesError(request: string, issues: readonly Issue[]): LogitscopeError {
  if (issues.length === 1) return new LogitscopeError(issues[0].code ?? 'argument_invalid', issues[0].message, issues[0].path);
  const codes = new Set(issues.map((i) => i.code ?? 'argument_invalid'));
  const code = codes.size === 1 ? [...codes][0] : 'argument_invalid';
  return new LogitscopeError(code, `${issues.length} problems with the ${request} request`, undefined, [...issues]);
}

export function isLogitscopeError(e: unknown): e is LogitscopeError {
  return e instanceof LogitscopeError;
}

/** One line for a terminal or a UI banner: "[code] path: message". */
export function formatError(e: unknown): string {
  if (e instanceof LogitscopeError) {
    if (e.issues && e.issues.length > 1) return `[${e.code}] ${e.message}\n${e.issues.map((i) => `  - ${i.path ? `${i.path}: ` : ''}${i.message}`).join('\n')}`;
    return `[${e.code}] ${e.path ? `${e.path}: ` : ''}${e.message}`;
  }
  if (e instanceof Error) return `[unexpected] ${e.name !== 'Error' ? `${e.name}: ` : ''}${e.message}`;
  return `[unexpected] ${String(e)}`;
}

/** Plain-data form for crossing a thread, process or IPC boundary. */
export interface SerializedError {
  code: ErrorCode | 'unexpected';
  message: string;
  path?: string;
  issues?: Issue[];
  /** For unexpected errors: the original class name (TypeError, SqliteError…), so it is not lost. */
  name?: string;
}

export function serializeError(e: unknown): SerializedError {
  if (e instanceof LogitscopeError) return { code: e.code, message: e.message, ...(e.path !== undefined && { path: e.path }), ...(e.issues && { issues: e.issues }) };
  if (e instanceof Error) return { code: 'unexpected', message: e.message, name: e.name };
  return { code: 'unexpected', message: String(e) };
}

export function deserializeError(s: SerializedError): Error {
  if (s.code === 'unexpected') {
    const e = new Error(s.message);
    if (s.name) e.name = s.name;
    return e;
  }
  return new LogitscopeError(s.code, s.message, s.path, s.issues);
}
