/**
 * Reference curves on the charts (docs/PROTOCOL.md, "Reference curves"): the Lab's built-in tables
 * and tables the user imported, which are kept in local storage like the other UI preferences.
 * Parsing is the Lab's (references.parse): one parser, and a bad file is refused with every
 * problem named before anything is drawn.
 */
import type { ReferenceView, Reply } from '../../src-main/api/contract.ts';
import { api } from './api.ts';
import type { ChartRun, Metric } from './series.ts';

const STORAGE_KEY = 'logitscope.references';

interface Stored {
  imported: ReferenceView[];
  /** Names of the tables drawn now, built-in or imported. */
  shown: string[];
}

function load(): Stored {
  try {
    const raw = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? 'null') as Stored | null;
    return raw && Array.isArray(raw.imported) && Array.isArray(raw.shown) ? raw : { imported: [], shown: [] };
  } catch {
    return { imported: [], shown: [] };
  }
}

export const references = $state({
  ...load(),
  builtIn: [] as Reply<'references.list'>,
  /** Built-in tables fetched so far, by name. */
  fetched: {} as Record<string, ReferenceView>,
});

function persist(): void {
  localStorage.setItem(STORAGE_KEY, JSON.stringify({ imported: references.imported, shown: references.shown }));
}

export async function listBuiltIn(): Promise<void> {
  references.builtIn = await api.call('references.list', {});
  await Promise.all(references.shown.filter((n) => references.builtIn.some((b) => b.name === n)).map(fetchBuiltIn));
}

async function fetchBuiltIn(name: string): Promise<void> {
  if (!references.fetched[name]) references.fetched[name] = await api.call('references.get', { name });
}

/** Reads a picked file through the Lab's parser, keeps it, and draws it; the same name replaces the older table. */
export async function importReference(file: File): Promise<void> {
  const curve = await api.call('references.parse', { name: file.name, text: await file.text() });
  references.imported = [...references.imported.filter((r) => r.name !== curve.name), curve];
  if (!references.shown.includes(curve.name)) references.shown = [...references.shown, curve.name];
  persist();
}

export function removeImported(name: string): void {
  references.imported = references.imported.filter((r) => r.name !== name);
  references.shown = references.shown.filter((n) => n !== name);
  persist();
}

export async function setShown(name: string, on: boolean): Promise<void> {
  if (on && references.builtIn.some((b) => b.name === name)) await fetchBuiltIn(name);
  references.shown = on ? [...new Set([...references.shown, name])] : references.shown.filter((n) => n !== name);
  persist();
}

/** The export column each chart metric is named by in a reference table. */
const COLUMN: Record<Metric, string> = { precision: 'precision_at_1', surprisal: 'surprisal', surprisalPaper: 'surprisal_paper', kl: 'kl', rank: 'rank', entropy: 'entropy', trackedSurprisal: 'tracked_surprisal', trackedRank: 'tracked_rank' };

/** The shown tables' rows of one metric as chart runs, a series per technique. */
export function referenceRuns(metric: Metric): ChartRun[] {
  const tables = references.shown.map((n) => references.imported.find((r) => r.name === n) ?? references.fetched[n]).filter((r): r is ReferenceView => r !== undefined);
  return tables.flatMap((t) => {
    const rows = t.rows.filter((r) => r.metric === COLUMN[metric]);
    const techniques = [...new Set(rows.map((r) => r.technique))];
    const series = techniques.map((technique) => ({
      technique,
      points: rows
        .filter((r) => r.technique === technique)
        .map((r) => ({ layer: r.layer, n: r.n ?? NaN, mean: r.value, low: r.low ?? null, high: r.high ?? null }))
        .sort((a, b) => a.layer - b.layer),
    }));
    return series.length > 0 ? [{ runId: `reference:${t.name}`, label: `reference: ${t.source}`, series, reference: true as const }] : [];
  });
}
