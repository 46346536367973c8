/**
 * The comparisons that answer "is B better than A here": two techniques of one run, two runs
 * paired over their shared examples, or two runs with none shared as independent samples. Each
 * reply names its test and why it was chosen (docs/PROTOCOL.md, "Comparing techniques and runs").
 */
import { LogitscopeError } from '../errors.ts';
import type { ResultStore } from '../store/result-store.ts';
import { unpairedDifference } from '../store/unpaired.ts';
import type { CommitmentView, DifferenceView } from './contract.ts';

/** The paired tests' formulas, said with every paired reply (and in figure captions). */
export const PAIRED_METHOD =
  'b − a per example; mean with a paired Student t interval, 95%: mean ± t(0.975, n−1)·sd/√n of the differences; ' +
  "precision@1 also with McNemar's exact test: p = min(1, 2·P(X ≤ min(onlyA, onlyB))), X ~ Binomial(onlyA + onlyB, ½)";

export const UNPAIRED_METHOD =
  "b − a as independent samples; precision@1 with Newcombe's hybrid score interval (method 10, from the two Wilson intervals), 95%; " +
  "surprisals with Welch's t interval, 95%, Welch–Satterthwaite degrees of freedom";

export const COMMITMENT_METHOD =
  'the first swept layer from which the top-1 is the model’s at every later swept layer; median of the committing examples with the ' +
  'order-statistic 95% interval (the j-th smallest to the j-th largest, largest j with P(Binomial(n, ½) ≤ j − 1) ≤ 0.025)';

/** Run b minus run a: paired over the shared examples when there are any, else unpaired. */
export function diffRuns(store: ResultStore, a: string, b: string): DifferenceView {
  const shared = store.sharedExamples(a, b);
  if (shared === 0) {
    return {
      a, b, test: 'unpaired', sharedExamples: 0,
      why: 'the runs share no example (same tokens and position), so nothing can be paired: each side is an independent sample, and the intervals are wider than a paired comparison’s would be',
      rows: unpairedDifference(store.layerSums(a), store.layerSums(b)),
      largest: [],
      method: UNPAIRED_METHOD,
    };
  }
  return {
    a, b, test: 'paired', sharedExamples: shared,
    why: `the runs share ${shared} example${shared === 1 ? '' : 's'} (same tokens and position), so each difference is taken within one example and the examples’ own variation cancels; techniques pair by what they compute (kind, prompt tokens, target layer rule), whatever each run named them`,
    rows: store.difference(a, b),
    largest: store.largestDifferences(a, b),
    method: PAIRED_METHOD,
  };
}

/** Within one run: technique b minus technique a per layer, every example read by both. */
export function diffTechniques(store: ResultStore, runId: string, a: string, b: string): DifferenceView {
  const names = store.getRun(runId).techniques;
  const ordinal = (name: string, field: string) => {
    const i = names.indexOf(name);
    if (i < 0) throw new LogitscopeError('argument_invalid', `run ${runId} has no technique "${name}" (it has ${names.join(', ')})`, field);
    return i;
  };
  const pairing = { by: 'ordinals' as const, a: ordinal(a, 'a'), b: ordinal(b, 'b') };
  const rows = store.difference(runId, runId, pairing);
  return {
    a: runId, b: runId, techniques: { a, b }, test: 'within-run', sharedExamples: store.sharedExamples(runId, runId),
    why: 'both techniques read every example of this run, so each difference is taken within one example (exact pairs)',
    rows,
    largest: [],
    method: PAIRED_METHOD,
  };
}

export function commitmentView(store: ResultStore, runId: string): CommitmentView {
  return { runId, layers: [...store.getRun(runId).layers].sort((x, y) => x - y), techniques: store.commitments(runId), method: COMMITMENT_METHOD };
}
