/**
 * Fitting the affine tuned lens (lens.ts). The numerics, as the README and PROTOCOL.md state them:
 *
 * 1. Collect: one position per train example (drawn as for evaluation, from the lens's position
 *    seed); one source pass per batch of examples gives every layer's residual there at once
 *    (Engine.sourcePass: resid [L+1, batch, d]). Rows are float32, as the engine computes them.
 * 2. Accumulate, per layer index i (0 = embeddings .. L−1 = block L−2), in onnxruntime and float64:
 *    Xᵢᵀ Xᵢ, Xᵢᵀ Y, ΣXᵢ, ΣY over the rows shifted by the first chunk's means (Y = the final residual,
 *    index L). The shift makes the centred scatter Σ = XᵀX − (ΣX)(ΣX)ᵀ/n a small correction rather
 *    than a difference of two large numbers (the shifted-data algorithm).
 * 3. Solve (Σxx + λI) W = Σxy in float64 by a blocked Cholesky (linalg.ts), with the ridge
 *    λ = ridge · tr(Σxx)/d (relative to the mean variance, so the same setting means the same
 *    conditioning at every layer and width; recorded per layer). Centring gives b for free:
 *    b = ȳ − x̄·W. The last block's map (index L) is the identity, W = I, b = 0, exactly.
 * 4. Store W and b as float32 (the dtype the rows are in), with the settings and per-layer λ and R².
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Engine } from '../engine/engine.ts';
import { LogitscopeError } from '../errors.ts';
import { recordHashes, reportRefused } from '../engine/cache-check.ts';
import { fsFailure } from '../fs-errors.ts';
import { buildExamples, selectRecords } from '../data/selection.ts';
import type { SweepExample } from '../protocol/spec.ts';
import { checkLens, type LensCheck, PROBE_EXAMPLES, probeProblem, splitHeldOut } from './check.ts';
import { choleskySolve, type Gemm } from './linalg.ts';
import { lensDir, lensKey, type LensFile, readLensFile } from './lens.ts';
import { LENS_META, LENS_WEIGHTS, type LensSettings } from '../protocol/lens-settings.ts';
import { fitDevice, gram, ortGemm, releaseLensSessions } from './sessions.ts';

/** What this process has fitted and loaded: tests tell a cache hit from a fit by these counts. */
export const lensStats = { fits: 0, cacheHits: 0, sourceRows: 0 };

/**
 * Where a fit is: `selecting` its train records (done = records read so far, total 0), `collecting`
 * residuals (train examples done of total), `solving` (maps done of total), `checking` (held-out
 * examples done of total). `refused`: a cached lens was damaged and is being fitted again.
 */
export interface FitProgress {
  phase: 'selecting' | 'collecting' | 'solving' | 'checking';
  done: number;
  total: number;
  refused?: string;
}

export interface FitOptions {
  signal?: AbortSignal;
  onProgress?(p: FitProgress): void;
  /**
   * Rows per accumulation call. By default as many as fit in about 1 GB of float32 rows (every
   * layer's), between 256 and 8192: bigger chunks mean fewer [d, d] float64 products to copy out
   * and add (2·d²·8 bytes per layer per chunk), which dominate the accumulation at GPT-J's width.
   */
  chunkRows?: number;
  /** Examples per source pass (default 32). */
  batchExamples?: number;
  /** Panel width of the blocked Cholesky (default 256). */
  panel?: number;
  /** Replaces onnxruntime's products in the solve (tests). */
  gemm?: Gemm;
  /** Record indices the lens must not train on (the sweep's evaluation records). */
  excludeRecords?: ReadonlySet<number>;
}

