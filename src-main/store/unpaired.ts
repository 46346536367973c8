import { newcombeDifference, welchDifference } from '../sweep/significance.ts';
import type { LayerSums } from '../sweep/intervals.ts';
import type { LayerDifference } from '../protocol/spec.ts';

/**
 * B − A for two runs that share no example (different slices): nothing can be paired, so each
 * side's per-layer sums are compared as independent samples. Precision@1 gets Newcombe's hybrid
 * score interval, the surprisals Welch's t interval (docs/PROTOCOL.md, "Comparing techniques and runs").
 */

/** A run's sums for one technique and layer, with the technique's id (what it computes) to pair by. */
export type KeyedSums = LayerSums & { techniqueId: number };

/** Techniques pair by id (same kind, prompt tokens and target rule) and layers by number; a's order. */
export function unpairedDifference(a: readonly KeyedSums[], b: readonly KeyedSums[]): LayerDifference[] {
  const bByCell = new Map(b.map((s) => [`${s.techniqueId}|${s.layer}`, s]));
  return a.flatMap((sa): LayerDifference[] => {
    const sb = bByCell.get(`${sa.techniqueId}|${sa.layer}`);
    if (!sb) return [];
    const means = (key: 'surprisal' | 'surprisalPaper') => {
      const { mean, low, high } = welchDifference(
        { sum: sa[key], sumSq: sa[`${key}Sq`], n: sa.n },
        { sum: sb[key], sumSq: sb[`${key}Sq`], n: sb.n },
      );
      return { mean, low, high };
    };
    return [{
      technique: sa.technique,
      layer: sa.layer,
      n: sa.n + sb.n,
      nA: sa.n,
      nB: sb.n,
      precision: newcombeDifference({ successes: sa.correct, n: sa.n }, { successes: sb.correct, n: sb.n }),
      surprisal: means('surprisal'),
      surprisalPaper: means('surprisalPaper'),
      // Differences of the per-row measures are not computed, paired or not.
      measures: null,
      tracked: null,
    }];
  });
}
