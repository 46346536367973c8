/** Two runs' settings side by side, flattened to one row per setting, differences first. */
import type { RunView } from '../../src-main/api/contract.ts';

export interface SettingRow {
  setting: string;
  a: string;
  b: string;
  differs: boolean;
}

function settingsOf(r: RunView): Record<string, string> {
  const out: Record<string, string> = {
    model: r.modelPath,
    device: r.device,
    'compute dtype': r.computeDtype,
    files: r.files.join(', '),
    techniques: r.techniques.join(', '),
    layers: r.layers.length > 6 ? `${r.layers[0]}..${r.layers.at(-1)} (${r.layers.length})` : r.layers.join(', '),
    strategy: r.strategy,
    examples: `${r.examplesDone} of ${r.examplesPlanned ?? '?'}`,
  };
  for (const [key, value] of Object.entries(r.protocol)) out[`protocol.${key}`] = typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);
  for (const [id, t] of Object.entries(r.techniquePrompts)) {
    if (t.prompt !== undefined) out[`${id}.prompt`] = JSON.stringify(t.prompt);
    if (t.targetLayer !== undefined) out[`${id}.targetLayer`] = String(t.targetLayer);
    if (t.lens !== undefined) out[`${id}.lens`] = t.lens;
  }
  return out;
}

export function settingsDiff(a: RunView, b: RunView): SettingRow[] {
  const [sa, sb] = [settingsOf(a), settingsOf(b)];
  const keys = [...new Set([...Object.keys(sa), ...Object.keys(sb)])];
  const rows = keys.map((setting) => ({ setting, a: sa[setting] ?? '—', b: sb[setting] ?? '—', differs: sa[setting] !== sb[setting] }));
  return [...rows.filter((r) => r.differs), ...rows.filter((r) => !r.differs)];
}
