/**
 * The affine tuned lens (src-main/lens/) against an independent float64 reference: the solver
 * against plain Gaussian elimination, the fitted maps against the least-squares solution computed
 * from float64 residuals of test/reference/gptj-f64.ts, the lens's top-1 against the reference
 * lens, the identity at the last layer, and the cache by call counts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Engine } from '../src-main/engine/engine.ts';
import type { GptjConfig } from '../src-main/engine/config.ts';
import { mulberry32 } from '../src-main/data/shuffle.ts';
import { lensFolder, tunedLensExtract } from '../src-main/lens/apply.ts';
import { ensureTunedLens, lensStats, trainExamples } from '../src-main/lens/fit.ts';
import { choleskySolve, jsGemm } from '../src-main/lens/linalg.ts';
import { splitHeldOut } from '../src-main/lens/check.ts';
import { lensDir, lensRecordOf, resolveLensSettings } from '../src-main/lens/lens.ts';
import { LENS_WEIGHTS, type LensRecord } from '../src-main/protocol/lens-settings.ts';
import { LENS_SESSIONS_MODULE } from '../src-main/lens/local-sessions.ts';
import { ortGemm, releaseLensSessions } from '../src-main/lens/sessions.ts';
import { Extractor, extractNaive } from '../src-main/sweep/extract.ts';
import { describeTechniques } from '../src-main/sweep/export-record.ts';
import { prepareSweep } from '../src-main/sweep/prepare.ts';
import { resolveProtocol } from '../src-main/protocol/presets.ts';
import { runSweep } from '../src-main/sweep/run-sweep.ts';
import type { SweepSpec } from '../src-main/protocol/spec.ts';
import { BUILT_IN_TECHNIQUES, TUNED_LENS } from '../src-main/protocol/techniques.ts';
import { techniqueView } from '../src-main/api/views.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';
import { referenceForward, referenceLogitLens, type Weights } from './reference/gptj-f64.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tuned-lens-'));
const WORDS = 'the of and to in is was that for on with as by at from his her it an were are which this be or had not but cat dog house river'.split(' ');

function writeDataset(file: string, n: number, seed: number): void {
  const next = mulberry32(seed);
  const lines = Array.from({ length: n }, () => JSON.stringify({ text: `${Array.from({ length: 3 + Math.floor(next() * 12) }, () => WORDS[Math.floor(next() * WORDS.length)]).join(' ')}.` }));
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}

/** A random symmetric positive definite matrix [d, d] with condition number about `cond`. */
function randomSpd(d: number, seed: number): Float64Array {
  const next = mulberry32(seed);
  const m = Float64Array.from({ length: d * d }, () => next() * 2 - 1);
  const a = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) for (let p = 0; p < d; p++) a[i * d + j] += m[p * d + i] * m[p * d + j];
  for (let i = 0; i < d; i++) a[i * d + i] += 0.5;
  return a;
}

/** A·X = B by Gaussian elimination with partial pivoting: independent of the Cholesky code. */
function gaussSolve(a0: Float64Array, b0: Float64Array, d: number, r: number): Float64Array {
  const a = Float64Array.from(a0);
  const b = Float64Array.from(b0);
  for (let c = 0; c < d; c++) {
    let piv = c;
    for (let i = c + 1; i < d; i++) if (Math.abs(a[i * d + c]) > Math.abs(a[piv * d + c])) piv = i;
    for (let j = 0; j < d; j++) [a[c * d + j], a[piv * d + j]] = [a[piv * d + j], a[c * d + j]];
    for (let j = 0; j < r; j++) [b[c * r + j], b[piv * r + j]] = [b[piv * r + j], b[c * r + j]];
    for (let i = c + 1; i < d; i++) {
      const f = a[i * d + c] / a[c * d + c];
      if (f === 0) continue;
      for (let j = c; j < d; j++) a[i * d + j] -= f * a[c * d + j];
      for (let j = 0; j < r; j++) b[i * r + j] -= f * b[c * r + j];
    }
  }
  const x = new Float64Array(d * r);
  for (let i = d - 1; i >= 0; i--) {
    for (let j = 0; j < r; j++) {
      let s = b[i * r + j];
      for (let p = i + 1; p < d; p++) s -= a[i * d + p] * x[p * r + j];
      x[i * r + j] = s / a[i * d + i];
    }
  }
  return x;
}

