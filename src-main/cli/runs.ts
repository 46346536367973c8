import { formatFromFileName } from '../api/parse.ts';
import { modelProvenance } from '../api/format.ts';
import type { RunStatus } from '../api/contract.ts';
import { LogitscopeError } from '../errors.ts';
import { parseCommandLine, requiredOption, withLab } from './options.ts';
import { formatSummaryTable } from './summary-table.ts';
import { formatCommitment, formatDifference } from './difference-table.ts';
import { ranges } from '../protocol/shards.ts';
import { formatParity } from './extract-table.ts';
import type { DatasetFingerprint } from '../api/contract.ts';

const HELP = `usage: logitscope runs <list|show|compare|diff|export|delete|merge> [options]

  runs list [--model DIR] [--dataset FILE] [--status running|completed|cancelled|failed|interrupted]
  runs show RUN                     the run's settings and per-layer summary
  runs compare RUN_A RUN_B          per-layer means side by side, and B − A
  runs diff RUN_A RUN_B             B − A per layer: paired per example over the examples both computed (with
                                    McNemar's exact test for precision@1, and per technique the largest |Δ| of
                                    each surprisal: a verification run such as \`--strategy naive --recompute\`
                                    against the fast run it checks), or unpaired when they share no example
  runs diff RUN --techniques A,B    within one run, technique B − technique A per layer, paired per example
  runs commitment RUN               per technique, the layer where each example's prediction commits
  runs export RUN --out FILE [--format json|csv|parquet]   (default: from FILE's extension)
  runs delete RUN                   (a run still computing in this process is cancelled first)
  runs merge SHARD_DB... --into DB [--allow-partial]
                                    one run from the shards of a sweep (\`sweep --shard i/N\`), each in its own
                                    database; refuses shards of different sweeps and, unless --allow-partial,
                                    shards that do not cover the slice. Merging again adds only what is new.
Every subcommand takes --db FILE (default: $LOGITSCOPE_DB, else the app-data directory).
A run id may be shortened to any unique prefix of at least 4 characters.`;

