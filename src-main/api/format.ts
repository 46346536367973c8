/** Display forms shared by every front (pure: the renderer bundles it). */

/** A duration as a person reads it: "8.4s", "3m05s", "1h02m"; "—" when unknown. */
export function formatSeconds(s: number | null): string {
  if (s === null || !Number.isFinite(s)) return '—';
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** An export's file name from its run's name (letters, digits, dot, dash, underscore) and short id. */
export function exportFileName(run: { id: string; name: string | null }, format: string): string {
  const base = (run.name ?? 'run').normalize('NFKD').replace(/[^\w.-]+/g, '-').replace(/^[-.]+|[-.]+$/g, '').slice(0, 80) || 'run';
  return `${base}-${run.id.slice(0, 8)}.${format}`;
}

/** A token as text with its whitespace made visible (a leading space is ␣, a newline ↵, a tab ⇥): the grid's and the exports' form. */
export function showToken(text: string): string {
  return text.replace(/\n/g, '↵').replace(/\t/g, '⇥').replace(/^ /, '␣');
}

/** A tuned-lens fit's progress (sweep.preparing's `lens`) in words, as every front says it. */
export function lensFitWords(p: { phase: 'selecting' | 'collecting' | 'solving' | 'checking'; done: number; total: number }): string {
  if (p.phase === 'selecting') return `tuned lens: selecting train records, ${p.done} read`;
  if (p.phase === 'collecting') return `tuned lens: ${p.done}/${p.total} train examples collected`;
  if (p.phase === 'solving') return `tuned lens: ${p.done}/${p.total} maps solved`;
  return `tuned lens: ${p.done}/${p.total} held-out examples checked`;
}

/**
 * Where a run's model came from, in words: "llama (model_type mistral),
 * mistralai/Mistral-7B-v0.1@<commit>". Runs recorded before families were say so rather than guess.
 */
export function modelProvenance(m: { family: string | null; modelType: string | null; repo: string | null; revision: string | null }): string {
  if (m.family === null) return 'family not recorded';
  const type = m.modelType && m.modelType !== m.family ? ` (model_type ${m.modelType})` : '';
  const where = m.revision ? `${m.repo}@${m.revision}` : 'revision unknown (not a hub cache snapshot folder)';
  return `${m.family}${type}, ${where}`;
}

/** A byte count as a person reads it: "812 B", "4.8 MiB", "12.1 GiB". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

/** A parameter count as papers write it: "6.05B", "124M", "41.2K". */
export function formatParameters(n: number): string {
  const [value, unit] = n >= 1e9 ? [n / 1e9, 'B'] : n >= 1e6 ? [n / 1e6, 'M'] : n >= 1e3 ? [n / 1e3, 'K'] : [n, ''];
  return `${value >= 100 || unit === '' ? Math.round(value) : value.toPrecision(3)}${unit}`;
}

/** A device-memory plan in one line: "float16: 11.3 GiB weights + at most 2.0 GiB working set = 13.3 GiB". */
export function memoryPlanWords(p: { dtype: string; weightBytes: number; workingBytes: number; totalBytes: number }): string {
  return `${p.dtype}: ${formatBytes(p.weightBytes)} weights + at most ${formatBytes(p.workingBytes)} working set = ${formatBytes(p.totalBytes)}`;
}
