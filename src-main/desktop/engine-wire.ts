/**
 * The messages between the desktop's main process and its engine process (engine-process.ts),
 * over the Node IPC channel that child_process gives a spawned child (no port, no file).
 * Requests and events are the API's own (contract.ts): main relays them and adds nothing.
 */
import type { Envelope, EventName } from '../api/contract.ts';
import type { SerializedError } from '../errors.ts';

/** main -> engine */
export type ToEngine = { type: 'call'; id: number; name: string; payload: unknown };

/** engine -> main */
export type FromEngine =
  /** The Lab is open: requests are answered from now on. */
  | { type: 'ready'; pid: number; dbPath: string }
  /** The Lab could not open (a locked or newer database, a cache path that is a file…); the process exits next. */
  | { type: 'fatal'; error: SerializedError }
  | { type: 'reply'; id: number; envelope: Envelope<unknown> }
  | { type: 'event'; name: EventName; payload: unknown };

/** What the engine process needs to know, passed in its environment so its argv stays plain. */
export const ENGINE_DB_ENV = 'LOGITSCOPE_ENGINE_DB';
