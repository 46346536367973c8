import os from 'node:os';
import path from 'node:path';

/**
 * Where the results database lives. Unlike the build cache (app-paths.ts), finished results cannot
 * be rebuilt cheaply, so they go in the platform's data directory, which cleaners leave alone.
 * LOGITSCOPE_DB overrides the whole path.
 */
export function defaultDbPath(): string {
  if (process.env.LOGITSCOPE_DB) return process.env.LOGITSCOPE_DB;
  const file = path.join('logitscope-lab', 'results.sqlite');
  if (process.platform === 'darwin') return path.join(os.homedir(), 'Library', 'Application Support', file);
  if (process.platform === 'win32') return path.join(process.env.APPDATA ?? path.join(os.homedir(), 'AppData', 'Roaming'), file);
  return path.join(process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share'), file);
}

/** The desktop engine process's log (desktop/engine-supervisor.ts): beside the results database it serves. */
export function engineLogPath(dbPath: string = defaultDbPath()): string {
  return path.join(path.dirname(path.resolve(dbPath)), 'logs', 'engine.log');
}
