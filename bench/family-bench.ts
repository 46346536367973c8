/**
 * The fast sweep on one model of each family, GPT-J's shape beside Llama's, Mistral's, Qwen2's,
 * Gemma 2's, GPT-NeoX's and GPT-2's, all of the same depth and width, back to back in one process:
 * seconds per example and the ratio to GPT-J's (the figure to trust on a shared machine).
 *
 *   npx tsx bench/family-bench.ts [--layers 28] [--d-model 256] [--vocab 4096] [--examples 16] [--words 150] [--rounds 1] [--naive] [--naive-examples 2] [--dtype float32|float16]
 *
 * Shapes follow each family's hub configs in ratio: 4 heads of d_model/4, GQA with 2 key/value
 * heads where the family has it (Llama, Mistral, Qwen2, Gemma 2), an MLP of 4·d (GPT-J, NeoX, GPT-2)
 * or a gated one of ≈ 8/3·d, and one vocabulary size for all, so the unembedding weighs the same.
 * Each family gets its own kind of tokenizer (test/fixtures/family-tokenizers.ts) of that size, so
 * the same text makes slightly different token counts: the table prints them. No results database
 * is opened (as in sweep-bench.ts), so nothing comes from a cache. With --naive, the naive strategy
 * also runs on the first --naive-examples examples of each family. With --rounds N, all families run
 * N times in turn and each keeps its fastest round (the first model after start-up, or a moment when
 * other work shares the CPU, is slower); every round's time is printed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Engine } from '../src-main/engine/engine.ts';
import { LogitscopeError } from '../src-main/errors.ts';
import { BUILT_IN_TECHNIQUES, type TechniqueSpec } from '../src-main/protocol/techniques.ts';
import { prepareSweep } from '../src-main/sweep/prepare.ts';
import { FAMILIES, writeTinyFamily, type Family } from '../test/fixtures/hf-families.ts';
import { writeGptjShaped } from './gptj-shaped.ts';
import { benchSpec, planLengths, timeFast, timeNaive, writeBenchText } from './sweep-timing.ts';

const { values: o } = parseArgs({
  options: {
    layers: { type: 'string', default: '28' },
    'd-model': { type: 'string', default: '256' },
    vocab: { type: 'string', default: '4096' },
    examples: { type: 'string', default: '16' },
    words: { type: 'string', default: '150' },
    rounds: { type: 'string', default: '1' },
    naive: { type: 'boolean', default: false },
    'naive-examples': { type: 'string', default: '2' },
    dir: { type: 'string', default: path.join(os.tmpdir(), 'family-bench') },
    dtype: { type: 'string', default: 'float32' },
  },
});
const nLayers = Number(o.layers);
const D = Number(o['d-model']);
const vocab = Number(o.vocab);
const count = Number(o.examples);
const HEADS = 4;
const KV_HEADS = 2;
// 8/3·d rounded up to a multiple of 16: the gated MLP with about the parameters of a 4·d one.
const GATED_MLP = Math.ceil((8 * D) / 3 / 16) * 16;

/** config.json fields over the fixture's tiny defaults: the bench's size, and hub values where the fixture bends them to be seen at tiny size. */
function familySize(family: Family): Record<string, unknown> {
  const gated = { hidden_size: D, intermediate_size: GATED_MLP, num_attention_heads: HEADS, num_key_value_heads: KV_HEADS, head_dim: D / HEADS, max_position_embeddings: 2048 };
  switch (family) {
    case 'llama':
    case 'qwen2':
      return gated;
    case 'mistral':
      return { ...gated, sliding_window: 4096 };
    case 'gemma2':
      return { ...gated, query_pre_attn_scalar: D / HEADS, attn_logit_softcapping: 50.0, final_logit_softcapping: 30.0, sliding_window: 4096 };
    case 'gpt_neox':
      return { hidden_size: D, intermediate_size: 4 * D, num_attention_heads: HEADS, max_position_embeddings: 2048 };
    case 'gpt2':
      return { n_embd: D, n_head: HEADS, n_ctx: 1024, n_positions: 1024 };
  }
}

/** The checkpoint of one family at the bench's size, written once per size under --dir. */
function checkpoint(family: Family | 'gptj'): string {
  const dir = path.join(o.dir, `${family}-L${nLayers}-d${D}-v${vocab}`);
  if (fs.existsSync(path.join(dir, 'config.json'))) return dir;
  if (family === 'gptj') writeGptjShaped({ dir, nLayers, dModel: D, nHeads: HEADS, rotaryDim: D / HEADS / 4, dVocab: vocab, dtype: 'F32' });
  // The masks and inv_freq some hub files carry are skipped on load: left out, they save writing 2048² per layer.
  else writeTinyFamily({ dir, family, layers: nLayers, vocabSize: vocab, overrides: familySize(family), buffers: false });
  return dir;
}

