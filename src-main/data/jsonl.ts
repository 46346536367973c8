import { readLines } from './lines.ts';
import { sourceFromMeta, trackOf, type RawRecord, type ReaderContext } from './records.ts';

const BLANK = /^\s*$/;

/**
 * Records of a JSON-lines file (plain, `.gz` or `.zst`), shaped like the Pile's
 * `{"text": ..., "meta": {"pile_set_name": ...}}`. Every non-blank line is one record, so a
 * malformed line still takes its index and the indices of later records do not shift.
 */
export async function* readJsonl(file: string, ctx: ReaderContext): AsyncGenerator<RawRecord, number> {
  let index = 0;
  for await (const { text: line } of readLines(file, ctx)) {
    if (line !== null && BLANK.test(line)) continue;
    const i = index++;
    // Lines before the range are counted but not parsed: that is most of the cost of a late range.
    if (i < ctx.from) continue;
    if (line === null) {
      yield { index: i, skip: 'oversized' };
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      yield { index: i, skip: 'malformedJson' };
      continue;
    }
    const obj = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
    if (typeof obj.text !== 'string') {
      yield { index: i, skip: 'missingText' };
      continue;
    }
    yield { index: i, text: obj.text, source: sourceFromMeta(obj.meta), ...trackOf(obj.track) };
  }
  return index;
}
