import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { openCheckpoint, readTensorAsFloat32, readTensorAsFloat64 } from '../src-main/engine/checkpoint.ts';
import { decodeBf16, decodeHalf, encodeBf16, encodeHalf } from '../src-main/engine/dtype.ts';
import { readSafetensorsHeader } from '../src-main/engine/safetensors.ts';
import { readTorchBin } from '../src-main/engine/torch-bin.ts';
import { LogitscopeError, type ErrorCode } from '../src-main/errors.ts';
import { shrinkZipEntry, truncateFile, writeSafetensors, writeTinyGptj, type FixtureFormat } from './fixtures/checkpoint-writer.ts';

// realpath: errors name weight files by their realpath, and the temp dir may sit behind a link.
const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'checkpoint-readers-')));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let counter = 0;
const freshDir = () => path.join(root, `ckpt-${counter++}`);
/** Small enough to write dozens of times; the real 50400-row vocabulary gets its own test. */
const small = { vocab_size: 256, n_positions: 32 };
const torchSaved = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'torch-saved');

function expectError(fn: () => unknown, code: ErrorCode, file: string, message?: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(LogitscopeError);
  const err = caught as LogitscopeError;
  expect({ code: err.code, path: err.path }).toEqual({ code, path: file });
  if (message) expect(err.message).toMatch(message);
}

/** The first few elements that differ (Object.is, so -0 and NaN count); toEqual on big typed arrays is slow. */
function mismatches(got: ArrayLike<number>, want: ArrayLike<number>): string[] {
  if (got.length !== want.length) return [`length ${got.length}, expected ${want.length}`];
  const out: string[] = [];
  for (let i = 0; i < got.length && out.length < 5; i++) {
    if (!Object.is(got[i], want[i])) out.push(`[${i}] ${got[i]}, expected ${want[i]}`);
  }
  return out;
}

describe('every format and dtype', () => {
  const formats: FixtureFormat[] = ['safetensors', 'safetensors-sharded', 'bin', 'bin-sharded'];
  for (const format of formats) {
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      it(`a ${format} checkpoint in ${dtype} reads back exactly the values that were written`, () => {
        const fx = writeTinyGptj({ dir: freshDir(), format, dtype, config: small, tokenizer: 'none' });
        const ck = openCheckpoint(fx.dir);
        expect(ck.format).toBe(format);
        expect(ck.dtype).toBe(dtype);
        expect(ck.dtypes).toEqual([dtype]);
        expect(ck.files).toHaveLength(format.endsWith('sharded') ? 2 : 1);
        expect([...ck.tensors.keys()].sort()).toEqual([...fx.weights.keys()].sort());
        for (const [name, values] of fx.weights) {
          const ref = ck.tensors.get(name)!;
          expect(mismatches(readTensorAsFloat64(ref), values), name).toEqual([]);
          expect(mismatches(readTensorAsFloat32(ref), values), name).toEqual([]);
        }
      });
    }
  }

  it('mask buffers are in the files but are not listed as weights', () => {
    const fx = writeTinyGptj({ dir: freshDir(), format: 'safetensors', config: small, tokenizer: 'none' });
    const header = readSafetensorsHeader(path.join(fx.dir, 'model.safetensors')).header.toString();
    expect(header).toContain('"transformer.h.0.attn.bias":{"dtype":"BOOL"');
    expect(header).toContain('transformer.h.0.attn.masked_bias');
    const names = [...openCheckpoint(fx.dir).tensors.keys()];
    expect(names.filter((n) => n.includes('attn.bias') || n.includes('masked_bias'))).toEqual([]);
  });

  it('a checkpoint written without mask buffers opens too', () => {
    const fx = writeTinyGptj({ dir: freshDir(), format: 'bin', config: small, tokenizer: 'none', maskBuffers: false });
    expect(openCheckpoint(fx.dir).tensors.size).toBe(fx.weights.size);
  });

  it('a checkpoint with the real 50400-row vocabulary and tokenizer files opens', () => {
    const fx = writeTinyGptj({ dir: freshDir(), format: 'safetensors', tokenizer: 'tokenizer.json' });
    const ck = openCheckpoint(fx.dir);
    expect(ck.config.dVocab).toBe(50400);
    expect(ck.tensors.get('lm_head.weight')!.shape).toEqual([50400, 64]);
    expect(fs.existsSync(path.join(fx.dir, 'tokenizer.json'))).toBe(true);
    expect(fs.existsSync(path.join(fx.dir, 'tokenizer_config.json'))).toBe(true);
  });

  it('safetensors is preferred when a directory holds both formats', () => {
    const dir = freshDir();
    writeTinyGptj({ dir, format: 'bin', config: small, tokenizer: 'none' });
    writeTinyGptj({ dir, format: 'safetensors', config: small, tokenizer: 'none' });
    expect(openCheckpoint(dir).format).toBe('safetensors');
  });
});

