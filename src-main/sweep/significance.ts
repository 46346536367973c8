import type { Interval, McNemar } from '../protocol/spec.ts';
import { logGamma, tQuantile975, wilsonInterval } from './intervals.ts';

/**
 * The tests a comparison reports, beside intervals.ts's one-sample intervals. Each is named in
 * docs/PROTOCOL.md ("Comparing techniques and runs") with its formula; the difference view says
 * which one it used and why.
 */

/** P(X ≤ m) for X ~ Binomial(n, 1/2), summed in log space so that n in the tens of thousands stays finite. */
export function binomialHalfCdf(m: number, n: number): number {
  if (m < 0) return 0;
  if (m >= n) return 1;
  const logHalfN = n * Math.log(0.5);
  const logChoose = (i: number) => logGamma(n + 1) - logGamma(i + 1) - logGamma(n - i + 1);
  let total = 0;
  for (let i = 0; i <= m; i++) total += Math.exp(logChoose(i) + logHalfN);
  return Math.min(1, total);
}

/**
 * McNemar's test for paired right/wrong outcomes, in its exact (binomial) form: under "A and B
 * are equally often right", each discordant example is right under A or under B with probability
 * 1/2. Exact rather than the χ² approximation, which is poor at the few discordant pairs a layer
 * of a small sweep has.
 */
export function mcnemarExact(onlyA: number, onlyB: number): McNemar {
  const n = onlyA + onlyB;
  const pValue = n === 0 ? 1 : Math.min(1, 2 * binomialHalfCdf(Math.min(onlyA, onlyB), n));
  return { onlyA, onlyB, pValue };
}

/** A proportion's count: `successes` right out of `n`. */
export interface Proportion {
  successes: number;
  n: number;
}

/**
 * b − a for two independent proportions, with Newcombe's hybrid score interval (his method 10):
 * it combines the two Wilson intervals, so it keeps their good coverage near 0 and 1 where the
 * Wald interval p ± z·se collapses. Null bounds (unknown) when either side has no examples.
 */
export function newcombeDifference(a: Proportion, b: Proportion): Interval {
  if (a.n === 0 || b.n === 0) return { mean: NaN, low: null, high: null };
  const wa = wilsonInterval(a.successes, a.n);
  const wb = wilsonInterval(b.successes, b.n);
  const d = wb.mean - wa.mean;
  return {
    mean: d,
    low: d - Math.sqrt((wb.mean - wb.low) ** 2 + (wa.high - wa.mean) ** 2),
    high: d + Math.sqrt((wb.high - wb.mean) ** 2 + (wa.mean - wa.low) ** 2),
  };
}

/** A mean's sums over its examples: what an interval needs. */
export interface MeanSums {
  sum: number;
  sumSq: number;
  n: number;
}

/**
 * b − a for the means of two independent samples, with Welch's t interval: each side keeps its
 * own variance, and the degrees of freedom are Welch–Satterthwaite's
 * (va/na + vb/nb)² / ((va/na)²/(na−1) + (vb/nb)²/(nb−1)). Null bounds (and NaN df) when either
 * side has n < 2 (no spread to estimate), or when both variances are 0.
 */
export function welchDifference(a: MeanSums, b: MeanSums): Interval & { df: number } {
  const mean = (s: MeanSums) => s.sum / s.n;
  const mb = b.n > 0 ? mean(b) : NaN;
  const ma = a.n > 0 ? mean(a) : NaN;
  const d = mb - ma;
  if (a.n < 2 || b.n < 2) return { mean: d, low: null, high: null, df: NaN };
  // Rounding can leave a tiny negative variance when all values are equal.
  const sampleVariance = (s: MeanSums, m: number) => Math.max(0, (s.sumSq - s.n * m * m) / (s.n - 1));
  const qa = sampleVariance(a, ma) / a.n;
  const qb = sampleVariance(b, mb) / b.n;
  if (qa + qb === 0) return { mean: d, low: null, high: null, df: NaN };
  const df = (qa + qb) ** 2 / (qa ** 2 / (a.n - 1) + qb ** 2 / (b.n - 1));
  const half = tQuantile975(df) * Math.sqrt(qa + qb);
  return { mean: d, low: d - half, high: d + half, df };
}

/**
 * The median of `values` with its distribution-free 95% interval from order statistics: the
 * j-th smallest to the j-th largest, for the largest j with P(Binomial(n, 1/2) ≤ j − 1) ≤ 0.025,
 * so the interval covers the population median with probability at least 95% (`coverage` is the
 * exact figure). Null bounds where n is too small for any such j (n < 6); a NaN median for no values.
 */
export function medianInterval(values: readonly number[]): Interval & { coverage: number | null } {
  const n = values.length;
  if (n === 0) return { mean: NaN, low: null, high: null, coverage: null };
  const sorted = [...values].sort((x, y) => x - y);
  const median = n % 2 === 1 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  let j = 0;
  while (j + 1 <= n / 2 && binomialHalfCdf(j, n) <= 0.025) j++;
  if (j === 0) return { mean: median, low: null, high: null, coverage: null };
  return { mean: median, low: sorted[j - 1], high: sorted[n - j], coverage: 1 - 2 * binomialHalfCdf(j - 1, n) };
}
