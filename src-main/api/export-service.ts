/** The `runs.export` request: a stored run as JSON, CSV or Parquet, returned or written to a file. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { LogitscopeError } from '../errors.ts';
import { writeFileAtomically } from '../fs-atomic.ts';
import { fsFailure, mapFsFailureAsync } from '../fs-errors.ts';
import { exportFileName } from './format.ts';
import { exportCsv, exportJson, exportParquet, type TokenText } from '../store/export.ts';
import type { ResultStore } from '../store/result-store.ts';
import type { ExportReply } from './contract.ts';

type Format = 'json' | 'csv' | 'parquet';

const MIME: Record<Format, string> = { json: 'application/json', csv: 'text/csv', parquet: 'application/vnd.apache.parquet' };

/**
 * Refuses an output file that cannot be written, before any work: its folder must exist and be
 * writable, and it must not be a folder itself. Used by every request that writes a file.
 */
export function checkWritable(file: string, field = 'out'): string {
  const absolute = path.resolve(file);
  const dir = path.dirname(absolute);
  if (!fs.existsSync(dir)) throw new LogitscopeError('output_unwritable', `the folder ${dir} does not exist`, field);
  if (fs.existsSync(absolute) && fs.statSync(absolute).isDirectory()) throw new LogitscopeError('output_unwritable', `${absolute} is a folder, not a file`, field);
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    throw new LogitscopeError('output_unwritable', `the folder ${dir} is not writable`, field);
  }
  return absolute;
}

export interface ExportOptions {
  format: Format;
  /** Write to this file (streamed) instead of replying with the content. */
  out?: string;
  /** Each token id as the grid shows it, for the CSV and Parquet *_text columns (the run's tokenizer). */
  text?: TokenText;
}

export async function exportRun(store: ResultStore, runId: string, opts: ExportOptions): Promise<ExportReply> {
  const target = opts.out === undefined ? undefined : checkWritable(opts.out);
  if (target === undefined) return exportTo(store, runId, opts, undefined);
  // A full disk or a folder that turns read-only meanwhile: a coded error naming the file (nothing is left under its name).
  return mapFsFailureAsync({ kind: 'output', file: target, field: 'out' }, () => exportTo(store, runId, opts, target));
}

async function exportTo(store: ResultStore, runId: string, { format, text }: ExportOptions, target: string | undefined): Promise<ExportReply> {
  const run = store.getRun(runId); // run_not_found before any file is touched
  const fileName = target ?? exportFileName(run, format);
  const mimeType = MIME[format];
  if (format === 'json') {
    const content = JSON.stringify(exportJson(store, runId));
    if (target === undefined) return { fileName, mimeType, content, encoding: 'utf8', written: Buffer.byteLength(content) };
    writing(target, runId, () => writeFileAtomically(target, content));
    return { fileName, mimeType, written: Buffer.byteLength(content) };
  }
  if (format === 'csv') {
    if (target !== undefined) return { fileName, mimeType, written: await writing(target, runId, () => exportCsv(store, runId, target, text)) };
    const chunks: string[] = [];
    const written = await exportCsv(store, runId, new Writable({ write: (chunk, _enc, done) => (chunks.push(String(chunk)), done()) }), text);
    return { fileName, mimeType, content: chunks.join(''), encoding: 'utf8', written };
  }
  if (target !== undefined) return { fileName, mimeType, written: await writing(target, runId, () => exportParquet(store, runId, target, text)) };
  // Parquet is binary: written to a private temp file, handed back base64-encoded for a download.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logitscope-export-'));
  try {
    const file = path.join(dir, 'run.parquet');
    const written = await exportParquet(store, runId, file, text);
    return { fileName, mimeType, content: fs.readFileSync(file).toString('base64'), encoding: 'base64', written };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Writes an export file; a file-system error (a full disk above all) becomes output_unwritable with
 * the file and what to do (fs-errors.ts), and says the run is kept. The write goes through a
 * .partial file, so nothing is left under the name.
 */
function writing<T>(target: string, runId: string, write: () => T): T {
  const fail = (e: unknown): never => {
    const coded = fsFailure(e, { kind: 'output', file: target, field: 'out' });
    if (!coded) throw e;
    throw new LogitscopeError(coded.code, `${coded.message}; run ${runId} is stored: \`logitscope runs export ${runId} --out FILE\` writes it`, coded.path);
  };
  try {
    const result = write();
    return (result instanceof Promise ? result.catch(fail) : result) as T;
  } catch (e) {
    return fail(e);
  }
}
