import fs from 'node:fs';
import { parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet';
import type { AsyncBuffer, FileMetaData, RowGroup, SchemaTree } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { LogitscopeError } from '../errors.ts';
import { sourceFromMeta, throwIfAborted, trackOf, type RawRecord, type ReaderContext } from './records.ts';

/**
 * Rows decoded per call when the file has offset indexes (hyparquet then fetches only the pages
 * holding those rows); without them a call fetches whole column chunks, so we read a row group at once.
 */
const BATCH_ROWS = 1024;

/** A file-backed AsyncBuffer that counts the bytes it hands out and reads nothing up front. */
function fileBuffer(handle: fs.promises.FileHandle, byteLength: number, ctx: ReaderContext): AsyncBuffer {
  let bytesRead = 0;
  return {
    byteLength,
    async slice(start: number, end = byteLength): Promise<ArrayBuffer> {
      const out = new ArrayBuffer(Math.max(0, end - start));
      const view = new Uint8Array(out);
      for (let done = 0; done < view.length; ) {
        const { bytesRead: n } = await handle.read(view, done, view.length - done, start + done);
        if (n === 0) throw new Error(`unexpected end of file at byte ${start + done}`);
        done += n;
      }
      bytesRead += view.length;
      // Overlapping batches re-read a page now and then; progress must not pass 100 %.
      ctx.onBytesRead?.(Math.min(bytesRead, byteLength));
      return out;
    },
  };
}

function describe(column: SchemaTree): string {
  if (column.children.length) return 'a group (struct, list or map)';
  const { type, converted_type, logical_type } = column.element;
  return [type, converted_type, logical_type?.type].filter(Boolean).join(' / ');
}

function isStringColumn(column: SchemaTree): boolean {
  const { type, converted_type } = column.element;
  // Unannotated BYTE_ARRAY is common in practice and hyparquet decodes it as UTF-8.
  return !column.children.length && type === 'BYTE_ARRAY' && (converted_type === undefined || converted_type === 'UTF8');
}

/** Which columns hold the text and the Pile subset name; throws when `text` is unusable. */
function pickColumns(metadata: FileMetaData, file: string): { columns: string[]; sourceColumn?: string } {
  const top = parquetSchema(metadata).children;
  const text = top.find((c) => c.element.name === 'text');
  if (!text) {
    const names = top.map((c) => c.element.name).join(', ');
    throw new LogitscopeError('dataset_parse', `parquet file has no "text" column (columns: ${names})`, file);
  }
  if (!isStringColumn(text)) {
    throw new LogitscopeError('dataset_parse', `parquet column "text" is ${describe(text)}, expected a string (BYTE_ARRAY) column`, file);
  }
  const meta = top.find((c) => c.element.name === 'meta');
  const metaUsable = meta && (isStringColumn(meta) || meta.children.some((c) => c.element.name === 'pile_set_name'));
  const pileSetName = top.find((c) => c.element.name === 'pile_set_name' && isStringColumn(c));
  const sourceColumn = metaUsable ? 'meta' : pileSetName ? 'pile_set_name' : undefined;
  // A top-level `track` column (text or an integer id) carries each row's token to follow, as in jsonl.
  const track = top.some((c) => c.element.name === 'track' && !c.children.length) ? ['track'] : [];
  return { columns: [...(sourceColumn ? ['text', sourceColumn] : ['text']), ...track], sourceColumn };
}

function hasOffsetIndexes(group: RowGroup, columns: string[]): boolean {
  return group.columns
    .filter((c) => columns.includes(c.meta_data?.path_in_schema[0] ?? ''))
    .every((c) => c.offset_index_offset !== undefined && c.offset_index_length);
}

/**
 * Records of a parquet shard such as the Hugging Face copies of the Pile: a `text` string column
 * and, optionally, `meta` (a struct with `pile_set_name`, or that dict as a string) or a
 * top-level `pile_set_name`. One row is one record. Reads only those columns, batch by batch,
 * and only the row groups from `ctx.from` on.
 */
export async function* readParquet(file: string, ctx: ReaderContext): AsyncGenerator<RawRecord, number> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const buffer = fileBuffer(handle, (await handle.stat()).size, ctx);
    let metadata: FileMetaData;
    try {
      metadata = await parquetMetadataAsync(buffer);
    } catch (err) {
      throw new LogitscopeError('dataset_parse', `not a readable parquet file: ${(err as Error).message}`, file);
    }
    const { columns, sourceColumn } = pickColumns(metadata, file);

    let groupStart = 0;
    for (const [g, group] of metadata.row_groups.entries()) {
      const groupEnd = groupStart + Number(group.num_rows);
      const batch = hasOffsetIndexes(group, columns) ? BATCH_ROWS : groupEnd - groupStart;
      for (let rowStart = Math.max(groupStart, ctx.from); rowStart < groupEnd; rowStart += batch) {
        throwIfAborted(ctx.signal);
        const rowEnd = Math.min(groupEnd, rowStart + batch);
        let rows: Record<string, unknown>[];
        try {
          rows = await parquetReadObjects({ file: buffer, metadata, columns, rowStart, rowEnd, compressors, useOffsetIndex: true });
        } catch (err) {
          throw new LogitscopeError(
            'dataset_parse',
            `cannot read parquet column ${columns.map((c) => `"${c}"`).join(' or ')} in row group ${g} ` +
              `(rows ${rowStart}..${rowEnd - 1}): ${(err as Error).message}`,
            file,
          );
        }
        for (const [k, row] of rows.entries()) {
          const index = rowStart + k;
          if (typeof row.text !== 'string') yield { index, skip: 'missingText' };
          else yield { index, text: row.text, source: sourceColumn ? sourceFromMeta(sourceColumn === 'meta' ? row.meta : row) : undefined, ...trackOf(row.track) };
        }
      }
      groupStart = groupEnd;
    }
    return groupStart;
  } finally {
    await handle.close();
  }
}
