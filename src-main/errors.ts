/**
 * Every error the app reports on purpose carries a code from this closed union and,
 * where one is involved, the file or field it is about. Turning an error into text is
 * `formatError`, kept separate so the CLI and the UI can word it their own way.
 */
export type ErrorCode =
  | 'config_missing'
  | 'config_invalid'
  | 'model_type_unsupported'
  | 'weights_missing'
  | 'weights_truncated'
  | 'weights_corrupt'
  | 'weights_shape_mismatch'
  | 'weights_dtype_unsupported'
  | 'tokenizer_missing'
  | 'tokenizer_invalid'
  | 'prompt_empty'
  | 'prompt_too_long'
  | 'position_out_of_range'
  | 'layer_out_of_range'
  | 'token_out_of_range'
  | 'device_unavailable'
  | 'engine_failed'
  | 'dataset_missing'
  | 'dataset_parse'
  | 'dataset_unsupported'
  | 'slice_empty'
  | 'argument_invalid'
  | 'cancelled'
  | 'cache_schema_newer'
  | 'cache_corrupt'
  | 'cache_locked'
  | 'cache_readonly'
  | 'cache_full'
  | 'cache_missing'
  | 'run_not_found';

export class LogitscopeError extends Error {
  override readonly name = 'LogitscopeError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The file, field or argument the error is about, when there is one. */
    readonly path?: string,
  ) {
    super(message);
  }
}

export function isLogitscopeError(e: unknown): e is LogitscopeError {
  return e instanceof LogitscopeError;
}

/** One line for a terminal or a UI banner: "[code] path: message". */
export function formatError(e: unknown): string {
  if (e instanceof LogitscopeError) {
    return `[${e.code}] ${e.path ? `${e.path}: ` : ''}${e.message}`;
  }
  if (e instanceof Error) return `[unexpected] ${e.message}`;
  return `[unexpected] ${String(e)}`;
}

/** Plain-data form for crossing a thread, process or IPC boundary. */
export interface SerializedError {
  code: ErrorCode | 'unexpected';
  message: string;
  path?: string;
}

export function serializeError(e: unknown): SerializedError {
  if (e instanceof LogitscopeError) return { code: e.code, message: e.message, path: e.path };
  return { code: 'unexpected', message: e instanceof Error ? e.message : String(e) };
}

export function deserializeError(s: SerializedError): Error {
  if (s.code === 'unexpected') return new Error(s.message);
  return new LogitscopeError(s.code, s.message, s.path);
}