/** The train examples of a lens: its slice of the files, tokenized, one drawn position each. */
export async function trainExamples(engine: Engine, s: LensSettings, opts: Pick<FitOptions, 'signal' | 'excludeRecords' | 'onProgress'> = {}): Promise<SweepExample[]> {
  const t = s.train;
  const selection = await selectRecords(
    s.files,
    { preset: 'logitscope', poolStart: t.poolStart, poolEnd: t.poolEnd, pileSetName: t.pileSetName, filter: t.filter, shuffleSeed: t.shuffleSeed, evalStart: t.start, evalEnd: t.end, bos: t.bos, positionSeed: s.positionSeed },
    { signal: opts.signal, onProgress: opts.onProgress && ((p) => opts.onProgress!({ phase: 'selecting', done: p.scanned, total: 0 })) },
  ).catch((e) => {
    if (e instanceof LogitscopeError && e.code === 'slice_empty') throw new LogitscopeError('slice_empty', `tuned lens: the train slice is empty (${e.message})`, 'techniques');
    throw e;
  });
  opts.onProgress?.({ phase: 'selecting', done: selection.pool.scanned, total: 0 });
  const overlap = opts.excludeRecords ? selection.records.filter((r) => opts.excludeRecords!.has(r.index)) : [];
  if (overlap.length > 0) {
    throw new LogitscopeError(
      'argument_invalid',
      `tuned lens: ${overlap.length} of its train records are also evaluation records of this sweep (e.g. record ${overlap[0].index}); choose a train pool of other records (lens.train poolStart/poolEnd past the evaluation pool's end), or leave the lens's train settings to their default`,
      'techniques',
    );
  }
  const { examples } = buildExamples(selection.records, { tokenize: (x) => engine.tokenizer.encode(x), bos: engine.bosPlan(t.bos), nCtx: engine.config.nCtx, positionSeed: s.positionSeed });
  if (examples.length < 2) throw new LogitscopeError('slice_empty', `tuned lens: only ${examples.length} train example(s) can be run; at least 2 are needed`, 'techniques');
  return examples;
}

/** The lens for these settings: from the cache when fitted before, else fitted now and stored. */
export async function ensureTunedLens(engine: Engine, s: LensSettings, opts: FitOptions = {}): Promise<{ dir: string; file: LensFile; fromCache: boolean }> {
  const key = lensKey(s);
  const dir = lensDir(engine.info.cacheDir, key);
  try {
    const cached = readLensFile(dir);
    if (cached) {
      await verifyLensCheck(engine, dir, cached);
      lensStats.cacheHits++;
      return { dir, file: cached, fromCache: true };
    }
  } catch (e) {
    if (!(e instanceof LogitscopeError && e.code === 'cache_corrupt')) throw e;
    // A damaged lens is said so, then fitted again into the same folder (fitTunedLens replaces it whole).
    // Said once: in the fit's progress when someone follows it (the CLI prints it, the app shows it), else on stderr.
    if (opts.onProgress) opts.onProgress({ phase: 'selecting', done: 0, total: 0, refused: `[${e.code}] ${e.path}: ${e.message}` });
    else reportRefused(e);
  }
  const file = await fitTunedLens(engine, s, opts);
  return { dir, file, fromCache: false };
}

/** Lens contents (folder and weights hash) whose probe this process has computed again and found as recorded. */
const probed = new Set<string>();

/**
 * A lens whose check fails on load is refused: the recorded probe is computed again (once per lens
 * content per process) through the lens as it is on disk. The hash says the bytes are those
 * written; this says they still give the numbers the fit measured.
 */
async function verifyLensCheck(engine: Engine, dir: string, file: LensFile): Promise<void> {
  const key = `${dir}|${file.weightsSha256}`;
  if (probed.has(key)) return;
  const problem = await probeProblem(engine, dir, file.check);
  if (problem) throw new LogitscopeError('cache_corrupt', `the tuned lens fails its own check: ${problem}; it is refused and will be fitted again`, path.join(dir, LENS_META));
  probed.add(key);
}

