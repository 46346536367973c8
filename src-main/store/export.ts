import fs from 'node:fs';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileWriter, parquetWriteRows, type SchemaElement } from 'hyparquet-writer';
import { writeAtomically } from '../fs-atomic.ts';
import { type Hook, residHook } from '../protocol/hooks.ts';
import { CONVENTIONS, describeTechnique, describeTechniques, exportExample, exportSummary, paddingIds, type ExportRecord } from '../sweep/export-record.ts';
import { PARITY_METHOD } from '../sweep/parity.ts';
import { runParity } from './run-parity.ts';
import type { ResultStore, StoredExample } from './result-store.ts';
import { CSV_EOL, csvLine } from '../csv.ts';
import { isCorrect, type Readout } from '../sweep/readout.ts';

/**
 * A stored run as files: the export record (JSON), and one row per example × technique × layer as
 * CSV or Parquet. The tables are written a page of examples at a time, never as one big string,
 * and to `<file>.partial` first, so a failed export never leaves a half file under the real name.
 */

/** The export record (export-record.ts) of a stored run, with the run's bookkeeping under `run`. */
export function exportJson(store: ResultStore, runId: string): ExportRecord {
  const run = store.getRun(runId);
  const paddingFrom = paddingFromOf(run.model);
  return {
    model: run.model,
    techniques: describeTechniques(run.resolvedTechniques),
    conventions: CONVENTIONS,
    protocol: run.protocol,
    dataset: run.dataset,
    status: run.status,
    run: {
      id: run.id,
      name: run.name,
      created_at: run.createdAt,
      updated_at: run.updatedAt,
      code_version: run.codeVersion,
      strategy: run.strategy,
      files: run.files,
      layers: run.layers,
      k: run.k,
      examples_planned: run.examplesPlanned,
      examples_done: run.examplesDone,
      timings: run.timings,
      error: run.error,
    },
    // The method is named here from sweep/intervals.ts, where the intervals are computed, so it cannot drift from them.
    summary: exportSummary(store.summary(runId)),
    parity: { ...runParity(store, run), method: PARITY_METHOD },
    examples: Array.from(store.iterateResults(runId), ({ example, readouts }) => ({
      record_index: example.recordIndex,
      ...(example.source !== undefined && { source: example.source }),
      ...(example.track !== undefined && { track_token: example.track }),
      ...exportExample(example, readouts, paddingFrom),
    })),
  };
}

export const TABLE_COLUMNS = [
  'run_id', 'example', 'record_index', 'position', 'reference_top1', 'reference_top1_text', 'technique', 'layer', 'hook',
  'top1', 'top1_text', 'correct', 'surprisal', 'surprisal_paper', 'kl', 'rank', 'entropy', 'track_token', 'track_logprob', 'track_rank', 'top_k_ids', 'top_k_texts', 'top_k_probs', 'top_k_padding',
  'technique_detail',
] as const;

/** A token id as the grid shows it (api/format.ts showToken of the model's tokenizer), for the *_text columns. */
export type TokenText = (id: number) => string;

interface TableRow {
  run_id: string;
  example: number;
  record_index: number;
  position: number;
  reference_top1: number;
  /** The *_text columns: each id as the app's grid shows it; empty when the run's tokenizer could not be read. */
  reference_top1_text: string;
  technique: string;
  layer: number;
  /** protocol/hooks.ts residHook(layer): blocks.{l}.hook_resid_post, or hook_embed for layer -1. */
  hook: Hook;
  top1: number;
  top1_text: string;
  correct: boolean;
  surprisal: number;
  surprisal_paper: number;
  /** The per-row measures (CONVENTIONS); null where not measured: an empty CSV field, a Parquet null. */
  kl: number | null;
  rank: number | null;
  entropy: number | null;
  /** The token the example follows (CONVENTIONS.tracked), its ln p and its 0-based rank here; null where the run follows none. */
  track_token: number | null;
  track_logprob: number | null;
  track_rank: number | null;
  top_k_ids: number[];
  /** In CSV a JSON array (token texts may hold spaces and commas); in Parquet a list column. */
  top_k_texts: string[];
  top_k_probs: number[];
  /** The top-k ids that are padding rows (CONVENTIONS.padding_ids); empty for runs that did not record the tokenizer's size. */
  top_k_padding: number[];
  /**
   * For tuned_lens rows, the lens the run read through in one line (the words `runs show` prints:
   * train slice, position seed, ridge, key prefix); empty for every other technique. A column,
   * not file metadata, so `df.technique_detail` names the lens in pandas without a Parquet reader's metadata API.
   */
  technique_detail: string;
}

function* tableRows(store: ResultStore, runId: string, text?: TokenText): Generator<TableRow> {
  const run = store.getRun(runId);
  const paddingFrom = paddingFromOf(run.model) ?? Infinity;
  const detail = new Map(run.resolvedTechniques.map((t) => [t.id, describeTechnique(t).lens ?? '']));
  for (const { example, readouts } of store.iterateResults(runId)) {
    for (const r of readouts) yield tableRow({ runId, example, readout: r, text, paddingFrom, detail: detail.get(r.technique) ?? '' });
  }
}

