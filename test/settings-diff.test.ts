/**
 * The settings diff the comparison view shows beside B − A: everything that changes a run's numbers
 * must appear as a row, and differing rows come first. The compute dtype was once missing, so a
 * float16 run against a float32 one looked identical in its settings.
 */
import { describe, expect, test } from 'vitest';
import type { RunView } from '../src-main/api/contract.ts';
import { settingsDiff } from '../src-renderer/lib/settings-diff.ts';

const base = {
  modelPath: '/models/demo',
  device: 'cpu',
  computeDtype: 'float32',
  files: ['builtin:demo-heldout'],
  techniques: ['logit_lens', 'logitscope'],
  layers: [0, 1, 2],
  strategy: 'fast',
  examplesDone: 40,
  examplesPlanned: 40,
  protocol: { preset: 'logitscope', positionSeed: 0, filter: { maxWords: 200 } },
  techniquePrompts: { logitscope: { prompt: '?', targetLayer: 'same' } },
} as unknown as RunView;

describe('settingsDiff', () => {
  test('a float16 run against a float32 run differs in its compute dtype, listed first', () => {
    const rows = settingsDiff(base, { ...base, computeDtype: 'float16' });
    expect(rows[0]).toEqual({ setting: 'compute dtype', a: 'float32', b: 'float16', differs: true });
    expect(rows.filter((r) => r.differs)).toHaveLength(1);
  });

  test('protocol and technique settings are rows of their own; identical runs differ nowhere', () => {
    const rows = settingsDiff(base, base);
    expect(rows.every((r) => !r.differs)).toBe(true);
    expect(rows.map((r) => r.setting)).toEqual(expect.arrayContaining(['protocol.positionSeed', 'protocol.filter', 'logitscope.prompt', 'logitscope.targetLayer']));
    const b = { ...base, protocol: { ...base.protocol, positionSeed: 2 }, techniquePrompts: { logitscope: { prompt: '?', targetLayer: 3 } } } as unknown as RunView;
    expect(settingsDiff(base, b).filter((r) => r.differs).map((r) => [r.setting, r.a, r.b])).toEqual([
      ['protocol.positionSeed', '0', '2'],
      ['logitscope.targetLayer', 'same', '3'],
    ]);
  });
});
