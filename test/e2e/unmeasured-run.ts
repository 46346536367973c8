/**
 * A finished run whose rows were stored before the per-row measures existed (kl, rank and entropy
 * NULL, as schema 5's migration leaves older rows), written straight into the e2e Lab's results
 * file through a second store: the page must say "not measured", never draw or print a number.
 */
import { ResultStore } from '../../src-main/store/result-store.ts';
import { exampleKey, techniqueKey } from '../../src-main/store/keys.ts';
import type { ProtocolSettings } from '../../src-main/protocol/spec.ts';
import type { ResolvedTechnique } from '../../src-main/protocol/techniques.ts';

const PROTOCOL: ProtocolSettings = {
  preset: 'logitscope', poolStart: 0, poolEnd: 2000, filter: { maxWords: 200, maxChars: 1600 },
  shuffleSeed: null, evalStart: 0, evalEnd: null, bos: true, positionSeed: 0,
};

export function addUnmeasuredRun(dbPath: string, opts: { name: string; modelPath: string; modelKey: string }): string {
  const store = ResultStore.open(dbPath);
  try {
    const lens: ResolvedTechnique = { id: 'logit_lens', kind: 'logit_lens' };
    const layers = [0, 1, 2];
    const id = store.createRun({
      name: opts.name, model: { key: opts.modelKey, path: opts.modelPath, info: {} }, files: ['/data/older.jsonl'], protocol: PROTOCOL,
      techniques: [lens], layers, k: 3, strategy: 'fast', codeVersion: 'before-measures', examplesPlanned: 2,
    });
    const examples = [0, 1].map((i) => ({ ordinal: i, recordIndex: i, text: `older ${i}`, tokens: [50256, 100 + i, 200 + i], position: 2 }));
    store.setRunExamples(id, examples);
    store.saveBatch(id, examples.flatMap((e) => layers.map((layer) => ({
      exampleKey: exampleKey(e.tokens, e.position), techniqueKey: techniqueKey(lens), layer, referenceTop1: 7, top1: layer === 2 ? 7 : 8,
      surprisal: 3 - layer, surprisalPaper: 3 - layer, topK: { ids: [layer === 2 ? 7 : 8, 9, 10], probs: [0.5, 0.25, 0.125] }, kl: null, rank: null, entropy: null,
    }))));
    store.finishRun(id, { status: 'completed' });
    return id;
  } finally {
    store.close();
  }
}