describe('Hugging Face cache layout and identity', () => {
  it('tensors in a snapshot of symlinks point at the blob files themselves', () => {
    const src = writeTinyGptj({ dir: freshDir(), format: 'safetensors-sharded', config: small, tokenizer: 'none' });
    const repo = path.join(freshDir(), 'models--EleutherAI--gpt-j-6b');
    const snapshot = path.join(repo, 'snapshots', 'abc123');
    fs.mkdirSync(path.join(repo, 'blobs'), { recursive: true });
    fs.mkdirSync(snapshot, { recursive: true });
    fs.readdirSync(src.dir).forEach((name, i) => {
      fs.copyFileSync(path.join(src.dir, name), path.join(repo, 'blobs', `blob${i}`));
      fs.symlinkSync(`../../blobs/blob${i}`, path.join(snapshot, name));
    });
    const ck = openCheckpoint(snapshot);
    const blobs = fs.realpathSync(path.join(repo, 'blobs'));
    expect(ck.files.every((f) => path.dirname(f) === blobs)).toBe(true);
    expect([...ck.tensors.values()].every((t) => path.dirname(t.file) === blobs)).toBe(true);
    expect(readTensorAsFloat64(ck.tensors.get('lm_head.bias')!)).toEqual(src.weights.get('lm_head.bias'));
    expect(ck.identity).toBe(openCheckpoint(src.dir).identity);
  });

  it('identity stays the same for an identical copy in another directory', () => {
    const a = writeTinyGptj({ dir: freshDir(), format: 'bin', config: small, tokenizer: 'none' });
    const copy = freshDir();
    fs.cpSync(a.dir, copy, { recursive: true });
    expect(openCheckpoint(copy).identity).toMatch(/^[0-9a-f]{64}$/);
    expect(openCheckpoint(copy).identity).toBe(openCheckpoint(a.dir).identity);
  });

  it('identity changes when a weight file header changes', () => {
    const a = writeTinyGptj({ dir: freshDir(), format: 'safetensors', config: small, tokenizer: 'none' });
    const before = openCheckpoint(a.dir).identity;
    const file = path.join(a.dir, 'model.safetensors');
    const bytes = fs.readFileSync(file);
    const headerLen = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.toString('utf8', 8, 8 + headerLen));
    header.__metadata__ = { format: 'pt', source: 'a re-upload' };
    let json = JSON.stringify(header);
    json += ' '.repeat((8 - (json.length % 8)) % 8);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    fs.writeFileSync(file, Buffer.concat([len, Buffer.from(json), bytes.subarray(8 + headerLen)]));
    expect(openCheckpoint(a.dir).identity).not.toBe(before);
  });

  it('identity changes when weight values change but shapes do not', () => {
    const a = writeTinyGptj({ dir: freshDir(), format: 'safetensors', config: small, tokenizer: 'none', seed: 1 });
    const b = writeTinyGptj({ dir: freshDir(), format: 'safetensors', config: small, tokenizer: 'none', seed: 2 });
    expect(openCheckpoint(a.dir).identity).not.toBe(openCheckpoint(b.dir).identity);
  });
});

