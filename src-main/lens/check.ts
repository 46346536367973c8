/**
 * A fitted lens's own check, made at fit time on a held-out part of its train slice (examples the
 * maps were not fitted on) and stored in lens.json: per layer, the relative fit error
 * Σ‖x·W + b − y‖² / Σ‖y − ȳ‖² and precision@1 (the lens's top-1 against the model's own). It is
 * what a lens's numbers mean beyond the train rows, and a lens whose recorded check is missing or
 * broken is refused when opened (lens.ts readLensFile). At the last layer the map is the identity,
 * so there the check must read error 0 and precision 1: a lens whose last row differs is not one
 * this code wrote.
 */
import type { Engine } from '../engine/engine.ts';
import type { SweepExample } from '../protocol/spec.ts';
import { applyLens, engineDevice } from './sessions.ts';

export interface LensCheckLayer {
  layer: number;
  fitError: number;
  precision: number;
}

export interface LensCheck {
  /** Held-out train examples the check was computed on (not used by the fit). */
  heldOut: number;
  /** Per layer (−1 .. nLayers−1), in order. */
  layers: LensCheckLayer[];
  /**
   * The same check on the first few held-out examples, with their tokens and positions: computed
   * again whenever the lens is opened (verifyLensCheck), without reading the dataset.
   */
  probe: { examples: { tokens: number[]; position: number }[]; layers: LensCheckLayer[] };
}

/** Held-out examples whose check is repeated each time a lens is opened (a source pass of this many). */
export const PROBE_EXAMPLES = 16;

/** The held-out part of a lens's train examples: every tenth one (none below 10 examples). */
export function splitHeldOut<T>(examples: readonly T[]): { fit: T[]; heldOut: T[] } {
  const fit: T[] = [];
  const heldOut: T[] = [];
  examples.forEach((e, i) => (examples.length >= 10 && i % 10 === 9 ? heldOut : fit).push(e));
  return { fit, heldOut };
}

/** Computes the check through the lens written in `dir` (before it is moved into the cache). */
export async function checkLens(
  engine: Engine,
  dir: string,
  heldOut: readonly Pick<SweepExample, 'tokens' | 'position'>[],
  o: { cancelled(): void; batchExamples: number; onBatch?(done: number): void },
): Promise<Omit<LensCheck, 'probe'>> {
  const { nLayers: L, dModel: d } = engine.config;
  const err = new Float64Array(L + 1);
  const hits = new Float64Array(L + 1);
  const ys: Float32Array[] = [];
  for (let start = 0; start < heldOut.length; start += o.batchExamples) {
    o.cancelled();
    const batch = heldOut.slice(start, start + o.batchExamples);
    const B = batch.length;
    const src = await engine.sourcePass(batch.map((e) => ({ tokens: e.tokens.slice(0, e.position + 1), position: e.position })));
    const layerIndex = Array.from({ length: L + 1 }, (_, i) => i);
    const mapped = await applyLens({ device: engineDevice(engine), dir, nLayers: L, dModel: d, rows: src.resid, layerIndex, batch: B });
    const y = src.resid.subarray(L * B * d, (L + 1) * B * d);
    ys.push(Float32Array.from(y));
    const own = await engine.unembed({ resid: y, referenceIds: new Array(B).fill(0), k: 1 });
    const top = await engine.unembed({ resid: mapped, referenceIds: new Array((L + 1) * B).fill(0), k: 1 });
    for (let i = 0; i <= L; i++) {
      for (let b = 0; b < B; b++) {
        const row = i * B + b;
        for (let j = 0; j < d; j++) err[i] += (mapped[row * d + j] - y[b * d + j]) ** 2;
        if (top.topkIds[row * top.k] === own.topkIds[b * own.k]) hits[i]++;
      }
    }
    o.onBatch?.(start + B);
  }
  // Σ‖y − ȳ‖² over the held-out rows: the error a constant map (the mean) would make.
  const n = heldOut.length;
  const mean = new Float64Array(d);
  for (const y of ys) for (let r = 0; r < y.length / d; r++) for (let j = 0; j < d; j++) mean[j] += y[r * d + j] / n;
  let spread = 0;
  for (const y of ys) for (let r = 0; r < y.length / d; r++) for (let j = 0; j < d; j++) spread += (y[r * d + j] - mean[j]) ** 2;
  return {
    heldOut: n,
    layers: Array.from({ length: L + 1 }, (_, i) => ({ layer: i - 1, fitError: n === 0 ? 0 : err[i] / spread, precision: n === 0 ? 1 : hits[i] / n })),
  };
}

/** Why a recorded check is not one a correct lens carries, or null when it is. */
export function checkProblem(check: LensCheck | undefined, nLayers: number): string | null {
  if (!check || !Array.isArray(check.layers) || !Array.isArray(check.probe?.layers) || !Array.isArray(check.probe?.examples)) return 'it records no held-out check';
  if (check.layers.length !== nLayers + 1 || check.probe.layers.length !== nLayers + 1) return `its held-out check covers ${check.layers.length} layers, not ${nLayers + 1}`;
  const bad = [...check.layers, ...check.probe.layers].find((l) => !(Number.isFinite(l.fitError) && l.fitError >= 0 && l.precision >= 0 && l.precision <= 1));
  if (bad) return `its held-out check at layer ${bad.layer} is not a valid number (fit error ${bad.fitError}, precision@1 ${bad.precision})`;
  const last = check.layers[nLayers];
  if (last.precision !== 1 || last.fitError > 1e-9) return `its held-out check at the last layer reads precision@1 ${last.precision} and fit error ${last.fitError}, where the identity map gives 1 and 0`;
  return null;
}

/**
 * The recorded probe, computed again through the lens in `dir`: a layer whose fit error or
 * precision@1 moved beyond rounding (a different device may flip a near-tie, so up to two probe
 * examples' top-1 may differ) means the lens is not the one that was checked. Returns the problem,
 * or null. Done once per lens content in a process (the caller memoises it).
 */
export async function probeProblem(engine: Engine, dir: string, check: LensCheck): Promise<string | null> {
  const { examples, layers: recorded } = check.probe;
  if (examples.length === 0) return null;
  const now = await checkLens(engine, dir, examples, { cancelled: () => {}, batchExamples: PROBE_EXAMPLES });
  for (const [i, r] of recorded.entries()) {
    const got = now.layers[i];
    const errorMoved = Math.abs(got.fitError - r.fitError) > 1e-3 * Math.max(1, r.fitError) + 1e-6;
    const precisionMoved = Math.abs(got.precision - r.precision) > 2 / examples.length + 1e-9;
    if (errorMoved || precisionMoved) {
      return `on its ${examples.length} probe examples at layer ${r.layer} it now reads fit error ${got.fitError.toPrecision(4)} and precision@1 ${got.precision.toFixed(3)}, where it recorded ${r.fitError.toPrecision(4)} and ${r.precision.toFixed(3)} when fitted`;
    }
  }
  return null;
}