const READ_ONLY = new Set(['list', 'show', 'compare', 'diff', 'commitment', 'export']);

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
      into: { type: 'string' },
      'allow-partial': { type: 'boolean' },
      techniques: { type: 'string' },
    }, HELP);
    if (!parsed) return;
    const { values: o, positionals: [sub, ...ids] } = parsed;
    if (!sub) throw new LogitscopeError('argument_invalid', `a subcommand is required\n\n${HELP}`);
    if (!['list', 'show', 'compare', 'diff', 'commitment', 'export', 'delete', 'merge'].includes(sub)) throw new LogitscopeError('argument_invalid', `unknown subcommand "${sub}"\n\n${HELP}`);
    const id = (n: number) => {
      if (!ids[n]) throw new LogitscopeError('argument_invalid', `${n === 0 ? 'RUN' : 'RUN_B'} is required`, n === 0 ? 'RUN' : 'RUN_B');
      return ids[n];
    };
    if (sub === 'merge') {
      if (o.db !== undefined) throw new LogitscopeError('argument_invalid', 'runs merge writes into --into DB; --db is not used', '--db');
      if (ids.length === 0) throw new LogitscopeError('argument_invalid', 'give the shard databases to merge: runs merge SHARD_DB... --into DB', 'SHARD_DB');
      const into = requiredOption(o.into, 'into');
      await withLab({ db: into }, async (lab) => {
        const r = await lab.call('runs.merge', { files: ids, allowPartial: o['allow-partial'] });
        for (const s of r.shards) console.error(`shard ${s.index}/${s.count}: run ${s.runId.slice(0, 8)} in ${s.file}, ${s.status}, ${s.examplesDone} examples done`);
        console.log(`run ${r.runId}: ${r.status}, ${r.examplesDone}/${r.examplesPlanned} examples (${r.copied} copied by this merge) in ${lab.dbFile}`);
        if (r.missing.length > 0) console.log(`missing ordinals: ${ranges(r.missing)}`);
      });
      return;
    }
    await withLab({ db: o.db, readonly: READ_ONLY.has(sub) }, async (lab) => {
      switch (sub) {
        case 'list': {
          const runs = await lab.call('runs.list', { modelPath: o.model, dataset: o.dataset, status: o.status as RunStatus | undefined });
          if (runs.length === 0) console.log('no runs');
          for (const r of runs) {
            const progress = `${r.examplesDone}/${r.examplesPlanned ?? '?'}`;
            console.log(`${r.id.slice(0, 8)}  ${r.createdAt.slice(0, 19)}  ${r.status.padEnd(11)}  ${progress.padStart(11)} ex  ${r.techniques.join(',')}  ${r.modelPath}  ${r.files.join(',')}${r.name ? `  "${r.name}"` : ''}`);
          }
          return;
        }
        case 'show': {
          const run = await lab.call('runs.get', { runId: id(0) });
          console.log(`run ${run.id}${run.name ? ` "${run.name}"` : ''}: ${run.status}, ${run.examplesDone}/${run.examplesPlanned ?? '?'} examples, ${run.strategy} strategy on ${run.device}`);
          console.log(`model ${run.modelPath}: ${modelProvenance(run.model)}`);
          console.log(`data ${run.files.join(', ')}; protocol ${JSON.stringify(run.protocol)}`);
          console.log(`code ${run.codeVersion}`);
          const shard = run.dataset.shard as { index: number; count: number } | undefined;
          if (shard) console.log(`shard ${shard.index}/${shard.count}: computes the examples whose ordinal ≡ ${shard.index} (mod ${shard.count}); merge the shards with \`runs merge\``);
          // The fitted lens a tuned_lens technique read through (its train slice, seed, ridge, key).
          for (const [id, t] of Object.entries(run.techniquePrompts)) if (t.lens) console.log(`${id}: ${t.lens}`);
          if (run.track === 'record') console.log('follows each record\'s own "track" token: its exact probability and rank in every cell (exports: track_token, track_logprob, track_rank)');
          if (run.ownsRows) console.log('reads only the rows it computed or merged itself (a recompute or merged run), never another run\'s');
          for (const c of run.datasetCheck) {
            const fp = (run.dataset.fingerprints as DatasetFingerprint[]).find((f) => f.file === c.file);
            const what = fp?.packages ? fp.packages.map((p) => `${p.name}@${p.version}`).join(', ') : `${fp?.size} bytes, sha256 ${fp?.sha256}`;
            console.log(`dataset ${c.file}: ${what}; ${c.matches ? 'unchanged since the run read it' : `NO LONGER MATCHES what the run read: ${c.detail}`}`);
          }
          if (run.error) console.log(`error: [${run.error.code}] ${run.error.message}`);
          console.log(formatParity(run.parity));
          console.log(formatSummaryTable(run.summary, run.techniques));
          return;
        }
        case 'compare': {
          const [a, b] = await Promise.all([lab.call('runs.get', { runId: id(0) }), lab.call('runs.get', { runId: id(1) })]);
          console.log(`per-layer precision@1 and surprisal (seed convention): A = ${a.id.slice(0, 8)}, B = ${b.id.slice(0, 8)}`);
          for (const row of await lab.call('runs.compare', { a: a.id, b: b.id })) {
            const side = (s: typeof row.a) => (s ? `${s.precision.mean.toFixed(3)} / ${s.surprisal.mean.toFixed(2)} (n=${s.n})` : '-').padStart(24);
            const signed = (x: number, digits: number) => `${x >= 0 ? '+' : ''}${x.toFixed(digits)}`;
            const diff = row.a && row.b ? `${signed(row.b.precision.mean - row.a.precision.mean, 3)} / ${signed(row.b.surprisal.mean - row.a.surprisal.mean, 2)}` : '';
            console.log(`${row.technique.padEnd(12)} ${String(row.layer).padStart(3)}  A ${side(row.a)}  B ${side(row.b)}  B−A ${diff}`);
          }
          return;
        }
        case 'diff': {
          let d;
          if (o.techniques !== undefined) {
            const [a, b, ...rest] = o.techniques.split(',').map((t) => t.trim());
            if (!a || !b || rest.length > 0) throw new LogitscopeError('argument_invalid', `--techniques takes two technique ids, A,B (B − A), got "${o.techniques}"`, '--techniques');
            if (ids[1]) throw new LogitscopeError('argument_invalid', 'with --techniques, give one run: runs diff RUN --techniques A,B', 'RUN_B');
            d = await lab.call('runs.diffTechniques', { runId: id(0), a, b });
          } else d = await lab.call('runs.diff', { a: id(0), b: id(1) });
          console.log(formatDifference(d));
          return;
        }
        case 'commitment': {
          console.log(formatCommitment(await lab.call('runs.commitment', { runId: id(0) })));
          return;
        }
        case 'export': {
          const out = requiredOption(o.out, 'out');
          const format = o.format ?? formatFromFileName(out);
          if (format !== 'json' && format !== 'csv' && format !== 'parquet') {
            throw new LogitscopeError('argument_invalid', o.format === undefined ? `cannot tell the format from "${out}": name it .json, .csv or .parquet, or give --format` : `--format must be json, csv or parquet, got "${o.format}"`, '--format');
          }
          await lab.call('runs.export', { runId: id(0), format, out });
          console.log(`wrote ${out}`);
          return;
        }
        case 'delete': {
          const run = await lab.call('runs.get', { runId: id(0) });
          await lab.call('runs.delete', { runId: run.id });
          console.log(`deleted run ${run.id}`);
          return;
        }
      }
    });
  },
};