describe('bad checkpoints are refused with a code and the file', () => {
  const tiny = (format: FixtureFormat = 'safetensors') => writeTinyGptj({ dir: freshDir(), format, config: small, tokenizer: 'none' });
  const editConfig = (dir: string, edit: (c: Record<string, unknown>) => void) => {
    const file = path.join(dir, 'config.json');
    const c = JSON.parse(fs.readFileSync(file, 'utf8'));
    edit(c);
    fs.writeFileSync(file, JSON.stringify(c));
    return file;
  };

  it('a directory without config.json', () => {
    const { dir } = tiny();
    fs.rmSync(path.join(dir, 'config.json'));
    expectError(() => openCheckpoint(dir), 'config_missing', path.join(dir, 'config.json'));
  });

  it('a malformed config.json', () => {
    const { dir } = tiny();
    fs.writeFileSync(path.join(dir, 'config.json'), '{"model_type": "gptj",');
    expectError(() => openCheckpoint(dir), 'config_invalid', path.join(dir, 'config.json'));
  });

  it('a config.json for an architecture the engine does not run', () => {
    const { dir } = tiny();
    const file = editConfig(dir, (c) => (c.model_type = 'bloom'));
    expectError(() => openCheckpoint(dir), 'model_type_unsupported', file, /bloom/);
  });

  it('a directory with a config but no weights', () => {
    const { dir } = tiny();
    fs.rmSync(path.join(dir, 'model.safetensors'));
    expectError(() => openCheckpoint(dir), 'weights_missing', dir, /model\.safetensors/);
  });

  it('weights whose shapes disagree with config.json', () => {
    const { dir } = tiny();
    editConfig(dir, (c) => (c.vocab_size = 300));
    const file = path.join(dir, 'model.safetensors');
    expectError(() => openCheckpoint(dir), 'weights_shape_mismatch', file, /"transformer\.wte\.weight" in .*model\.safetensors is \[256, 64\], expected \[300, 64\]/);
  });

  it('a config with more layers than the weights hold lists the missing weights and their count', () => {
    const { dir } = tiny();
    editConfig(dir, (c) => (c.n_layer = 5));
    expectError(() => openCheckpoint(dir), 'weights_missing', path.join(dir, 'model.safetensors'), /^20 weight\(s\).*"transformer\.h\.3\.ln_1\.weight".*and 15 more$/);
  });

  it('a safetensors file cut short names the first tensor past the end', () => {
    const { dir } = tiny();
    const file = path.join(dir, 'model.safetensors');
    truncateFile(file, 100);
    expectError(() => openCheckpoint(dir), 'weights_truncated', file, /tensor "transformer\.wte\.weight"/);
  });

  it('a safetensors file with a corrupt header', () => {
    const { dir } = tiny();
    const file = path.join(dir, 'model.safetensors');
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from('garbage'), 0, 7, 8);
    fs.closeSync(fd);
    expectError(() => openCheckpoint(dir), 'weights_corrupt', file, /not valid JSON/);
  });

  it('a safetensors file whose header length is absurd', () => {
    const { dir } = tiny();
    const file = path.join(dir, 'model.safetensors');
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0]), 0, 8, 0);
    fs.closeSync(fd);
    expectError(() => openCheckpoint(dir), 'weights_corrupt', file, /header length/);
  });

  it('a safetensors tensor whose byte span does not match its shape', () => {
    const file = path.join(freshDir() + '.safetensors');
    writeSafetensors(file, [{ name: 'lm_head.bias', dtype: 'F32', shape: [4], bytes: new Uint8Array(12) }]);
    expectError(() => readSafetensorsHeader(file), 'weights_corrupt', file, /"lm_head\.bias".*16 bytes.*12/);
  });

  it('a weight in an integer dtype, while a BOOL mask is skipped', () => {
    const file = path.join(freshDir() + '.safetensors');
    const mask = { name: 'transformer.h.0.attn.bias', dtype: 'BOOL', shape: [1, 1, 2, 2], bytes: new Uint8Array(4) };
    const weight = { name: 'lm_head.bias', dtype: 'I64', shape: [2], bytes: new Uint8Array(16) };
    writeSafetensors(file, [mask]);
    expect(readSafetensorsHeader(file).tensors).toEqual([]);
    writeSafetensors(file, [mask, weight]);
    expectError(() => readSafetensorsHeader(file), 'weights_dtype_unsupported', file, /"lm_head\.bias" is I64/);
  });

  it('a sharded checkpoint with a shard file missing', () => {
    for (const format of ['safetensors-sharded', 'bin-sharded'] as const) {
      const { dir } = tiny(format);
      const shard = path.join(dir, format === 'bin-sharded' ? 'pytorch_model-00002-of-00002.bin' : 'model-00002-of-00002.safetensors');
      fs.rmSync(shard);
      expectError(() => openCheckpoint(dir), 'weights_missing', shard, /00002-of-00002/);
    }
  });

  it('a .bin whose storage entry is shorter than its tensor', () => {
    const { dir } = tiny('bin');
    const file = path.join(dir, 'pytorch_model.bin');
    shrinkZipEntry(file, 'archive/data/0', 4); // storage 0 holds the first tensor, transformer.wte.weight
    expectError(() => openCheckpoint(dir), 'weights_truncated', file, /tensor "transformer\.wte\.weight".*archive\/data\/0/);
  });

  it('a .bin cut short by an interrupted download', () => {
    const { dir } = tiny('bin');
    const file = path.join(dir, 'pytorch_model.bin');
    truncateFile(file, 1000);
    expectError(() => openCheckpoint(dir), 'weights_truncated', file, /cut short/);
  });

  it('garbage bytes named pytorch_model.bin', () => {
    const { dir } = tiny('bin');
    const file = path.join(dir, 'pytorch_model.bin');
    fs.writeFileSync(file, Buffer.from('this is not a zip archive at all, just some text\n'.repeat(100)));
    expectError(() => openCheckpoint(dir), 'weights_corrupt', file, /not a torch\.save zip/);
  });

  it('a .bin whose pickle holds an unknown opcode names its byte offset', () => {
    const { dir } = tiny('bin');
    const file = path.join(dir, 'pytorch_model.bin');
    const bytes = fs.readFileSync(file);
    // data.pkl is the first entry, so its data starts at the first 64-byte boundary; byte 2 follows PROTO 2.
    expect(bytes.subarray(64, 66)).toEqual(Buffer.from([0x80, 2]));
    bytes[66] = 0xff;
    fs.writeFileSync(file, bytes);
    expectError(() => openCheckpoint(dir), 'weights_corrupt', file, /unknown pickle opcode 0xff at byte 2/);
  });

  it('a .bin saved on a big-endian machine', () => {
    const { dir } = tiny('bin');
    const file = path.join(dir, 'pytorch_model.bin');
    const bytes = fs.readFileSync(file);
    bytes.write('big   ', bytes.indexOf('little'), 'latin1');
    fs.writeFileSync(file, bytes);
    expectError(() => openCheckpoint(dir), 'weights_dtype_unsupported', file, /big-endian/);
  });
});

