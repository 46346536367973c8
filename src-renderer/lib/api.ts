/**
 * The renderer's one way to the Lab: the typed ApiClient of contract.ts, over the Electron preload
 * bridge when there is one, else over HTTP. Error envelopes are rethrown as real errors with their
 * code (LogitscopeError), so components catch and show them like any error.
 */
import type { ApiClient } from '../../src-main/api/contract.ts';
import type { LogitscopeBridge } from '../../src-main/api/ipc.ts';
import { deserializeError } from '../../src-main/errors.ts';
import { httpBridge, takeToken } from './http-client.ts';

declare global {
  interface Window {
    /** Set by the Electron preload; absent in a browser. */
    logitscope?: LogitscopeBridge;
  }
}

export function clientOver(bridge: LogitscopeBridge): ApiClient {
  return {
    async call(name, payload) {
      const envelope = await bridge.call(name, payload);
      if (envelope.ok) return envelope.result;
      throw deserializeError(envelope.error);
    },
    on: (name, listener) => bridge.on(name, listener),
  };
}

export const inElectron = window.logitscope !== undefined;
export const api: ApiClient = clientOver(window.logitscope ?? httpBridge(takeToken()));
