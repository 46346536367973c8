import { describe, expect, test } from 'vitest';
import { commitmentLayer } from '../src-main/sweep/commitment.ts';
import { binomialHalfCdf, mcnemarExact, medianInterval, newcombeDifference, welchDifference } from '../src-main/sweep/significance.ts';

const sums = (xs: number[]) => ({ sum: xs.reduce((s, x) => s + x, 0), sumSq: xs.reduce((s, x) => s + x * x, 0), n: xs.length });

describe('the exact McNemar test', () => {
  test('1 discordant pair against 9 gives p = 2·(1 + 10)/1024, counted by hand', () => {
    expect(mcnemarExact(1, 9).pValue).toBeCloseTo(22 / 1024, 12);
    expect(mcnemarExact(9, 1).pValue).toBeCloseTo(22 / 1024, 12);
  });

  test('balanced or absent discordant pairs give p = 1', () => {
    expect(mcnemarExact(5, 5).pValue).toBe(1);
    expect(mcnemarExact(0, 0).pValue).toBe(1);
  });

  test('the binomial tail stays finite and exact at tens of thousands of pairs', () => {
    // P(X ≤ n/2 − 1) + P(X = n/2)/2 = 1/2 by symmetry; both terms computed separately.
    const n = 20000;
    const below = binomialHalfCdf(n / 2 - 1, n);
    const atHalf = binomialHalfCdf(n / 2, n) - below;
    expect(below + atHalf / 2).toBeCloseTo(0.5, 9);
  });
});

describe("Newcombe's hybrid score interval for two independent proportions", () => {
  test("matches Newcombe (1998) Table II, method 10, on his examples", () => {
    // Newcombe RG, Stat Med 17:873–890, Table II: 56/70 − 48/80 → 0.0524 to 0.3339; 9/10 − 3/10 → 0.1705 to 0.8090.
    const first = newcombeDifference({ successes: 48, n: 80 }, { successes: 56, n: 70 });
    expect(first.mean).toBeCloseTo(0.2, 12);
    expect(first.low).toBeCloseTo(0.0524, 4);
    expect(first.high).toBeCloseTo(0.3339, 4);
    const second = newcombeDifference({ successes: 3, n: 10 }, { successes: 9, n: 10 });
    expect(second.low).toBeCloseTo(0.1705, 4);
    expect(second.high).toBeCloseTo(0.809, 4);
  });

  test('an empty side has unknown bounds', () => {
    expect(newcombeDifference({ successes: 0, n: 0 }, { successes: 1, n: 2 }).low).toBeNull();
  });
});

describe("Welch's interval for two independent means", () => {
  test('equal variances and sizes give df = 2(n − 1) and the tabulated t(0.975, 8) = 2.306004', () => {
    const w = welchDifference(sums([1, 2, 3, 4, 5]), sums([3, 4, 5, 6, 7]));
    expect(w.df).toBeCloseTo(8, 10);
    expect(w.mean).toBeCloseTo(2, 12);
    expect(w.high! - w.mean).toBeCloseTo(2.306004, 5);
    expect(w.mean - w.low!).toBeCloseTo(2.306004, 5);
  });

  test('unequal variances give the Welch–Satterthwaite df, worked by hand: (0.5 + 2)² / (0.5²/4 + 2²/4) = 100/17', () => {
    const w = welchDifference(sums([1, 2, 3, 4, 5]), sums([2, 4, 6, 8, 10]));
    expect(w.df).toBeCloseTo(100 / 17, 10);
    expect(w.mean).toBeCloseTo(3, 12);
  });

  test('one example on a side has no spread: unknown bounds', () => {
    const w = welchDifference(sums([1]), sums([2, 3]));
    expect(w.mean).toBe(1.5);
    expect(w.low).toBeNull();
  });
});

describe('the median and its order-statistic interval', () => {
  test('n = 10 gives x(2) to x(9) with coverage 1 − 2·11/1024, the tabulated 97.85%', () => {
    const m = medianInterval([10, 1, 9, 2, 8, 3, 7, 4, 6, 5]);
    expect(m.mean).toBe(5.5);
    expect(m.low).toBe(2);
    expect(m.high).toBe(9);
    expect(m.coverage).toBeCloseTo(1 - 22 / 1024, 12);
  });

  test('n = 6 is the smallest with an interval (x(1) to x(6), 96.9%); n = 5 has none', () => {
    const six = medianInterval([6, 5, 4, 3, 2, 1]);
    expect([six.low, six.high]).toEqual([1, 6]);
    expect(six.coverage).toBeCloseTo(1 - 2 / 64, 12);
    expect(medianInterval([1, 2, 3, 4, 5]).low).toBeNull();
    expect(medianInterval([1, 2, 3, 4, 5]).mean).toBe(3);
  });
});

describe('the commitment layer', () => {
  const outcomes = (layers: number[], right: string) => layers.map((layer, i) => ({ layer, correct: right[i] === 'R' }));

  test('is the first layer of the final run of right layers, in layer order whatever the input order', () => {
    expect(commitmentLayer(outcomes([0, 1, 2, 3, 4], 'RWWRR'))).toBe(3);
    expect(commitmentLayer(outcomes([4, 3, 2, 1, 0], 'RRWWR'))).toBe(3);
    expect(commitmentLayer(outcomes([-1, 5, 10], 'RRR'))).toBe(-1);
  });

  test('is none when the last layer is wrong, or nothing was swept', () => {
    expect(commitmentLayer(outcomes([0, 1, 2], 'RRW'))).toBeNull();
    expect(commitmentLayer([])).toBeNull();
  });
});
