/**
 * The requests the desktop main process answers itself (contract.ts DESKTOP_REQUESTS), and the
 * router that sends every other request on to the engine process. Native dialogs open only when
 * the page asks and the user answers them: the page never names a path that main reads or writes,
 * and "Show in folder" shows only files chosen or saved through this window, or the engine's log.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DESKTOP_REQUESTS, type EventName, type Payload, type Reply, type Envelope, type RequestName } from '../api/contract.ts';
import { exportFileName } from '../api/format.ts';
import { parseRequest } from '../api/schemas.ts';
import { deserializeError, LogitscopeError, serializeError } from '../errors.ts';
import type { ElectronLike, WindowLike } from './electron-like.ts';
import type { EngineSupervisor } from './engine-supervisor.ts';

type DesktopName = Extract<RequestName, `desktop.${string}`>;
type Handlers = { [K in DesktopName]: (payload: Payload<K>) => Promise<Reply<K>> };

const DATASET_FILTERS = [
  { name: 'Datasets (jsonl, jsonl.zst, parquet, txt)', extensions: ['jsonl', 'zst', 'json', 'parquet', 'txt'] },
  { name: 'All files', extensions: ['*'] },
];
const EXPORT_FILTERS = { json: 'JSON', csv: 'CSV', parquet: 'Parquet' } as const;

/** A page's content as bytes: a base64 data URL (PNG) or text. */
function contentBytes(content: string): Buffer {
  const m = /^data:[^;,]*;base64,/.exec(content);
  return m ? Buffer.from(content.slice(m[0].length), 'base64') : Buffer.from(content, 'utf8');
}

export interface DesktopContext<W extends WindowLike> {
  electron: Pick<ElectronLike<W>, 'dialog' | 'shell' | 'app'>;
  supervisor: EngineSupervisor;
  /** The window dialogs belong to. */
  window(): W | undefined;
}

export class DesktopRouter<W extends WindowLike = WindowLike> {
  /** Files the user chose or saved through this window: the only ones "Show in folder" opens. */
  private readonly known = new Set<string>();

  constructor(private readonly ctx: DesktopContext<W>) {
    this.known.add(path.resolve(ctx.supervisor.state().logFile));
  }

  /** Like Lab.dispatch: one envelope per request, never a throw. */
  async dispatch(name: string, payload: unknown): Promise<Envelope<unknown>> {
    if (!(DESKTOP_REQUESTS as readonly string[]).includes(name)) return this.ctx.supervisor.dispatch(name, payload);
    try {
      const handler = this.handlers[name as DesktopName] as (p: unknown) => Promise<unknown>;
      return { ok: true, result: await handler(parseRequest(name, payload)) };
    } catch (e) {
      return { ok: false, error: serializeError(e) };
    }
  }

  onEvent(listener: (name: EventName, payload: unknown) => void): () => void {
    return this.ctx.supervisor.onEvent(listener);
  }

  private relay = async <K extends RequestName>(name: K, payload: Payload<K>): Promise<Reply<K>> => {
    const envelope = await this.ctx.supervisor.dispatch(name, payload);
    if (!envelope.ok) throw deserializeError(envelope.error);
    return envelope.result as Reply<K>;
  };

  private parentWindow(): W {
    const win = this.ctx.window();
    if (!win || win.isDestroyed()) throw new LogitscopeError('argument_invalid', 'no window is open to show a dialog on', 'window');
    return win;
  }

  private readonly handlers: Handlers = {
    'desktop.engine': async () => this.ctx.supervisor.state(),

    'desktop.restartEngine': async () => this.ctx.supervisor.restart(),

    'desktop.pick': async ({ kind }) => {
      const picked = await this.ctx.electron.dialog.showOpenDialog(
        this.parentWindow(),
        kind === 'modelDir'
          ? { title: 'Choose a checkpoint directory (config.json and the weights)', properties: ['openDirectory'] }
          : { title: 'Choose dataset files', properties: ['openFile', 'multiSelections'], filters: DATASET_FILTERS },
      );
      if (picked.canceled) return { paths: [] };
      for (const p of picked.filePaths) this.known.add(path.resolve(p));
      return { paths: picked.filePaths };
    },

    'desktop.saveExport': async ({ runId, format }) => {
      const run = await this.relay('runs.get', { runId });
      const chosen = await this.ctx.electron.dialog.showSaveDialog(this.parentWindow(), {
        title: `Export ${run.name ?? `run ${run.id.slice(0, 8)}`} as ${EXPORT_FILTERS[format]}`,
        defaultPath: path.join(this.ctx.electron.app.getPath('downloads'), exportFileName(run, format)),
        filters: [{ name: EXPORT_FILTERS[format], extensions: [format] }],
      });
      if (chosen.canceled || !chosen.filePath) return { path: null, written: 0 };
      const reply = await this.relay('runs.export', { runId: run.id, format, out: chosen.filePath });
      this.known.add(path.resolve(chosen.filePath));
      return { path: chosen.filePath, written: reply.written };
    },

    'desktop.saveFile': async ({ fileName, content }) => {
      const ext = path.extname(fileName).slice(1).toLowerCase();
      const chosen = await this.ctx.electron.dialog.showSaveDialog(this.parentWindow(), {
        title: `Save ${fileName}`,
        defaultPath: path.join(this.ctx.electron.app.getPath('downloads'), path.basename(fileName)),
        ...(ext && { filters: [{ name: ext.toUpperCase(), extensions: [ext] }] }),
      });
      if (chosen.canceled || !chosen.filePath) return { path: null };
      try {
        await fs.promises.writeFile(chosen.filePath, contentBytes(content));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        const why = code === 'ENOSPC' ? 'the disk is full' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (e as Error).message;
        throw new LogitscopeError('output_unwritable', `cannot write ${chosen.filePath}: ${why}; choose another place`, chosen.filePath);
      }
      this.known.add(path.resolve(chosen.filePath));
      return { path: chosen.filePath };
    },

    'desktop.showInFolder': async ({ path: file }) => {
      if (!this.known.has(path.resolve(file))) {
        throw new LogitscopeError('argument_invalid', 'only a file chosen or saved through this window (or the engine log) can be shown', 'path');
      }
      this.ctx.electron.shell.showItemInFolder(path.resolve(file));
      return { shown: true };
    },
  };
}