const relFrobenius = (x: ArrayLike<number>, ref: ArrayLike<number>) => {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (x[i] - ref[i]) ** 2;
    den += ref[i] ** 2;
  }
  return Math.sqrt(num / den);
};

describe('blocked Cholesky solve', () => {
  // Panels of 16 over d = 70: five panels, the last one partial, so every branch of the blocking runs.
  test.each([
    ['JavaScript products', jsGemm],
    ["onnxruntime's float64 MatMul", ortGemm('cpu')],
  ])('matches Gaussian elimination (%s)', async (_name, gemm) => {
    const d = 70;
    const r = 23;
    const a = randomSpd(d, 3);
    const next = mulberry32(9);
    const b = Float64Array.from({ length: d * r }, () => next() - 0.5);
    const want = gaussSolve(a, b, d, r);
    const got = await choleskySolve(Float64Array.from(a), b, d, r, gemm, { panel: 16 });
    // Both are backward stable; with this matrix's condition number (< 10⁴) they agree to ~1e-12.
    expect(relFrobenius(got, want)).toBeLessThan(1e-10);
  });

  test('a matrix that is not positive definite is a numerics error, not NaNs', async () => {
    const a = new Float64Array([1, 2, 2, 1]);
    await expect(choleskySolve(a, new Float64Array([1, 1]), 2, 1, jsGemm)).rejects.toMatchObject({ code: 'numerics_nonfinite' });
  });
});

