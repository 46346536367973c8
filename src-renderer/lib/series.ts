/** Per-layer summaries as chart series: one line per technique, with its 95% confidence band. */
import type { SummaryRow } from '../../src-main/api/contract.ts';

export type Metric = 'precision' | 'surprisal' | 'surprisalPaper' | Measure;
/**
 * The per-row measures (PROTOCOL.md "Per-row measures"): a summary row has them only where its rows
 * were measured; and a run that follows record tokens (track 'record') has their surprisal and rank.
 */
export type Measure = 'kl' | 'rank' | 'entropy' | TrackedMeasure;
export type TrackedMeasure = 'trackedSurprisal' | 'trackedRank';

export function isTracked(m: Metric): m is TrackedMeasure {
  return m === 'trackedSurprisal' || m === 'trackedRank';
}

export interface Series {
  technique: string;
  /** Bounds are null where the interval is unbounded, e.g. a surprisal over n = 1. */
  points: { layer: number; n: number; mean: number; low: number | null; high: number | null }[];
}

/** One run on a chart: its series, drawn with the run's own dash pattern. */
export interface ChartRun {
  runId: string;
  label: string;
  series: Series[];
  /** A published reference table (references.svelte.ts), not a run: always the reference dash, never clickable. */
  reference?: true;
}

/** A number for display; "—" where there is none (an unbounded interval, a missing value). */
export function fmt(x: number | null | undefined, digits: number): string {
  return x === null || x === undefined || Number.isNaN(x) ? '—' : x.toFixed(digits);
}

/** An interval's bounds as the tables show them, "[low, high]" at 3 decimals ("—" for an unbounded one). */
export function bounds(i: { low: number | null; high: number | null }): string {
  return `[${fmt(i.low, 3)}, ${fmt(i.high, 3)}]`;
}

export function seriesOf(summary: readonly SummaryRow[], metric: Metric): Series[] {
  const byTechnique = new Map<string, Series>();
  for (const row of summary) {
    const s = byTechnique.get(row.technique) ?? { technique: row.technique, points: [] };
    byTechnique.set(row.technique, s);
    if (isTracked(metric)) {
      const t = row.tracked;
      const v = t && (metric === 'trackedSurprisal' ? t.surprisal : t.rank);
      if (t && v) s.points.push({ layer: row.layer, n: t.n, mean: v.mean, low: v.low, high: v.high });
      continue;
    }
    if (metric === 'kl' || metric === 'rank' || metric === 'entropy') {
      // A layer whose rows were stored before the measures existed has no point: not measured, not zero.
      const m = row.measures;
      if (m) s.points.push({ layer: row.layer, n: m.n, mean: m[metric].mean, low: m[metric].low, high: m[metric].high });
      continue;
    }
    const v = row[metric];
    s.points.push({ layer: row.layer, n: row.n, mean: v.mean, low: v.low, high: v.high });
  }
  for (const s of byTechnique.values()) s.points.sort((a, b) => a.layer - b.layer);
  return [...byTechnique.values()];
}

/** Stable colours by technique id (Okabe–Ito, distinguishable with colour-vision deficiencies). */
const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#D55E00', '#56B4E9', '#F0E442', '#000000'];
const FIXED: Record<string, number> = { logit_lens: 0, patchscope: 1, logitscope: 2, tuned_lens: 7 };

export function colourOf(technique: string): string {
  const fixed = FIXED[technique];
  if (fixed !== undefined) return PALETTE[fixed];
  const n = Number(/_(\d+)$/.exec(technique)?.[1] ?? 0);
  // Custom prompts cycle through the colours between the built-ins' and the tuned lens's (black, the last).
  return PALETTE[3 + (n % (PALETTE.length - 4))];
}

/** Dash pattern per run on a chart: colour says the technique, the dash says the run. */
const DASHES: number[][] = [[], [7, 4], [2, 3], [10, 3, 2, 3], [4, 4, 1, 4], [12, 6], [1, 6]];

export function dashOf(runIndex: number): number[] {
  return DASHES[runIndex % DASHES.length];
}

/** Reference tables share one dash, unlike any run's, so "dashed like this" reads as "published elsewhere". */
const REFERENCE_DASH = [5, 2, 1, 2, 1, 2];

export function dashFor(run: Pick<ChartRun, 'reference'>, runIndex: number): number[] {
  return run.reference ? REFERENCE_DASH : dashOf(runIndex);
}

/** Point markers per run, so runs differ by more than the dash (a legend swatch shows both). */
const MARKERS = ['circle', 'rect', 'triangle', 'rectRot', 'crossRot', 'star', 'line'] as const;

export function markerOf(runIndex: number): (typeof MARKERS)[number] {
  return MARKERS[runIndex % MARKERS.length];
}
