import type { CommitmentView, DifferenceView } from '../api/contract.ts';

/** The CLI's text for a comparison (runs diff) and for where predictions commit (runs commitment). */

const signed = (x: number, digits: number) => (Number.isNaN(x) ? '?' : `${x >= 0 ? '+' : ''}${x.toFixed(digits)}`);
/** A 95% interval; "?" bounds where it is undefined (n < 2). */
const interval = (i: { low: number | null; high: number | null }, digits: number) => `[${signed(i.low ?? NaN, digits)}, ${signed(i.high ?? NaN, digits)}]`;
const pValue = (p: number) => (p >= 0.001 ? p.toFixed(3) : p.toExponential(1));

export function formatDifference(d: DifferenceView): string {
  const what = d.techniques
    ? `${d.techniques.b} − ${d.techniques.a} within run ${d.a.slice(0, 8)}, paired over its ${d.sharedExamples} examples`
    : d.test === 'paired'
      ? `B − A paired over ${d.sharedExamples} shared examples: A = ${d.a.slice(0, 8)}, B = ${d.b.slice(0, 8)}`
      : `B − A UNPAIRED (no shared example): A = ${d.a.slice(0, 8)}, B = ${d.b.slice(0, 8)}`;
  const lines = [what, `test: ${d.test}, because ${d.why}`, `method: ${d.method}`];
  if (d.largest.length > 0) {
    lines.push('largest |Δ| per technique (surprisal, surprisal_paper, in nats; rows whose top-1 differs):');
    for (const l of d.largest) {
      lines.push(`${l.technique.padEnd(12)}  max |Δ surprisal| ${l.surprisal.toExponential(2)}  max |Δ surprisal_paper| ${l.surprisalPaper.toExponential(2)}  top-1 differs in ${l.top1Differs} of ${l.rows} rows`);
    }
  }
  for (const r of d.rows) {
    const n = r.nA !== undefined ? `nA=${r.nA} nB=${r.nB}` : `n=${r.n}`;
    const mcnemar = r.mcnemar ? `  McNemar ${r.mcnemar.onlyA} vs ${r.mcnemar.onlyB} discordant, p=${pValue(r.mcnemar.pValue)}` : '';
    lines.push(
      `${r.technique.padEnd(12)} ${String(r.layer).padStart(3)}  ${n}  Δ precision@1 ${signed(r.precision.mean, 3)} ${interval(r.precision, 3)}${mcnemar}` +
        `  Δ surprisal ${signed(r.surprisal.mean, 6)} ${interval(r.surprisal, 3)}`,
    );
  }
  return lines.join('\n');
}

export function formatCommitment(c: CommitmentView): string {
  const lines = [`where each example's prediction commits: ${c.method}`];
  for (const t of c.techniques) {
    const m = t.median;
    const median = m.mean === null || Number.isNaN(m.mean) ? 'none commit' : `median ${m.mean} ${interval(m, 0).replace(/\+/g, '')}`;
    lines.push(`${t.technique.padEnd(12)} n=${t.n}  ${median}  never ${t.never}`);
    lines.push(`  ${t.histogram.map((h) => `${h.layer}:${h.count}`).join(' ')}`);
  }
  return lines.join('\n');
}