describe('files written by real torch.save', () => {
  interface Expected {
    tensors: Record<string, { dtype: string; shape: number[]; sum: number; first4: number[] }>;
    skipped: string[];
  }
  const cases = [
    ['gptj-tiny-fp32', 'F32'],
    ['gptj-tiny-fp16', 'F16'],
    ['gptj-tiny-bf16', 'BF16'],
  ] as const;
  for (const [name, dtype] of cases) {
    it(`${name} matches the shapes, sums and first values torch computed`, () => {
      const dir = path.join(torchSaved, name);
      const expected: Expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8'));
      const ck = openCheckpoint(dir);
      expect(ck.format).toBe('bin');
      expect(ck.dtype).toBe(dtype);
      expect([...ck.tensors.keys()].sort()).toEqual(Object.keys(expected.tensors).sort());
      for (const [tensor, want] of Object.entries(expected.tensors)) {
        const ref = ck.tensors.get(tensor)!;
        expect(ref.shape).toEqual(want.shape);
        const values = readTensorAsFloat64(ref);
        expect([...values.subarray(0, 4)]).toEqual(want.first4);
        expect(values.reduce((a, b) => a + b, 0)).toBeCloseTo(want.sum, 9);
      }
      for (const skipped of expected.skipped) expect(ck.tensors.has(skipped)).toBe(false);
    });
  }

  it('tensors that share one storage get offsets inside it', () => {
    const ck = openCheckpoint(path.join(torchSaved, 'gptj-tiny-fp32'));
    const q = ck.tensors.get('transformer.h.0.attn.q_proj.weight')!;
    const k = ck.tensors.get('transformer.h.0.attn.k_proj.weight')!;
    const v = ck.tensors.get('transformer.h.0.attn.v_proj.weight')!;
    expect([k.offset - q.offset, v.offset - q.offset]).toEqual([q.byteLength, 2 * q.byteLength]);
  });

  it('a non-contiguous tensor is refused by name', () => {
    const file = path.join(torchSaved, 'noncontiguous.bin');
    expectError(() => readTorchBin(file), 'weights_corrupt', file, /"transformer\.wte\.weight" is not contiguous/);
  });

  it('the legacy pre-1.6 torch.save format is refused with advice', () => {
    const file = path.join(torchSaved, 'legacy.bin');
    expectError(() => readTorchBin(file), 'weights_corrupt', file, /legacy/);
  });
});

