/**
 * Browser mode's transport: the same LogitscopeBridge shape the Electron preload exposes (replies
 * stay envelopes), over POST /api/<request> and one Server-Sent Events stream for every event.
 *
 * It also knows whether the Lab is there: the stream opens with the server's id and then beats
 * every couple of seconds. Three missed beats, or a stream the server refuses, and the page hears
 * an `engine.state` of 'stopped' (the desktop's engine process reports the same way), so it stops
 * claiming anything runs. It keeps trying: the same server coming back (a dropped SSH tunnel)
 * reconnects by itself; a new server (a restarted `serve` has a new token) is said to be one.
 */
import { EVENT_NAMES, type EngineState, type Envelope, type EventName } from '../../src-main/api/contract.ts';
import type { LogitscopeBridge } from '../../src-main/api/ipc.ts';

const TOKEN_KEY = 'logitscope-token';
const MISSED_BEATS = 3;
const PROBE_MS = 2000;

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

/** The Lab as this page sees it, in the desktop engine's terms (no process, no log file here). */
function labState(state: EngineState['state'], why?: { code: 'engine_failed' | 'unauthorized'; message: string }, retrying = false): EngineState {
  return {
    state,
    pid: null,
    startSeconds: null,
    restarts: 0,
    restarting: retrying,
    logFile: '',
    crash: why ? { code: null, signal: null, error: why, logTail: [], at: new Date().toISOString() } : null,
  };
}

export function httpBridge(token: string, base: URL = new URL('.', location.href)): LogitscopeBridge {
  const listeners = new Map<EventName, Set<(payload: never) => void>>();
  let stream: EventSource | null = null;
  let server: string | null = null;
  let beatMs = 2000;
  let lastBeat = 0;
  let connected = false;
  /** A stream that has not said hello by then is as lost as one that stopped beating (a frozen server accepts, then says nothing). */
  let helloBy = 0;
  let probe: ReturnType<typeof setTimeout> | undefined;

  const emit = (name: EventName, payload: unknown) => {
    for (const listener of listeners.get(name) ?? []) listener(payload as never);
  };

  function connect(): void {
    const url = new URL('api/events', base);
    url.searchParams.set('token', token);
    stream = new EventSource(url);
    helloBy = Date.now() + MISSED_BEATS * beatMs;
    stream.onmessage = (message) => {
      const { name, payload } = JSON.parse(message.data) as { name: EventName; payload: never };
      emit(name, payload);
    };
    stream.addEventListener('hello', (message) => {
      const hello = JSON.parse((message as MessageEvent).data) as { server: string; heartbeatMs: number };
      beatMs = hello.heartbeatMs;
      lastBeat = Date.now();
      if (server !== null && hello.server !== server) return replaced();
      server = hello.server;
      connected = true;
      emit('engine.state', labState('ready'));
    });
    stream.addEventListener('heartbeat', () => (lastBeat = Date.now()));
    // A refused stream (401 after a restart) is closed by the browser; a dropped one (the server
    // died, the tunnel broke) would retry by itself, but the page should say so at once: the probe retries.
    stream.onerror = () => lost(stream?.readyState === EventSource.CLOSED ? 'the Lab server refused the event stream' : 'the connection to the Lab server dropped');
  }

  function lost(why: string): void {
    stream?.close();
    stream = null;
    if (connected || server === null) emit('engine.state', labState('stopped', { code: 'engine_failed', message: `${why}: is \`logitscope serve\` still running?` }, true));
    connected = false;
    clearTimeout(probe);
    probe = setTimeout(tryAgain, PROBE_MS);
  }

  /** Asks the server whether this page's token still opens it: yes reconnects, 401 means a new server. */
  async function tryAgain(): Promise<void> {
    let status: number;
    try {
      status = (await fetch(new URL('api/app.info', base), { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: '{}' })).status;
    } catch {
      probe = setTimeout(tryAgain, PROBE_MS);
      return;
    }
    if (status === 401) return replaced();
    connect();
  }

  function replaced(): void {
    stream?.close();
    stream = null;
    connected = false;
    const message = token
      ? 'the Lab server answering here is a new one (a restarted `logitscope serve` has a new access token): open the link it printed in its terminal'
      : 'this page has no access token: open the link that `logitscope serve` printed in its terminal';
    emit('engine.state', labState('stopped', { code: 'unauthorized', message }));
  }

  setInterval(() => {
    if (connected && Date.now() - lastBeat > MISSED_BEATS * beatMs) lost(`no word from the Lab server for ${Math.round((Date.now() - lastBeat) / 1000)} s`);
    else if (!connected && stream && Date.now() > helloBy) lost('the Lab server does not answer');
  }, 1000);

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
      // One stream for all events, opened on first use.
      if (!stream && probe === undefined) connect();
      const set = listeners.get(name) ?? new Set();
      listeners.set(name, set);
      const entry = listener as (payload: never) => void;
      set.add(entry);
      return () => void set.delete(entry);
    },
  };
}
