import { meanInterval } from '../sweep/summary.ts';
import type { LayerSummary } from '../sweep/spec.ts';
import type { LayerComparison } from './types.ts';

/**
 * Per-layer summaries are always derived from the per-example results. The sweep's live view
 * aggregates ExampleResults (sweep/summary.ts `summarize`); review aggregates the stored rows in
 * SQL into these sums. Both end in the same `meanInterval`, so they agree to rounding.
 */

/** Sums over the examples of one (technique, layer): enough for a mean and a normal-approximation CI. */
export interface Moments {
  technique: string;
  layer: number;
  n: number;
  /** Examples whose top-1 equals the reference top-1: precision@1's sum, and (0/1 values) its sum of squares. */
  correct: number;
  surprisal: number;
  surprisalSq: number;
  surprisalPaper: number;
  surprisalPaperSq: number;
}

export function summaryFromMoments(m: Moments): LayerSummary {
  return {
    technique: m.technique,
    layer: m.layer,
    n: m.n,
    precision: meanInterval(m.correct, m.correct, m.n),
    surprisal: meanInterval(m.surprisal, m.surprisalSq, m.n),
    surprisalPaper: meanInterval(m.surprisalPaper, m.surprisalPaperSq, m.n),
  };
}

/** Two runs' summaries side by side per technique id and layer, a's order first, then b's extras. */
export function compareSummaries(a: readonly LayerSummary[], b: readonly LayerSummary[]): LayerComparison[] {
  const out = new Map<string, LayerComparison>();
  const entry = (s: LayerSummary) => {
    const key = `${s.technique}\0${s.layer}`;
    if (!out.has(key)) out.set(key, { technique: s.technique, layer: s.layer });
    return out.get(key)!;
  };
  for (const s of a) entry(s).a = s;
  for (const s of b) entry(s).b = s;
  for (const c of out.values()) {
    if (c.a && c.b) {
      c.diff = {
        precision: c.b.precision.mean - c.a.precision.mean,
        surprisal: c.b.surprisal.mean - c.a.surprisal.mean,
        surprisalPaper: c.b.surprisalPaper.mean - c.a.surprisalPaper.mean,
      };
    }
  }
  return [...out.values()];
}
