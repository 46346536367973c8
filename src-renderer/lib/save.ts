/**
 * Saving what the app makes, on every front: in the desktop window a native Save dialog (main
 * writes the file the user chose, and "Show in folder" can open it); in a browser a download.
 */
import { api, inElectron } from './api.ts';
import { download } from './download.ts';
import { lab } from './state.svelte.ts';

/** A figure, CSV or JSON the page made; `content` is text or a data URL (PNG). */
export async function save(fileName: string, content: string, mimeType: string): Promise<void> {
  if (!inElectron) return download(fileName, content, mimeType);
  const { path } = await api.call('desktop.saveFile', { fileName, content, mimeType });
  if (path) lab.saved = path;
}

/** A run's export: written by the engine to the chosen file in the desktop, downloaded in a browser. */
export async function saveExport(runId: string, format: 'json' | 'csv' | 'parquet'): Promise<void> {
  if (inElectron) {
    const { path } = await api.call('desktop.saveExport', { runId, format });
    if (path) lab.saved = path;
    return;
  }
  const file = await api.call('runs.export', { runId, format });
  const content = file.encoding === 'base64' ? `data:${file.mimeType};base64,${file.content ?? ''}` : (file.content ?? '');
  download(file.fileName, content, file.mimeType);
}

/** A native Open dialog (desktop only): the paths the user picked, none if cancelled. */
export async function pick(kind: 'modelDir' | 'datasetFiles'): Promise<string[]> {
  return (await api.call('desktop.pick', { kind })).paths;
}
