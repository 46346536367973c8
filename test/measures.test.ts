/**
 * The per-row measures (docs/PROTOCOL.md "Per-row measures"): every row of a test sweep — logit
 * lens, both patchscopes and the tuned lens, by the fast and the naive strategy — carries kl, rank
 * and entropy equal to an independent float64 reference (test/reference/gptj-f64.ts) within 1e-4
 * nats, the rank exactly (up to ids whose logits tie with the reference's within fp32 rounding).
 * The fast sweep also follows each record's own `track` token (track 'record', given as text or as
 * an id): its log-probability and rank in every row are checked against float64 the same way.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mulberry32 } from '../src-main/data/shuffle.ts';
import { Engine } from '../src-main/engine/engine.ts';
import { LENS_WEIGHTS } from '../src-main/protocol/lens-settings.ts';
import { lensFolder } from '../src-main/lens/apply.ts';
import { LENS_SESSIONS_MODULE } from '../src-main/lens/local-sessions.ts';
import type { ExampleResult } from '../src-main/protocol/results.ts';
import { prepareSweep } from '../src-main/sweep/prepare.ts';
import { resolveProtocol } from '../src-main/protocol/presets.ts';
import { runSweep } from '../src-main/sweep/run-sweep.ts';
import type { SweepSpec } from '../src-main/protocol/spec.ts';
import { BUILT_IN_TECHNIQUES, type ResolvedTechnique, targetLayerOf, TUNED_LENS } from '../src-main/protocol/techniques.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';
import { logSoftmax, referenceForward, referenceLogitLens, type Weights } from './reference/gptj-f64.ts';

const TOL = 1e-4;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'measures-'));
const WORDS = 'the of and to in is was that for on with as by at from his her it an were are which this cat dog house river'.split(' ');

/** The measures of one row in float64: its logits against the model's own. */
function measuresOf(logits: Float64Array, modelLogits: Float64Array, reference: number) {
  const lp = logSoftmax(logits);
  const lm = logSoftmax(modelLogits);
  let kl = 0;
  let entropy = 0;
  for (let i = 0; i < lp.length; i++) {
    kl += Math.exp(lm[i]) * (lm[i] - lp[i]);
    entropy -= Math.exp(lp[i]) * lp[i];
  }
  return { kl, entropy, ...rankBand(logits, reference) };
}

/** An id's rank in float64, as a band: ids certainly above it, and those above or within fp32 rounding of it. */
function rankBand(logits: Float64Array, id: number) {
  let above = 0;
  let aboveOrTied = 0;
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] > logits[id] + TOL) above++;
    if (logits[i] > logits[id] - TOL && i !== id) aboveOrTied++;
  }
  return { above, aboveOrTied };
}

/** Each record's `track` token: words as text (each one GPT-2 token with its leading space), every third as an id. */
function trackOf(i: number): string | number {
  return i % 3 === 2 ? 7000 + i : ` ${WORDS[(i * 7) % WORDS.length]}`;
}

