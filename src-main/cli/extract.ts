import { writeFileAtomically } from '../fs-atomic.ts';
import { mapFsFailure } from '../fs-errors.ts';
import { checkWritable } from '../api/export-service.ts';
import { parseLayerList, parseTechniqueList } from '../api/parse.ts';
import { deviceOption, intOption, parseOptions, requiredOption, withLab } from './options.ts';
import { printExtraction, printParity, printPicture } from './extract-table.ts';
import { LogitscopeError } from '../errors.ts';
import { DEMO } from '../app-paths.ts';

const HELP = `usage: logitscope extract --model DIR --text "..." [--position P | --positions all|A-B] [--bos] [--top-k K] [--json FILE] [--device D]
       logitscope extract --demo --text "..." [options]      the built-in demo model

Prints, for every layer, the top-k next tokens that the logit lens, the token-identity patchscope
and the logitscope (and any --prompt) read from the residual stream at one position, and the
model's own top-1 there. With --positions, every position of the range is read (one example each,
the logit-lens picture) and the top-1 of each layer × position is printed per technique.

  --model DIR       a GPT-J checkpoint directory as published on the Hugging Face hub
  --demo            the built-in demo model (when --model is not given)
  --text TEXT       the source prompt
  --position P      the position to read (0-based, BOS included when --bos); default: the last token
  --positions R     all, or an inclusive range such as 3-17: read every position in it
  --bos             prepend the config's BOS (GPT-J: <|endoftext|>) to the source and target prompts
                    (the seed's protocol); Llama and Gemma always get their tokenizer's own BOS
  --top-k K         tokens shown per technique and layer (1..100, default 10)
  --techniques LIST comma list of logit_lens,patchscope,logitscope,tuned_lens (default: the
                    first three; tuned_lens reads through the lens last fitted by a sweep for this
                    model: one prompt has no train slice, so --lens-train, --lens-ridge and
                    --lens-seed belong to \`sweep\`, which fits the lens)
  --prompt TEXT     a custom patchscope target prompt (repeatable); --prompt-layer L as in sweep
  --layers LIST     all (default), or e.g. 0,5,10-27; -1 is the embeddings
  --json FILE       also write the export record to FILE
  --db FILE         results database (default: $LOGITSCOPE_DB, else the app-data directory)
  --device D        cpu (default), cuda (= cuda:0), cuda:N (GPU N of the machine) or webgpu
  --dtype T         float32 (default on the CPU) or float16 (default on CUDA)
  --allow-cpu-fallback  run on the CPU if CUDA or WebGPU cannot start`;

export const extractCommand = {
  summary: 'top-k next tokens per layer and technique for one prompt position',
  async run(argv: string[]) {
    const o = parseOptions(argv, {
      model: { type: 'string' },
      demo: { type: 'boolean' },
      text: { type: 'string' },
      position: { type: 'string' },
      positions: { type: 'string' },
      bos: { type: 'boolean' },
      'top-k': { type: 'string' },
      techniques: { type: 'string' },
      prompt: { type: 'string', multiple: true },
      'prompt-layer': { type: 'string', multiple: true },
      layers: { type: 'string' },
      json: { type: 'string' },
      db: { type: 'string' },
      device: { type: 'string' },
      dtype: { type: 'string' },
      'allow-cpu-fallback': { type: 'boolean' },
      'lens-train': { type: 'string' },
      'lens-ridge': { type: 'string' },
      'lens-seed': { type: 'string' },
    }, HELP);
    if (!o) return;
    // Known here only to be refused with the way to get such a lens, instead of "unknown option".
    const lensOption = (['lens-train', 'lens-ridge', 'lens-seed'] as const).find((k) => o[k] !== undefined);
    if (lensOption) {
      throw new LogitscopeError('argument_invalid', `extract reads one prompt through the tuned lens last fitted for this model, and fits none; fit a lens with these settings by \`logitscope sweep --techniques tuned_lens --${lensOption} ...\` first`, `--${lensOption}`);
    }
    const out = o.json === undefined ? undefined : checkWritable(o.json, '--json');
    if (o.text === '') {
      throw new LogitscopeError('argument_invalid', '--text is empty: give the prompt to read, e.g. --text "The Eiffel Tower is in"', '--text');
    }
    const position = intOption(o.position, 'position');
    if (position !== undefined && position < 0) {
      // Python's -1 for "the last" does not carry over: positions are token indices from 0.
      throw new LogitscopeError(
        'argument_invalid',
        `--position ${position}: positions count tokens from 0 (the first; with --bos, BOS is 0), and negative ones are not read from the end; leave --position out to read the last token, or give --positions all to read every one`,
        '--position',
      );
    }
    const request = {
      text: requiredOption(o.text, 'text'),
      position,
      positions: parsePositions(o.positions),
      bos: o.bos,
      k: intOption(o['top-k'], 'top-k'),
      techniques: parseTechniqueList(o.techniques, o.prompt ?? [], o['prompt-layer'] ?? []),
      layers: parseLayerList(o.layers, { field: '--layers' }),
    };
    const modelDir = requiredOption(o.model ?? (o.demo ? DEMO.modelDir : undefined), 'model');
    const device = o.device === undefined ? undefined : deviceOption(o.device, '--device');
    await withLab({ db: o.db }, async (lab) => {
      const model = await lab.call('model.load', { dir: modelDir, device, dtype: o.dtype as 'float32' | 'float16' | undefined, allowCpuFallback: o['allow-cpu-fallback'] });
      if (model.fallbackReason) console.error(`warning: running on the CPU: ${model.fallbackReason}`);
      const view = await lab.call('extract', request);
      if (view.columns) printPicture(view);
      else printExtraction(view);
      printParity(view.parity);
      if (out) {
        // Through a .partial file, as every output: a full disk leaves no half file (output_unwritable).
        mapFsFailure({ kind: 'output', file: out, field: '--json' }, () => writeFileAtomically(out, JSON.stringify(view.record, null, 2)));
        console.log(`\nwrote ${out}`);
      }
    });
  },
};

/** --positions: "all", or "A-B" (inclusive); a single number reads one position, as --position. */
function parsePositions(text: string | undefined): 'all' | { from: number; to: number } | undefined {
  if (text === undefined) return undefined;
  if (text.trim() === 'all') return 'all';
  const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(text);
  if (!m) throw new LogitscopeError('argument_invalid', `cannot read "${text}" (use all, or a range such as 3-17)`, '--positions');
  return { from: Number(m[1]), to: Number(m[2] ?? m[1]) };
}