describe('16-bit float codecs', () => {
  it('decodeHalf handles normals, subnormals, infinities and NaN', () => {
    expect([0x3c00, 0xc000, 0x7bff, 0x0400, 0x0001, 0x03ff, 0x8000].map(decodeHalf)).toEqual([1, -2, 65504, 2 ** -14, 2 ** -24, 1023 * 2 ** -24, -0]);
    expect([decodeHalf(0x7c00), decodeHalf(0xfc00)]).toEqual([Infinity, -Infinity]);
    expect(decodeHalf(0x7e00)).toBeNaN();
  });

  it('decodeBf16 handles normals, subnormals, infinities and NaN', () => {
    expect([0x3f80, 0xc000, 0x0080, 0x0001, 0x7f7f].map(decodeBf16)).toEqual([1, -2, 2 ** -126, 2 ** -133, 255 * 2 ** 120]);
    expect([decodeBf16(0x7f80), decodeBf16(0xff80)]).toEqual([Infinity, -Infinity]);
    expect(decodeBf16(0x7fc0)).toBeNaN();
  });

  it('encodeHalf rounds to nearest even, through subnormals and into overflow', () => {
    const ulp = 2 ** -10;
    expect(encodeHalf(1 + ulp / 2)).toBe(0x3c00); // tie, to even
    expect(encodeHalf(1 + (3 * ulp) / 2)).toBe(0x3c02); // tie, to even (up)
    expect(encodeHalf(1 + ulp / 2 + 1e-12)).toBe(0x3c01);
    expect(encodeHalf(2 ** -25)).toBe(0); // half the smallest subnormal: tie to zero
    expect(encodeHalf(3 * 2 ** -25)).toBe(2); // 1.5 subnormal ulps: tie to even
    expect(encodeHalf(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up into the smallest normal
    expect(encodeHalf(65519)).toBe(0x7bff);
    expect(encodeHalf(65520)).toBe(0x7c00);
    expect(encodeHalf(-1e9)).toBe(0xfc00);
    expect(encodeHalf(NaN)).toBe(0x7e00);
    expect(encodeHalf(-0)).toBe(0x8000);
  });

  it('encodeBf16 rounds to nearest even, into overflow', () => {
    expect(encodeBf16(1 + 2 ** -8)).toBe(0x3f80);
    expect(encodeBf16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(encodeBf16(3.39e38)).toBe(0x7f7f); // the largest finite bf16 is 3.3895e38
    expect(encodeBf16(3.4e38)).toBe(0x7f80); // past the midpoint to 2^128
    expect(encodeBf16(2 ** -134)).toBe(0); // half the smallest subnormal: tie to zero
  });

  it('every 16-bit pattern but NaN survives decode then encode', () => {
    const broken: string[] = [];
    for (let b = 0; b < 0x10000; b++) {
      const h = decodeHalf(b);
      if (!Number.isNaN(h) && encodeHalf(h) !== b) broken.push(`half 0x${b.toString(16)}`);
      const f = decodeBf16(b);
      if (!Number.isNaN(f) && encodeBf16(f) !== b) broken.push(`bf16 0x${b.toString(16)}`);
    }
    expect(broken).toEqual([]);
  });
});
