import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseOptions } from './options.ts';
import { ensureRendererBuilt, viteBuild } from './serve.ts';

const HELP = `usage: logitscope start [--db FILE]

Opens the Lab's desktop window (Electron). The engine (onnxruntime and the results cache) runs in a
Node.js process beside the window, on this same Node, so nothing needs rebuilding for Electron. One
window per results cache: starting it again brings that window to the front.
Where there is no display or no Electron binary it says so and points to browser mode,
\`logitscope serve\`, which shows the same interface.

  --db FILE    the results cache (default: the app's data directory)`;

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const ELECTRON_DIR = path.join(repoRoot, 'dist/electron');

/**
 * The Electron binary, found the way the electron package's own index.js finds it but without
 * loading that file, which throws when the binary download was skipped.
 */
export function electronBinary(): { path: string } | { missing: string; installer?: string } {
  let pkg: string;
  try {
    pkg = createRequire(import.meta.url).resolve('electron/package.json');
  } catch {
    return { missing: 'the electron package is not installed (it is a devDependency: run `npm install`)' };
  }
  const dir = path.dirname(pkg);
  const pathFile = path.join(dir, 'path.txt');
  if (!fs.existsSync(pathFile)) {
    // package.json's allowScripts keeps npm from running electron's download at install time (it
    // would fail the whole install where only the npm registry is reachable); `start` runs it.
    return { missing: 'the Electron binary has not been downloaded yet (`node node_modules/electron/install.js` fetches it; it needs access to its download host)', installer: path.join(dir, 'install.js') };
  }
  const relative = fs.readFileSync(pathFile, 'utf8').trim();
  const binary = process.env.ELECTRON_OVERRIDE_DIST_PATH ? path.join(process.env.ELECTRON_OVERRIDE_DIST_PATH, relative) : path.join(dir, 'dist', relative);
  return fs.existsSync(binary) ? { path: binary } : { missing: `the Electron binary is missing at ${binary}` };
}

function noDisplay(env: NodeJS.ProcessEnv, platform: NodeJS.Platform): string | null {
  return platform === 'linux' && !env.DISPLAY && !env.WAYLAND_DISPLAY
    ? 'there is no display: neither DISPLAY nor WAYLAND_DISPLAY is set (a headless machine or a plain SSH session)'
    : null;
}

/** Why no window can open here, all reasons at once; empty when it can. */
export function whyNoWindow(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string[] {
  const reasons: string[] = [];
  const display = noDisplay(env, platform);
  if (display) reasons.push(display);
  const binary = electronBinary();
  if ('missing' in binary) reasons.push(binary.missing);
  return reasons;
}

/** The first start on a machine with a display downloads the Electron binary, once. */
async function fetchElectronBinary(installer: string): Promise<boolean> {
  console.error('Downloading the Electron binary (once; about 100 MB)…');
  const child = spawn(process.execPath, [installer], { stdio: 'inherit', env: { ...process.env, ELECTRON_SKIP_BINARY_DOWNLOAD: '' } });
  return new Promise((resolve) => {
    child.on('exit', (code) => resolve(code === 0));
    child.on('error', () => resolve(false));
  });
}

const BROWSER_MODE = `Use browser mode instead; it shows the same interface:
  npx logitscope serve                      then open the URL it prints
On a remote GPU box, tunnel the port to your computer:
  npx logitscope serve --port 8765          (on the GPU box)
  ssh -N -L 8765:127.0.0.1:8765 gpu-box     (on your computer), then open the printed URL`;

export const startCommand = {
  summary: 'open the desktop window (Electron); explains browser mode where it cannot',
  async run(argv: string[]) {
    const o = parseOptions(argv, { db: { type: 'string' } }, HELP);
    if (!o) return;
    const binaryNow = electronBinary();
    if (!noDisplay(process.env, process.platform) && 'installer' in binaryNow && binaryNow.installer) {
      await fetchElectronBinary(binaryNow.installer);
    }
    const reasons = whyNoWindow();
    if (reasons.length > 0) {
      console.error(`Logitscope Lab cannot open its desktop window here:\n${reasons.map((r) => `  - ${r}`).join('\n')}\n\n${BROWSER_MODE}`);
      // An expected situation, not a crash: a plain message and a failing status, no stack trace.
      process.exit(1);
    }
    const binary = (electronBinary() as { path: string }).path;
    await ensureRendererBuilt();
    if (!fs.existsSync(path.join(ELECTRON_DIR, 'main.mjs')) || !fs.existsSync(path.join(ELECTRON_DIR, 'preload.cjs'))) {
      await viteBuild(path.join(repoRoot, 'electron.config.ts'), 'the Electron preload');
    }
    // The engine process runs on this Node (the ABI better-sqlite3 and onnxruntime-node were built for).
    const env: NodeJS.ProcessEnv = { ...process.env, LOGITSCOPE_NODE: process.execPath, ...(o.db && { LOGITSCOPE_DB: path.resolve(o.db) }) };
    // Inherited from some tools; it would make the binary behave as plain Node and ignore the window.
    delete env.ELECTRON_RUN_AS_NODE;
    const child = spawn(binary, [path.join(ELECTRON_DIR, 'main.mjs')], { stdio: 'inherit', env });
    const code = await new Promise<number>((resolve) => {
      child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
      child.on('error', (e) => {
        console.error(`could not start Electron (${binary}): ${e.message}\n\n${BROWSER_MODE}`);
        resolve(1);
      });
    });
    process.exit(code);
  },
};