/** Fits every layer's map and writes the lens to its cache folder. */
export async function fitTunedLens(engine: Engine, s: LensSettings, opts: FitOptions = {}): Promise<LensFile> {
  const { nLayers: L, dModel: d } = engine.config;
  const device = fitDevice(engine);
  const key = lensKey(s);
  const cancelled = () => {
    if (opts.signal?.aborted) throw new LogitscopeError('cancelled', 'the tuned-lens fit was cancelled');
  };
  opts.onProgress?.({ phase: 'selecting', done: 0, total: 0 });
  const all = await trainExamples(engine, s, opts);
  // Every tenth example is held out of the fit, for the lens's own check (check.ts).
  const { fit: examples, heldOut } = splitHeldOut(all);
  const n = examples.length;

  // --- collect + accumulate ------------------------------------------------------------------
  const chunkRows = Math.max(2, opts.chunkRows ?? Math.min(8192, Math.max(256, Math.floor(2 ** 30 / ((L + 1) * d * 4)))));
  const batchExamples = Math.max(1, opts.batchExamples ?? 32);
  const xs = Array.from({ length: L }, () => new Float32Array(chunkRows * d)); // per fit layer index
  const ys = new Float32Array(chunkRows * d);
  const gxx = Array.from({ length: L }, () => new Float64Array(d * d));
  const gxy = Array.from({ length: L }, () => new Float64Array(d * d));
  const sumX = Array.from({ length: L }, () => new Float64Array(d));
  const sumY = new Float64Array(d);
  let sumSqY = 0; // Σ‖y − shiftY‖², for R²
  let shiftX: Float64Array[] | null = null;
  let shiftY: Float64Array | null = null;
  let filled = 0;
  let collectMs = 0;
  let accumulateMs = 0;

  const flush = async () => {
    if (filled === 0) return;
    const started = performance.now();
    if (!shiftX) {
      // The first chunk's means: close to the data's means, which is all the shift needs to be.
      const mean = (rows: Float32Array) => {
        const m = new Float64Array(d);
        for (let r = 0; r < filled; r++) for (let j = 0; j < d; j++) m[j] += rows[r * d + j];
        return m.map((v) => v / filled);
      };
      shiftX = xs.map(mean);
      shiftY = mean(ys);
    }
    const x0 = ys.subarray(0, filled * d);
    for (let r = 0; r < filled; r++) {
      for (let j = 0; j < d; j++) {
        const v = x0[r * d + j] - shiftY![j];
        sumSqY += v * v;
      }
    }
    for (let i = 0; i < L; i++) {
      cancelled();
      const g = await gram(device, xs[i].subarray(0, filled * d), x0, shiftX[i], shiftY!, filled, d);
      addInto(gxx[i], g.xtx);
      addInto(gxy[i], g.xty);
      addInto(sumX[i], g.sumX);
      if (i === 0) addInto(sumY, g.sumY);
    }
    filled = 0;
    accumulateMs += performance.now() - started;
  };

  // Length-sorted batches: right-padding to the longest of a batch wastes least this way.
  const order = examples.map((e, i) => i).sort((a, b) => examples[a].position - examples[b].position);
  let done = 0;
  for (let start = 0; start < n; start += batchExamples) {
    cancelled();
    const batch = order.slice(start, start + batchExamples).map((i) => examples[i]);
    const started = performance.now();
    const src = await engine.sourcePass(batch.map((e) => ({ tokens: e.tokens.slice(0, e.position + 1), position: e.position })));
    collectMs += performance.now() - started;
    lensStats.sourceRows += batch.length;
    const B = batch.length;
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < L; i++) xs[i].set(src.resid.subarray((i * B + b) * d, (i * B + b + 1) * d), filled * d);
      ys.set(src.resid.subarray((L * B + b) * d, (L * B + b + 1) * d), filled * d);
      filled++;
      if (filled === chunkRows) await flush();
    }
    done += B;
    opts.onProgress?.({ phase: 'collecting', done, total: n });
  }
  await flush();

  // --- solve ----------------------------------------------------------------------------------
  const solveStarted = performance.now();
  const product = opts.gemm ?? ortGemm(device);
  // A map's solve runs for tens of seconds at GPT-J's width: a cancel is honoured between its panel products.
  const gemm: Gemm = (...args) => {
    cancelled();
    return product(...args);
  };
  const W = new Float32Array((L + 1) * d * d);
  const bias = new Float32Array((L + 1) * d);
  const layers: LensFile['layers'] = [];
  const meanY = new Float64Array(d).map((_, j) => shiftY![j] + sumY[j] / n);
  const trSyy = sumSqY - dot(sumY, sumY) / n;
  for (let i = 0; i < L; i++) {
    cancelled();
    opts.onProgress?.({ phase: 'solving', done: i, total: L });
    const sx = sumX[i];
    // Centred scatters from the shifted sums.
    const a = gxx[i];
    const rhs = gxy[i];
    for (let p = 0; p < d; p++) {
      for (let q = 0; q < d; q++) {
        a[p * d + q] -= (sx[p] * sx[q]) / n;
        rhs[p * d + q] -= (sx[p] * sumY[q]) / n;
      }
    }
    const centredRhs = Float64Array.from(rhs);
    let trace = 0;
    for (let p = 0; p < d; p++) trace += a[p * d + p];
    const lambda = (s.ridge * trace) / d;
    if (!(lambda > 0 && Number.isFinite(lambda))) {
      throw new LogitscopeError('numerics_nonfinite', `tuned lens: layer ${i - 1}'s train residuals have no spread (trace ${trace}); cannot fit a map`, 'numerics');
    }
    for (let p = 0; p < d; p++) a[p * d + p] += lambda;
    const w = await choleskySolve(a, rhs, d, d, gemm, { panel: opts.panel, what: `tuned lens at layer ${i - 1}` });
    const meanX = new Float64Array(d).map((_, j) => shiftX![i][j] + sx[j] / n);
    for (let q = 0; q < d; q++) {
      let v = meanY[q];
      for (let p = 0; p < d; p++) v -= meanX[p] * w[p * d + q];
      bias[i * d + q] = v;
    }
    W.set(w, i * d * d);
    if (!W.subarray(i * d * d, (i + 1) * d * d).every(Number.isFinite)) {
      throw new LogitscopeError('numerics_nonfinite', `tuned lens: the fitted map of layer ${i - 1} is not finite`, 'numerics');
    }
    // Explained fraction of the final residual's variance: tr(Wᵀ Σxy)/tr(Σyy) (R² for ridge → 0).
    layers.push({ layer: i - 1, lambda, r2: dot(w, centredRhs) / trSyy });
  }
  opts.onProgress?.({ phase: 'solving', done: L, total: L });
  for (let j = 0; j < d; j++) W[(L * d + j) * d + j] = 1; // the last block: identity, b = 0
  layers.push({ layer: L - 1, lambda: 0, r2: 1 });
  const solveMs = performance.now() - solveStarted;
  // Written whole into a temporary folder, checked there, then renamed into place: a fit that is
  // cancelled or fails leaves no lens folder behind, and a reader never sees half a lens.
  const dir = lensDir(engine.info.cacheDir, key);
  const partial = `${dir}.${process.pid}.partial`;
  fs.rmSync(partial, { recursive: true, force: true });
  try {
    fs.mkdirSync(partial, { recursive: true });
    const weightsFile = path.join(partial, LENS_WEIGHTS);
    const fd = fs.openSync(weightsFile, 'w');
    try {
      fs.writeSync(fd, new Uint8Array(W.buffer, W.byteOffset, W.byteLength));
      fs.writeSync(fd, new Uint8Array(bias.buffer, bias.byteOffset, bias.byteLength));
    } finally {
      fs.closeSync(fd);
    }
    const whole = await checkLens(engine, partial, heldOut, { batchExamples, cancelled, onBatch: (done) => opts.onProgress?.({ phase: 'checking', done, total: heldOut.length }) });
    const probeExamples = heldOut.slice(0, PROBE_EXAMPLES).map((e) => ({ tokens: e.tokens, position: e.position }));
    const probe = await checkLens(engine, partial, probeExamples, { batchExamples: PROBE_EXAMPLES, cancelled });
    const check: LensCheck = { ...whole, probe: { examples: probeExamples, layers: probe.layers } };
    await releaseLensSessions(); // the check's session maps the temporary folder's file
    const weightsSha256 = recordHashes([weightsFile], engine.info.cacheDir)[0];
    const file: LensFile = {
      ...s,
      key,
      examples: n,
      nLayers: L,
      dModel: d,
      layers,
      timings: { collectSeconds: collectMs / 1000, accumulateSeconds: accumulateMs / 1000, solveSeconds: solveMs / 1000 },
      weightsSha256,
      check,
    };
    fs.writeFileSync(path.join(partial, LENS_META), JSON.stringify(file, null, 2) + '\n');
    cancelled();
    fs.rmSync(dir, { recursive: true, force: true }); // a damaged lens of the same key
    try {
      fs.renameSync(partial, dir);
    } catch (e) {
      // Another process fitted the same settings and renamed its folder in first: the same lens.
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
    }
    probed.add(`${dir}|${weightsSha256}`); // just measured: no need to probe it again in this process
    lensStats.fits++;
    return file;
  } catch (e) {
    // A full disk or an unwritable cache folder: a coded error naming the lens's folder.
    throw fsFailure(e, { kind: 'cache', file: dir }) ?? e;
  } finally {
    fs.rmSync(partial, { recursive: true, force: true });
  }
}

function addInto(acc: Float64Array, x: Float64Array): void {
  for (let i = 0; i < acc.length; i++) acc[i] += x[i];
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