describe('per-row measures of a sweep against the float64 reference', () => {
  let engine: Engine;
  let weights: Weights;
  const data = path.join(tmp, 'data.jsonl');
  const spec = (strategy: 'fast' | 'naive'): SweepSpec => ({
    modelDir: '',
    device: 'cpu',
    files: [data],
    protocol: resolveProtocol('logitscope', { poolEnd: 40, limit: 6, positionSeed: 4 }),
    techniques: [...BUILT_IN_TECHNIQUES, TUNED_LENS],
    layers: [-1, 0, 1, 2],
    k: 3,
    strategy,
    ...(strategy === 'fast' && { track: 'record' as const }),
  });

  beforeAll(async () => {
    const ckpt = writeTinyGptj({ dir: path.join(tmp, 'model'), format: 'safetensors', seed: 27, config: { n_layer: 3, n_embd: 32 } });
    weights = ckpt.weights;
    const next = mulberry32(5);
    const lines = Array.from({ length: 200 }, (_, i) => JSON.stringify({ text: `${Array.from({ length: 4 + Math.floor(next() * 10) }, () => WORDS[Math.floor(next() * WORDS.length)]).join(' ')}.`, track: trackOf(i) }));
    fs.writeFileSync(data, `${lines.join('\n')}\n`);
    engine = await Engine.load({ modelDir: ckpt.dir, cacheRoot: path.join(tmp, 'cache'), lensSessions: LENS_SESSIONS_MODULE });
  });
  afterAll(async () => engine?.dispose());

  /** The float64 final logits of a technique's row: the residual read, mapped or patched, then ln_f + lm_head. */
  async function referenceLogits(t: ResolvedTechnique, x: Float64Array, layer: number): Promise<Float64Array> {
    const { nLayers: L, dModel: d } = engine.config;
    if (t.kind === 'patchscope') {
      const target = referenceForward({ config: engine.config, weights, tokens: t.promptTokens, patch: { layer: targetLayerOf(t, layer), position: t.promptTokens.length - 1, vector: x } });
      return target.logits.at(-1)!;
    }
    if (t.kind === 'tuned_lens' && layer !== L - 1) {
      const stored = new Float32Array(fs.readFileSync(path.join(await lensFolder(engine, t.lens!), LENS_WEIGHTS)).buffer.slice(0));
      const i = layer + 1;
      const mapped = new Float64Array(d).map((_, q) => {
        let v = stored[(L + 1) * d * d + i * d + q];
        for (let p = 0; p < d; p++) v += x[p] * stored[i * d * d + p * d + q];
        return v;
      });
      return referenceLogitLens(engine.config, weights, mapped);
    }
    return referenceLogitLens(engine.config, weights, x);
  }

  /** Rows checked, and how many of them carried a tracked token. */
  async function checkRows(results: readonly (ExampleResult | undefined)[], techniques: readonly ResolvedTechnique[]): Promise<{ rows: number; tracked: number }> {
    let rows = 0;
    let tracked = 0;
    for (const r of results) {
      const ref = referenceForward({ config: engine.config, weights, tokens: r!.tokens.slice(0, r!.position + 1) });
      const modelLogits = ref.logits.at(-1)!;
      for (const row of r!.layers) {
        const t = techniques.find((x) => x.id === row.technique)!;
        const x = (row.layer < 0 ? ref.embeddings : ref.residPost[row.layer]).at(-1)!;
        const logits = await referenceLogits(t, x, row.layer);
        const want = measuresOf(logits, modelLogits, r!.reference_top1);
        const where = `${row.technique} layer ${row.layer}`;
        if (row.tracked) {
          expect(Math.abs(row.tracked.logprob - logSoftmax(logits)[row.tracked.id]), where).toBeLessThan(TOL);
          const band = rankBand(logits, row.tracked.id);
          expect(row.tracked.rank, where).toBeGreaterThanOrEqual(band.above);
          expect(row.tracked.rank, where).toBeLessThanOrEqual(band.aboveOrTied);
          tracked++;
        }
        expect(Math.abs(row.kl! - want.kl), where).toBeLessThan(TOL);
        expect(Math.abs(row.entropy! - want.entropy), where).toBeLessThan(TOL);
        expect(row.rank!, where).toBeGreaterThanOrEqual(want.above);
        expect(row.rank!, where).toBeLessThanOrEqual(want.aboveOrTied);
        rows++;
      }
    }
    return { rows, tracked };
  }

  test('fast and naive: kl, rank and entropy of every row (four techniques), and the tracked record tokens of the fast sweep, equal float64 within 1e-4', async () => {
    const byStrategy: Record<string, (ExampleResult | undefined)[]> = {};
    for (const strategy of ['fast', 'naive'] as const) {
      const { plan } = await prepareSweep(engine, spec(strategy));
      const out = await runSweep(engine, plan);
      expect(out.status).toBe('completed');
      const n = plan.examples.length;
      // The fast sweep follows every record's token in every row (the naive one has no track).
      expect(await checkRows(out.results, plan.techniques)).toEqual({ rows: n * 4 * 4, tracked: strategy === 'fast' ? n * 4 * 4 : 0 });
      if (strategy === 'fast') expect(plan.examples.map((e) => e.track)).toEqual(plan.examples.map((e) => { const t = trackOf(e.recordIndex); return typeof t === 'number' ? t : engine.tokenizer.encode(t)[0]; }));
      byStrategy[strategy] = out.results;
    }
    const all = byStrategy.fast.flatMap((r) => r!.layers);
    // Not constants: the measures vary across rows, and the last layer's logit lens is the model itself.
    expect(Math.max(...all.map((l) => l.kl!))).toBeGreaterThan(0.01);
    expect(new Set(all.map((l) => l.rank)).size).toBeGreaterThan(2);
    for (const l of all.filter((x) => x.technique === 'logit_lens' && x.layer === 2)) {
      expect(Math.abs(l.kl!)).toBeLessThan(1e-5);
      expect(l.rank).toBe(0);
    }
  }, 180_000);
});
