import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectSlice } from '../src-main/data/slice.ts';
import { openCheckpoint } from '../src-main/engine/checkpoint.ts';
import { Engine } from '../src-main/engine/engine.ts';

/**
 * Pins the committed demo model (models/demo): an accidental change to its files, or to the
 * loading path it goes through, fails here. The expected hash and loss bound are read from its
 * model card, so the card and the files cannot disagree.
 */
const modelDir = path.resolve(import.meta.dirname, '../models/demo');
const card = fs.readFileSync(path.join(modelDir, 'README.md'), 'utf8');
const cardSha256 = /model\.safetensors sha256: `([0-9a-f]{64})`/.exec(card)?.[1];
const cardLossBound = Number(/held-out loss bound \(test\): ([\d.]+) nats/.exec(card)?.[1]);

/** The test's fixed held-out text: the first records of builtin:demo-heldout, cut to this many tokens. */
const RECORDS = 8;
const TOKENS = 64;

let tmp: string;
let engine: Engine;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-model-'));
  engine = await Engine.load({ modelDir, cacheRoot: path.join(tmp, 'cache') });
}, 180_000);

afterAll(async () => {
  await engine?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('the committed demo model', () => {
  it('is a GPT-J checkpoint of the documented size, read through the real loading path', () => {
    const ckpt = openCheckpoint(modelDir);
    expect(ckpt.format).toBe('safetensors');
    expect(ckpt.dtype).toBe('F16');
    expect(ckpt.config).toMatchObject({ nLayers: 6, dModel: 128, nHeads: 4, dHead: 32, dMlp: 512, nCtx: 512, rotaryDim: 8, dVocab: 50400 });
    // Per block: ln_1 (2), q/k/v/out (4), fc_in and fc_out with biases (4); plus wte, ln_f (2), lm_head (2).
    expect(ckpt.tensors.size).toBe(6 * 10 + 5);
    expect(ckpt.tensors.get('lm_head.bias')?.shape).toEqual([50400]);
    expect(fs.statSync(path.join(modelDir, 'model.safetensors')).size).toBeLessThanOrEqual(40 * 1024 * 1024);
  });

  it('has the weights whose sha256 the model card states', () => {
    expect(cardSha256).toBeDefined();
    const sha = createHash('sha256').update(fs.readFileSync(path.join(modelDir, 'model.safetensors'))).digest('hex');
    expect(sha).toBe(cardSha256);
  });

  it('predicts held-out text it never trained on below the loss bound the card states', async () => {
    const { records } = await collectSlice({ files: ['builtin:demo-heldout'], limit: RECORDS });
    let total = 0;
    let count = 0;
    for (const record of records) {
      const tokens = engine.tokenize(record.text, { bos: true }).slice(0, TOKENS);
      // One item per position: the engine returns the model's logits at each item's position.
      const items = tokens.slice(0, -1).map((_, position) => ({ tokens, position }));
      const { logits } = await engine.sourcePass(items);
      const vocab = engine.config.dVocab;
      items.forEach(({ position }, b) => {
        const row = logits.subarray(b * vocab, (b + 1) * vocab);
        let max = -Infinity;
        for (const x of row) max = Math.max(max, x);
        let sum = 0;
        for (const x of row) sum += Math.exp(x - max);
        total += max + Math.log(sum) - row[tokens[position + 1]]; // -log softmax of the actual next token
        count++;
      });
    }
    const loss = total / count;
    console.log(`demo model: mean held-out next-token loss ${loss.toFixed(3)} nats over ${count} tokens`);
    expect(cardLossBound).toBeGreaterThan(0);
    expect(loss).toBeLessThan(cardLossBound);
  }, 120_000);
});
