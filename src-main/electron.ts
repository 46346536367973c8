/**
 * The Electron main process: owns the Lab (engine worker thread + SQLite cache) and one window.
 * The one module besides the preload that loads electron; `logitscope start` runs it through
 * dist/electron/main.mjs (built by electron.config.ts), which registers tsx first like bin/ does.
 *
 * Security (Electron's checklist): the page is served from our own `app://` scheme with the same
 * CSP as browser mode; context isolation, sandbox, no Node in the renderer; navigation, new windows,
 * webviews and permission requests are all refused; IPC is answered only for our own top frame.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type * as ElectronModule from 'electron';
import { RENDERER_DIR } from './app-paths.ts';
import { registerIpc, type SenderFrame } from './api/ipc.ts';
import { Lab } from './api/lab.ts';
import { CONTENT_SECURITY_POLICY, resolveStatic } from './serve.ts';

// require() rather than import: Electron intercepts require('electron') in every loader setup,
// including tsx's, whereas ESM resolution of the bare name would look in node_modules.
const { app, BrowserWindow, dialog, ipcMain, protocol, session } = createRequire(import.meta.url)('electron') as typeof ElectronModule;

const SCHEME = 'app';
const HOST = 'logitscope';

const PRELOAD = fileURLToPath(new URL('../dist/electron/preload.cjs', import.meta.url));

function isAppUrl(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === `${SCHEME}:` && u.host === HOST;
  } catch {
    return false;
  }
}

const isTrustedSender = (frame: SenderFrame | null): boolean => frame !== null && frame.parent === null && isAppUrl(frame.url);

// Must run before `ready`: a standard, secure scheme gets a real origin, so CSP 'self' means it.
protocol.registerSchemesAsPrivileged([{ scheme: SCHEME, privileges: { standard: true, secure: true } }]);

function serveRenderer(): void {
  protocol.handle(SCHEME, async (request) => {
    const url = new URL(request.url);
    const found = url.host === HOST ? resolveStatic(RENDERER_DIR, url.pathname) : null;
    if (!found) return new Response('not found', { status: 404 });
    return new Response(await fs.promises.readFile(found.file), {
      headers: { 'Content-Type': found.mime, 'Content-Security-Policy': CONTENT_SECURITY_POLICY, 'X-Content-Type-Options': 'nosniff' },
    });
  });
}

function lockDown(): void {
  app.on('web-contents-created', (_event, contents) => {
    // A single-page app never navigates: any navigation is a link or script gone wrong.
    contents.on('will-navigate', (event) => event.preventDefault());
    contents.on('will-redirect', (event) => event.preventDefault());
    contents.on('will-attach-webview', (event) => event.preventDefault());
    contents.setWindowOpenHandler(() => ({ action: 'deny' }));
  });
  session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  session.defaultSession.setPermissionCheckHandler(() => false);
}

function openWindow(): ElectronModule.BrowserWindow {
  const win = new BrowserWindow({
    width: 1400,
    height: 900,
    show: false,
    title: 'Logitscope Lab',
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
  void win.loadURL(`${SCHEME}://${HOST}/index.html`);
  return win;
}

/**
 * better-sqlite3 is not N-API: a copy built for Node fails to load in Electron with a
 * NODE_MODULE_VERSION message. Say what to do instead of dying with a stack trace.
 */
function explainOpenFailure(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  if (/NODE_MODULE_VERSION|was compiled against a different Node\.js version/.test(message)) {
    return `${message}\n\nbetter-sqlite3 must be built for Electron's ABI: run \`npx @electron/rebuild -f -w better-sqlite3\` ` +
      '(this replaces the Node build the CLI and tests use; `npm rebuild better-sqlite3` switches back), or point ' +
      'LOGITSCOPE_SQLITE_BINDING at an Electron build of better_sqlite3.node, or use browser mode: `npx logitscope serve`.';
  }
  return message;
}

async function main(): Promise<void> {
  await app.whenReady();
  serveRenderer();
  lockDown();
  let lab: Lab;
  try {
    lab = await Lab.open();
  } catch (e) {
    dialog.showErrorBox('Logitscope Lab cannot open its results cache', explainOpenFailure(e));
    app.exit(1);
    return;
  }
  const unregister = registerIpc(ipcMain, lab, {
    isTrustedSender,
    send: (channel, name, payload) => {
      for (const win of BrowserWindow.getAllWindows()) win.webContents.send(channel, name, payload);
    },
  });
  openWindow();
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) openWindow();
  });
  app.on('window-all-closed', () => {
    unregister();
    void lab.close().finally(() => app.quit());
  });
}

void main();
