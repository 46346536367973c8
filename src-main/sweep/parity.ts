/**
 * The parity check every run and extraction carries: at the model's last layer, a technique that
 * reads that layer into the model's own last layer must give the model's own distribution.
 *
 * - The logit lens at the last layer is ln_f + lm_head on the last resid row: the model's logits.
 * - A patchscope whose target-layer rule maps the last source layer to the last target layer
 *   overwrites the target's last resid row with the source's and then only ln_f + lm_head follow,
 *   so it too must equal the model. Other rules (a fixed earlier target layer) run more blocks
 *   after the patch and are not expected to match: they are listed as not applicable.
 *
 * What the stored rows let us check, with no engine change (TransformerLens #523 is this bug):
 * the technique's top-1 must be the model's own top-1 (`reference_top1`), and then
 * `surprisal` = −ln p_technique(reference) and `surprisal_paper` = −ln p_model(technique's top-1)
 * are the same token's log-probability under both distributions, so they must agree within a
 * tolerance. Both numbers come from the same unembedding graph on the same residual row, so they
 * differ only by float rounding of differently batched runs.
 *
 * The verdict is pure: the sums come from SQL (store/parity-sums.ts) or from rows in memory.
 */
import type { ResolvedTechnique } from '../protocol/techniques.ts';
import { targetLayerOf } from '../protocol/techniques.ts';
import { isCorrect, type Readout } from './readout.ts';

/**
 * Nats. float32 logits of a few tens carry ~1e-6 relative error, and a 50400-way log-sum-exp in
 * float32 a few 1e-6 more, so 1e-3 leaves two orders of margin while a real bug (a wrong layer,
 * a stale norm scale) moves log-probabilities by tenths. float16 keeps ~3 significant digits: a
 * logit of 20 is rounded by up to 0.01, so the same check allows 0.05 there.
 */
export const PARITY_TOLERANCE = { float32: 1e-3, float16: 5e-2 } as const;

export type ComputeDtype = keyof typeof PARITY_TOLERANCE;

/** One technique's rows at the last layer, as SQL (or an extraction in memory) sums them. */
export interface ParitySums {
  technique: string;
  rows: number;
  top1Mismatches: number;
  /** max |surprisal − surprisal_paper| over the rows whose top-1 matched; null when none did. */
  maxDeviation: number | null;
}

export interface ParityTechnique extends ParitySums {
  /** null: not expected to equal the model (its rule patches into an earlier layer), see `why`. */
  pass: boolean | null;
  why?: string;
}

export interface Parity {
  /** pass: every applicable technique matched; fail: one did not; unchecked: nothing to check (see `why`). */
  status: 'pass' | 'fail' | 'unchecked';
  /** The model's last layer, where the check is made. */
  layer: number;
  computeDtype: ComputeDtype;
  toleranceNats: number;
  techniques: ParityTechnique[];
  why?: string;
}

/** Shown beside the badge and written into exports, so a reader knows what was compared. */
export const PARITY_METHOD =
  "at the model's last layer, for the logit lens and each patchscope whose target-layer rule maps it to the last layer: top1 == reference_top1 on every row, and |surprisal - surprisal_paper| <= tolerance (both are the reference token's log-probability, under the technique and under the model)";

/** Whether a technique is expected to equal the model at the last layer; a reason when not. */
export function parityApplies(t: ResolvedTechnique, lastLayer: number): string | null {
  // The tuned lens's map at the last layer is the identity (src-main/lens/fit.ts): it reads the model's own row.
  if (t.kind === 'logit_lens' || t.kind === 'tuned_lens') return null;
  const target = targetLayerOf(t, lastLayer);
  return target === lastLayer ? null : `its target-layer rule patches layer ${lastLayer} into layer ${target}, not the last`;
}

export function judgeParity(opts: {
  techniques: ResolvedTechnique[];
  nLayers: number;
  layers: readonly number[];
  computeDtype: ComputeDtype;
  sums: ParitySums[];
}): Parity {
  const layer = opts.nLayers - 1;
  const toleranceNats = PARITY_TOLERANCE[opts.computeDtype] ?? PARITY_TOLERANCE.float32;
  const base = { layer, computeDtype: opts.computeDtype, toleranceNats };
  if (!opts.layers.includes(layer)) {
    return { ...base, status: 'unchecked', techniques: [], why: `the last layer (${layer}) was not read` };
  }
  const byName = new Map(opts.sums.map((s) => [s.technique, s]));
  const techniques: ParityTechnique[] = opts.techniques.map((t) => {
    const sums = byName.get(t.id) ?? { technique: t.id, rows: 0, top1Mismatches: 0, maxDeviation: null };
    const why = parityApplies(t, layer);
    if (why !== null) return { ...sums, pass: null, why };
    if (sums.rows === 0) return { ...sums, pass: null, why: 'no rows stored at the last layer yet' };
    return { ...sums, pass: sums.top1Mismatches === 0 && (sums.maxDeviation ?? 0) <= toleranceNats };
  });
  const judged = techniques.filter((t) => t.pass !== null);
  if (judged.length === 0) return { ...base, status: 'unchecked', techniques, why: 'no technique here is expected to equal the model at the last layer, or no rows are stored there yet' };
  return { ...base, status: judged.every((t) => t.pass) ? 'pass' : 'fail', techniques };
}

/** The same sums from rows in memory (an extraction that is not stored). */
export function paritySumsOf(rows: Iterable<Readout>, layer: number): ParitySums[] {
  const sums = new Map<string, ParitySums>();
  for (const r of rows) {
    if (r.layer !== layer) continue;
    let s = sums.get(r.technique);
    if (!s) sums.set(r.technique, (s = { technique: r.technique, rows: 0, top1Mismatches: 0, maxDeviation: null }));
    s.rows++;
    if (!isCorrect(r)) s.top1Mismatches++;
    else s.maxDeviation = Math.max(s.maxDeviation ?? 0, Math.abs(r.surprisal - r.surprisalPaper));
  }
  return [...sums.values()];
}
