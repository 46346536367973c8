import type { ExampleResult } from '../protocol/results.ts';
import type { Interval, LayerSummary } from '../protocol/spec.ts';
import { isCorrect, readoutsOf } from './readout.ts';

/**
 * Per-layer summaries and their 95% intervals, in one place: the live view sums ExampleResults
 * here (`summarize`), review sums stored rows in SQL (store/result-store.ts `summary`), and both
 * hand the sums to `summaryFromSums`, so they cannot disagree on the method.
 */

/** The normal distribution's 97.5% quantile (Wilson's z). */
const Z95 = 1.959963984540054;

const T_METHOD = 'Student t interval, 95%: mean ± t(0.975, n−1)·sd/√n; low and high are null (undefined) when n < 2';

/** How each interval is computed, keyed like the export's summary rows (exports carry it as ci_method). */
export const INTERVAL_METHODS = {
  precision_at_1: 'Wilson score interval, 95% (z = 1.96); the mean is the observed proportion',
  surprisal: T_METHOD,
  surprisal_paper: T_METHOD,
  kl: `${T_METHOD}, over the n_measured rows`,
  rank: `${T_METHOD}, over the n_measured rows`,
  entropy: `${T_METHOD}, over the n_measured rows`,
  tracked_surprisal: `${T_METHOD}, over the n_tracked rows`,
  tracked_rank: `${T_METHOD}, over the n_tracked rows`,
} as const;

/** Sums over the examples of one (technique, layer): all an interval needs. */
export interface LayerSums {
  technique: string;
  layer: number;
  n: number;
  /** Examples whose top-1 equals the reference top-1. */
  correct: number;
  surprisal: number;
  surprisalSq: number;
  surprisalPaper: number;
  surprisalPaperSq: number;
  /** Rows with measures (kl, rank, entropy are all there or all null), and their sums. */
  measured: number;
  kl: number;
  klSq: number;
  rank: number;
  rankSq: number;
  entropy: number;
  entropySq: number;
  /** Rows that follow a record token, and the sums of its surprisal (−ln p) and rank. */
  tracked: number;
  trackedSurprisal: number;
  trackedSurprisalSq: number;
  trackedRank: number;
  trackedRankSq: number;
}

/** Sums of nothing: a layer's before its first row. */
export function emptySums(technique: string, layer: number): LayerSums {
  return { technique, layer, n: 0, correct: 0, surprisal: 0, surprisalSq: 0, surprisalPaper: 0, surprisalPaperSq: 0, measured: 0, kl: 0, klSq: 0, rank: 0, rankSq: 0, entropy: 0, entropySq: 0,
    tracked: 0, trackedSurprisal: 0, trackedSurprisalSq: 0, trackedRank: 0, trackedRankSq: 0 };
}

export function summaryFromSums(s: LayerSums): LayerSummary {
  return {
    technique: s.technique,
    layer: s.layer,
    n: s.n,
    precision: wilsonInterval(s.correct, s.n),
    surprisal: tInterval(s.surprisal, s.surprisalSq, s.n),
    surprisalPaper: tInterval(s.surprisalPaper, s.surprisalPaperSq, s.n),
    measures: s.measured === 0 ? null : {
      n: s.measured,
      kl: tInterval(s.kl, s.klSq, s.measured),
      rank: tInterval(s.rank, s.rankSq, s.measured),
      entropy: tInterval(s.entropy, s.entropySq, s.measured),
    },
    tracked: s.tracked === 0 ? null : {
      n: s.tracked,
      surprisal: tInterval(s.trackedSurprisal, s.trackedSurprisalSq, s.tracked),
      rank: tInterval(s.trackedRank, s.trackedRankSq, s.tracked),
    },
  };
}

/**
 * Wilson score interval for a proportion: stays inside [0, 1] and keeps a width at p = 0 or 1,
 * where mean ± z·sd/√n collapses to a point (a layer right on every one of 5 examples is not
 * known to be right always). The mean is the observed proportion.
 */
