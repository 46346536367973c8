/**
 * The desktop app's main process, as a function of an Electron-like object (electron-like.ts):
 * electron.ts calls it with the real module, the tests with a fake one. It owns one window per
 * results cache and the engine process that holds the Lab (engine-supervisor.ts); it relays the
 * API between them and adds the desktop's own requests (requests.ts), the menu, and sweep
 * progress in the title and the taskbar.
 *
 * Nothing reachable from here loads better-sqlite3 or onnxruntime-node: those live in the engine
 * process, on the Node binary they were built for (a test walks these imports).
 */
import crypto from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ApiEvents, EventName } from '../api/contract.ts';
import { registerIpc } from '../api/ipc.ts';
import { RENDERER_DIR } from '../app-paths.ts';
import { defaultDbPath, engineLogPath } from '../db-paths.ts';
import type { ElectronLike, MenuItem, WindowLike } from './electron-like.ts';
import { EngineSupervisor } from './engine-supervisor.ts';
import { DesktopRouter } from './requests.ts';
import { APP_URL, isTrustedSender, lockDown, registerScheme, serveRenderer } from './security.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const PRELOAD = path.join(REPO, 'dist/electron/preload.cjs');
export const APP_TITLE = 'Logitscope Lab';

export interface DesktopOptions {
  /** The Node binary for the engine process: LOGITSCOPE_NODE, set by `logitscope start` to its own process.execPath. */
  nodePath: string | undefined;
  /** The results database; default: the app's (defaultDbPath). */
  dbPath?: string;
  rendererDir?: string;
  /** After SIGTERM on quit, how long the engine gets before SIGKILL. */
  graceMs?: number;
  engineEnv?: NodeJS.ProcessEnv;
}

export interface Desktop {
  /** false: another window already serves this results cache; it was focused and this one quits. */
  readonly primary: boolean;
  readonly supervisor?: EngineSupervisor;
  readonly router?: DesktopRouter;
  readonly window?: WindowLike;
  /** Resolves once the engine process is gone after a quit. */
  readonly quitted: Promise<void>;
}

/** One userData folder per results cache, so Electron's single-instance lock is one window per cache. */
export function instanceDir(appData: string, dbPath: string): string {
  const key = crypto.createHash('sha256').update(path.resolve(dbPath)).digest('hex').slice(0, 16);
  return path.join(appData, 'logitscope-lab', 'desktop', key);
}

export async function runDesktop<W extends WindowLike>(electron: ElectronLike<W>, opts: DesktopOptions): Promise<Desktop> {
  const { app } = electron;
  registerScheme(electron.protocol);
  const dbPath = path.resolve(opts.dbPath ?? defaultDbPath());
  app.setPath('userData', instanceDir(app.getPath('appData'), dbPath));
  if (!app.requestSingleInstanceLock()) {
    // The first window of this cache gets 'second-instance' and comes to the front.
    app.quit();
    return { primary: false, quitted: Promise.resolve() };
  }
  await app.whenReady();
  serveRenderer(electron.protocol, opts.rendererDir ?? RENDERER_DIR);
  lockDown(app, electron.session);
  electron.Menu.setApplicationMenu(electron.Menu.buildFromTemplate(appMenu(electron)));

  if (!opts.nodePath) {
    electron.dialog.showErrorBox(
      'Logitscope Lab needs Node.js for its engine',
      'The engine (onnxruntime and the results cache) runs in a Node.js process beside the window. Start the app with `npm start` or `npx logitscope start`, which tell the window which Node to use (LOGITSCOPE_NODE).',
    );
    app.exit(1);
    return { primary: true, quitted: Promise.resolve() };
  }

  // The window first, so it shows at once with the engine's state; the engine starts beside it.
  const window = openWindow(electron);
  const supervisor = new EngineSupervisor({ nodePath: opts.nodePath, dbPath, logFile: engineLogPath(dbPath), graceMs: opts.graceMs, env: opts.engineEnv });
  const router = new DesktopRouter({ electron, supervisor, window: () => electron.BrowserWindow.getAllWindows()[0] });
  registerIpc(electron.ipcMain, router, {
    isTrustedSender,
    send: (channel, name, payload) => {
      for (const win of electron.BrowserWindow.getAllWindows()) if (!win.isDestroyed()) win.webContents.send(channel, name, payload);
    },
  });
  router.onEvent(progressInTitle(electron));
  void supervisor.start();

  app.on('second-instance', () => {
    const win = electron.BrowserWindow.getAllWindows()[0];
    if (!win) return;
    if (win.isMinimized()) win.restore();
    win.focus();
  });
  app.on('activate', () => {
    if (electron.BrowserWindow.getAllWindows().length === 0) openWindow(electron);
  });
  app.on('window-all-closed', () => app.quit());

  let markQuitted: () => void;
  const quitted = new Promise<void>((resolve) => (markQuitted = resolve));
  let engineStopped = false;
  app.on('before-quit', (event) => {
    if (engineStopped) return;
    // Quit waits for the engine: SIGTERM (it cancels its sweeps, keeping their finished rows), then SIGKILL.
    event.preventDefault();
    void supervisor.stop().then(() => {
      engineStopped = true;
      markQuitted();
      app.quit();
    });
  });
  return { primary: true, supervisor, router, window, quitted };
}