/** One readout as a table row: the one derivation the CSV and Parquet exports share. */
function tableRow(o: { runId: string; example: StoredExample['example']; readout: Readout; text?: TokenText; paddingFrom: number; detail: string }): TableRow {
  const { readout: r, text } = o;
  return {
    run_id: o.runId,
    example: o.example.ordinal,
    record_index: o.example.recordIndex,
    position: o.example.position,
    reference_top1: r.referenceTop1,
    reference_top1_text: text?.(r.referenceTop1) ?? '',
    technique: r.technique,
    layer: r.layer,
    hook: residHook(r.layer),
    top1: r.top1,
    top1_text: text?.(r.top1) ?? '',
    correct: isCorrect(r),
    surprisal: r.surprisal,
    surprisal_paper: r.surprisalPaper,
    kl: r.kl,
    rank: r.rank,
    entropy: r.entropy,
    track_token: r.tracked?.id ?? null,
    track_logprob: r.tracked?.logprob ?? null,
    track_rank: r.tracked?.rank ?? null,
    top_k_ids: r.topK.ids,
    top_k_texts: text ? r.topK.ids.map(text) : [],
    top_k_probs: r.topK.probs,
    top_k_padding: paddingIds(r.topK.ids, o.paddingFrom),
    technique_detail: o.detail,
  };
}

/**
 * CSV (RFC 4180) with TABLE_COLUMNS; top-k lists are space-separated inside one field. Writes to a
 * file path, or to a stream that is left open. Resolves to the number of data rows.
 */
export async function exportCsv(store: ResultStore, runId: string, out: Writable | string, text?: TokenText): Promise<number> {
  store.getRun(runId); // run_not_found before any file is created
  let rows = 0;
  function* chunks(): Generator<string> {
    yield csvLine(TABLE_COLUMNS) + CSV_EOL;
    let lines: string[] = [];
    for (const r of tableRows(store, runId, text)) {
      // Token texts may hold spaces, so that list is a JSON array rather than space-separated.
      lines.push(csvLine(TABLE_COLUMNS.map((c) => (c === 'top_k_texts' ? JSON.stringify(r.top_k_texts) : r[c]))));
      rows++;
      if (lines.length >= 4096) {
        yield lines.join(CSV_EOL) + CSV_EOL;
        lines = [];
      }
    }
    if (lines.length > 0) yield lines.join(CSV_EOL) + CSV_EOL;
  }
  if (typeof out === 'string') {
    await writeAtomically(out, (partial) => pipeline(Readable.from(chunks()), fs.createWriteStream(partial)));
  } else {
    await pipeline(Readable.from(chunks()), out, { end: false });
  }
  return rows;
}

/** The same table as Parquet, top-k lists as LIST columns. Resolves to the number of rows. */
export async function exportParquet(store: ResultStore, runId: string, file: string, text?: TokenText): Promise<number> {
  store.getRun(runId);
  let rows = 0;
  function* counted(): Generator<TableRow> {
    for (const r of tableRows(store, runId, text)) {
      rows++;
      yield r;
    }
  }
  await writeAtomically(file, async (partial) => {
    await parquetWriteRows({
      writer: fileWriter(partial),
      rows: counted(),
      columns: TABLE_COLUMNS.map((name) => ({ name })),
      schema: PARQUET_SCHEMA,
      kvMetadata: [{ key: 'logitscope.conventions', value: JSON.stringify(CONVENTIONS) }],
      createdBy: 'logitscope-lab',
    });
  });
  return rows;
}

const required = (name: string, type: 'INT32' | 'DOUBLE' | 'BOOLEAN'): SchemaElement => ({ name, type, repetition_type: 'REQUIRED' });
const optional = (name: string, type: 'INT32' | 'DOUBLE'): SchemaElement => ({ name, type, repetition_type: 'OPTIONAL' });
const string = (name: string): SchemaElement => ({ name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' });
/** The standard three-level LIST layout, which pyarrow and DuckDB read as a list column. */
const list = (name: string, type: 'INT32' | 'FLOAT' | 'BYTE_ARRAY'): SchemaElement[] => [
  { name, repetition_type: 'REQUIRED', converted_type: 'LIST', num_children: 1 },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
  { name: 'element', type, repetition_type: 'REQUIRED', ...(type === 'BYTE_ARRAY' && { converted_type: 'UTF8' as const }) },
];

const PARQUET_SCHEMA: SchemaElement[] = [
  { name: 'root', num_children: TABLE_COLUMNS.length },
  string('run_id'),
  required('example', 'INT32'),
  required('record_index', 'INT32'),
  required('position', 'INT32'),
  required('reference_top1', 'INT32'),
  string('reference_top1_text'),
  string('technique'),
  required('layer', 'INT32'),
  string('hook'),
  required('top1', 'INT32'),
  string('top1_text'),
  required('correct', 'BOOLEAN'),
  required('surprisal', 'DOUBLE'),
  required('surprisal_paper', 'DOUBLE'),
  optional('kl', 'DOUBLE'),
  optional('rank', 'INT32'),
  optional('entropy', 'DOUBLE'),
  optional('track_token', 'INT32'),
  optional('track_logprob', 'DOUBLE'),
  optional('track_rank', 'INT32'),
  ...list('top_k_ids', 'INT32'),
  ...list('top_k_texts', 'BYTE_ARRAY'),
  ...list('top_k_probs', 'FLOAT'),
  ...list('top_k_padding', 'INT32'),
  string('technique_detail'),
];

/** Where a stored run's padding ids start: the tokenizer's size, when the run recorded it. */
function paddingFromOf(model: Record<string, unknown>): number | undefined {
  return typeof model.tokenizer_vocab_size === 'number' ? model.tokenizer_vocab_size : undefined;
}