export function wilsonInterval(successes: number, n: number): Interval & { low: number; high: number } {
  if (n === 0) throw noValues();
  const p = successes / n;
  const z2 = Z95 * Z95;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (Z95 * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  // At p = 0 or 1 one bound is exactly 0 or 1; computed, it can miss by a rounding step.
  return { mean: p, low: successes === 0 ? 0 : Math.max(0, centre - half), high: successes === n ? 1 : Math.min(1, centre + half) };
}

/**
 * Student t interval for a mean from its sums: at small n the normal z understates the width
 * (t(0.975, 4) = 2.78, not 1.96). One value says nothing about the spread, so n = 1 gives null
 * bounds (unknown), never a zero-width interval.
 */
export function tInterval(sum: number, sumSq: number, n: number): Interval {
  if (n === 0) throw noValues();
  const mean = sum / n;
  if (n === 1) return { mean, low: null, high: null };
  // Rounding can leave a tiny negative variance when all values are equal.
  const variance = Math.max(0, (sumSq - n * mean * mean) / (n - 1));
  const half = tQuantile975(n - 1) * Math.sqrt(variance / n);
  return { mean, low: mean - half, high: mean + half };
}

/**
 * Every summary row groups at least one example, so n = 0 is a caller's bug; refusing it keeps
 * NaN out of the intervals, which cross JSON (HTTP, the engine process) and structured clone alike.
 */
const noValues = () => new RangeError('an interval needs at least one value (n = 0)');

const t975 = new Map<number, number>();

/** t(0.975, df), the two-sided 95% quantile; memoized, since every layer of a batch's summary asks for the same df. */
export function tQuantile975(df: number): number {
  let t = t975.get(df);
  if (t === undefined) {
    t = tQuantile(0.975, df);
    t975.set(df, t);
  }
  return t;
}

/**
 * The p-quantile (p > 0.5) of Student's t with df (finite) degrees of freedom. For t > 0,
 * P(T > t) = I_x(df/2, 1/2) / 2 with x = df / (df + t²), and I_x grows with x, so bisection on x
 * finds the x whose tail is 1 − p, and t follows from x. Bisection rather than Newton: it cannot
 * diverge, and it stops when x can no longer be halved.
 */
export function tQuantile(p: number, df: number): number {
  if (!(p > 0.5 && p < 1)) throw new RangeError(`tQuantile needs 0.5 < p < 1, got ${p}`);
  if (!(df > 0 && Number.isFinite(df))) throw new RangeError(`tQuantile needs a finite df > 0, got ${df}`);
  const tail = 2 * (1 - p);
  let lo = 0;
  let hi = 1;
  for (;;) {
    const mid = (lo + hi) / 2;
    if (mid === lo || mid === hi) break;
    if (regularizedBeta(mid, df / 2, 0.5) < tail) lo = mid;
    else hi = mid;
  }
  const x = (lo + hi) / 2;
  return Math.sqrt((df * (1 - x)) / x);
}

/**
 * The regularized incomplete beta function I_x(a, b), by its continued fraction, which converges
 * fast for x < (a + 1)/(a + b + 2); above that, I_x(a, b) = 1 − I_{1−x}(b, a) puts x back on the
 * fast side.
 */
export function regularizedBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  if (x > (a + 1) / (a + b + 2)) return 1 - regularizedBeta(1 - x, b, a);
  const front = Math.exp(a * Math.log(x) + b * Math.log1p(-x) - logBeta(a, b)) / a;
  return front / betaContinuedFraction(x, a, b);
}

/**
 * 1 + d1/(1 + d2/(1 + ...)) for I_x(a, b) = x^a (1−x)^b / (a B(a, b)) / (that), evaluated
 * front to back with the modified Lentz method (c and d are the ratios of successive numerators
 * and denominators; `tiny` stands in for a zero that would divide).
 */
function betaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let f = 1;
  let c = 1;
  let d = 0;
  for (let j = 1; j <= 100000; j++) {
    const m = j >> 1;
    const dj = j % 2 === 1
      ? -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1))
      : (m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m));
    d = 1 + dj * d;
    d = 1 / (Math.abs(d) < tiny ? tiny : d);
    c = 1 + dj / c;
    if (Math.abs(c) < tiny) c = tiny;
    f *= c * d;
    if (Math.abs(c * d - 1) < 1e-15) break;
  }
  return f;
}

function logBeta(a: number, b: number): number {
  return logGamma(a) + logGamma(b) - logGamma(a + b);
}

/**
 * ln Γ(x) for x > 0: the recurrence Γ(x) = Γ(x + 1)/x lifts x to at least 15, where Stirling's
 * series with four correction terms is accurate to double precision.
 */
export function logGamma(x: number): number {
  let shift = 0;
  while (x < 15) {
    shift -= Math.log(x);
    x += 1;
  }
  const inv = 1 / x;
  const inv2 = inv * inv;
  const series = inv * (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 / 1680)));
  return shift + (x - 0.5) * Math.log(x) - x + 0.5 * Math.log(2 * Math.PI) + series;
}

/** Per technique and layer, over every example given: precision@1 and both surprisals. */
export function summarize(results: readonly ExampleResult[]): LayerSummary[] {
  const acc = new Map<string, LayerSums>();
  for (const ex of results) {
    for (const r of readoutsOf(ex)) {
      const key = `${r.technique}|${r.layer}`;
      let s = acc.get(key);
      if (!s) acc.set(key, (s = emptySums(r.technique, r.layer)));
      s.n++;
      if (isCorrect(r)) s.correct++;
      s.surprisal += r.surprisal;
      s.surprisalSq += r.surprisal * r.surprisal;
      s.surprisalPaper += r.surprisalPaper;
      s.surprisalPaperSq += r.surprisalPaper * r.surprisalPaper;
      if (r.tracked) addTracked(s, r.tracked);
      if (r.kl === null || r.rank === null || r.entropy === null) continue;
      s.measured++;
      s.kl += r.kl;
      s.klSq += r.kl * r.kl;
      s.rank += r.rank;
      s.rankSq += r.rank * r.rank;
      s.entropy += r.entropy;
      s.entropySq += r.entropy * r.entropy;
    }
  }
  return [...acc.values()].map(summaryFromSums);
}

/** One followed token's row into a layer's sums (the live summary's and the store's, alike). */
export function addTracked(s: LayerSums, t: { logprob: number; rank: number }): void {
  s.tracked++;
  s.trackedSurprisal -= t.logprob;
  s.trackedSurprisalSq += t.logprob * t.logprob;
  s.trackedRank += t.rank;
  s.trackedRankSq += t.rank * t.rank;
}
