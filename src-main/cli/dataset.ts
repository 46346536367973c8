import type { ProtocolOverrides } from '../api/contract.ts';
import { LogitscopeError } from '../errors.ts';
import { intOption, parseCommandLine, requiredOption, withLab } from './options.ts';

const HELP = `usage: logitscope dataset preview --data FILE... --preset logitscope|patchscopes [options]

Reads the slice a sweep would use, without a model: how many records were scanned, how many pass
the filter and why the others do not, and a few sample records.

  --data FILE        dataset file (repeatable); builtin:demo-heldout, builtin:brown, builtin:sotu too
  --preset P         logitscope or patchscopes
  --samples N        sample records to show (0..50, default 5)
  --pool-start N --pool-end N --max-words N --max-chars N --pile-set NAME   as in \`sweep\``;

export const datasetCommand = {
  summary: 'preview the records a sweep would read from a dataset slice',
  async run(argv: string[]) {
    const parsed = parseCommandLine(argv, {
      data: { type: 'string', multiple: true },
      preset: { type: 'string' },
      samples: { type: 'string' },
      'pool-start': { type: 'string' },
      'pool-end': { type: 'string' },
      'max-words': { type: 'string' },
      'max-chars': { type: 'string' },
      'pile-set': { type: 'string' },
    }, HELP);
    if (!parsed) return;
    const { values: o, positionals: [sub] } = parsed;
    if (sub !== 'preview') throw new LogitscopeError('argument_invalid', `${sub ? `unknown subcommand "${sub}"` : 'a subcommand is required'}\n\n${HELP}`);
    const int = (name: string) => intOption(o[name as keyof typeof o] as string | undefined, name);
    const filter = { maxWords: int('max-words'), maxChars: int('max-chars') };
    const overrides: ProtocolOverrides = {
      ...(int('pool-start') !== undefined && { poolStart: int('pool-start') }),
      ...(int('pool-end') !== undefined && { poolEnd: int('pool-end') }),
      ...(o['pile-set'] !== undefined && { pileSetName: o['pile-set'] }),
      ...((filter.maxWords !== undefined || filter.maxChars !== undefined) && { filter }),
    };
    const preview = await withLab({}, (lab) =>
      lab.call('dataset.preview', { files: o.data ?? [], preset: requiredOption(o.preset, 'preset') as 'logitscope', overrides, sampleCount: int('samples') }),
    );
    console.log(`${preview.scanned} records scanned${preview.capped ? ' (preview stopped early)' : ''}: ${preview.passed} pass the filter, ${preview.filteredOut} filtered out`);
    if (preview.withTrack > 0) console.log(`${preview.withTrack} of the ${preview.passed} carry a "track" token (what \`sweep --track record\` follows)`);
    for (const s of preview.samples) {
      const track = s.track === undefined ? '' : ` [track ${JSON.stringify(s.track)}]`;
      console.log(`\n#${s.recordIndex}${s.source ? ` (${s.source})` : ''}${track}: ${s.text.slice(0, 300)}${s.text.length > 300 ? '…' : ''}`);
    }
  },
};
