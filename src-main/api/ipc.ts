/**
 * The Electron wiring of the one API, derived from contract.ts: main registers one handler per
 * request name, and the preload exposes exactly one `LogitscopeBridge` object, never ipcRenderer.
 *
 * No electron import here: main passes its ipcMain in and the preload its ipcRenderer, so tests
 * drive both ends with fakes and the real Lab. This file is also bundled into the sandboxed
 * preload, which can only require('electron'), so it imports nothing but types and the contract.
 */
import { EVENT_NAMES, REQUEST_NAMES, type ApiEvents, type Envelope, type EventName, type Payload, type Reply, type RequestName } from './contract.ts';
import { serializeError } from '../errors.ts';
import type { Lab } from './lab.ts';

/** What the preload puts on `window.logitscope`. Replies stay envelopes: contextBridge drops an Error's code. */
export interface LogitscopeBridge {
  call<K extends RequestName>(name: K, payload: Payload<K>): Promise<Envelope<Reply<K>>>;
  on<E extends EventName>(name: E, listener: (payload: ApiEvents[E]) => void): () => void;
}

export const requestChannel = (name: RequestName): string => `logitscope:call:${name}`;
/** Every event goes down one channel as (name, payload); the preload fans it out by name. */
export const EVENT_CHANNEL = 'logitscope:event';

/** The frame that sent an IPC message (Electron's WebFrameMain), as far as the checks need it. */
export interface SenderFrame {
  url: string;
  /** null for a top-level frame. */
  parent: unknown;
}

export interface IpcMainLike {
  handle(channel: string, listener: (event: { senderFrame: SenderFrame | null }, ...args: unknown[]) => unknown): void;
  removeHandler(channel: string): void;
}

export interface IpcRendererLike {
  invoke(channel: string, ...args: unknown[]): Promise<unknown>;
  on(channel: string, listener: (event: unknown, ...args: unknown[]) => void): unknown;
}

export interface IpcOptions {
  /** Whether a message comes from the app's own page; anything else is refused before the Lab sees it. */
  isTrustedSender(frame: SenderFrame | null): boolean;
  /** Pushes an event to the app's window(s) on EVENT_CHANNEL. */
  send(channel: string, name: EventName, payload: unknown): void;
}

const refused = (message: string, path: string, code: 'forbidden_origin' | 'argument_invalid' = 'argument_invalid'): Envelope<never> => ({ ok: false, error: { code, message, path } });

/**
 * Registers a handler for every request of the contract and forwards every Lab event.
 * Returns the function that undoes both.
 */
export function registerIpc(ipcMain: IpcMainLike, lab: Pick<Lab, 'dispatch' | 'onEvent'>, opts: IpcOptions): () => void {
  for (const name of REQUEST_NAMES) {
    ipcMain.handle(requestChannel(name), async (event, ...args): Promise<Envelope<unknown>> => {
      if (!opts.isTrustedSender(event.senderFrame)) return refused('IPC from an untrusted frame was refused', 'sender', 'forbidden_origin');
      if (args.length !== 1) return refused(`${name} takes exactly one payload argument, got ${args.length}`, 'payload');
      try {
        return await lab.dispatch(name, args[0]);
      } catch (e) {
        // dispatch promises never to throw; if it does, the renderer still gets an envelope.
        return { ok: false, error: serializeError(e) };
      }
    });
  }
  const unsubscribe = lab.onEvent((name, payload) => opts.send(EVENT_CHANNEL, name, payload));
  return () => {
    unsubscribe();
    for (const name of REQUEST_NAMES) ipcMain.removeHandler(requestChannel(name));
  };
}

/**
 * The preload's side: exactly `call` and `on`, with names checked against the contract so a
 * compromised page cannot reach arbitrary channels through it.
 */
export function buildBridge(ipcRenderer: IpcRendererLike): LogitscopeBridge {
  const listeners = new Map<EventName, Set<(payload: never) => void>>();
  ipcRenderer.on(EVENT_CHANNEL, (_event, name, payload) => {
    // The IpcRendererEvent (with its sender) never reaches the page: only the payload does.
    for (const listener of listeners.get(name as EventName) ?? []) listener(payload as never);
  });
  const bridge: LogitscopeBridge = {
    async call(name, payload) {
      if (!(REQUEST_NAMES as readonly unknown[]).includes(name)) return refused(`unknown request "${String(name)}"`, 'request');
      return (await ipcRenderer.invoke(requestChannel(name), payload)) as Envelope<Reply<typeof name>>;
    },
    on(name, listener) {
      if (!(EVENT_NAMES as readonly unknown[]).includes(name)) throw new Error(`unknown event "${String(name)}"`);
      if (typeof listener !== 'function') throw new Error('listener must be a function');
      const set = listeners.get(name) ?? new Set();
      listeners.set(name, set);
      const entry = (payload: never) => listener(payload);
      set.add(entry);
      return () => void set.delete(entry);
    },
  };
  return Object.freeze(bridge);
}
