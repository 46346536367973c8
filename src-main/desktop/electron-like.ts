/**
 * The part of Electron's main-process API the desktop shell uses, as a type. The shell
 * (shell.ts) takes an object of this shape, so electron.ts hands it the real module and the tests
 * a fake one: the whole main process runs without the Electron binary. Types only.
 */
import type { IpcMainLike } from '../api/ipc.ts';

export interface NavigationEvent {
  preventDefault(): void;
}

export interface WebContentsLike {
  send(channel: string, ...args: unknown[]): void;
  on(event: 'will-navigate' | 'will-redirect' | 'will-attach-webview', listener: (event: NavigationEvent) => void): unknown;
  setWindowOpenHandler(handler: (details: { url: string }) => { action: 'deny' }): void;
}

export interface WindowLike {
  readonly webContents: WebContentsLike;
  loadURL(url: string): Promise<void>;
  once(event: 'ready-to-show', listener: () => void): unknown;
  show(): void;
  focus(): void;
  isMinimized(): boolean;
  restore(): void;
  isDestroyed(): boolean;
  setTitle(title: string): void;
  /** 0..1, or -1 to remove the bar (Electron's BrowserWindow.setProgressBar). */
  setProgressBar(progress: number): void;
}

export interface WindowOptions {
  width: number;
  height: number;
  show: boolean;
  title: string;
  backgroundColor: string;
  webPreferences: Record<string, unknown>;
}

/** Electron's built-in menu roles that the app menu uses. */
export type MenuRole = 'close' | 'quit' | 'undo' | 'redo' | 'cut' | 'copy' | 'paste' | 'selectAll' | 'reload' | 'toggleDevTools' | 'resetZoom' | 'zoomIn' | 'zoomOut' | 'togglefullscreen';

export type MenuItem = { role: MenuRole } | { label: string; click: () => void } | { type: 'separator' } | { label: string; submenu: MenuItem[] };

/** W: the window class; dialogs take the windows it makes (Electron's BrowserWindow, or a test's fake). */
export interface ElectronLike<W extends WindowLike = WindowLike> {
  app: {
    isReady(): boolean;
    whenReady(): Promise<unknown>;
    on(event: 'second-instance', listener: () => void): unknown;
    on(event: 'window-all-closed', listener: () => void): unknown;
    on(event: 'activate', listener: () => void): unknown;
    on(event: 'before-quit', listener: (event: NavigationEvent) => void): unknown;
    on(event: 'web-contents-created', listener: (event: unknown, contents: WebContentsLike) => void): unknown;
    requestSingleInstanceLock(): boolean;
    setPath(name: 'userData', path: string): void;
    getPath(name: 'appData' | 'downloads'): string;
    quit(): void;
    exit(code?: number): void;
  };
  BrowserWindow: {
    new (options: WindowOptions): W;
    getAllWindows(): W[];
  };
  dialog: {
    showOpenDialog(window: W, options: { title: string; properties: ('openFile' | 'openDirectory' | 'multiSelections')[]; filters?: { name: string; extensions: string[] }[] }): Promise<{ canceled: boolean; filePaths: string[] }>;
    showSaveDialog(window: W, options: { title: string; defaultPath: string; filters?: { name: string; extensions: string[] }[] }): Promise<{ canceled: boolean; filePath?: string }>;
    showErrorBox(title: string, content: string): void;
  };
  ipcMain: IpcMainLike;
  protocol: {
    registerSchemesAsPrivileged(schemes: { scheme: string; privileges: { standard: boolean; secure: boolean } }[]): void;
    handle(scheme: string, handler: (request: Request) => Promise<Response>): void;
  };
  session: {
    defaultSession: {
      setPermissionRequestHandler(handler: (contents: unknown, permission: string, callback: (granted: boolean) => void) => void): void;
      setPermissionCheckHandler(handler: () => boolean): void;
    };
  };
  Menu: {
    buildFromTemplate(template: MenuItem[]): unknown;
    setApplicationMenu(menu: unknown): void;
  };
  shell: {
    showItemInFolder(fullPath: string): void;
    openPath(fullPath: string): Promise<string>;
  };
}
