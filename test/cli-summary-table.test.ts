import { describe, expect, test } from 'vitest';
import type { SummaryRow } from '../src-main/api/contract.ts';
import { formatSummaryTable } from '../src-main/cli/summary-table.ts';
import { summaryBlock } from './fixtures/summary-table-cells.ts';

const at = (mean: number) => ({ mean, low: mean - 0.1, high: mean + 0.1 });
/** A summary row whose numbers say which technique and layer it is, so a cell in the wrong place shows. */
function row(technique: number, layer: number, o: { n?: number; measured?: number } = {}): SummaryRow {
  const n = o.n ?? 20;
  const measured = o.measured ?? n;
  return {
    technique: `technique_${technique}`, layer, n,
    precision: at(0.1 * technique + 0.01 * layer), surprisal: at(technique + 0.1 * layer), surprisalPaper: at(technique),
    measures: measured === 0 ? null : { n: measured, kl: at(10 * technique + layer + 0.1234), rank: at(100 * technique), entropy: at(technique + 0.01 * layer) },
    tracked: null,
  };
}
const names = (count: number) => Array.from({ length: count }, (_, t) => `technique_${t}`);
const KL = 'KL(p_model ‖ p_technique)';

describe('the CLI summary table', () => {
  test('the measures block shows each technique\'s mean KL and entropy in its own column at its layer', () => {
    const summary = [0, 1, 2].flatMap((t) => [-1, 0, 1, 27].map((l) => row(t, l)));
    const text = formatSummaryTable(summary, names(3));
    const measures = summaryBlock(text, KL);
    const precision = summaryBlock(text, 'precision@1 / surprisal');
    for (const s of summary) {
      expect(measures.cell(s.technique, s.layer)).toBe(`${s.measures!.kl.mean.toFixed(3)} / ${s.measures!.entropy.mean.toFixed(2)}`);
      expect(precision.cell(s.technique, s.layer)).toBe(`${s.precision.mean.toFixed(3)} / ${s.surprisal.mean.toFixed(2)}`);
    }
    expect(measures.lines).toHaveLength(2 + 4);
  });

  test("a run that follows record tokens ends with their surprisal / rank block, each cell in its place; others have none", () => {
    const summary = [0, 1].flatMap((t) => [0, 5].map((l) => ({ ...row(t, l), tracked: { n: 20, surprisal: at(3 + t + 0.1 * l), rank: at(40 * t + l) } })));
    const text = formatSummaryTable(summary, names(2));
    const tracked = summaryBlock(text, "each record's tracked token");
    for (const s of summary) expect(tracked.cell(s.technique, s.layer)).toBe(`${s.tracked!.surprisal.mean.toFixed(2)} / ${s.tracked!.rank.mean.toFixed(1)}`);
    expect(tracked.lines).toHaveLength(2 + 2);
    for (const line of text.split('\n')) expect(line.length, line).toBeLessThanOrEqual(100);
    expect(formatSummaryTable(summary.map((s) => ({ ...s, tracked: null })), names(2))).not.toContain('tracked token');
  });

  test('five techniques with long names and large numbers fit in 100 columns', () => {
    const summary = [0, 1, 2, 3, 4].flatMap((t) => [0, 1].map((l) => ({ ...row(t, l, { n: 123456 }), technique: `a_long_name_${t}` })));
    for (const s of summary) s.measures!.kl.mean = 123.4567;
    const text = formatSummaryTable(summary, summary.slice(0, 10).filter((s) => s.layer === 0).map((s) => s.technique));
    for (const line of text.split('\n')) expect(line.length, line).toBeLessThanOrEqual(100);
    expect(summaryBlock(text, KL).cell('a_long_name_4', 1)).toBe('123.457 / 4.01');
  });

  test('a row without the measures says "not measured", a technique with no row at a layer "-", and n counts the measured examples', () => {
    const summary = [row(0, 0, { n: 20, measured: 0 }), row(1, 0, { n: 20, measured: 12 }), row(0, 1), row(1, 1)];
    const text = formatSummaryTable(summary, [...names(2), 'absent']);
    const measures = summaryBlock(text, KL);
    expect(measures.cell('technique_0', 0)).toBe('not measured');
    expect(measures.cell('absent', 1)).toBe('-');
    expect(measures.cell('n', 0)).toBe('0–12');
    expect(measures.cell('n', 1)).toBe('20');
    expect(summaryBlock(text, 'precision@1').cell('n', 0)).toBe('20');
  });

  test('a run stored before the measures existed gets one line saying so, not a block of dashes', () => {
    const text = formatSummaryTable([row(0, 0, { measured: 0 }), row(0, 1, { measured: 0 })], names(1));
    expect(text).not.toContain(KL);
    expect(text.split('\n').at(-1)).toMatch(/^KL \/ entropy: not measured .*--recompute/);
    expect(summaryBlock(text, 'precision@1').lines).toHaveLength(4);
  });
});
