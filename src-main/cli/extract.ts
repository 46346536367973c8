import fs from 'node:fs';
import { Engine } from '../engine/engine.ts';
import type { Device } from '../engine/ort-session.ts';
import { LogitscopeError } from '../errors.ts';
import { describeModel, describeTechniques, CONVENTIONS, type ExportRecord } from '../sweep/export-record.ts';
import { Extractor } from '../sweep/extract.ts';
import { BUILT_IN_TECHNIQUES, resolveTechniques } from '../sweep/techniques.ts';
import { intOption, parseOptions, requiredOption } from './options.ts';
import { printExtraction } from './extract-table.ts';

const HELP = `usage: logitscope extract --model DIR --text "..." [--position P] [--bos] [--top-k K] [--json FILE] [--device cpu|cuda]

Prints, for every layer, the top-k next tokens that the logit lens, the token-identity patchscope
and the logitscope read from the residual stream at one position, and the model's own top-1 there.

  --model DIR     a GPT-J checkpoint directory as published on the Hugging Face hub
  --text TEXT     the source prompt
  --position P    the position to read (0-based, BOS included when --bos); default: the last token
  --bos           prepend <|endoftext|> to the source and target prompts (the seed's protocol)
  --top-k K       tokens shown per technique and layer (default 5)
  --json FILE     also write the export record to FILE
  --device D      cpu (default) or cuda
  --allow-cpu-fallback  run on the CPU if CUDA cannot start`;

export const extractCommand = {
  summary: 'top-k next tokens per layer and technique for one prompt position',
  async run(argv: string[]) {
    const o = parseOptions(argv, {
      model: { type: 'string' },
      text: { type: 'string' },
      position: { type: 'string' },
      bos: { type: 'boolean', default: false },
      'top-k': { type: 'string' },
      json: { type: 'string' },
      device: { type: 'string', default: 'cpu' },
      'allow-cpu-fallback': { type: 'boolean', default: false },
    }, HELP);
    if (!o) return;
    const modelDir = requiredOption(o.model, 'model');
    const text = requiredOption(o.text, 'text');
    const k = intOption(o['top-k'], 'top-k', { min: 1, fallback: 5 })!;
    if (o.device !== 'cpu' && o.device !== 'cuda') throw new LogitscopeError('argument_invalid', `--device must be cpu or cuda, got "${o.device}"`, '--device');

    const engine = await Engine.load({ modelDir, device: o.device as Device, allowCpuFallback: o['allow-cpu-fallback'] });
    try {
      if (engine.info.fallbackReason) console.error(`warning: running on the CPU: ${engine.info.fallbackReason}`);
      const tokens = engine.tokenize(text, { bos: o.bos! });
      const position = intOption(o.position, 'position', { min: 0, fallback: tokens.length - 1 })!;
      if (position >= tokens.length) {
        throw new LogitscopeError('position_out_of_range', `position ${position} is outside the prompt (${tokens.length} tokens: 0..${tokens.length - 1})`, '--position');
      }
      const techniques = resolveTechniques(BUILT_IN_TECHNIQUES, (t) => engine.tokenize(t, { bos: o.bos! }));
      const layers = Array.from({ length: engine.config.nLayers }, (_, l) => l);
      const [example] = await new Extractor(engine).extract({ examples: [{ tokens, position }], techniques, layers, k });
      printExtraction({ example, techniques: techniques.map((t) => t.id), tokenString: (id) => engine.tokenizer.tokenString(id) });
      if (o.json) {
        const record: ExportRecord = {
          model: describeModel(engine.info),
          techniques: describeTechniques(techniques),
          conventions: CONVENTIONS,
          bos: o.bos,
          examples: [example],
        };
        fs.writeFileSync(o.json, JSON.stringify(record, null, 2));
        console.log(`\nwrote ${o.json}`);
      }
    } finally {
      await engine.dispose();
    }
  },
};