/** The built-in techniques this checkpoint's tokenizer accepts, and why it refuses the others (LogitscopeError prompt_unsuitable). */
async function acceptedTechniques(engine: Engine, modelDir: string, data: string): Promise<{ accepted: TechniqueSpec[]; refused: string[] }> {
  const accepted: TechniqueSpec[] = [];
  const refused: string[] = [];
  for (const t of BUILT_IN_TECHNIQUES) {
    try {
      await prepareSweep(engine, benchSpec(modelDir, data, 1, [t]));
      accepted.push(t);
    } catch (e) {
      if (!(e instanceof LogitscopeError && e.code === 'prompt_unsuitable')) throw e;
      refused.push(`${t.id}: ${e.message}`);
    }
  }
  return { accepted, refused };
}

interface Row {
  family: string;
  /** Average tokens per example: whole record, and run up to the drawn position. */
  tokens?: { full: number; run: number };
  techniques?: number;
  fast?: number;
  /** Every round's fast time per example; `fast` is the least. */
  rounds?: number[];
  naive?: number;
  note?: string;
}

async function benchFamily(family: Family | 'gptj', data: string): Promise<Row> {
  const modelDir = checkpoint(family);
  let engine: Engine;
  try {
    engine = await Engine.load({ modelDir, cacheRoot: path.join(o.dir, 'cache'), dtype: o.dtype as 'float32' | 'float16' });
  } catch (e) {
    return { family, note: `load refused: ${(e as Error).message}` };
  }
  try {
    const { accepted, refused } = await acceptedTechniques(engine, modelDir, data);
    if (accepted.length === 0) return { family, note: refused.join('; ') };
    const { plan } = await prepareSweep(engine, benchSpec(modelDir, data, count, accepted));
    const fast = await timeFast(engine, plan);
    const naive = o.naive ? await timeNaive(engine, plan, Number(o['naive-examples'])) : undefined;
    return { family, tokens: planLengths(plan), techniques: accepted.length, fast: fast.perExample, naive: naive?.perExample, note: refused.join('; ') || undefined };
  } finally {
    await engine.dispose();
  }
}

fs.mkdirSync(o.dir, { recursive: true });
const data = path.join(o.dir, 'data.jsonl');
writeBenchText(data, count, Number(o.words));
console.log(`${nLayers} layers, d_model ${D}, ${HEADS} heads (${KV_HEADS} key/value heads where the family has GQA), MLP ${4 * D} or gated ${GATED_MLP}, vocab ${vocab}; ${o.dtype} on the CPU, ${os.cpus().length} cores`);
console.log(`${count} examples of ${o.words} words, every layer; the fast strategy${o.naive ? `, and the naive one on ${o['naive-examples']} examples` : ''}\n`);

const rows: Row[] = [];
for (let round = 0; round < Number(o.rounds); round++) {
  for (const [i, family] of (['gptj', ...FAMILIES] as const).entries()) {
    const r = await benchFamily(family, data);
    const kept = rows[i];
    const rounds = [...(kept?.rounds ?? []), ...(r.fast === undefined ? [] : [r.fast])];
    const best = !kept || kept.fast === undefined || (r.fast !== undefined && r.fast < kept.fast) ? r : kept;
    rows[i] = { ...best, rounds };
    console.error(`round ${round + 1}: ${family}`);
  }
}
const gptj = rows[0].fast;
const cells = rows.map((r) => [
  r.family,
  r.tokens ? `${r.tokens.full.toFixed(0)} / ${r.tokens.run.toFixed(0)}` : '-',
  r.techniques?.toString() ?? '-',
  r.fast === undefined ? '-' : (r.fast * 1000).toFixed(0),
  r.fast === undefined || gptj === undefined ? '-' : `${(r.fast / gptj).toFixed(2)}×`,
  ...(o.naive ? [r.naive === undefined || r.fast === undefined ? '-' : `${(r.naive / r.fast).toFixed(1)}×`] : []),
  ...(Number(o.rounds) > 1 ? [r.rounds!.map((t) => (t * 1000).toFixed(0)).join(', ')] : []),
]);
const header = ['family', 'tokens (whole / run)', 'techniques', 'fast ms/ex', 'vs GPT-J', ...(o.naive ? ['naive/fast'] : []), ...(Number(o.rounds) > 1 ? ['rounds ms/ex'] : [])];
const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
for (const line of [header, ...cells]) console.log(line.map((c, i) => c.padEnd(widths[i])).join('  '));
for (const r of rows) if (r.note) console.log(`\n${r.family}: ${r.note}`);
