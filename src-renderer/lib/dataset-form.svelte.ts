/**
 * The dataset choice, shared by the preview (Dataset panel) and the sweep (Sweep panel). Empty
 * fields keep the preset's value; what a run actually used is recorded with it.
 */
import type { ProtocolOverrides } from '../../src-main/api/contract.ts';
import { LogitscopeError } from '../../src-main/errors.ts';
import type { PresetName } from '../../src-main/protocol/spec.ts';

type Num = number | null;

export const dataset = $state({
  files: '',
  preset: 'logitscope' as PresetName,
  poolStart: null as Num,
  poolEnd: null as Num,
  evalStart: null as Num,
  evalEnd: null as Num,
  limit: null as Num,
  /** '' = the preset's, 'none' = file order, else a seed. */
  shuffle: '',
  maxWords: null as Num,
  maxChars: null as Num,
  bos: 'preset' as 'preset' | 'on' | 'off',
});

export function datasetFiles(): string[] {
  return dataset.files.split('\n').map((f) => f.trim()).filter(Boolean);
}

/** The files, preset and overrides to send; throws a field-naming error for what cannot be sent. */
export function datasetChoice(positionSeed?: number): { files: string[]; preset: PresetName; overrides: ProtocolOverrides } {
  const files = datasetFiles();
  if (files.length === 0) throw new LogitscopeError('dataset_missing', 'Choose at least one dataset file (one path per line).', 'files');
  const overrides: ProtocolOverrides = {};
  const set = <K extends keyof ProtocolOverrides>(key: K, value: ProtocolOverrides[K] | null) => {
    if (value !== null && value !== undefined) overrides[key] = value;
  };
  set('poolStart', dataset.poolStart);
  set('poolEnd', dataset.poolEnd);
  set('evalStart', dataset.evalStart);
  set('evalEnd', dataset.evalEnd);
  set('limit', dataset.limit);
  set('positionSeed', positionSeed ?? null);
  const shuffle = dataset.shuffle.trim();
  if (shuffle === 'none') overrides.shuffleSeed = null;
  else if (shuffle !== '') {
    const seed = Number(shuffle);
    if (!Number.isInteger(seed) || seed < 0) throw new LogitscopeError('argument_invalid', `Shuffle seed must be "none" or a whole number ≥ 0, not "${shuffle}".`, 'shuffleSeed');
    overrides.shuffleSeed = seed;
  }
  if (dataset.maxWords !== null || dataset.maxChars !== null) {
    overrides.filter = {};
    if (dataset.maxWords !== null) overrides.filter.maxWords = dataset.maxWords;
    if (dataset.maxChars !== null) overrides.filter.maxChars = dataset.maxChars;
  }
  if (dataset.bos !== 'preset') overrides.bos = dataset.bos === 'on';
  return { files, preset: dataset.preset, overrides };
}