describe('tuned lens on a tiny random GPT-J', () => {
  let engine: Engine;
  let config: GptjConfig;
  let weights: Weights;
  const data = path.join(tmp, 'data.jsonl');
  const protocol = resolveProtocol('logitscope', { poolEnd: 40, limit: 12, positionSeed: 4 });
  const spec = (over: Partial<SweepSpec> = {}): SweepSpec => ({
    modelDir: '',
    device: 'cpu',
    files: [data],
    protocol,
    techniques: [...BUILT_IN_TECHNIQUES, TUNED_LENS],
    layers: [-1, 0, 1, 2],
    k: 5,
    strategy: 'fast',
    ...over,
  });

  beforeAll(async () => {
    const ckpt = writeTinyGptj({ dir: path.join(tmp, 'model'), format: 'safetensors', seed: 21, config: { n_layer: 3, n_embd: 32 } });
    weights = ckpt.weights;
    writeDataset(data, 400, 7);
    engine = await Engine.load({ modelDir: ckpt.dir, cacheRoot: path.join(tmp, 'cache'), lensSessions: LENS_SESSIONS_MODULE });
    config = engine.config;
  });
  afterAll(async () => engine?.dispose());

  test('the fitted maps equal the float64 least-squares solution within the perturbation bound of float32 residuals', async () => {
    const settings = resolveLensSettings({ protocol, files: [data], modelIdentity: engine.info.identity, computeDtype: engine.info.computeDtype, overrides: { ridge: 1e-4, train: { end: 120 } } });
    // Small chunks and panels, so the accumulation runs over several chunks and the solve over several panels.
    const { file, dir } = await ensureTunedLens(engine, settings, { chunkRows: 50, batchExamples: 7, panel: 8 });
    const { nLayers: L, dModel: d } = config;
    expect(file.examples).toBeGreaterThan(d); // more rows than unknowns per output: a real least-squares fit
    // The fit reads nine of every ten train examples; the tenth are its held-out check's.
    const { fit: examples, heldOut } = splitHeldOut(await trainExamples(engine, settings));
    expect(examples.length).toBe(file.examples);
    expect(file.check.heldOut).toBe(heldOut.length);
    expect(heldOut.length).toBeGreaterThan(5);
    expect(file.check.layers.map((l) => l.layer)).toEqual([-1, 0, 1, 2]);
    expect(file.check.layers.at(-1)).toEqual({ layer: 2, fitError: 0, precision: 1 });
    // The probe repeated on every open: the first held-out examples, their own tokens and positions.
    expect(file.check.probe.examples).toEqual(heldOut.slice(0, 16).map((e) => ({ tokens: e.tokens, position: e.position })));
    expect(file.check.probe.layers).toHaveLength(4);
    // Held out, the maps still explain the final residual better than its mean does.
    for (const l of file.check.layers.slice(0, -1)) expect(l.fitError).toBeLessThan(1);

    // Float64 residuals of every train example at its position, and the engine's float32 ones.
    const ref = examples.map((e) => referenceForward({ config, weights, tokens: e.tokens.slice(0, e.position + 1) }));
    const rowOf = (r: (typeof ref)[number], layer: number) => (layer < 0 ? r.embeddings : r.residPost[layer]).at(-1)!;
    const src = await engine.sourcePass(examples.map((e) => ({ tokens: e.tokens.slice(0, e.position + 1), position: e.position })));
    let dataErr = 0;
    ref.forEach((r, b) => {
      for (let layer = -1; layer < L; layer++) {
        const x64 = rowOf(r, layer);
        const x32 = src.resid.subarray(((layer + 1) * examples.length + b) * d, ((layer + 1) * examples.length + b + 1) * d);
        dataErr = Math.max(dataErr, relFrobenius(x32, x64));
      }
    });

    const stored = new Float32Array(fs.readFileSync(path.join(dir, LENS_WEIGHTS)).buffer.slice(0));
    const n = examples.length;
    for (let layer = -1; layer < L - 1; layer++) {
      // The reference fit, written out plainly: centre, scatter, ridge λ = ridge·tr(Σ)/d, solve.
      const xs = ref.map((r) => rowOf(r, layer));
      const ys = ref.map((r) => rowOf(r, L - 1));
      const mean = (rows: Float64Array[]) => new Float64Array(d).map((_, j) => rows.reduce((s, x) => s + x[j], 0) / n);
      const mx = mean(xs);
      const my = mean(ys);
      const sxx = new Float64Array(d * d);
      const sxy = new Float64Array(d * d);
      for (let e = 0; e < n; e++) {
        for (let p = 0; p < d; p++) {
          const xp = xs[e][p] - mx[p];
          for (let q = 0; q < d; q++) {
            sxx[p * d + q] += xp * (xs[e][q] - mx[q]);
            sxy[p * d + q] += xp * (ys[e][q] - my[q]);
          }
        }
      }
      let trace = 0;
      for (let p = 0; p < d; p++) trace += sxx[p * d + p];
      const lambda = (settings.ridge * trace) / d;
      for (let p = 0; p < d; p++) sxx[p * d + p] += lambda;
      const wRef = gaussSolve(sxx, sxy, d, d);
      const bRef = new Float64Array(d).map((_, q) => my[q] - mx.reduce((s, v, p) => s + v * wRef[p * d + q], 0));

      const i = layer + 1;
      const w = stored.subarray(i * d * d, (i + 1) * d * d);
      const b = stored.subarray((L + 1) * d * d + i * d, (L + 1) * d * d + (i + 1) * d);
      // First-order perturbation bound for A·W = B when A and B carry relative errors ≈ 2·dataErr
      // (products of rows each off by dataErr): ‖ΔW‖/‖W‖ ≲ κ(A)·4·dataErr, plus float32 storage of W.
      const kappa = conditionNumber(sxx, d);
      const tol = 4 * kappa * dataErr + 1e-6;
      const err = relFrobenius(w, wRef);
      expect(err, `layer ${layer}: relative error ${err}, κ ${kappa.toExponential(2)}, data error ${dataErr.toExponential(2)}`).toBeLessThan(tol);
      // The bound is a worst case (measured: errors of 3–5e-7 against bounds of 5–9e-4, with κ ≈ 200–360 and
      // data errors of 6e-7); errors this small also say the solve adds nothing beyond the rows' own float32 error.
      expect(err).toBeLessThan(1e-5);
      expect(relFrobenius(b, bRef)).toBeLessThan(Math.max(tol, 1e-4));
      expect(file.layers[i].lambda).toBeCloseTo(lambda, 6);
    }
    // The last block's map is the identity, exactly.
    const last = stored.subarray(L * d * d, (L + 1) * d * d);
    last.forEach((v, j) => expect(v).toBe(j % (d + 1) === 0 ? 1 : 0));

    // Applying it: the lens's top-1 equals the reference lens's (f64 rows · W_ref + b_ref → ln_f + lm_head) except near-ties.
    const evalExamples = examples.slice(0, 12);
    const lens = lensRecordOf(file);
    const layers = [-1, 0, 1, 2];
    const got = await tunedLensExtract(engine, { examples: evalExamples, id: 'tuned_lens', lens, layers, k: 3 });
    let compared = 0;
    let nearTies = 0;
    evalExamples.forEach((e, b) => {
      layers.forEach((layer, li) => {
        const i = layer + 1;
        const x = rowOf(ref[b], layer);
        const mapped = new Float64Array(d).map((_, q) => {
          let v = stored[(L + 1) * d * d + i * d + q];
          for (let p = 0; p < d; p++) v += x[p] * stored[i * d * d + p * d + q];
          return v;
        });
        const logits = referenceLogitLens(config, weights, mapped);
        let top = 0;
        for (let t = 1; t < logits.length; t++) if (logits[t] > logits[top]) top = t;
        const row = got[b].layers[li];
        expect(row.layer).toBe(layer);
        compared++;
        if (row.top1 !== top) {
          nearTies++;
          expect(logits[top] - logits[row.top1], `example ${b} layer ${layer}`).toBeLessThan(1e-3);
        }
      });
    });
    expect(compared).toBe(48);
    expect(nearTies).toBeLessThanOrEqual(2);
  }, 120_000);

  test('a sweep with all four techniques: the lens is read at the last layer as the identity (precision@1 = 1), and a second sweep reuses the fitted lens', async () => {
    const fitsBefore = lensStats.fits;
    const prepared = await prepareSweep(engine, spec());
    expect(lensStats.fits).toBe(fitsBefore + 1);
    const lensTechnique = prepared.plan.techniques.find((t) => t.kind === 'tuned_lens')!;
    expect(lensTechnique.kind === 'tuned_lens' && lensTechnique.lens?.examples).toBeGreaterThan(0);
    const before = { ...engine.stats };
    const out = await runSweep(engine, prepared.plan);
    expect(out.status).toBe('completed');
    // The lens maps its rows inside the engine's batch: one source pass per batch serves all four
    // techniques (no second one for the lens), one lens run per batch, every layer's rows but the
    // last one's (its map is the identity).
    const n = prepared.plan.examples.length;
    const batches = engine.stats.sourceRuns - before.sourceRuns;
    expect(engine.stats.sourceRows - before.sourceRows).toBe(n);
    expect(engine.stats.lensRuns - before.lensRuns).toBe(batches);
    expect(engine.stats.lensRows - before.lensRows).toBe(n * prepared.plan.layers.filter((l) => l !== config.nLayers - 1).length);
    const last = out.summary.find((s) => s.technique === 'tuned_lens' && s.layer === config.nLayers - 1)!;
    expect(last.n).toBe(prepared.plan.examples.length);
    expect(last.precision.mean).toBe(1);
    // At the last layer the tuned lens reads exactly the model's own row: same surprisal as the logit lens.
    for (const r of out.results) {
      const tl = r!.layers.find((x) => x.technique === 'tuned_lens' && x.layer === config.nLayers - 1)!;
      const ll = r!.layers.find((x) => x.technique === 'logit_lens' && x.layer === config.nLayers - 1)!;
      expect(tl.top1).toBe(r!.reference_top1);
      expect(tl.surprisal).toBe(ll.surprisal);
    }
    // Four techniques, every layer, every example.
    expect(new Set(out.summary.map((s) => s.technique))).toEqual(new Set(['logit_lens', 'patchscope', 'logitscope', 'tuned_lens']));

    // The same sweep again: the lens comes from the cache, no train example is run.
    const rowsBefore = lensStats.sourceRows;
    const hitsBefore = lensStats.cacheHits;
    const sourceRunsBefore = engine.stats.sourceRuns;
    const again = await prepareSweep(engine, spec());
    expect(lensStats.fits).toBe(fitsBefore + 1);
    expect(lensStats.cacheHits).toBe(hitsBefore + 1);
    expect(lensStats.sourceRows).toBe(rowsBefore);
    expect(engine.stats.sourceRuns).toBe(sourceRunsBefore);
    expect(again.plan.techniques).toEqual(prepared.plan.techniques);

    // The naive path (the lens composed from outside the engine: its own source pass per example,
    // the lens worker's map, the engine's unembed op) gives the same tuned-lens rows: the same top-k
    // ids, and log-probabilities within 1e-5 (fast and naive map 1 or B rows per product, so their
    // sums may round differently).
    const naive = await extractNaive(engine, { examples: prepared.plan.examples.slice(0, 8), techniques: [lensTechnique], layers: prepared.plan.layers, k: 5 });
    const lensRowsBefore = engine.stats.lensRows;
    let compared = 0;
    naive.forEach((r, b) => {
      const fast = out.results[b]!.layers.filter((x) => x.technique === 'tuned_lens');
      expect(r.reference_top1).toBe(out.results[b]!.reference_top1);
      expect(r.layers.map((x) => x.layer)).toEqual(fast.map((x) => x.layer));
      r.layers.forEach((x, j) => {
        expect(x.top_k.ids).toEqual(fast[j].top_k.ids);
        expect(Math.abs(x.surprisal - fast[j].surprisal)).toBeLessThan(1e-5);
        expect(Math.abs(x.surprisal_paper - fast[j].surprisal_paper)).toBeLessThan(1e-5);
        x.top_k.probs.forEach((p, i) => expect(Math.abs(Math.log(p) - Math.log(fast[j].top_k.probs[i]))).toBeLessThan(1e-5));
        compared++;
      });
    });
    expect(compared).toBe(8 * prepared.plan.layers.length);
    expect(engine.stats.lensRows).toBe(lensRowsBefore); // the naive path did not use the engine's lens

    // Runs and exports name the lens.
    const key = lensTechnique.kind === 'tuned_lens' ? lensTechnique.lens!.key : '';
    expect(techniqueView(lensTechnique).lens).toContain(key.slice(0, 12));
    expect(describeTechniques(prepared.plan.techniques).tuned_lens.lens).toMatchObject({ key, ridge: 1e-5, positionSeed: 4 });
    expect(fs.existsSync(path.join(lensDir(engine.info.cacheDir, key), LENS_WEIGHTS))).toBe(true);

    // A cleared cache: the run's record fits the same lens again (same key), and the rows come out the same.
    await releaseLensSessions();
    fs.rmSync(lensDir(engine.info.cacheDir, key), { recursive: true });
    const fitsNow = lensStats.fits;
    const examples = prepared.plan.examples.slice(0, 4);
    const refit = await tunedLensExtract(engine, { examples, id: 'tuned_lens', lens: (lensTechnique as { lens: LensRecord }).lens, layers: prepared.plan.layers, k: 5, referenceTop1: examples.map((_, b) => out.results[b]!.reference_top1) });
    expect(lensStats.fits).toBe(fitsNow + 1);
    refit.forEach((r, b) => {
      const before = out.results[b]!.layers.filter((x) => x.technique === 'tuned_lens');
      expect(r.layers.map((x) => x.top1)).toEqual(before.map((x) => x.top1));
      r.layers.forEach((x, j) => expect(Math.abs(x.surprisal - before[j].surprisal)).toBeLessThan(1e-5));
    });

    // A lens whose weights file keeps its size but not its content (every map but the last one's
    // zeroed, W = 0, b = 0: parity at the last layer cannot see it) is refused when it is opened,
    // fitted again, and the rows are the genuine lens's again.
    const weightsFile = path.join(lensDir(engine.info.cacheDir, key), LENS_WEIGHTS);
    const d = config.dModel;
    const L = config.nLayers;
    const stored = new Float32Array(new Uint8Array(fs.readFileSync(weightsFile)).buffer);
    stored.fill(0, 0, L * d * d); // W of layer indices 0..L-1 (index L, the last block, stays the identity)
    stored.fill(0, (L + 1) * d * d, (L + 1) * d * d + L * d); // b of the same
    fs.writeFileSync(weightsFile, stored);
    const fitsBeforeRefusal = lensStats.fits;
    const again2 = await new Extractor(engine).extract({ examples, techniques: [lensTechnique], layers: prepared.plan.layers, k: 5 });
    expect(lensStats.fits).toBe(fitsBeforeRefusal + 1);
    again2.forEach((r, b) => expect(r.layers.map((x) => x.top1)).toEqual(out.results[b]!.layers.filter((x) => x.technique === 'tuned_lens').map((x) => x.top1)));
    expect(new Float32Array(new Uint8Array(fs.readFileSync(weightsFile)).buffer).subarray(0, d * d).some((v) => v !== 0)).toBe(true);
    fs.rmSync(lensDir(engine.info.cacheDir, key), { recursive: true });
  }, 120_000);

  test('bad lens settings are refused before any train example runs', async () => {
    const rows = lensStats.sourceRows;
    // Training on the evaluation records themselves: the same pool, overlapping items, refused with the settings that fix it.
    await expect(prepareSweep(engine, spec({ techniques: [{ id: 'tuned_lens', kind: 'tuned_lens', lens: { train: { poolStart: 0, poolEnd: 40, start: 0, end: 20 } } }] }))).rejects.toMatchObject({
      code: 'argument_invalid',
      path: 'techniques.0.lens.train',
      message: 'tuned lens: the train slice, items 0..19 of the pool, overlaps the evaluation slice, items 0..11 of the same pool; train on items after it (lens.train {start: 12, end: 32}; --lens-train 12-31), or move the evaluation slice to start at item 20 (overrides.evalStart; --eval-start 20)',
    });
    // Another pool that holds some of the same records: found on the records themselves.
    await expect(prepareSweep(engine, spec({ techniques: [{ id: 'tuned_lens', kind: 'tuned_lens', lens: { train: { poolStart: 5, poolEnd: 60, start: 0, end: 20 } } }] }))).rejects.toMatchObject({
      code: 'argument_invalid',
      message: expect.stringMatching(/also evaluation records of this sweep \(e\.g\. record 5\)/),
    });
    // Past the train pool: refused with the pool's size, not fitted again under a new key.
    await expect(prepareSweep(engine, spec({ techniques: [{ id: 'tuned_lens', kind: 'tuned_lens', lens: { train: { start: 0, end: 100_000_000 } } }] }))).rejects.toMatchObject({
      code: 'argument_invalid',
      path: 'techniques.0.lens.train.end',
      message: expect.stringMatching(/the train pool holds 100000 records \(records 40\.\.100039\).*--lens-train 0-99999/),
    });
    // A shuffled pool evaluated from item 3000: the 10,000 items before it do not exist, and the slice is not shrunk.
    const early = { ...protocol, shuffleSeed: 42, evalStart: 30 };
    await expect(prepareSweep(engine, spec({ protocol: early, techniques: [TUNED_LENS] }))).rejects.toMatchObject({
      code: 'argument_invalid',
      message: expect.stringMatching(/only 30 come before it; train on those \(lens\.train \{start: 0, end: 30\}; --lens-train 0-29\) or start the evaluation at item 10000 or later/),
    });
    await expect(prepareSweep(engine, spec({ techniques: [{ id: 'tuned_lens', kind: 'tuned_lens', lens: { ridge: 2 } }] }))).rejects.toMatchObject({ code: 'argument_invalid', message: expect.stringMatching(/ridge/) });
    await expect(prepareSweep(engine, spec({ techniques: [{ id: 'tuned_lens', kind: 'tuned_lens', lens: { train: { poolStart: 5000, poolEnd: 6000, end: 500 } } }] }))).rejects.toMatchObject({ code: 'slice_empty' });
    expect(lensStats.sourceRows).toBe(rows);
    // A run recorded with a lens of the previous version (no check, no content hash) cannot be
    // continued: fitting it again now would put another lens's rows under its key.
    const old: LensRecord = { ...resolveLensSettings({ protocol, files: [data], modelIdentity: engine.info.identity, computeDtype: engine.info.computeDtype }), version: 1, key: 'a'.repeat(64), examples: 100 };
    await expect(lensFolder(engine, old)).rejects.toMatchObject({ code: 'argument_invalid', message: expect.stringMatching(/older version of the lens \(v1; this code fits v2.*start a new sweep/) });
    // A batch naming a lens folder without weights is refused before its source pass.
    const sourceRuns = engine.stats.sourceRuns;
    const missing = path.join(tmp, 'no-such-lens');
    await expect(
      engine.extractBatch({ items: [{ tokens: [1, 2, 3], position: 2 }], names: ['e'], techniques: [{ id: 'tuned_lens', prefixTokens: null, example: [0], sourceLayer: [0], injectLayer: [], lens: { dir: missing } }], k: 1, maxUnembedRows: 8 }),
    ).rejects.toMatchObject({ code: 'cache_corrupt', message: expect.stringContaining(missing) });
    expect(engine.stats.sourceRuns).toBe(sourceRuns);
  });
});

/** κ₂ of an SPD matrix: largest over smallest eigenvalue, by power iteration on A and on A⁻¹. */
function conditionNumber(a: Float64Array, d: number): number {
  const power = (apply: (v: Float64Array) => Float64Array) => {
    let v = new Float64Array(d).fill(1);
    let lambda = 0;
    for (let it = 0; it < 300; it++) {
      const w = apply(v);
      lambda = Math.hypot(...w);
      v = w.map((x) => x / lambda);
    }
    return lambda;
  };
  const max = power((v) => new Float64Array(d).map((_, i) => v.reduce((s, x, j) => s + a[i * d + j] * x, 0)));
  const invMax = power((v) => gaussSolve(a, v, d, 1));
  return max * invMax;
}

describe('the lens worker', () => {
  test("the fit's products run off the main thread: timers keep firing during a long float64 product", async () => {
    const d = 700;
    const next = mulberry32(1);
    const a = Float64Array.from({ length: d * d }, () => next());
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const started = performance.now();
    // Several products back to back (c − a·a), each 700³ multiply-adds.
    let c: Float64Array = new Float64Array(d * d);
    for (let i = 0; i < 6; i++) c = await ortGemm('cpu')(a, a, c, d, d, d);
    const ms = performance.now() - started;
    clearInterval(timer);
    expect(Number.isFinite(c[0])).toBe(true);
    // Had the products blocked this thread, the interval could not have fired during them.
    expect(ticks).toBeGreaterThan(Math.min(10, ms / 5 / 4));
  });
});
