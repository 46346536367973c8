import fs from 'node:fs';
import { LogitscopeError } from '../errors.ts';
import { exportCsv, exportJson, exportParquet } from '../store/export.ts';
import { defaultDbPath } from '../store/location.ts';
import { ResultStore } from '../store/result-store.ts';
import type { RunStatus } from '../store/types.ts';
import { parseCommandLine, requiredOption } from './options.ts';
import { formatSummaryTable } from './summary-table.ts';

const HELP = `usage: logitscope runs <list|show|compare|export|delete> [options]

  runs list [--model DIR] [--dataset FILE] [--status running|completed|cancelled|failed]
  runs show RUN                     the run's settings and per-layer summary
  runs compare RUN_A RUN_B          per-layer means side by side, and B − A
  runs export RUN --format json|csv|parquet --out FILE
  runs delete RUN
Every subcommand takes --db FILE (default: $LOGITSCOPE_DB, else the app-data directory).
A run id may be shortened to any unique prefix.`;

const STATUSES: RunStatus[] = ['running', 'completed', 'cancelled', 'failed'];

export const runsCommand = {
  summary: 'list, show, compare, export and delete stored runs',
  async run(argv: string[]) {
    const parsed = parseCommandLine(argv, {
      db: { type: 'string' },
      model: { type: 'string' },
      dataset: { type: 'string' },
      status: { type: 'string' },
      format: { type: 'string' },
      out: { type: 'string' },
    }, HELP);
    if (!parsed) return;
    const { values: o, positionals: [sub, ...positional] } = parsed;
    if (!sub) throw new LogitscopeError('argument_invalid', `a subcommand is required\n\n${HELP}`);
    const readonly = sub === 'list' || sub === 'show' || sub === 'compare' || sub === 'export';
    const store = ResultStore.open(o.db ?? defaultDbPath(), { readonly });
    try {
      const id = (n: number) => resolveRunId(store, positional[n], n === 0 ? 'RUN' : 'RUN_B');
      switch (sub) {
        case 'list': {
          if (o.status !== undefined && !STATUSES.includes(o.status as RunStatus)) {
            throw new LogitscopeError('argument_invalid', `--status must be one of ${STATUSES.join(', ')}`, '--status');
          }
          const runs = store.listRuns({ modelPath: o.model, dataset: o.dataset, status: o.status as RunStatus | undefined });
          if (runs.length === 0) console.log('no runs');
          for (const r of runs) {
            const progress = `${r.examplesDone}/${r.examplesPlanned ?? '?'}`;
            console.log(`${r.id.slice(0, 8)}  ${r.createdAt.slice(0, 19)}  ${r.status.padEnd(9)}  ${progress.padStart(11)} ex  ${r.techniques.join(',')}  ${r.modelPath}  ${r.files.join(',')}${r.name ? `  "${r.name}"` : ''}`);
          }
          return;
        }
        case 'show': {
          const run = store.getRun(id(0));
          console.log(`run ${run.id}${run.name ? ` "${run.name}"` : ''}: ${run.status}, ${run.examplesDone}/${run.examplesPlanned ?? '?'} examples, ${run.strategy} strategy`);
          console.log(`model ${run.modelPath}; data ${run.files.join(', ')}; protocol ${JSON.stringify(run.protocol)}`);
          if (run.error) console.log(`error: [${run.error.code}] ${run.error.message}`);
          console.log(formatSummaryTable(store.summary(run.id), run.techniques));
          return;
        }
        case 'compare': {
          const [a, b] = [id(0), id(1)];
          console.log(`per-layer precision@1 and surprisal (seed convention): A = ${a.slice(0, 8)}, B = ${b.slice(0, 8)}`);
          for (const row of store.compare(a, b)) {
            const side = (s: typeof row.a) => (s ? `${s.precision.mean.toFixed(3)} / ${s.surprisal.mean.toFixed(2)}` : '-').padStart(15);
            const diff = row.diff ? `${row.diff.precision >= 0 ? '+' : ''}${row.diff.precision.toFixed(3)} / ${row.diff.surprisal >= 0 ? '+' : ''}${row.diff.surprisal.toFixed(2)}` : '';
            console.log(`${row.technique.padEnd(12)} ${String(row.layer).padStart(3)}  A ${side(row.a)}  B ${side(row.b)}  B−A ${diff}`);
          }
          return;
        }
        case 'export': {
          const run = id(0);
          const out = requiredOption(o.out, 'out');
          const format = o.format ?? 'json';
          if (format === 'json') fs.writeFileSync(out, JSON.stringify(exportJson(store, run)));
          else if (format === 'csv') await exportCsv(store, run, out);
          else if (format === 'parquet') await exportParquet(store, run, out);
          else throw new LogitscopeError('argument_invalid', `--format must be json, csv or parquet, got "${format}"`, '--format');
          console.log(`wrote ${out}`);
          return;
        }
        case 'delete': {
          const run = id(0);
          store.deleteRun(run);
          console.log(`deleted run ${run}`);
          return;
        }
        default:
          throw new LogitscopeError('argument_invalid', `unknown subcommand "${sub}"\n\n${HELP}`);
      }
    } finally {
      store.close();
    }
  },
};

function resolveRunId(store: ResultStore, prefix: string | undefined, what: string): string {
  if (!prefix) throw new LogitscopeError('argument_invalid', `${what} is required`, what);
  const matches = store.listRuns().filter((r) => r.id.startsWith(prefix));
  if (matches.length === 1) return matches[0].id;
  if (matches.length === 0) throw new LogitscopeError('run_not_found', `no run with id "${prefix}" in ${store.file}`, what);
  throw new LogitscopeError('argument_invalid', `"${prefix}" matches ${matches.length} runs; give more of the id`, what);
}
