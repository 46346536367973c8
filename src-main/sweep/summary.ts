import type { ExampleResult } from './extract.ts';
import type { Interval, LayerSummary } from './spec.ts';

const Z95 = 1.959963984540054;

/** Mean and 95% normal-approximation interval (mean ± 1.96·s/√n, s the sample standard deviation). */
export function meanInterval(sum: number, sumSq: number, n: number): Interval {
  if (n === 0) return { mean: NaN, low: NaN, high: NaN };
  const mean = sum / n;
  const variance = n > 1 ? Math.max(0, (sumSq - n * mean * mean) / (n - 1)) : 0;
  const half = Z95 * Math.sqrt(variance / n);
  return { mean, low: mean - half, high: mean + half };
}

/** Per technique and layer, over every example given: precision@1 and both surprisals. */
export function summarize(results: readonly ExampleResult[]): LayerSummary[] {
  const acc = new Map<string, { technique: string; layer: number; n: number; s: number[]; q: number[] }>();
  for (const ex of results) {
    for (const r of ex.layers) {
      const key = `${r.technique}|${r.layer}`;
      let a = acc.get(key);
      if (!a) acc.set(key, (a = { technique: r.technique, layer: r.layer, n: 0, s: [0, 0, 0], q: [0, 0, 0] }));
      const values = [r.top1 === ex.reference_top1 ? 1 : 0, r.surprisal, r.surprisal_paper];
      a.n++;
      values.forEach((v, i) => {
        a.s[i] += v;
        a.q[i] += v * v;
      });
    }
  }
  return [...acc.values()].map((a) => ({
    technique: a.technique,
    layer: a.layer,
    n: a.n,
    precision: meanInterval(a.s[0], a.q[0], a.n),
    surprisal: meanInterval(a.s[1], a.q[1], a.n),
    surprisalPaper: meanInterval(a.s[2], a.q[2], a.n),
  }));
}
