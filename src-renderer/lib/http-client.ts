/**
 * Browser mode's transport: the same LogitscopeBridge shape the Electron preload exposes (replies
 * stay envelopes), over POST /api/<request> and one Server-Sent Events stream for every event.
 */
import { EVENT_NAMES, type Envelope, type EventName } from '../../src-main/api/contract.ts';
import type { LogitscopeBridge } from '../../src-main/api/ipc.ts';

const TOKEN_KEY = 'logitscope-token';

/**
 * The access token from the URL that `serve` printed. It is moved to sessionStorage and taken out
 * of the address bar, so it survives a reload but not a copied URL, a screenshot or the history.
 */
export function takeToken(): string {
  const url = new URL(location.href);
  const fromUrl = url.searchParams.get('token');
  if (fromUrl) {
    sessionStorage.setItem(TOKEN_KEY, fromUrl);
    url.searchParams.delete('token');
    history.replaceState(null, '', url.pathname + url.search + url.hash);
    return fromUrl;
  }
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

const failed = (message: string): Envelope<never> => ({ ok: false, error: { code: 'unexpected', message } });

export function httpBridge(token: string, base: URL = new URL('.', location.href)): LogitscopeBridge {
  const listeners = new Map<EventName, Set<(payload: never) => void>>();
  let stream: EventSource | null = null;

  function connect(): void {
    const url = new URL('api/events', base);
    url.searchParams.set('token', token);
    stream = new EventSource(url);
    stream.onmessage = (message) => {
      const { name, payload } = JSON.parse(message.data) as { name: EventName; payload: never };
      for (const listener of listeners.get(name) ?? []) listener(payload);
    };
  }

  return {
    async call(name, payload) {
      let response: Response;
      try {
        response = await fetch(new URL(`api/${name}`, base), {
          method: 'POST',
          headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
          body: JSON.stringify(payload),
        });
      } catch (e) {
        return failed(`cannot reach the Lab server (is \`logitscope serve\` still running?): ${(e as Error).message}`);
      }
      try {
        return await response.json();
      } catch {
        return failed(`the server answered ${response.status} ${response.statusText} without a reply`);
      }
    },
    on(name, listener) {
      if (!EVENT_NAMES.includes(name)) throw new Error(`unknown event "${name}"`);
      // One stream for all events, opened on first use; EventSource reconnects by itself.
      if (!stream) connect();
      const set = listeners.get(name) ?? new Set();
      listeners.set(name, set);
      const entry = listener as (payload: never) => void;
      set.add(entry);
      return () => void set.delete(entry);
    },
  };
}
