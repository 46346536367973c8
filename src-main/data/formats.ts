import { isBuiltinPath, readBuiltin } from './builtin.ts';
import { readJsonl } from './jsonl.ts';
import { readParquet } from './parquet.ts';
import type { RecordReader } from './records.ts';
import { readTxt } from './txt.ts';

/** Extension (lower case, longest first where they overlap) → reader. Compression is handled by the line reader. */
const READERS: ReadonlyArray<readonly [string, RecordReader]> = [
  ['.jsonl.zst', readJsonl],
  ['.jsonl.gz', readJsonl],
  ['.jsonl', readJsonl],
  ['.parquet', readParquet],
  ['.txt.zst', readTxt],
  ['.txt.gz', readTxt],
  ['.txt', readTxt],
];

export const SUPPORTED_EXTENSIONS: readonly string[] = READERS.map(([ext]) => ext);

export function readerFor(file: string): RecordReader | undefined {
  if (isBuiltinPath(file)) return readBuiltin; // `builtin:NAME` pseudo-paths, see builtin.ts
  const lower = file.toLowerCase();
  return READERS.find(([ext]) => lower.endsWith(ext))?.[1];
}
