/**
 * The sandboxed preload: puts exactly one object, `window.logitscope` (a LogitscopeBridge), into the
 * page's world. The page never sees ipcRenderer. Sandboxed preloads can only require('electron'),
 * so electron.config.ts bundles this file with the bridge into one CommonJS script.
 */
import { contextBridge, ipcRenderer } from 'electron';
import { buildBridge } from './api/ipc.ts';

contextBridge.exposeInMainWorld('logitscope', buildBridge(ipcRenderer));
