import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Compressor } from 'zstd-napi';
import { parquetWriteFile } from 'hyparquet-writer';
import { LogitscopeError } from '../src-main/errors.ts';
import { readJsonl } from '../src-main/data/jsonl.ts';
import { previewSlice } from '../src-main/data/preview.ts';
import type { RawRecord } from '../src-main/data/records.ts';
import { mulberry32, shuffleSeeded } from '../src-main/data/shuffle.ts';
import { collectSlice, readSlice, type SliceProgress, type SliceSpec } from '../src-main/data/slice.ts';

let dir: string;
const at = (name: string) => path.join(dir, name);

const SETS = ['Pile-CC', 'Github', 'ArXiv'];
const pileRecord = (i: number) => ({ text: `record ${i} says hello`, meta: { pile_set_name: SETS[i % 3] } });
const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

/** zstd with a content checksum, as the `zstd` command line writes it (the library default has none). */
function zstdCompress(data: Buffer): Buffer {
  const c = new Compressor();
  c.setParameters({ checksumFlag: true, compressionLevel: 1 });
  return c.compress(data);
}

function write(name: string, data: string | Buffer): string {
  fs.writeFileSync(at(name), data);
  return at(name);
}

async function errorOf(p: Promise<unknown>): Promise<LogitscopeError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(LogitscopeError);
  return err as LogitscopeError;
}

async function drain(gen: AsyncGenerator<RawRecord, number>): Promise<RawRecord[]> {
  const out: RawRecord[] = [];
  for await (const r of gen) out.push(r);
  return out;
}

