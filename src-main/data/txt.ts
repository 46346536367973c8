import { readLines } from './lines.ts';
import { DEFAULT_MAX_LINE_BYTES, type RawRecord, type ReaderContext } from './records.ts';

const BLANK = /^\s*$/;

/**
 * Records of a plain-text file (plain, `.gz` or `.zst`): one per paragraph, paragraphs being
 * separated by one or more blank (or whitespace-only) lines. A paragraph's lines are joined
 * with `\n`, line endings normalised from `\r\n`.
 */
export async function* readTxt(file: string, ctx: ReaderContext): AsyncGenerator<RawRecord, number> {
  const maxChars = ctx.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  let index = 0;
  let lines: string[] = [];
  let chars = 0;
  let inParagraph = false;
  let oversized = false;

  // Returns the finished paragraph as a record, or undefined when it lies before the range.
  const close = (): RawRecord | undefined => {
    const i = index++;
    const record: RawRecord | undefined =
      i < ctx.from ? undefined : oversized ? { index: i, skip: 'oversized' } : { index: i, text: lines.join('\n') };
    lines = [];
    chars = 0;
    inParagraph = false;
    oversized = false;
    return record;
  };

  for await (const { text } of readLines(file, ctx)) {
    if (text !== null && BLANK.test(text)) {
      if (inParagraph) {
        const record = close();
        if (record) yield record;
      }
      continue;
    }
    inParagraph = true;
    chars += (text?.length ?? 0) + 1;
    if (text === null || chars > maxChars) {
      oversized = true;
      lines = [];
    } else if (!oversized && index >= ctx.from) {
      lines.push(text);
    }
  }
  if (inParagraph) {
    const record = close();
    if (record) yield record;
  }
  return index;
}
