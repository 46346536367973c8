/**
 * Where a technique's prediction commits: the first swept layer from which its top-1 equals the
 * model's own top-1 at every later swept layer. A prediction that is right at layer 12, wrong at
 * 13 and right from 14 on commits at 14, not 12. None when the last swept layer is wrong.
 */

/** One swept layer of one example and technique: whether its top-1 is the model's top-1. */
export interface LayerOutcome {
  layer: number;
  correct: boolean;
}

/** The commitment layer of one example under one technique, or null if it never commits. */
export function commitmentLayer(outcomes: readonly LayerOutcome[]): number | null {
  const byLayer = [...outcomes].sort((a, b) => a.layer - b.layer);
  let committed: number | null = null;
  for (let i = byLayer.length - 1; i >= 0 && byLayer[i].correct; i--) committed = byLayer[i].layer;
  return committed;
}