/** Pseudo-random words compress about 2:1, so compressed files stay big enough to measure reads. */
function noisyText(random: () => number, words: number): string {
  const out: string[] = [];
  for (let w = 0; w < words; w++) out.push(Math.floor(random() * 1e9).toString(36));
  return out.join(' ');
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logitscope-data-'));
  const ten = jsonl(Array.from({ length: 10 }, (_, i) => pileRecord(i)));
  write('ten.jsonl', ten);
  write('ten.jsonl.gz', zlib.gzipSync(ten));
  write('ten.jsonl.zst', zstdCompress(Buffer.from(ten)));
  write('next.jsonl', jsonl(Array.from({ length: 5 }, (_, i) => pileRecord(10 + i))));
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('formats', () => {
  it('reads every record of a .jsonl file with its pile_set_name, file and index', async () => {
    const { records, scanned, passed } = await collectSlice({ files: [at('ten.jsonl')] });
    expect(scanned).toBe(10);
    expect(passed).toBe(10);
    expect(records[3]).toEqual({ text: 'record 3 says hello', source: 'Pile-CC', file: at('ten.jsonl'), index: 3 });
  });

  it('reads .jsonl.gz and .jsonl.zst files to the same records as the plain file', async () => {
    const plain = (await collectSlice({ files: [at('ten.jsonl')] })).records.map((r) => [r.text, r.source, r.index]);
    for (const name of ['ten.jsonl.gz', 'ten.jsonl.zst']) {
      const { records } = await collectSlice({ files: [at(name)] });
      expect(records.map((r) => [r.text, r.source, r.index])).toEqual(plain);
    }
  });

  it('reads a parquet shard with a struct meta column from a record range inside it', async () => {
    const file = at('struct.parquet');
    parquetWriteFile({
      filename: file,
      columnData: [
        { name: 'text', data: ['first text', null, 'third text', 'fourth text', 'fifth text'] },
        { name: 'meta', data: [{ pile_set_name: 'Github' }, null, { pile_set_name: 'ArXiv' }, null, { pile_set_name: 'Github' }] },
      ],
      schema: [
        { name: 'root', num_children: 2 },
        { name: 'text', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
        { name: 'meta', num_children: 1, repetition_type: 'OPTIONAL' },
        { name: 'pile_set_name', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
      ],
      rowGroupSize: 2,
    });
    const result = await collectSlice({ files: [file], start: 1 });
    expect(result.records.map((r) => [r.index, r.text, r.source])).toEqual([
      [2, 'third text', 'ArXiv'],
      [3, 'fourth text', undefined],
      [4, 'fifth text', 'Github'],
    ]);
    expect(result.skipped.missingText).toBe(1);
  });

  it('a parquet slice near the end of a shard reads only the row groups and pages it needs', async () => {
    const random = mulberry32(5);
    const file = at('groups.parquet');
    const texts = Array.from({ length: 10_000 }, (_, i) => `${i} ${noisyText(random, 100)}`);
    parquetWriteFile({ filename: file, columnData: [{ name: 'text', data: texts, type: 'STRING' }], rowGroupSize: 1000 });
    let last: SliceProgress | undefined;
    const { records } = await collectSlice({ files: [file], start: 9000, end: 9003 }, { onProgress: (p) => (last = p) });
    expect(records.map((r) => r.text)).toEqual(texts.slice(9000, 9003));
    expect(last!.bytesRead).toBeLessThan(last!.totalBytes / 5);
  });

  it('reads a parquet shard whose meta column is the dict as a string, JSON or Python repr', async () => {
    const file = at('string-meta.parquet');
    parquetWriteFile({
      filename: file,
      columnData: [
        { name: 'text', data: ['a', 'b'], type: 'STRING' },
        { name: 'meta', data: ['{"pile_set_name": "Github"}', "{'pile_set_name': 'Enron Emails'}"], type: 'STRING' },
      ],
    });
    const { records } = await collectSlice({ files: [file] });
    expect(records.map((r) => r.source)).toEqual(['Github', 'Enron Emails']);
  });

  it("carries each record's track token from a jsonl field or a parquet column, as text or as an id", async () => {
    const jsonl = write('track.jsonl', [{ text: 'a', track: ' Paris' }, { text: 'b', track: 17 }, { text: 'c' }, { text: 'd', track: [1] }].map((r) => JSON.stringify(r)).join('\n'));
    expect((await collectSlice({ files: [jsonl] })).records.map((r) => r.track)).toEqual([' Paris', 17, undefined, undefined]);
    const texts = at('track-text.parquet');
    parquetWriteFile({ filename: texts, columnData: [{ name: 'text', data: ['a', 'b'], type: 'STRING' }, { name: 'track', data: [' Paris', null], type: 'STRING' }] });
    expect((await collectSlice({ files: [texts] })).records.map((r) => r.track)).toEqual([' Paris', undefined]);
    const ids = at('track-ids.parquet');
    parquetWriteFile({ filename: ids, columnData: [{ name: 'text', data: ['a', 'b'], type: 'STRING' }, { name: 'track', data: [262n, 13n], type: 'INT64' }] });
    expect((await collectSlice({ files: [ids] })).records.map((r) => r.track)).toEqual([262, 13]);
  });

  it('splits a .txt file into one record per blank-line-separated paragraph, CRLF or not', async () => {
    const file = write('paras.txt', '\r\nfirst line\r\nsecond line\r\n\r\n  \n\nthird\nfourth\n\n\nlast');
    const { records } = await collectSlice({ files: [file] });
    expect(records.map((r) => [r.index, r.text])).toEqual([
      [0, 'first line\nsecond line'],
      [1, 'third\nfourth'],
      [2, 'last'],
    ]);
  });

  it('handles CRLF line endings and a line much longer than a read chunk', async () => {
    const long = 'word '.repeat(1_000_000).trim(); // 5 MB, ~20 read chunks
    const file = write('long.jsonl.zst', zstdCompress(Buffer.from(`{"text":"short"}\r\n{"text":"${long}"}\r\n{"text":"ünïcødé ✓"}`)));
    const { records } = await collectSlice({ files: [file] });
    expect(records.map((r) => r.text.length)).toEqual([5, long.length, 9]);
    expect(records[1].text).toBe(long);
    expect(records[2].text).toBe('ünïcødé ✓');
  });

  it('skips a line longer than the cap as oversized without keeping it in memory', async () => {
    const file = write('oversized.jsonl', `{"text":"${'x'.repeat(300_000)}"}\n{"text":"ok"}\n`);
    const raw = await drain(readJsonl(file, { from: 0, maxLineBytes: 100_000 }));
    expect(raw).toEqual([{ index: 0, skip: 'oversized' }, { index: 1, text: 'ok', source: undefined }]);
  });
});

describe('slices', () => {
  it('a record range spans two files in order, counting the records of the first', async () => {
    const { records } = await collectSlice({ files: [at('ten.jsonl.zst'), at('next.jsonl')], start: 8, end: 12 });
    expect(records.map((r) => [r.index, r.text, path.basename(r.file)])).toEqual([
      [8, 'record 8 says hello', 'ten.jsonl.zst'],
      [9, 'record 9 says hello', 'ten.jsonl.zst'],
      [10, 'record 10 says hello', 'next.jsonl'],
      [11, 'record 11 says hello', 'next.jsonl'],
    ]);
  });

  it('skips and counts malformed JSON lines and records without text, keeping their indices', async () => {
    const file = write('messy.jsonl', ['{"text":"a"}', '{"text": broken', '', '{"meta":{}}', '{"text":null}', '42', '{"text":"b"}'].join('\n'));
    const result = await collectSlice({ files: [file] });
    expect(result.records.map((r) => [r.index, r.text])).toEqual([[0, 'a'], [5, 'b']]);
    expect(result.skipped).toEqual({ malformedJson: 1, missingText: 3, oversized: 0 });
    expect(result.scanned).toBe(6);
  });

  it('the pile_set_name filter keeps only that subset and counts the rest', async () => {
    const result = await collectSlice({ files: [at('ten.jsonl')], pileSetName: 'Github' });
    expect(result.records.map((r) => r.index)).toEqual([1, 4, 7]);
    expect(result.filteredBy.pileSetName).toBe(7);
    expect(result.sources).toEqual({ 'Pile-CC': 4, Github: 3, ArXiv: 3 });
  });

  it('word and character filters follow the protocol: len(text.split(" ")) < 200 and len(text) < 1600', async () => {
    const texts = {
      words199: Array(199).fill('w').join(' '), // 199 pieces: kept
      words200: Array(200).fill('w').join(' '), // 200 pieces: dropped
      doubleSpaces: Array(100).fill('w').join('  '), // empty pieces count, as in Python: 199 → kept
      doubleSpaces200: Array(101).fill('w').join('  '), // 201 pieces → dropped
      chars1599: 'x'.repeat(1599),
      chars1600: 'x'.repeat(1600),
      emoji: '😀'.repeat(1599), // 3198 UTF-16 units, 1599 code points, as Python counts: kept
    };
    const file = write('filters.jsonl', jsonl(Object.values(texts).map((text) => ({ text }))));
    const result = await collectSlice({ files: [file], filter: { maxWords: 200, maxChars: 1600 } });
    const kept = result.records.map((r) => Object.keys(texts)[r.index]);
    expect(kept).toEqual(['words199', 'doubleSpaces', 'chars1599', 'emoji']);
    expect(result.filteredBy).toEqual({ pileSetName: 0, maxWords: 2, maxChars: 1 });
    expect(result.filteredOut).toBe(3);
  });

  it('limit stops after that many records pass', async () => {
    const result = await collectSlice({ files: [at('ten.jsonl'), at('next.jsonl')], pileSetName: 'ArXiv', limit: 2 });
    expect(result.records.map((r) => r.index)).toEqual([2, 5]);
    expect(result.scanned).toBe(6);
  });

  it('a slice of the first 10 records of a big .jsonl.zst reads a small part of it and never reaches its corrupt tail', async () => {
    const random = mulberry32(7);
    const lines = Array.from({ length: 40_000 }, (_, i) => JSON.stringify({ text: `${i} ${noisyText(random, 40)}` }));
    const body = zstdCompress(Buffer.from(lines.join('\n') + '\n'));
    const file = write('big.jsonl.zst', Buffer.concat([body, Buffer.from('this is not zstd at all')]));

    let last: SliceProgress | undefined;
    const { records } = await collectSlice({ files: [file], end: 10 }, { onProgress: (p) => (last = p) });
    expect(records.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(last!.totalBytes).toBeGreaterThan(5_000_000);
    expect(last!.bytesRead).toBeLessThan(last!.totalBytes / 10);

    // A consumer that stops iterating closes the file just the same.
    for await (const record of readSlice({ files: [file] })) {
      expect(record.index).toBe(0);
      break;
    }

    const err = await errorOf(collectSlice({ files: [file] }));
    expect(err.code).toBe('dataset_parse');
    expect(err.path).toBe(file);
    // Lines still buffered in the decoder when it fails are dropped, so the line number is a lower bound.
    expect(err.message).toMatch(/zstd data detected after line \d+: Unknown frame descriptor/);
  });

  it('aborting the signal mid-read stops the slice with cancelled', async () => {
    const controller = new AbortController();
    const seen: number[] = [];
    const read = async () => {
      for await (const record of readSlice({ files: [at('big.jsonl.zst')] }, { signal: controller.signal })) {
        seen.push(record.index);
        if (record.index === 2) controller.abort();
      }
    };
    const err = await errorOf(read());
    expect(err.code).toBe('cancelled');
    expect(seen).toEqual([0, 1, 2]);
  });
});

describe('bad input', () => {
  it('flipped bytes in the middle of a .jsonl.zst give dataset_parse naming the file, not garbage or a hang', async () => {
    const random = mulberry32(1);
    const text = jsonl(Array.from({ length: 5000 }, (_, i) => ({ text: `${i} ${noisyText(random, 20)}` })));
    const bad = zstdCompress(Buffer.from(text));
    const middle = Math.floor(bad.length / 2);
    for (let k = 0; k < 8; k++) bad[middle + k] ^= 0xa5;
    const file = write('flipped.jsonl.zst', bad);
    const err = await errorOf(collectSlice({ files: [file] }));
    expect(err.code).toBe('dataset_parse');
    expect(err.path).toBe(file);
    expect(err.message).toMatch(/corrupt or truncated zstd data detected after line \d+/);
  });

  it('a truncated .jsonl.zst and a corrupt .jsonl.gz give dataset_parse', async () => {
    const zst = fs.readFileSync(at('ten.jsonl.zst'));
    const truncated = write('truncated.jsonl.zst', zst.subarray(0, zst.length - 10));
    expect((await errorOf(collectSlice({ files: [truncated] }))).code).toBe('dataset_parse');
    const gz = Buffer.from(fs.readFileSync(at('ten.jsonl.gz')));
    for (let k = 20; k < 30; k++) gz[k] ^= 0xff;
    const corrupt = write('corrupt.jsonl.gz', gz);
    const err = await errorOf(collectSlice({ files: [corrupt] }));
    expect(err.code).toBe('dataset_parse');
    expect(err.message).toMatch(/gzip data/);
  });

  it('a parquet file without a text column, or with text of the wrong type, gives dataset_parse naming the column', async () => {
    const noText = at('no-text.parquet');
    parquetWriteFile({ filename: noText, columnData: [{ name: 'content', data: ['a'], type: 'STRING' }] });
    const missing = await errorOf(collectSlice({ files: [noText] }));
    expect(missing.code).toBe('dataset_parse');
    expect(missing.message).toContain('no "text" column (columns: content)');

    const intText = at('int-text.parquet');
    parquetWriteFile({ filename: intText, columnData: [{ name: 'text', data: [1, 2], type: 'INT32' }] });
    const wrong = await errorOf(collectSlice({ files: [intText] }));
    expect(wrong.code).toBe('dataset_parse');
    expect(wrong.message).toContain('column "text" is INT32');
    expect(wrong.path).toBe(intText);
  });

  it('a truncated parquet file gives dataset_parse', async () => {
    const whole = fs.readFileSync(at('struct.parquet'));
    const file = write('truncated.parquet', whole.subarray(0, whole.length - 30));
    const err = await errorOf(collectSlice({ files: [file] }));
    expect(err.code).toBe('dataset_parse');
    expect(err.message).toMatch(/not a readable parquet file/);
  });

  it('an empty slice after filtering gives slice_empty with the counts', async () => {
    const spec: SliceSpec = { files: [at('ten.jsonl')], pileSetName: 'Github', filter: { maxWords: 3 } };
    const err = await errorOf(collectSlice(spec));
    expect(err.code).toBe('slice_empty');
    expect(err.message).toBe(
      'no record passed: scanned 10 of records 0..end; filtered out 10 (7 with pile_set_name ≠ "Github", 3 with ≥ 3 words)',
    );
    const beyond = await errorOf(collectSlice({ files: [at('ten.jsonl')], start: 50 }));
    expect(beyond.message).toBe('records 50..end lie past the end of the files, which hold 10 records');
  });

  it('a missing file gives dataset_missing and an unknown extension dataset_unsupported listing the supported ones', async () => {
    const missing = await errorOf(collectSlice({ files: [at('ten.jsonl'), at('nope.jsonl')] }));
    expect(missing.code).toBe('dataset_missing');
    expect(missing.path).toBe(at('nope.jsonl'));
    const unsupported = await errorOf(collectSlice({ files: [write('data.csv', 'a,b')] }));
    expect(unsupported.code).toBe('dataset_unsupported');
    expect(unsupported.message).toContain('.jsonl, ');
    expect(unsupported.message).toContain('.jsonl.zst');
    expect(unsupported.message).toContain('.parquet');
  });

  it('an invalid slice spec gives argument_invalid naming each bad field', async () => {
    const cases: Array<[Partial<SliceSpec>, string]> = [
      [{ start: -1 }, 'start'],
      [{ start: 5, end: 3 }, 'end'],
      [{ limit: 0 }, 'limit'],
      [{ filter: { maxWords: 1.5 } }, 'filter.maxWords'],
      [{ files: [] }, 'files'],
    ];
    for (const [patch, field] of cases) {
      const err = await errorOf(collectSlice({ files: [at('ten.jsonl')], ...patch }));
      expect(err.code).toBe('argument_invalid');
      expect(err.path).toBe(field);
    }
    const both = await errorOf(collectSlice({ files: [at('ten.jsonl')], start: -1, limit: 0 }));
    expect(both.message).toBe('invalid slice: start must be an integer ≥ 0, got -1; limit must be an integer ≥ 1, got 0');
  });
});

describe('preview and shuffle', () => {
  it('previewSlice reports counts by rule and samples, and says when it stopped at the scan cap', async () => {
    const files = [at('ten.jsonl'), at('next.jsonl')];
    const full = await previewSlice({ files, pileSetName: 'Pile-CC' }, { sampleCount: 2 });
    expect(full).toMatchObject({ scanned: 15, passed: 5, filteredOut: 10, capped: false });
    expect(full.samples.map((r) => r.index)).toEqual([0, 3]);
    expect(full.bytesRead).toBe(full.totalBytes);

    const capped = await previewSlice({ files, pileSetName: 'Github', filter: { maxWords: 2 } }, { sampleCount: 3, scanCap: 4 });
    expect(capped).toMatchObject({ scanned: 4, passed: 0, capped: true, samples: [] });
    expect(capped.filteredBy).toEqual({ pileSetName: 3, maxWords: 1, maxChars: 0 });
  });

  it('shuffleSeeded gives the same permutation for the same seed and a different one for another', () => {
    const items = Array.from({ length: 1000 }, (_, i) => i);
    const a = shuffleSeeded(items, 42);
    expect(shuffleSeeded(items, 42)).toEqual(a);
    expect(shuffleSeeded(items, 43)).not.toEqual(a);
    expect([...a].sort((x, y) => x - y)).toEqual(items);
    expect(a).not.toEqual(items);
    expect(items[0]).toBe(0); // input untouched
    expect(a.slice(0, 5)).toEqual([340, 678, 391, 571, 38]); // pinned: a changed generator would reorder saved pools
  });
});
