/**
 * The Electron entry (dist/electron/main.mjs imports it; `logitscope start` runs that): the one
 * module besides the preload that loads electron. Everything else is desktop/shell.ts.
 */
import { createRequire } from 'node:module';
import type * as ElectronModule from 'electron';
import { runDesktop } from './desktop/shell.ts';

// require() rather than import: Electron intercepts require('electron') in every loader setup,
// including tsx's, whereas ESM resolution of the bare name would look in node_modules.
const electron: typeof ElectronModule = createRequire(import.meta.url)('electron');
await runDesktop(electron, { nodePath: process.env.LOGITSCOPE_NODE, dbPath: process.env.LOGITSCOPE_DB || undefined });
