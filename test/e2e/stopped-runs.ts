/**
 * Runs that stopped, written straight into the e2e Lab's results file through a second store,
 * as another process that failed or died would leave them: no sweep has to be made to fail.
 */
import type { SerializedError } from '../../src-main/errors.ts';
import { ResultStore } from '../../src-main/store/result-store.ts';
import type { ProtocolSettings } from '../../src-main/protocol/spec.ts';

const PROTOCOL: ProtocolSettings = {
  preset: 'logitscope', poolStart: 0, poolEnd: 2000, filter: { maxWords: 200, maxChars: 1600 },
  shuffleSeed: null, evalStart: 0, evalEnd: null, bos: true, positionSeed: 0,
};

export function addStoppedRun(dbPath: string, opts: { name: string; modelPath: string; status: 'failed' | 'interrupted'; error?: SerializedError }): string {
  const store = ResultStore.open(dbPath);
  try {
    const id = store.createRun({
      name: opts.name,
      model: { key: 'e2e-elsewhere:float32:cpu', path: opts.modelPath, info: {} },
      files: ['/data/elsewhere.jsonl'],
      protocol: PROTOCOL,
      techniques: [{ id: 'logit_lens', kind: 'logit_lens' }],
      layers: [0, 1, 2],
      k: 3,
      strategy: 'fast',
      codeVersion: 'e2e',
      examplesPlanned: 40,
    });
    if (opts.status === 'failed') store.finishRun(id, { status: 'failed', error: opts.error });
    return id;
  } finally {
    // Closing lets go of a run still 'running': it reads as interrupted at once.
    store.close();
  }
}
