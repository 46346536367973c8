/**
 * The `logitscope sweep` command that computes a stored run again with the same settings (the
 * run header's "Copy as command"): every protocol setting spelled out, so the preset's defaults
 * changing later cannot change what it computes.
 */
import type { RunDetail } from '../store/types.ts';

/** A word for a POSIX shell: as it is when it is plain, else in single quotes. */
export function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** "0-5,8,10-27" for a sorted layer list. */
export function layerRanges(layers: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < layers.length; ) {
    let j = i;
    while (j + 1 < layers.length && layers[j + 1] === layers[j] + 1) j++;
    parts.push(j > i ? `${layers[i]}-${layers[j]}` : String(layers[i]));
    i = j + 1;
  }
  return parts.join(',');
}

/** null for a run no sweep made (a saved extraction reads a typed prompt, not dataset files). */
export function reproduceCommand(run: RunDetail): string | null {
  if (run.files.length === 0) return null;
  const p = run.protocol;
  const args: string[] = ['--model', run.modelPath, ...run.files.flatMap((f) => ['--data', f]), '--preset', p.preset];
  args.push('--pool-start', String(p.poolStart), '--pool-end', String(p.poolEnd), '--eval-start', String(p.evalStart));
  if (p.evalEnd !== null) args.push('--eval-end', String(p.evalEnd));
  args.push('--shuffle-seed', p.shuffleSeed === null ? 'none' : String(p.shuffleSeed));
  if (p.filter.maxWords !== undefined) args.push('--max-words', String(p.filter.maxWords));
  if (p.filter.maxChars !== undefined) args.push('--max-chars', String(p.filter.maxChars));
  if (p.pileSetName !== undefined) args.push('--pile-set', p.pileSetName);
  args.push(p.bos ? '--bos' : '--no-bos', '--seed', String(p.positionSeed));
  if (p.limit !== undefined) args.push('--limit', String(p.limit));

  const named: string[] = [];
  for (const t of run.resolvedTechniques) {
    if (t.kind === 'patchscope' && t.id !== 'patchscope' && t.id !== 'logitscope') {
      args.push('--prompt', t.prompt, '--prompt-layer', t.targetLayer.kind === 'same' ? 'same' : String(t.targetLayer.layer));
      continue;
    }
    named.push(t.id);
    if (t.kind === 'tuned_lens' && t.lens) {
      // The lens the run read through, by its settings: the same settings find (or refit) the same lens.
      args.push('--lens-train', `${t.lens.train.start}-${t.lens.train.end - 1}`, '--lens-ridge', String(t.lens.ridge), '--lens-seed', String(t.lens.positionSeed));
    }
  }
  args.push('--techniques', named.join(','), '--layers', layerRanges(run.layers), '--top-k', String(run.k), '--strategy', run.strategy);
  if (run.spec?.track === 'record') args.push('--track', 'record');
  if (typeof run.model.device === 'string') args.push('--device', run.model.device);
  if (typeof run.model.compute_dtype === 'string') args.push('--dtype', run.model.compute_dtype);
  // A run that reads only its own rows (a recompute) is reproduced as one.
  if (run.ownsRows) args.push('--recompute');
  if (run.name) args.push('--name', run.name);
  return ['npx', 'logitscope', 'sweep', ...args.map(shellWord)].join(' ');
}