function openWindow<W extends WindowLike>(electron: ElectronLike<W>): W {
  const win = new electron.BrowserWindow({
    width: 1400,
    height: 900,
    show: false,
    title: APP_TITLE,
    backgroundColor: '#ffffff',
    webPreferences: {
      preload: PRELOAD,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      spellcheck: false,
    },
  });
  win.once('ready-to-show', () => win.show());
  void win.loadURL(APP_URL);
  return win;
}

/** Sweeps in progress, summed, in the window title and the taskbar's progress bar. */
function progressInTitle<W extends WindowLike>(electron: ElectronLike<W>): (name: EventName, payload: unknown) => void {
  const running = new Map<string, { done: number; total: number }>();
  const show = () => {
    let done = 0;
    let total = 0;
    for (const r of running.values()) {
      done += r.done;
      total += r.total;
    }
    const fraction = total > 0 ? done / total : -1;
    const title = total > 0 ? `${APP_TITLE} — sweep ${Math.floor(fraction * 100)}% (${done}/${total})` : APP_TITLE;
    for (const win of electron.BrowserWindow.getAllWindows()) {
      if (win.isDestroyed()) continue;
      win.setTitle(title);
      win.setProgressBar(fraction);
    }
  };
  return (name, payload) => {
    if (name === 'sweep.progress') {
      const { runId, progress } = payload as ApiEvents['sweep.progress'];
      running.set(runId, { done: progress.examplesDone, total: progress.examplesTotal });
    } else if (name === 'sweep.finished') {
      running.delete((payload as ApiEvents['sweep.finished']).runId);
    } else if (name === 'engine.state' && (payload as ApiEvents['engine.state']).state !== 'ready') {
      running.clear();
    } else return;
    show();
  };
}

/** The standard menus, and Help opening the docs shipped with the app. */
export function appMenu(electron: Pick<ElectronLike, 'shell'>): MenuItem[] {
  const open = (file: string) => () => void electron.shell.openPath(path.join(REPO, file));
  return [
    { label: 'File', submenu: [{ role: 'close' }, { role: 'quit' }] },
    { label: 'Edit', submenu: [{ role: 'undo' }, { role: 'redo' }, { type: 'separator' }, { role: 'cut' }, { role: 'copy' }, { role: 'paste' }, { role: 'selectAll' }] },
    { label: 'View', submenu: [{ role: 'reload' }, { role: 'toggleDevTools' }, { type: 'separator' }, { role: 'resetZoom' }, { role: 'zoomIn' }, { role: 'zoomOut' }, { type: 'separator' }, { role: 'togglefullscreen' }] },
    { label: 'Help', submenu: [{ label: 'README', click: open('README.md') }, { label: 'Protocol (what the numbers mean)', click: open('docs/PROTOCOL.md') }] },
  ];
}

