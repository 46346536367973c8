import fs from 'node:fs';
import zlib from 'node:zlib';
import { pipeline, type Readable } from 'node:stream';
import { DecompressStream } from 'zstd-napi';
import { LogitscopeError } from '../errors.ts';
import { DEFAULT_MAX_LINE_BYTES, type ReaderContext } from './records.ts';

export type Compression = 'none' | 'gzip' | 'zstd';

export function compressionOf(file: string): Compression {
  const lower = file.toLowerCase();
  if (lower.endsWith('.gz')) return 'gzip';
  if (lower.endsWith('.zst')) return 'zstd';
  return 'none';
}

export interface Line {
  /** 1-based line number within the decompressed file. */
  lineNo: number;
  /** The line without its `\n` or `\r\n`; null when it was longer than `maxLineBytes` and dropped. */
  text: string | null;
}

/** Large reads keep syscall and stream overhead small next to decompression. */
const READ_CHUNK = 256 * 1024;

function open(file: string, compression: Compression, signal?: AbortSignal): { src: fs.ReadStream; out: Readable } {
  const src = fs.createReadStream(file, { highWaterMark: READ_CHUNK, signal });
  if (compression === 'none') return { src, out: src };
  // windowLogMax 31 accepts frames written with `zstd --long=31`; the default (27) rejects them.
  // Memory is only allocated for the window a frame actually declares.
  const decoder = compression === 'gzip' ? zlib.createGunzip() : new DecompressStream({ windowLogMax: 31 });
  // pipeline destroys both streams when either fails, so the error reaches whoever iterates `decoder`.
  pipeline(src, decoder, () => {});
  return { src, out: decoder };
}

/**
 * Streams the lines of a plain, `.gz` or `.zst` file. Bytes are split at `\n` before decoding,
 * which is safe in UTF-8 (0x0A never occurs inside a multi-byte character); a line spanning
 * many chunks is kept as a list of pieces and joined once.
 */
export async function* readLines(file: string, ctx: ReaderContext): AsyncGenerator<Line> {
  const compression = compressionOf(file);
  const maxLineBytes = ctx.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const { src, out } = open(file, compression, ctx.signal);
  let pieces: Buffer[] = [];
  let pending = 0;
  let oversized = false;
  let lineNo = 0;

  const finish = (tail: Buffer): string | null => {
    let text: string | null = null;
    if (!oversized && pending + tail.length <= maxLineBytes) {
      text = (pieces.length ? Buffer.concat([...pieces, tail]) : tail).toString('utf8');
      if (text.endsWith('\r')) text = text.slice(0, -1);
      if (lineNo === 1 && text.startsWith('\uFEFF')) text = text.slice(1);
    }
    pieces = [];
    pending = 0;
    oversized = false;
    return text;
  };

  try {
    for await (const chunk of out as AsyncIterable<Buffer>) {
      ctx.onBytesRead?.(src.bytesRead);
      let pos = 0;
      for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, pos)) {
        lineNo++;
        yield { lineNo, text: finish(chunk.subarray(pos, nl)) };
        pos = nl + 1;
      }
      if (pos < chunk.length && !oversized) {
        pending += chunk.length - pos;
        if (pending > maxLineBytes) {
          oversized = true;
          pieces = [];
        } else {
          pieces.push(chunk.subarray(pos));
        }
      }
    }
    if (pending > 0 || oversized) {
      lineNo++;
      yield { lineNo, text: finish(Buffer.alloc(0)) };
    }
  } catch (err) {
    throw readError(err, file, compression, lineNo, ctx.signal);
  } finally {
    src.destroy();
    out.destroy();
  }
}

function readError(err: unknown, file: string, compression: Compression, lineNo: number, signal?: AbortSignal): Error {
  if (err instanceof LogitscopeError) return err;
  if (signal?.aborted) return new LogitscopeError('cancelled', 'reading the dataset was cancelled', file);
  const code = (err as NodeJS.ErrnoException).code;
  const message = err instanceof Error ? err.message : String(err);
  if (code === 'ENOENT') return new LogitscopeError('dataset_missing', 'file not found', file);
  if (code === 'EISDIR' || code === 'EACCES' || code === 'EIO') {
    return new LogitscopeError('dataset_parse', `cannot read the file: ${message}`, file);
  }
  if (compression === 'none') {
    return new LogitscopeError('dataset_parse', `reading failed after line ${lineNo}: ${message}`, file);
  }
  // The decoder drops output it had buffered when it fails, so `lineNo` is a lower bound on where
  // the damage is. zstd-napi words some corruptions oddly ("Destination buffer is too small").
  return new LogitscopeError('dataset_parse', `corrupt or truncated ${compression} data detected after line ${lineNo}: ${message}`, file);
}
