/**
 * The parity verdict of a stored run: its SQL sums (parity-sums.ts) judged by sweep/parity.ts. Apart
 * from result-store.ts, which it reads through, so the store and the check import in one direction.
 */
import { judgeParity, type Parity } from '../sweep/parity.ts';
import type { ResultStore } from './result-store.ts';
import type { RunDetail } from './types.ts';

/** The parity check of a stored run (as `store.getRun` gave it), computed on every read from its rows (no stored verdict to go stale). */
export function runParity(store: ResultStore, run: RunDetail): Parity {
  const nLayers = Number((run.model.config as { nLayers?: unknown } | undefined)?.nLayers ?? Math.max(...run.layers) + 1);
  const computeDtype = run.model.compute_dtype === 'float16' ? 'float16' : 'float32';
  return judgeParity({ techniques: run.resolvedTechniques, nLayers, layers: run.layers, computeDtype, sums: store.paritySums(run.id, nLayers - 1) });
}
