/**
 * The desktop's engine process: the Lab (onnxruntime sessions, the SQLite cache, running sweeps)
 * in a plain Node process that the Electron main process starts and supervises
 * (desktop/engine-supervisor.ts). It runs on the Node binary that ran `logitscope start`, so the
 * one better-sqlite3 build serves the CLI, the tests, browser mode and the desktop, and a native
 * crash here (a CUDA out-of-memory, a driver fault) never takes the window down.
 *
 * A front like cli.ts and serve.ts: it speaks the API's requests and events, over the Node IPC
 * channel its parent opened (desktop/engine-wire.ts), and nothing else.
 */
import { Lab } from './api/lab.ts';
import { ENGINE_DB_ENV, type FromEngine, type ToEngine } from './desktop/engine-wire.ts';
import { serializeError } from './errors.ts';

function send(message: FromEngine): void {
  // The channel is gone when main died first; there is nobody left to tell.
  if (process.connected) process.send!(message);
}

async function main(): Promise<void> {
  if (!process.send) {
    console.error('engine-process.ts is started by the desktop app (`logitscope start`), over an IPC channel; run `logitscope serve` for a browser instead.');
    process.exit(2);
  }
  let lab: Lab;
  try {
    lab = await Lab.open({ dbPath: process.env[ENGINE_DB_ENV] || undefined });
  } catch (e) {
    console.error(`the results cache cannot be opened: ${(e as Error).message}`);
    send({ type: 'fatal', error: serializeError(e) });
    process.disconnect();
    process.exitCode = 1;
    return;
  }
  lab.onEvent((name, payload) => send({ type: 'event', name, payload }));
  process.on('message', (message: ToEngine) => {
    if (message?.type !== 'call') return;
    void lab.dispatch(message.name, message.payload).then((envelope) => send({ type: 'reply', id: message.id, envelope }));
  });

  let closing = false;
  // SIGTERM from main on quit, or the channel closing because main itself is gone: running sweeps
  // are cancelled (their finished batches are kept, and Resume continues them), then the cache closes.
  const shutdown = (why: string) => {
    if (closing) return;
    closing = true;
    console.error(`engine stopping (${why})`);
    void lab.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('disconnect', () => shutdown('the window process is gone'));
  console.error(`engine ready: pid ${process.pid}, results cache ${lab.dbFile}`);
  send({ type: 'ready', pid: process.pid, dbPath: lab.dbFile });
}

await main();
