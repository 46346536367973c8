import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The built-in demo: a small GPT-J trained by this project (models/demo) and the corpus part it never saw. */
export const DEMO = { modelDir: path.join(REPO, 'models', 'demo'), dataFile: 'builtin:demo-heldout', limit: 300 } as const;

/** Published per-layer tables the app offers as built-in reference curves (docs/PROTOCOL.md, "Reference curves"). */
export const REFERENCE_DIR = path.join(REPO, 'docs', 'reference');

/** The renderer's build (vite), served by browser mode and loaded by the Electron window. */
export const RENDERER_DIR = path.join(REPO, 'dist', 'renderer');

/**
 * Where the app keeps derived files (built graphs, converted weights). They can always be rebuilt,
 * so they live in the platform's cache directory; LOGITSCOPE_CACHE_DIR overrides it.
 */
export function defaultCacheDir(): string {
  if (process.env.LOGITSCOPE_CACHE_DIR) return process.env.LOGITSCOPE_CACHE_DIR;
  if (process.platform === 'darwin') return path.join(os.homedir(), 'Library', 'Caches', 'logitscope-lab');
  if (process.platform === 'win32') return path.join(process.env.LOCALAPPDATA ?? os.homedir(), 'logitscope-lab', 'cache');
  return path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'logitscope-lab');
}
