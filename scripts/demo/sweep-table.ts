/**
 * The demo sweep's per-layer means as a Markdown table, for the model card. Run the sweep first:
 *
 *   node bin/logitscope.js sweep --model models/demo --data builtin:demo-heldout --preset logitscope \
 *     --limit 500 --db /tmp/demo.db --json /tmp/demo.json
 *   npx tsx scripts/demo/sweep-table.ts /tmp/demo.json
 */
import fs from 'node:fs';

interface Row {
  technique: string;
  layer: number;
  n: number;
  precision_at_1: { mean: number };
  surprisal: { mean: number };
}

const record = JSON.parse(fs.readFileSync(process.argv[2] ?? '/tmp/demo.json', 'utf8')) as { summary: { rows: Row[] } };
const rows = record.summary.rows;
const techniques = [...new Set(rows.map((r) => r.technique))];
const layers = [...new Set(rows.map((r) => r.layer))].sort((a, b) => a - b);
const cell = (t: string, l: number) => {
  const r = rows.find((x) => x.technique === t && x.layer === l);
  return r ? `${r.precision_at_1.mean.toFixed(3)} / ${r.surprisal.mean.toFixed(2)}` : '';
};
console.log(`n = ${rows[0].n} examples; cells are precision@1 / surprisal (seed convention, nats)\n`);
console.log(`| layer | ${techniques.join(' | ')} |`);
console.log(`|---|${techniques.map(() => '---').join('|')}|`);
for (const l of layers) console.log(`| ${l} | ${techniques.map((t) => cell(t, l)).join(' | ')} |`);
