import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RENDERER_DIR } from '../app-paths.ts';
import { isLoopback, startServer } from '../serve.ts';
import { intOption, parseOptions } from './options.ts';

const HELP = `usage: logitscope serve [--port P] [--host H] [--db FILE]

Serves the Lab's user interface and API to a browser, for a GPU box reached through an SSH tunnel:
  on the GPU box:      npx logitscope serve --port 8765
  on your computer:    ssh -N -L 8765:127.0.0.1:8765 gpu-box
then open the URL it prints (it carries a random access token; anyone with the URL can drive the Lab).

  --port P     port to listen on (default: a free one)
  --host H     address to bind (default 127.0.0.1; anything else exposes the Lab to the network)
  --db FILE    the results cache (default: the app's data directory)`;

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));


/**
 * Builds dist/renderer with vite when it is missing (first run from a checkout) or older than any
 * renderer source (after a pull), so the page always matches the API it talks to.
 */
export async function ensureRendererBuilt(): Promise<string> {
  const built = path.join(RENDERER_DIR, 'index.html');
  if (fs.existsSync(built) && newestSource(path.join(repoRoot, 'src-renderer')) <= fs.statSync(built).mtimeMs) return RENDERER_DIR;
  await viteBuild(path.join(repoRoot, 'vite.config.ts'), 'the user interface');
  return RENDERER_DIR;
}

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, fs.statSync(path.join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

export async function viteBuild(configFile: string, what: string): Promise<void> {
  console.error(`Building ${what}…`);
  let vite: typeof import('vite');
  try {
    vite = await import('vite');
  } catch {
    throw new Error(`${what} is not built and vite is not installed: run \`npm install\`, then \`npm run build\``);
  }
  await vite.build({ configFile, logLevel: 'warn' });
}

export const serveCommand = {
  summary: 'serve the user interface to a browser (for remote GPU boxes, over an SSH tunnel)',
  async run(argv: string[]) {
    const o = parseOptions(argv, { port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' }, db: { type: 'string' } }, HELP);
    if (!o) return;
    const port = intOption(o.port, 'port', { min: 0, fallback: 0 })!;
    const host = o.host!;
    const rendererDir = await ensureRendererBuilt();
    // Loaded here, not at the top: every other command would otherwise open the engine's modules too.
    const { Lab } = await import('../api/lab.ts');
    const lab = await Lab.open({ dbPath: o.db });
    const server = await startServer({ lab, rendererDir, port, host });
    if (!isLoopback(host)) {
      console.error(
        `\n!!! WARNING: listening on ${host}, not on loopback. Anyone on the network who sees the URL below can run\n` +
          '!!! sweeps and read your results; the traffic is unencrypted. Prefer the default 127.0.0.1 and an SSH tunnel.\n',
      );
    }
    console.log(`Logitscope Lab is serving at:\n\n  ${server.url}\n\nKeep this URL private (it carries the access token). Ctrl-C stops.`);
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    await server.close();
    await lab.close();
  },
};
